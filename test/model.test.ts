// The whole model against fixtures made by an independent implementation (PyTorch, float64:
// test/fixtures/make_fixtures.py): logits with padding, per-token NLL and entropy, LoRA
// logits, LoRA gradients after one backward, ten AdamW steps' losses and the tensors after them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import type { ModelBatch as Batch, LlamaModel } from '../src/model/llama.js';
import { loadModel, loadModelAdapter } from '../src/model/load.js';
import type { LoraModule } from '../src/lora.js';
import { expectClose } from './helpers/check.js';
import { expectLoraGrads, loraDistanceAfterSteps } from './helpers/lora-parity.js';
import { describeGpu, stepOf } from './helpers/gpu.js';

const FIX = join(import.meta.dirname, 'fixtures', 'models');

async function fixture(name: string) {
  const dir = join(FIX, name);
  const meta = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const exp = await SafetensorsFile.openPath(join(dir, 'expected.safetensors'));
  const ids = await exp.readI32('input_ids');
  const mask = await exp.readI32('attention_mask');
  const lossMask = await exp.readI32('loss_mask');
  const { B, T } = meta.batch as { B: number; T: number };
  return { dir, meta, exp, ids, mask, lossMask, B, T };
}

type Fix = Awaited<ReturnType<typeof fixture>>;

/** The fixture batch in our layout; `on(b, j)` says whether token j of row b is a target. */
function batchOf(f: Fix, on: (i: number) => boolean): Batch {
  const { B, T } = f;
  const targets = new Int32Array(B * T).fill(-1);
  const segments = new Int32Array(B * T);
  const positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      segments[i] = f.mask[i] ? b : -1;
      positions[i] = t;
      if (t + 1 < T && on(i + 1)) targets[i] = f.ids[i + 1];
    }
  }
  return { B, T, ids: f.ids, targets, segments, positions };
}

/** Expected logits only where attention_mask = 1 (pad rows are not compared). */
function masked(f: Fix, logits: ArrayLike<number>, V: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < f.B * f.T; i++) if (f.mask[i]) for (let v = 0; v < V; v++) out.push(logits[i * V + v]);
  return out;
}

// f32 on the GPU against float64: logits of this size (|z| ≲ 5) agree to ~1e-5.
const LOGITS_TOL = { atol: 1e-4, rtol: 1e-4 };

describeGpu('model parity with PyTorch fixtures', (gpu) => {
  for (const name of ['llama', 'qwen2', 'qwen3']) {
    it(`${name}: base logits, per-sample NLL and entropy`, async () => {
      const f = await fixture(name);
      const model = await loadModel(gpu, f.dir, { weights: 'f32' });
      const V = model.cfg.vocabSize;
      const nllMask = await f.exp.readI32('nll_mask');
      const batch = batchOf(f, (i) => f.mask[i] === 1);
      const got = await model.logits(batch);
      const want = await f.exp.readF64('logits');
      expectClose(`${name} logits`, masked(f, got, V), masked(f, want, V), LOGITS_TOL);

      // per-sample means over the positions that predict a real next token
      const nll = await f.exp.readF64('nll'), ent = await f.exp.readF64('entropy');
      const stats = await model.score(batch);
      for (let b = 0; b < f.B; b++) {
        let sn = 0, se = 0, k = 0;
        for (let t = 0; t < f.T; t++) if (nllMask[b * f.T + t]) (sn += nll[b * f.T + t]), (se += ent[b * f.T + t]), k++;
        expect(stats[b].tokens).toBe(k);
        expectClose(`${name} sample ${b} nll/entropy`, [stats[b].nll, stats[b].entropy], [sn / k, se / k], { atol: 2e-5, rtol: 1e-5 });
      }
    });

    it(`${name}: LoRA logits, gradients after one backward, ten AdamW steps`, async () => {
      const f = await fixture(name);
      const model: LlamaModel = await loadModel(gpu, f.dir, { weights: 'f32' });
      await loadModelAdapter(model, join(f.dir, 'lora_init'));
      const V = model.cfg.vocabSize;
      const batch = batchOf(f, (i) => f.lossMask[i] === 1);
      expectClose(`${name} lora logits`, masked(f, await model.logits(batch), V), masked(f, await f.exp.readF64('lora_logits'), V), LOGITS_TOL);

      const a = f.meta.adamw;
      const opt = { lr: a.lr, beta1: a.betas[0], beta2: a.betas[1], eps: a.eps, weightDecay: a.weight_decay, maxGradNorm: 0 };
      const losses: number[] = [];
      losses.push((await stepOf(model).step([batch], opt)).loss);
      // gradients of step 1 (at lora_init) are still in the grad buffers
      const lora = (l: number, m: LoraModule, w: 'A' | 'B') => model.layers[l].lin[m][w]!;
      const gradError = await expectLoraGrads(name, model.layers.length, (l, m, w) => gpu.readF32(lora(l, m, w).grad, lora(l, m, w).n), f.exp);
      for (let k = 1; k < 10; k++) losses.push((await stepOf(model).step([batch], opt)).loss);
      expectClose(`${name} ten AdamW losses`, losses, f.meta.losses, { atol: 1e-4, rtol: 1e-4 });
      // The tensors after ten updates, each compared as a whole: its distance to PyTorch's result
      // relative to how far it moved. Adam's first update is lr·sign(g) for every element, so an
      // element whose true gradient at the start is smaller than f32 rounding of the backward may
      // step the wrong way by a full lr, and the trajectory follows. Measured on llama: layers.1
      // gate_proj lora_A[49] has the PyTorch gradient −2.2e-9 and ours +1.9e-8 (the largest
      // |ours − PyTorch| over the step-1 gradients is 2e-7); flipping that one sign in PyTorch's
      // own float64 run (test/fixtures/adam_sign_flip.py) moves its result by 3.6e-3 of the
      // movement, the order of the 8e-3 seen here. qwen2's and qwen3's smallest gradients (5e-6,
      // 1e-6) lie far above the noise. So the bound is 1e-4 unless some start gradient is below
      // the measured gradient error, and 2e-2 (the sign-flip regime) when one is.
      const { worst, undecided } = await loraDistanceAfterSteps(model.layers.length, (l, m, w) => gpu.readF32(lora(l, m, w).buf, lora(l, m, w).n), f.exp, gradError);
      console.log(`${name}: after 10 AdamW steps, worst ‖ours − PyTorch‖ / ‖movement‖ over the LoRA tensors: ${worst.toExponential(2)}; start gradients within the f32 error (${gradError.toExponential(1)}) of zero: ${undecided}`);
      expect(worst).toBeLessThan(undecided > 0 ? 2e-2 : 1e-4);
      expect(undecided).toBe(name === 'llama' ? 1 : 0);
    });
  }
});
