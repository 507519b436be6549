// End to end on the CPU and GPU together: a JSONL data set → tokenizer (wasm) → batcher (wasm,
// packed [B, T] views uploaded without a copy) → LoRA training steps → scoring, on the tiny
// llama fixture with its own tokenizer.json.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readDataset } from '../src/data/read.js';
import { attachLora, loadModel } from '../src/model/load.js';
import { Batcher, samplesFromRecords } from '../src/tokenizer/batcher.js';
import { loadTokenizer } from '../src/tokenizer/files.js';
import { describeGpu } from './helpers/gpu.js';

const MODEL = join(import.meta.dirname, 'fixtures', 'models', 'llama');
const DATA = join(import.meta.dirname, 'fixtures', 'data', 'alpaca.jsonl');

describeGpu('data → tokenizer → batcher → model', (gpu) => {
  it('trains on a JSONL file: the loss falls, and scoring returns one row per sample', async () => {
    const tok = await loadTokenizer(MODEL, { cacheDir: false });
    const { records } = await readDataset(DATA);
    expect(records.length).toBe(3);
    const samples = samplesFromRecords(tok, records);
    const batcher = await Batcher.forTokenizer(tok, { B: 2, T: 48 });
    const { batch, placed } = batcher.pack(samples);
    expect(placed).toBe(3);
    const lossTokens = batch.targets.filter((t) => t >= 0).length;
    expect(lossTokens).toBeGreaterThan(0);

    const model = await loadModel(gpu, MODEL);
    attachLora(model, { r: 8, alpha: 16 }, 3);
    const opt = { lr: 5e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 };
    const losses: number[] = [];
    for (let s = 0; s < 8; s++) {
      const r = await model.trainStep([batch], opt);
      expect(r.tokens).toBe(lossTokens);
      expect(Number.isFinite(r.gradNorm)).toBe(true);
      losses.push(r.loss);
    }
    expect(losses[7]).toBeLessThan(losses[0] * 0.9);

    const scores = await model.score(batch);
    expect(scores.length).toBe(batch.sampleIds.length);
    for (const s of scores) {
      expect(s.tokens).toBeGreaterThan(0);
      expect(s.confidence).toBeGreaterThan(0);
      expect(s.confidence).toBeLessThanOrEqual(1);
      expect(s.entropy).toBeGreaterThanOrEqual(0);
    }
    // the per-sample means weighted by their token counts give the step's mean loss
    const after = await model.trainStep([batch], { ...opt, lr: 0 });
    const weighted = after.samples[0].reduce((a, s) => a + s.nll * s.tokens, 0) / lossTokens;
    expect(weighted).toBeCloseTo(after.loss, 5);
  });
});
