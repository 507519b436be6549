// The model's training and inference paths beyond the PyTorch fixtures: KV-cache decoding
// against the full forward, gradient accumulation, activation recomputation, determinism,
// full fine-tuning gradients against finite differences of the float64 reference model,
// saving a trained adapter in PEFT's format, and merging it into the base.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { LimitError } from '../src/errors.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { openCheckpoint, SafetensorsFile } from '../src/io/safetensors.js';
import { loadAdapter } from '../src/io/peft.js';
import { loadConfig } from '../src/io/config.js';
import { generate, type ModelBatch as Batch, type LlamaModel } from '../src/model/llama.js';
import type { AdamwOptions } from '../src/train/backend.js';
import { attachLora, currentAdapter, loadModel, loadModelAdapter, modelFromStore, saveModelAdapter } from '../src/model/load.js';
import { mergeAndSave } from '../src/model/merge.js';
import { DEFAULT_TILES, matmul } from '../src/kernels/matmul.js';
import { createGpu } from '../src/gpu/device.js';
import { WebGpuBackend } from '../src/train/step.js';
import { argmax } from '../src/model/sample.js';
import { loadWeightsF64, maskedLossRef, modelForwardRef } from '../src/reference/model.js';
import { expectClose, expectGradByDifferences } from './helpers/check.js';
import { describeGpu, stepOf } from './helpers/gpu.js';

const DIR = join(import.meta.dirname, 'fixtures', 'models', 'llama');
const OPT: AdamwOptions = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

async function fixtureBatch(): Promise<Batch & { lossMask: Int32Array; mask: Int32Array }> {
  const exp = await SafetensorsFile.openPath(join(DIR, 'expected.safetensors'));
  const ids = await exp.readI32('input_ids'), mask = await exp.readI32('attention_mask'), lossMask = await exp.readI32('loss_mask');
  await exp.close();
  const B = 2, T = 12;
  const targets = new Int32Array(B * T).fill(-1), segments = new Int32Array(B * T), positions = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    segments[i] = mask[i] ? Math.floor(i / T) : -1;
    positions[i] = i % T;
    if ((i % T) + 1 < T && lossMask[i + 1]) targets[i] = ids[i + 1];
  }
  return { B, T, ids, targets, segments, positions, lossMask, mask };
}

/** Row b of a batch as a batch of its own. */
function row(b: Batch, r: number): Batch {
  const s = (a: Int32Array) => a.slice(r * b.T, (r + 1) * b.T);
  const segments = s(b.segments).map((x) => (x < 0 ? -1 : 0));
  return { B: 1, T: b.T, ids: s(b.ids), targets: s(b.targets), segments, positions: s(b.positions) };
}

async function grads(m: LlamaModel): Promise<Float32Array[]> {
  return Promise.all(m.params().map((p) => m.gpu.readF32(p.grad, p.n)));
}

