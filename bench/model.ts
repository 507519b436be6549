// bench/model — tokens/s of a LoRA training step and of a scoring pass for a fixed small
// Llama-shaped config (random weights, built in memory), and the peak GPU memory the runtime
// allocated against the analytical need (weights + LoRA + AdamW state + the activations the
// recompute policy keeps).
import { getGpu } from '../src/gpu/device.js';
import { bytesSource, safetensorsBytes, SafetensorsFile } from '../src/io/safetensors.js';
import { configFromJson, expectedTensors, type ModelConfig } from '../src/io/config.js';
import type { ModelBatch } from '../src/model/llama.js';
import { attachLora, modelFromStore } from '../src/model/load.js';
import { WebGpuBackend } from '../src/train/step.js';
import type { BenchOpts, BenchRow } from './main.js';

export const title = 'Llama-shaped model on the GPU: LoRA train step and scoring pass (random weights)';

/** The fixed config (stated in the output): ~9.5M parameters, Llama 3-style GQA. */
const CONFIG = {
  model_type: 'llama', hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, vocab_size: 8192,
  rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 2048, tie_word_embeddings: true,
};

function randomBatch(B: number, T: number, V: number, seed: number): ModelBatch {
  const N = B * T;
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const ids = Int32Array.from({ length: N }, () => Math.floor(rnd() * V));
  // two samples per row; the second half of each is the response (loss tokens)
  const segments = new Int32Array(N), positions = new Int32Array(N), targets = new Int32Array(N).fill(-1);
  const half = T / 2;
  for (let i = 0; i < N; i++) {
    const b = Math.floor(i / T), t = i % T;
    segments[i] = b * 2 + (t >= half ? 1 : 0);
    positions[i] = t % half;
    if (t % half >= half / 2 && t % half < half - 1) targets[i] = ids[i + 1];
  }
  return { B, T, ids, targets, segments, positions };
}

/** Bytes the model needs by design, f32: weights, LoRA (4 copies: value, grad, m, v), activations. */
function analytical(cfg: ModelConfig, r: number, B: number, T: number, recompute: boolean) {
  const N = B * T, C = cfg.hiddenSize, I = cfg.intermediateSize, D = cfg.headDim, Hq = cfg.numHeads, Hkv = cfg.numKvHeads, L = cfg.numLayers;
  const weights = expectedTensors(cfg).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0) * 4;
  const loraPerLayer = r * (C + Hq * D) + r * (C + Hkv * D) * 2 + r * (Hq * D + C) + r * (C + I) * 2 + r * (I + C);
  const lora = loraPerLayer * L * 4 * 4;
  // per layer: x, xn1, xm, xn2 (C); q, att (Hq·D); k, v (Hkv·D); g, up, h (I); u (7·r); rstd ×2; lse
  const perLayer = (N * (4 * C + 2 * Hq * D + 2 * Hkv * D + 3 * I + 7 * r + 2 + Hq + Hkv) + B * Hq * T) * 4;
  const acts = recompute ? L * N * C * 4 + perLayer : L * perLayer;
  return { weights, lora, acts, total: weights + lora + acts };
}

export async function run(o: BenchOpts): Promise<BenchRow[]> {
  const gpu = await getGpu();
  // bytes this bench adds to what the device already holds (gpu.memory counts every buffer)
  const base = gpu.memory.live;
  const mem = { get peak() { return gpu.memory.peak - base; } };
  const cfg = configFromJson(CONFIG);
  let seed = 1;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const tensors = expectedTensors(cfg).map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = t.name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : Float32Array.from({ length: n }, rnd);
    return { name: t.name, dtype: 'F32' as const, shape: t.shape, data };
  });
  const store = await SafetensorsFile.open(bytesSource(safetensorsBytes(tensors), 'random.safetensors'));
  const model = await modelFromStore(gpu, cfg, store, { weights: 'f32' });
  const r = 8;
  attachLora(model, { r, alpha: 16 }, 1);
  const step = new WebGpuBackend(model);
  const [B, T] = o.quick ? [2, 64] : [4, 128];
  const batch = randomBatch(B, T, cfg.vocabSize, 7);
  const steps = o.quick ? 2 : 4;
  const rows: BenchRow[] = [];
  for (const recompute of [false, true]) {
    model.releaseActivations();
    gpu.resetPeak(); // weights, LoRA and shared scratch stay; this policy's activations come on top
    model.recompute = recompute;
    await step.step([batch]); // warm-up: pipelines, buffers
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await step.step([batch]);
    const ms = (performance.now() - t0) / steps;
    const need = analytical(cfg, r, B, T, recompute);
    rows.push({
      pass: `train (LoRA r${r}${recompute ? ', recompute' : ''})`, tokens: B * T, 'ms/step': ms, 'tokens/s': (B * T) / (ms / 1000),
      'peak MiB': mem.peak / 2 ** 20, 'need MiB': need.total / 2 ** 20, 'peak/need': mem.peak / need.total,
    });
  }
  await model.score(batch);
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await model.score(batch);
  const ms = (performance.now() - t0) / steps;
  rows.push({ pass: 'score (forward only)', tokens: B * T, 'ms/step': ms, 'tokens/s': (B * T) / (ms / 1000), 'peak MiB': mem.peak / 2 ** 20, 'need MiB': NaN, 'peak/need': NaN });
  console.error(`config: ${JSON.stringify(CONFIG)}, batch ${B}×${T}, adapter: ${gpu.info.description}`);
  return rows;
}
