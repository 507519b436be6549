// The float64 CPU reference model against the PyTorch fixtures (two independent oracles), for
// llama (GQA, llama3 RoPE), qwen2 (q/k/v bias, tied) and qwen3 (q/k norm, head_dim 24, sharded).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAdapter } from '../src/io/peft.js';
import { SafetensorsFile, openCheckpoint } from '../src/io/safetensors.js';
import { checkTensors, expectedTensors, loadConfig, type ModelConfig } from '../src/io/config.js';
import { maskedLossRef, modelForwardRef, modelLossGradRef, tokenStatsRef, loadWeightsF64, type RefLora, type Weights } from '../src/reference/model.js';
import { adamwRef } from '../src/reference/adamw.js';
import { LORA_MODULES } from '../src/lora.js';
import type { LoraModule } from '../src/lora.js';
import { expectClose, expectGradByDifferences } from './helpers/check.js';

const FIX = join(__dirname, 'fixtures/models');
const TIGHT = { atol: 1e-10, rtol: 1e-9 };

interface Fixture {
  cfg: ModelConfig;
  weights: Weights;
  /** every tensor of expected.safetensors: floats as Float64Array, ints as Int32Array */
  exp: { readF64(n: string): Float64Array; readI32(n: string): Int32Array };
  meta: { base_loss: number; lora_loss: number; losses: number[]; batch: { B: number; T: number } };
  ids: Int32Array;
  mask: Int32Array;
  lossMask: Int32Array;
  lora: RefLora & { tensors: Map<string, Float64Array> };
}

async function fixture(name: string, weightsFile?: string): Promise<Fixture> {
  const dir = join(FIX, name);
  const cfg = await loadConfig(dir);
  const store = weightsFile ? await SafetensorsFile.openPath(join(dir, weightsFile)) : await openCheckpoint(dir);
  checkTensors(store, cfg);
  const weights = await loadWeightsF64(store, expectedTensors(cfg).map((t) => t.name));
  await store.close();
  const file = await SafetensorsFile.openPath(join(dir, 'expected.safetensors'));
  const all = new Map<string, Float64Array | Int32Array>();
  for (const n of file.names()) all.set(n, file.info(n)!.dtype === 'I32' ? await file.readI32(n) : await file.readF64(n));
  await file.close();
  const get = <T,>(n: string): T => {
    if (!all.has(n)) throw new Error(`expected.safetensors has no '${n}'`);
    return all.get(n) as T;
  };
  const exp = { readF64: (n: string) => get<Float64Array>(n), readI32: (n: string) => get<Int32Array>(n) };
  const meta = JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8'));
  const adapter = await loadAdapter(join(dir, 'lora_init'), cfg);
  const tensors = new Map<string, Float64Array>();
  for (const w of adapter.weights) {
    tensors.set(`${w.layer}.${w.module}.A`, Float64Array.from(w.a));
    tensors.set(`${w.layer}.${w.module}.B`, Float64Array.from(w.b));
  }
  const lora = {
    r: adapter.config.r,
    alpha: adapter.config.alpha,
    tensors,
    get: (l: number, m: LoraModule) => {
      const a = tensors.get(`${l}.${m}.A`), b = tensors.get(`${l}.${m}.B`);
      return a && b ? { a, b } : undefined;
    },
  };
  return { cfg, weights, exp, meta, ids: exp.readI32('input_ids'), mask: exp.readI32('attention_mask'), lossMask: exp.readI32('loss_mask'), lora };
}

const run = (f: Fixture, lora?: RefLora) =>
  modelForwardRef({ cfg: f.cfg, weights: f.weights, ids: f.ids, B: 2, T: 12, attentionMask: f.mask, lora });

describe.each(['llama', 'qwen2', 'qwen3'])('reference model vs PyTorch fixtures: %s', (name) => {
  it('logits, per-token NLL and entropy of the base model; the masked loss', async () => {
    const f = await fixture(name);
    const V = f.cfg.vocabSize;
    const logits = run(f);
    expectClose(`${name} logits`, logits, f.exp.readF64('logits'), TIGHT);
    const st = tokenStatsRef(logits, f.ids, 2, 12, V, f.mask);
    expect(Array.from(st.valid)).toEqual(Array.from(f.exp.readI32('nll_mask')));
    expectClose(`${name} nll`, st.nll, f.exp.readF64('nll'), TIGHT);
    expectClose(`${name} entropy`, st.entropy, f.exp.readF64('entropy'), TIGHT);
    expectClose(`${name} base loss`, [maskedLossRef(logits, f.ids, f.lossMask, 2, 12, V)], [f.meta.base_loss], TIGHT);
    // the labels tensor says the same as the loss mask
    const labels = f.exp.readI32('labels');
    expect(Array.from(labels)).toEqual(Array.from(f.ids, (id, i) => (f.lossMask[i] ? id : -100)));
  });

  it('with the random LoRA on all seven modules: logits, loss, and gradients by finite differences', async () => {
    const f = await fixture(name);
    const V = f.cfg.vocabSize;
    const logits = run(f, f.lora);
    expectClose(`${name} lora logits`, logits, f.exp.readF64('lora_logits'), TIGHT);
    const loss = () => maskedLossRef(run(f, f.lora), f.ids, f.lossMask, 2, 12, V);
    expectClose(`${name} lora loss`, [loss()], [f.meta.lora_loss], TIGHT);
    expect(f.meta.losses[0]).toBe(f.meta.lora_loss);

    // central differences of the loss at a few elements of several LoRA tensors vs grad.<key>
    const picks: [number, LoraModule, 'A' | 'B'][] = [[0, 'q_proj', 'A'], [0, 'k_proj', 'B'], [1, 'v_proj', 'A'], [1, 'o_proj', 'B'], [0, 'gate_proj', 'B'], [1, 'down_proj', 'A']];
    for (const [l, m, w] of picks) {
      const t = f.lora.tensors.get(`${l}.${m}.${w}`)!;
      const grp = m.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn';
      const g = f.exp.readF64(`grad.base_model.model.model.layers.${l}.${grp}.${m}.lora_${w}.weight`);
      expect(g.length).toBe(t.length);
      expectGradByDifferences(`${name} grad layer ${l} ${m} lora_${w} vs finite differences`, g, t, loss, [0, Math.floor(t.length / 2) + 1, t.length - 1], { atol: 1e-8, rtol: 1e-6 }, 0);
    }
  });
});