describeGpu('model training and inference paths', (gpu) => {
  it('KV-cache decoding gives the logits of the full forward, prefill and token by token', async () => {
    const model = await loadModel(gpu, DIR, { weights: 'f32' });
    await loadModelAdapter(model, join(DIR, 'lora_init'));
    const b = row(await fixtureBatch(), 0);
    const V = model.cfg.vocabSize, T = b.T;
    const full = await model.logits(b);
    const kv = model.newKvCache(T);
    const got: number[] = [], want: number[] = [];
    const first = await model.decode(kv, b.ids.slice(0, 5)); // prefill 5 tokens
    got.push(...first), want.push(...full.slice(4 * V, 5 * V));
    for (let t = 5; t < T; t++) {
      const l = await model.decode(kv, b.ids.slice(t, t + 1));
      got.push(...l), want.push(...full.slice(t * V, (t + 1) * V));
    }
    expectClose('decode vs full forward', got, want, { atol: 1e-4, rtol: 1e-4 });
  });

  it('greedy generation follows the argmax of the full forward and stops at max tokens', async () => {
    const model = await loadModel(gpu, DIR, { weights: 'f32' });
    await loadModelAdapter(model, join(DIR, 'lora_init'));
    const prompt = Array.from((await fixtureBatch()).ids.slice(0, 6));
    const out = await generate(model, prompt, { maxNewTokens: 4, stop: [] });
    expect(out.length).toBe(4);
    const seq = [...prompt, ...out];
    const T = seq.length, V = model.cfg.vocabSize;
    const logits = await model.logits({ B: 1, T, ids: Int32Array.from(seq), targets: new Int32Array(T).fill(-1), segments: new Int32Array(T), positions: Int32Array.from({ length: T }, (_, i) => i) });
    for (let k = 0; k < out.length; k++) {
      const t = prompt.length - 1 + k;
      expect(out[k]).toBe(argmax(logits.subarray(t * V, (t + 1) * V)));
    }
    // sampling is reproducible from its seed
    const s1 = await generate(model, prompt, { maxNewTokens: 5, temperature: 0.9, topP: 0.9, seed: 7, stop: [] });
    const s2 = await generate(model, prompt, { maxNewTokens: 5, temperature: 0.9, topP: 0.9, seed: 7, stop: [] });
    expect(s1).toEqual(s2);
  });

  it('gradient accumulation over two micro-batches equals one batch of both', async () => {
    const batch = await fixtureBatch();
    const a = await loadModel(gpu, DIR, { weights: 'f32' });
    await loadModelAdapter(a, join(DIR, 'lora_init'));
    const ra = await stepOf(a).step([batch], OPT);
    const ga = await grads(a);
    const b = await loadModel(gpu, DIR, { weights: 'f32' });
    await loadModelAdapter(b, join(DIR, 'lora_init'));
    const rb = await stepOf(b).step([row(batch, 0), row(batch, 1)], OPT);
    const gb = await grads(b);
    expect(rb.tokens).toBe(ra.tokens);
    expect(rb.loss).toBeCloseTo(ra.loss, 5);
    ga.forEach((g, i) => expectClose(`accumulated grad ${i}`, gb[i], g, { atol: 1e-6, rtol: 1e-4 }));
  });

  it('activation recomputation and a repeated run give bit-identical losses (with LoRA dropout)', async () => {
    const batch = await fixtureBatch();
    const run = async (recompute: boolean) => {
      const m = await loadModel(gpu, DIR, { weights: 'f32' });
      attachLora(m, { r: 4, alpha: 8, dropout: 0.1 }, 1234);
      m.recompute = recompute;
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) losses.push((await stepOf(m).step([batch], OPT)).loss);
      return { losses, adapter: await currentAdapter(m) };
    };
    const x = await run(false), y = await run(false), z = await run(true);
    expect(y.losses).toEqual(x.losses);
    expect(z.losses).toEqual(x.losses);
    expect(Buffer.from(z.adapter.weights[3].b.buffer).equals(Buffer.from(x.adapter.weights[3].b.buffer))).toBe(true);
    expect(x.losses[2]).toBeLessThan(x.losses[0]);
  });

  it('steps issued back to back, before the first read-back resolves, give the sequential losses', async () => {
    const batch = await fixtureBatch();
    const make = async () => {
      const m = await loadModel(gpu, DIR, { weights: 'f32' });
      await loadModelAdapter(m, join(DIR, 'lora_init'));
      return m;
    };
    const a = await make(), seq: number[] = [];
    for (let s = 0; s < 3; s++) seq.push((await stepOf(a).step([batch], OPT)).loss);
    const b = await make();
    const pending = [stepOf(b).step([batch], OPT), stepOf(b).step([batch], OPT), stepOf(b).step([batch], OPT)];
    expect((await Promise.all(pending)).map((r) => r.loss)).toEqual(seq);
  });

  it('full fine-tuning: gradients of every kind of weight match finite differences of the float64 reference', async () => {
    const batch = await fixtureBatch();
    const model = await loadModel(gpu, DIR, { weights: 'f32', full: true });
    await stepOf(model).step([batch], { ...OPT, lr: 0 });
    const cfg = await loadConfig(DIR);
    const store = await openCheckpoint(DIR);
    const weights = await loadWeightsF64(store, store.names());
    await store.close();
    const loss = () => {
      const logits = modelForwardRef({ cfg, weights, ids: batch.ids, B: batch.B, T: batch.T, attentionMask: batch.mask });
      return maskedLossRef(logits, batch.ids, batch.lossMask, batch.B, batch.T, cfg.vocabSize);
    };
    const checked = ['model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.1.self_attn.k_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.norm.weight', 'lm_head.weight'];
    for (const name of checked) {
      const p = model.params().find((q) => q.name === name)!;
      const g = await gpu.readF32(p.grad, p.n);
      const w = weights.get(name)!;
      // the elements with the largest gradients, and others chosen without looking at them
      // (for the embedding: rows of tokens in the batch, which must get a gradient)
      const C = cfg.hiddenSize;
      const fixed = name.includes('embed') ? [batch.ids[3] * C + 5, batch.ids[7] * C + 11] : [0, Math.floor(p.n / 2)];
      expectGradByDifferences(`full FT grad ${name}`, g, w, loss, fixed, { atol: 2e-5, rtol: 2e-3 });
    }
  });

  it('a trained adapter is saved in PEFT format (read back independently) and merges into the base', async () => {
    const batch = await fixtureBatch();
    const model = await loadModel(gpu, DIR, { weights: 'f32' });
    attachLora(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, 42);
    for (let s = 0; s < 3; s++) await stepOf(model).step([batch], OPT);
    const out = mkdtempSync(join(tmpdir(), 'zpd-adapter-'));
    await saveModelAdapter(model, out, 'llama-fixture');
    // independent reader: the safetensors header is 8 bytes of length + JSON
    const bytes = readFileSync(join(out, 'adapter_model.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toEqual({ format: 'pt' });
    const keys = Object.keys(header).filter((k) => k !== '__metadata__').sort();
    const want: string[] = [];
    for (let l = 0; l < 2; l++) {
      want.push(`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`, `base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`);
      want.push(`base_model.model.model.layers.${l}.self_attn.v_proj.lora_A.weight`, `base_model.model.model.layers.${l}.self_attn.v_proj.lora_B.weight`);
      want.push(`base_model.model.model.layers.${l}.mlp.down_proj.lora_A.weight`, `base_model.model.model.layers.${l}.mlp.down_proj.lora_B.weight`);
    }
    expect(keys).toEqual(want.sort());
    expect(header['base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight'].shape).toEqual([4, 64]);
    expect(header['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'].shape).toEqual([32, 4]);
    expect(header['base_model.model.model.layers.1.mlp.down_proj.lora_A.weight'].shape).toEqual([4, 96]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, bias: 'none', task_type: 'CAUSAL_LM' });
    expect([...cfg.target_modules].sort()).toEqual(['down_proj', 'q_proj', 'v_proj']);

    // merge into the base: the merged model without LoRA gives the LoRA model's logits
    const merged = mkdtempSync(join(tmpdir(), 'zpd-merged-'));
    await mergeAndSave(DIR, await loadAdapter(out), merged);
    const plain = await loadModel(gpu, merged, { weights: 'f32' });
    expectClose('merged vs LoRA logits', await plain.logits(batch), await model.logits(batch), { atol: 1e-4, rtol: 1e-4 });
  });

  it('a bf16 checkpoint kept as f16 on the GPU (shader-f16) matches the float64 reference on the same weights', async () => {
    if (!gpu.hasF16) throw new Error('this adapter lacks shader-f16; the f16 storage path cannot be tested here');
    const batch = await fixtureBatch();
    const cfg = await loadConfig(DIR);
    const store = await SafetensorsFile.openPath(join(DIR, 'model-bf16.safetensors'));
    const half = await modelFromStore(gpu, cfg, store, { weights: 'auto' });
    const weights = await loadWeightsF64(store, store.names());
    await store.close();
    expect(half.layers[0].lin.q_proj.W.f16).toBe(true); // 'auto' keeps a half-precision checkpoint in f16
    // bf16 → f16 is exact for these magnitudes, so the GPU sees the reference's weights exactly
    const want = modelForwardRef({ cfg, weights, ids: batch.ids, B: batch.B, T: batch.T, attentionMask: batch.mask });
    const got = await half.logits(batch);
    const V = cfg.vocabSize;
    const pick = (x: ArrayLike<number>) => Array.from(x).filter((_, i) => batch.mask[Math.floor(i / V)] === 1);
    expectClose('f16-stored bf16 model vs float64 reference', pick(got), pick(want), { atol: 1e-4, rtol: 1e-4 });
  });

  it('a tensor larger than one storage binding is refused with its name and the limit', async () => {
    // the same device, seen through limits of a small GPU
    const small = Object.create(gpu, { limits: { value: { ...limitsOf(gpu), maxStorageBufferBindingSize: 32768 } } }) as Gpu;
    const err = await loadModel(small, DIR, { weights: 'f32' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitError);
    expect(String((err as Error).message)).toMatch(/model\.embed_tokens\.weight.*maxStorageBufferBindingSize is 32768/);
  });
});

function limitsOf(gpu: Gpu): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k in gpu.limits) out[k] = (gpu.limits as unknown as Record<string, number>)[k];
  return out;
}

