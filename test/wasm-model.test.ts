// The whole model on the wasm backend against the PyTorch fixtures (float64,
// test/fixtures/make_fixtures.py), as test/model.test.ts checks the WebGPU path: logits with
// padding, per-sample NLL and entropy, LoRA logits, LoRA gradients after one backward, ten AdamW
// steps' losses and the tensors after them; then what the trainer relies on — bit-identical runs
// (with dropout) on 1, 2 and 3 threads, gradient accumulation, activation recomputation, full
// fine-tuning gradients against finite differences, optimizer state out and back in.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, openCheckpoint, type TensorStore } from '../src/io/safetensors.js';
import { configFromJson, expectedTensors, loadConfig } from '../src/io/config.js';
import { generate, type ModelBatch as Batch } from '../src/model/llama.js';
import { argmax } from '../src/model/sample.js';
import type { LoraModule } from '../src/lora.js';
import { loadWeightsF64, maskedLossRef, modelForwardRef } from '../src/reference/model.js';
import { WasmKernels } from '../src/wasm/kernels.js';
import { loadWasmModel, wasmModelFromStore, type WasmModel } from '../src/wasm/model.js';
import { WasmBackend } from '../src/wasm/backend.js';
import type { AdamwOptions } from '../src/train/backend.js';
import { expectClose, expectGradByDifferences } from './helpers/check.js';
import { expectLoraGrads, loraDistanceAfterSteps } from './helpers/lora-parity.js';

const FIX = join(import.meta.dirname, 'fixtures', 'models');
// smallWork 0: every kernel call runs split over the threads, even the tiny fixtures' (by default small calls run on one)
const kernels = new Map<number, WasmKernels>();
async function kernelsOf(threads: number): Promise<WasmKernels> {
  let k = kernels.get(threads);
  // threads 0: the unshared-memory build
  if (!k) kernels.set(threads, (k = await WasmKernels.create(threads ? { threads, smallWork: 0 } : { shared: false })));
  return k;
}
afterAll(() => kernels.forEach((k) => k.dispose()));

async function fixture(name: string) {
  const dir = join(FIX, name);
  const meta = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const exp = await SafetensorsFile.openPath(join(dir, 'expected.safetensors'));
  const ids = await exp.readI32('input_ids'), mask = await exp.readI32('attention_mask'), lossMask = await exp.readI32('loss_mask');
  const { B, T } = meta.batch as { B: number; T: number };
  return { dir, meta, exp, ids, mask, lossMask, B, T };
}
type Fix = Awaited<ReturnType<typeof fixture>>;

function batchOf(f: Fix, on: (i: number) => boolean): Batch {
  const { B, T } = f;
  const targets = new Int32Array(B * T).fill(-1), segments = new Int32Array(B * T), positions = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    segments[i] = f.mask[i] ? Math.floor(i / T) : -1;
    positions[i] = i % T;
    if ((i % T) + 1 < T && on(i + 1)) targets[i] = f.ids[i + 1];
  }
  return { B, T, ids: f.ids, targets, segments, positions };
}

function masked(f: Fix, logits: ArrayLike<number>, V: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < f.B * f.T; i++) if (f.mask[i]) for (let v = 0; v < V; v++) out.push(logits[i * V + v]);
  return out;
}

function row(b: Batch, r: number): Batch {
  const s = (a: Int32Array) => a.slice(r * b.T, (r + 1) * b.T);
  return { B: 1, T: b.T, ids: s(b.ids), targets: s(b.targets), segments: s(b.segments).map((x) => (x < 0 ? -1 : 0)), positions: s(b.positions) };
}

const LOGITS_TOL = { atol: 1e-4, rtol: 1e-4 };
const OPT: AdamwOptions = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