const groupOf = (m: LoraModule) => (['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn');
const peft = (l: number, m: LoraModule, w: 'A' | 'B') => `base_model.model.model.layers.${l}.${groupOf(m)}.${m}.lora_${w}.weight`;

describe.each(['llama', 'qwen2', 'qwen3'])('reference backward and AdamW vs PyTorch fixtures: %s', (name) => {
  it('every LoRA gradient, then ten AdamW steps: losses and final LoRA tensors', async () => {
    const f = await fixture(name);
    const args = { cfg: f.cfg, weights: f.weights, ids: f.ids, B: 2, T: 12, attentionMask: f.mask, lossMask: f.lossMask, lora: f.lora };
    const first = modelLossGradRef(args);
    expectClose(`${name} loss`, [first.loss], [f.meta.lora_loss], TIGHT);
    expect(first.grads.size).toBe(2 * 7 * f.cfg.numLayers);
    for (let l = 0; l < f.cfg.numLayers; l++) {
      for (const m of LORA_MODULES) {
        for (const w of ['A', 'B'] as const) {
          expectClose(`${name} grad ${peft(l, m, w)}`, first.grads.get(`${l}.${m}.${w}`)!, f.exp.readF64(`grad.${peft(l, m, w)}`), { atol: 1e-12, rtol: 1e-9 });
        }
      }
    }
    // torch.optim.AdamW(lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01), same batch each step
    const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    const state = new Map([...f.lora.tensors].map(([k, p]) => [k, { param: p, m: new Float64Array(p.length), v: new Float64Array(p.length) }]));
    const losses: number[] = [];
    for (let step = 1; step <= 10; step++) {
      const { loss, grads } = modelLossGradRef(args);
      losses.push(loss);
      for (const [k, st] of state) adamwRef(st, grads.get(k)!, hyper, step);
    }
    expectClose(`${name} ten AdamW losses`, losses, f.meta.losses, { atol: 1e-12, rtol: 1e-9 });
    for (const [k, st] of state) {
      const [l, m, w] = k.split('.') as [string, LoraModule, 'A' | 'B'];
      expectClose(`${name} after 10 steps ${k}`, st.param, f.exp.readF64(`adamw10.${peft(Number(l), m, w)}`), { atol: 1e-12, rtol: 1e-9 });
    }
  });
});

describe('reference model: masks, packing and dtypes', () => {
  it('segment ids: two packed sequences give the logits of each run alone (positions restart)', async () => {
    const f = await fixture('qwen3');
    const V = f.cfg.vocabSize;
    const a = Array.from(f.ids.subarray(0, 7)), b = Array.from(f.ids.subarray(12, 17));
    const packed = modelForwardRef({ cfg: f.cfg, weights: f.weights, ids: [...a, ...b], B: 1, T: 12, segmentIds: [...a.map(() => 0), ...b.map(() => 1)], lora: f.lora });
    const alone = (ids: number[]) => modelForwardRef({ cfg: f.cfg, weights: f.weights, ids, B: 1, T: ids.length, lora: f.lora });
    expectClose('segment 0', packed.subarray(0, 7 * V), alone(a), TIGHT);
    expectClose('segment 1', packed.subarray(7 * V), alone(b), TIGHT);
    // and a right-padded row with an attention mask equals the unpadded run on its real tokens
    const r1 = run(f, f.lora).subarray(12 * V, 20 * V);
    expectClose('padded row', r1, alone(Array.from(f.ids.subarray(12, 20))), TIGHT);
  });

  it('bf16 weights (converted on load) give logits close to the f32 ones', async () => {
    const f32 = await fixture('llama');
    const b16 = await fixture('llama', 'model-bf16.safetensors');
    const a = run(f32), b = run(b16);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeGreaterThan(0); // it did read different (rounded) weights
    expect(worst).toBeLessThan(0.25); // bf16 keeps 8 bits: logits of magnitude ~5 move by a few 1e-2
  });
});
