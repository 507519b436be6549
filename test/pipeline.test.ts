// End to end on the CPU and GPU together: a JSONL data set → tokenizer (wasm) → batcher (wasm,
// packed [B, T] views uploaded without a copy) → LoRA training steps → scoring, on the tiny
// llama fixture with its own tokenizer.json.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readDataset } from '../src/data/read.js';
import { openCheckpoint } from '../src/io/safetensors.js';
import { attachLora, currentAdapter, loadModel } from '../src/model/load.js';
import { loadWeightsF64, modelForwardRef } from '../src/reference/model.js';
import { Batcher, samplesFromRecords } from '../src/tokenizer/batcher.js';
import { loadTokenizer } from '../src/tokenizer/files.js';
import { expectClose } from './helpers/check.js';
import { describeGpu, stepOf } from './helpers/gpu.js';

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
      const r = await stepOf(model).step([batch], opt);
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
    // the next step's loss (taken before its update) and per-sample stats against the float64
    // reference model with the adapter as it stands now, on the same packed batch
    const adapter = await currentAdapter(model);
    const after = await stepOf(model).step([batch], { ...opt, lr: 0 });
    const store = await openCheckpoint(MODEL);
    const weights = await loadWeightsF64(store, store.names());
    await store.close();
    const lora = {
      r: adapter.config.r, alpha: adapter.config.alpha,
      get: (layer: number, module: string) => adapter.weights.find((w) => w.layer === layer && w.module === module),
    };
    const { B, T } = batch, V = model.cfg.vocabSize;
    const logits = modelForwardRef({ cfg: model.cfg, weights, ids: batch.ids, B, T, segmentIds: batch.segments, lora });
    const perSample = new Map<number, { nll: number; hit: number; n: number }>();
    let sum = 0;
    for (let n = 0; n < B * T; n++) {
      const t = batch.targets[n];
      if (t < 0) continue;
      const row = logits.subarray(n * V, (n + 1) * V);
      let mx = -Infinity, arg = 0;
      for (let v = 0; v < V; v++) if (row[v] > mx) (mx = row[v]), (arg = v);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - mx);
      const nll = mx + Math.log(z) - row[t];
      sum += nll;
      const s = perSample.get(batch.segments[n]) ?? { nll: 0, hit: 0, n: 0 };
      s.nll += nll, s.hit += arg === t ? 1 : 0, s.n++;
      perSample.set(batch.segments[n], s);
    }
    expectClose('step loss vs float64 reference', [after.loss], [sum / lossTokens], { atol: 1e-5, rtol: 1e-5 });
    after.samples[0].forEach((got, i) => {
      const want = perSample.get(i)!;
      expect(got.tokens).toBe(want.n);
      expect(got.accuracy).toBeCloseTo(want.hit / want.n, 6);
      expectClose(`sample ${i} nll vs float64 reference`, [got.nll], [want.nll / want.n], { atol: 1e-5, rtol: 1e-5 });
    });
  });
});