describeGpu('device limits', (gpu) => {
  it('a kernel that binds more storage buffers than the device allows is refused with the limit named', () => {
    const small = Object.create(gpu, { limits: { value: { ...limitsOf(gpu), maxStorageBuffersPerShaderStage: 4 } } }) as Gpu;
    const bufs = [0, 1, 2, 3, 4].map(() => gpu.buffer(64));
    const enc = gpu.device.createCommandEncoder();
    expect(() => matmul(small, enc, { a: bufs[0], bm: bufs[1], out: bufs[2], M: 4, N: 4, K: 4, transB: true, tiles: DEFAULT_TILES })) // the regular kernel
      .toThrow(/the kernel matmul needs 8 but the adapter's maxStorageBuffersPerShaderStage is 4/);
    bufs.forEach((b) => b.destroy());
  });
});

describeGpu('a device with only the WebGPU baseline limits', (gpu) => {
  it('trains (attention backward binds at most 8 storage buffers) and matches the full-limits device bit for bit', async () => {
    const base = await createGpu({ limits: 'baseline' });
    try {
      expect(base.limits.maxStorageBuffersPerShaderStage).toBe(8);
      const batch = await fixtureBatch();
      const losses = async (g: Gpu) => {
        const m = await loadModel(g, DIR, { weights: 'f32' });
        attachLora(m, { r: 4, alpha: 8 }, 5);
        const b = new WebGpuBackend(m);
        const out: number[] = [];
        for (let s = 0; s < 3; s++) out.push((await b.step([batch], OPT)).loss);
        out.push(...(await b.score(batch)).map((x) => x.nll));
        b.dispose();
        return out;
      };
      expect(await losses(base)).toEqual(await losses(gpu));
    } finally {
      base.destroy();
    }
  });
});
