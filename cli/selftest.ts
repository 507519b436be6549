// The self-tests of `zpd-wgpu doctor`: matmul against the CPU reference and its speed, and one
// training step of a tiny model against the float64 reference model (every kernel family).
import { matmul } from '../src/kernels/matmul.js';
import { matmulRef } from '../src/reference/matmul.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { configFromJson, expectedTensors } from '../src/io/config.js';
import { initAdapter } from '../src/io/peft.js';
import { bytesSource, safetensorsBytes, SafetensorsFile } from '../src/io/safetensors.js';
import { LORA_MODULES } from '../src/lora.js';
import { attachLora, modelFromStore } from '../src/model/load.js';
import { adamwRef } from '../src/reference/adamw.js';
import { loadWeightsF64, modelForwardRef, modelLossGradRef, tokenStatsRef } from '../src/reference/model.js';
import { makeRng } from '../src/rng.js';
import { WebGpuBackend } from '../src/train/step.js';

function pseudoRandom(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

export async function matmulSelfTest(gpu: Gpu, size = 512, reps = 3) {
  // correctness: 45×65×77 in the forward layout x·Wᵀ
  const [M, N, K] = [45, 65, 77];
  const a = pseudoRandom(M * K, 1), b = pseudoRandom(N * K, 2);
  const out = gpu.buffer(M * N * 4);
  gpu.submit((enc) => matmul(gpu, enc, { a: gpu.buffer(a), bm: gpu.buffer(b), out, M, N, K, transB: true }));
  const got = await gpu.readF32(out);
  const ref = matmulRef({ a, bm: b, M, N, K, transB: true });
  let maxError = 0;
  for (let i = 0; i < ref.length; i++) maxError = Math.max(maxError, Math.abs(got[i] - ref[i]) || (Number.isNaN(got[i]) ? Infinity : 0));

  // speed: size³, best of `reps`
  const x = gpu.buffer(pseudoRandom(size * size, 3)), w = gpu.buffer(pseudoRandom(size * size, 4));
  const y = gpu.buffer(size * size * 4);
  const enc = (e: GPUCommandEncoder) => matmul(gpu, e, { a: x, bm: w, out: y, M: size, N: size, K: size, transB: true });
  await gpu.time(enc); // warm-up: pipeline compile
  let best = Infinity, clock: 'gpu' | 'wall' = 'wall';
  for (let r = 0; r < reps; r++) {
    const t = await gpu.time(enc);
    best = Math.min(best, t.ms);
    clock = t.clock;
  }
  return { shape: [size, size, size], gflops: (2 * size ** 3) / (best * 1e6), maxError, ok: maxError < 1e-3, clock };
}

export interface Check {
  name: string;
  maxError: number;
  tolerance: number;
  ok: boolean;
}

/**
 * Every kernel family a training step uses, checked at once: a tiny random Llama (GQA, LoRA on
 * all seven modules, a padded batch) runs one step on the GPU — embedding, RMSNorm, RoPE,
 * attention, SwiGLU, LoRA linear, the fused LM head and its per-token statistics, segment means,
 * every backward, the grad norm and AdamW — and is compared with the float64 reference model.
 * A driver or browser whose WebGPU computes wrong numbers fails here, before any training.
 */
export async function modelSelfTest(gpu: Gpu): Promise<Check[]> {
  const cfg = configFromJson({
    model_type: 'llama', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 8, vocab_size: 61, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
  });
  const rand = makeRng(7);
  const u = (n: number, scale: number) => Float32Array.from({ length: n }, () => (2 * rand() - 1) * scale);
  const tensors = expectedTensors(cfg).map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = t.name.endsWith('norm.weight') ? Float32Array.from(u(n, 0.2), (x) => 1 + x) : u(n, t.name.includes('embed') ? 1 : 1 / Math.sqrt(t.shape[1] ?? 1));
    return { name: t.name, dtype: 'F32' as const, shape: t.shape, data };
  });
  const store = await SafetensorsFile.open(bytesSource(safetensorsBytes(tensors), 'selftest.safetensors'));
  const model = await modelFromStore(gpu, cfg, store, { weights: 'f32' });
  const lora = { r: 4, alpha: 8, dropout: 0, targetModules: [...LORA_MODULES], useRslora: false };
  const adapter = initAdapter(cfg, lora, 3);
  for (const w of adapter.weights) w.b = u(w.b.length, 0.1); // non-zero B: every gradient flows
  attachLora(model, lora, 0, adapter);
  const backend = new WebGpuBackend(model);
  try {
    // two rows, the second padded: ids, targets on the last tokens, one sample per row
    const B = 2, T = 9, lengths = [9, 6], N = B * T;
    const ids = Int32Array.from({ length: N }, () => Math.floor(rand() * cfg.vocabSize));
    const segments = new Int32Array(N), positions = new Int32Array(N), targets = new Int32Array(N).fill(-1), lossMask = new Int32Array(N);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const n = b * T + t;
        segments[n] = t < lengths[b] ? b : -1;
        positions[n] = t;
        if (t >= 2 && t < lengths[b]) lossMask[n] = 1;
        if (t + 1 < lengths[b] && t + 1 >= 2) targets[n] = ids[n + 1];
      }
    }
    const batch = { B, T, ids, targets, segments, positions };
    const weights = await loadWeightsF64(store, store.names());
    const refLora = { r: lora.r, alpha: lora.alpha, get: (l: number, m: string) => adapter.weights.find((w) => w.layer === l && w.module === m) };
    const args = { cfg, weights, ids, B, T, segmentIds: segments, lora: refLora };
    const checks: Check[] = [];
    const check = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, only?: (i: number) => boolean) => {
      let worst = 0, ok = got.length === want.length;
      for (let i = 0; i < want.length; i++) {
        if (only && !only(i)) continue;
        const e = Math.abs(got[i] - want[i]);
        worst = Math.max(worst, Number.isNaN(e) ? Infinity : e);
        if (!(e <= atol + rtol * Math.abs(want[i]))) ok = false;
      }
      checks.push({ name, maxError: worst, tolerance: atol, ok });
    };
    const V = cfg.vocabSize;
    const logitsRef = modelForwardRef(args);
    check('forward: embedding, RMSNorm, RoPE, attention, SwiGLU, LoRA linear (logits)', await model.logits(batch), logitsRef, 1e-4, 1e-4, (i) => segments[Math.floor(i / V)] >= 0);
    // one training step: loss, per-sample stats, every gradient, AdamW
    const opt = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
    const res = await backend.step([batch], opt);
    const ref = modelLossGradRef({ ...args, lossMask });
    const st = tokenStatsRef(logitsRef, ids, B, T, V);
    const per = [0, 1].map((b) => {
      let s = 0, k = 0;
      for (let t = 0; t < T; t++) if (targets[b * T + t] >= 0) (s += st.nll[b * T + t]), k++;
      return s / k;
    });
    check('LM head: loss and per-sample NLL (fused chunked softmax, segment means)', [res.loss, ...res.samples[0].map((s) => s.nll)], [ref.loss, ...per], 2e-5, 2e-5);
    const got: number[] = [], want: number[] = [], after: number[] = [], expected: number[] = [];
    let sq = 0;
    for (const g of ref.grads.values()) for (const x of g) sq += x * x;
    const clipScale = Math.min(1, opt.maxGradNorm / (Math.sqrt(sq) + 1e-6));
    for (let l = 0; l < cfg.numLayers; l++) {
      for (const m of LORA_MODULES) {
        const lin = model.layers[l].lin[m];
        for (const [which, p, init] of [['A', lin.A!, adapter.weights.find((w) => w.layer === l && w.module === m)!.a], ['B', lin.B!, adapter.weights.find((w) => w.layer === l && w.module === m)!.b]] as const) {
          const g = ref.grads.get(`${l}.${m}.${which}`)!;
          got.push(...(await gpu.readF32(p.grad, p.n)));
          want.push(...g);
          const s = { param: Float64Array.from(init), m: new Float64Array(p.n), v: new Float64Array(p.n) };
          adamwRef(s, g, { ...opt }, 1, clipScale);
          after.push(...(await gpu.readF32(p.buf, p.n)));
          expected.push(...s.param);
        }
      }
    }
    let scale = 0;
    for (const w of want) scale = Math.max(scale, Math.abs(w));
    check('backward: every layer op, LoRA dA and dB', got, want, 1e-4 * scale + 1e-7, 1e-3);
    check('grad norm, clipping and AdamW (the updated LoRA tensors)', after, expected, 1e-5, 1e-4);
    return checks;
  } finally {
    backend.dispose();
    await store.close();
  }
}