describe('wasm model parity with PyTorch fixtures', () => {
  // the three fixtures on the shared-memory build (2 threads), and llama again on the unshared
  // one (plain SIMD, one thread: what a page without SharedArrayBuffer runs)
  for (const [name, build] of [['llama', 'shared'], ['qwen2', 'shared'], ['qwen3', 'shared'], ['llama', 'unshared']] as const) {
    it(`${name} (${build} memory): base logits, per-sample NLL and entropy; LoRA logits, gradients after one backward, ten AdamW steps`, async () => {
      const f = await fixture(name);
      const k = build === 'shared' ? await kernelsOf(2) : await kernelsOf(0);
      const model = await loadWasmModel(k, f.dir);
      try {
        const V = model.cfg.vocabSize;
        const nllMask = await f.exp.readI32('nll_mask');
        const all = batchOf(f, (i) => f.mask[i] === 1);
        expectClose(`${name} logits`, masked(f, model.logits(all), V), masked(f, await f.exp.readF64('logits'), V), LOGITS_TOL);
        const nll = await f.exp.readF64('nll'), ent = await f.exp.readF64('entropy');
        const stats = model.score(all);
        for (let b = 0; b < f.B; b++) {
          let sn = 0, se = 0, n = 0;
          for (let t = 0; t < f.T; t++) if (nllMask[b * f.T + t]) (sn += nll[b * f.T + t]), (se += ent[b * f.T + t]), n++;
          expect(stats[b].tokens).toBe(n);
          expectClose(`${name} sample ${b} nll/entropy`, [stats[b].nll, stats[b].entropy], [sn / n, se / n], { atol: 2e-5, rtol: 1e-5 });
        }

        await model.loadAdapter(join(f.dir, 'lora_init'));
        const batch = batchOf(f, (i) => f.lossMask[i] === 1);
        expectClose(`${name} lora logits`, masked(f, model.logits(batch), V), masked(f, await f.exp.readF64('lora_logits'), V), LOGITS_TOL);
        const a = f.meta.adamw;
        const opt = { lr: a.lr, beta1: a.betas[0], beta2: a.betas[1], eps: a.eps, weightDecay: a.weight_decay, maxGradNorm: 0 };
        const backend = new WasmBackend(model);
        const losses = [(await backend.step([batch], opt)).loss];
        const lora = (l: number, m: LoraModule, w: 'A' | 'B') => model.layers[l].lin[m][w]!;
        const gradError = await expectLoraGrads(name, model.layers.length, (l, m, w) => k.readF32(lora(l, m, w).grad, lora(l, m, w).n), f.exp);
        for (let s = 1; s < 10; s++) losses.push((await backend.step([batch], opt)).loss);
        expectClose(`${name} ten AdamW losses`, losses, f.meta.losses, { atol: 1e-4, rtol: 1e-4 });
        // as test/model.test.ts: distance to PyTorch's tensors relative to how far they moved; an
        // element whose start gradient lies within the f32 error of zero may step the wrong way
        const { worst, undecided } = await loraDistanceAfterSteps(model.layers.length, (l, m, w) => k.readF32(lora(l, m, w).ptr, lora(l, m, w).n), f.exp, gradError);
        console.log(`wasm ${name}: after 10 AdamW steps, worst ‖ours − PyTorch‖ / ‖movement‖: ${worst.toExponential(2)}; start gradients within the f32 error (${gradError.toExponential(1)}) of zero: ${undecided}`);
        expect(worst).toBeLessThan(undecided > 0 ? 2e-2 : 1e-4);
      } finally {
        model.dispose();
        await f.exp.close();
      }
    });
  }
});

it('refuses a model beyond wasm32\'s 4 GiB at load, naming the size, the limit and the way out', async () => {
  // a 7B-shaped config over a store that only describes its tensors (nothing is read)
  const cfg = configFromJson({
    model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 32, vocab_size: 32000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
  });
  const infos = new Map(expectedTensors(cfg).map((t) => [t.name, { name: t.name, dtype: 'F16' as const, shape: t.shape, begin: 0, end: 0, file: 'huge.safetensors' }]));
  const store = {
    names: () => [...infos.keys()], info: (n: string) => infos.get(n),
    readF32: () => Promise.reject(new Error('nothing may be read')),
  } as unknown as TensorStore;
  const k = await kernelsOf(1);
  const before = k.usage.live;
  await expect(wasmModelFromStore(k, cfg, store)).rejects.toThrow(/GiB.*at most 4 GiB/);
  await expect(wasmModelFromStore(k, cfg, store)).rejects.toMatchObject({ hint: expect.stringMatching(/--backend webgpu/) });
  expect(k.usage.live).toBe(before);
});

describe('wasm model training paths', () => {
  const DIR = join(FIX, 'llama');
  const load = async (threads: number) => loadWasmModel(await kernelsOf(threads), DIR);
  const fixtureBatch = async () => {
    const f = await fixture('llama');
    await f.exp.close();
    return { batch: batchOf(f, (i) => f.lossMask[i] === 1), f };
  };

  it('bit-identical losses and adapters on 1, 2 and 3 threads and on a rerun, with LoRA dropout and activation recomputation', async () => {
    const { batch } = await fixtureBatch();
    const run = async (threads: number, recompute = false) => {
      const m = await load(threads);
      try {
        m.attachLora({ r: 4, alpha: 8, dropout: 0.1 }, 1234);
        m.recompute = recompute;
        const b = new WasmBackend(m);
        const losses: number[] = [];
        for (let s = 0; s < 3; s++) losses.push((await b.step([batch], OPT)).loss);
        return { losses, b: m.adapter().weights[3].b };
      } finally {
        m.dispose();
      }
    };
    const x = await run(1), y = await run(2), z = await run(3), w = await run(2), r = await run(2, true);
    for (const o of [y, z, w, r]) {
      expect(o.losses).toEqual(x.losses);
      expect(Buffer.from(o.b.buffer).equals(Buffer.from(x.b.buffer))).toBe(true);
    }
    expect(x.losses[2]).toBeLessThan(x.losses[0]);
  });

  it('gradient accumulation over two micro-batches equals one batch of both; state out and back in continues exactly', async () => {
    const { batch, f } = await fixtureBatch();
    const a = await load(2), b = await load(2), c = await load(2);
    try {
      for (const m of [a, b, c]) await m.loadAdapter(join(f.dir, 'lora_init'));
      const ba = new WasmBackend(a), bb = new WasmBackend(b), bc = new WasmBackend(c);
      const ra = await ba.step([batch], OPT);
      const rb = await bb.step([row(batch, 0), row(batch, 1)], OPT);
      expect(rb.tokens).toBe(ra.tokens);
      expect(rb.loss).toBeCloseTo(ra.loss, 5);
      a.params().forEach((p, i) => expectClose(`accumulated grad ${i}`, b.k.readF32(b.params()[i].grad, p.n), a.k.readF32(p.grad, p.n), { atol: 1e-6, rtol: 1e-4 }));
      // a's state into c: the next steps are a's, bit for bit
      await bc.loadState(await ba.saveState());
      const next = [await ba.step([batch], OPT), await bc.step([batch], OPT)];
      expect(next[1].loss).toBe(next[0].loss);
      expect(bc.t).toBe(2);
      // a NaN gradient skips the update and the step count
      bc.nanSteps.add(2);
      const skipped = await bc.step([batch], OPT);
      expect(skipped.skipped).toBe(true);
      expect(bc.t).toBe(2);
    } finally {
      [a, b, c].forEach((m) => m.dispose());
    }
  });

  it('KV-cache decoding gives the full forward\'s logits (prefill, then token by token); generate() runs on it; steps allocate nothing after the first', async () => {
    const { batch, f } = await fixtureBatch();
    const m = await load(2);
    try {
      await m.loadAdapter(join(f.dir, 'lora_init'));
      const b = row(batch, 0), V = m.cfg.vocabSize, T = b.T;
      const full = m.logits(b);
      const kv = m.newKvCache(T);
      const got: number[] = [], want: number[] = [];
      got.push(...(await m.decode(kv, b.ids.slice(0, 5)))), want.push(...full.slice(4 * V, 5 * V));
      for (let t = 5; t < T; t++) got.push(...(await m.decode(kv, b.ids.slice(t, t + 1)))), want.push(...full.slice(t * V, (t + 1) * V));
      kv.dispose();
      expectClose('wasm decode vs full forward', got, want, { atol: 1e-4, rtol: 1e-4 });
      const prompt = Array.from(b.ids.slice(0, 6));
      const out = await generate(m.asGenerator(), prompt, { maxNewTokens: 4, stop: [] });
      expect(out.length).toBe(4);
      const seq = Int32Array.from([...prompt, ...out]), n = seq.length;
      const lg = m.logits({ B: 1, T: n, ids: seq, targets: new Int32Array(n).fill(-1), segments: new Int32Array(n), positions: Int32Array.from({ length: n }, (_, i) => i) });
      out.forEach((id, j) => expect(id).toBe(argmax(lg.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V))));
      // the training step: memory in use is the same after the second step as after the third
      const bk = new WasmBackend(m);
      await bk.step([batch], OPT);
      await bk.step([batch], OPT);
      const live = m.k.usage.live;
      await bk.step([batch], OPT);
      expect(m.k.usage.live).toBe(live);
    } finally {
      m.dispose();
    }
  });

  it('full fine-tuning: gradients of every kind of weight match finite differences of the float64 reference', async () => {
    const { batch, f } = await fixtureBatch();
    const k = await kernelsOf(2);
    const model: WasmModel = await loadWasmModel(k, DIR, { full: true });
    try {
      await new WasmBackend(model).step([batch], { ...OPT, lr: 0 });
      const cfg = await loadConfig(DIR);
      const store = await openCheckpoint(DIR);
      const weights = await loadWeightsF64(store, store.names());
      await store.close();
      const lossMask = f.lossMask;
      const loss = () => maskedLossRef(modelForwardRef({ cfg, weights, ids: batch.ids, B: batch.B, T: batch.T, attentionMask: f.mask }), batch.ids, lossMask, batch.B, batch.T, cfg.vocabSize);
      for (const name of ['model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.1.self_attn.k_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.norm.weight', 'lm_head.weight']) {
        const p = model.params().find((q) => q.name === name)!;
        const g = k.readF32(p.grad, p.n);
        const w = weights.get(name)!;
        const C = cfg.hiddenSize;
        const fixed = name.includes('embed') ? [batch.ids[3] * C + 5, batch.ids[7] * C + 11] : [0, Math.floor(p.n / 2)];
        expectGradByDifferences(`wasm full FT grad ${name}`, g, w, loss, fixed, { atol: 2e-5, rtol: 2e-3 });
      }
    } finally {
      model.dispose();
    }
  });
});
