// The LoRA training step and the scoring pass of a Llama-shaped model with seeded random weights,
// on zpd-wgpu: tokens/s, and the peak GPU memory against the analytical need. The same weights,
// batch and hyper-parameters go to the peers (bench/tfjs-model.ts, bench/torch_step.py).
import type { Gpu } from '../src/gpu/gpu.js';
import { configFromJson, expectedTensors, type ModelConfig } from '../src/io/config.js';
import { bytesSource, safetensorsBytes, SafetensorsFile } from '../src/io/safetensors.js';
import { DEFAULT_LORA, LORA_MODULES } from '../src/lora.js';
import type { ModelBatch } from '../src/model/llama.js';
import { trainingMemory } from '../src/model/memory.js';
import { initAdapter, type Adapter } from '../src/io/peft.js';
import { attachLora, modelFromStore } from '../src/model/load.js';
import { DEFAULT_ADAMW } from '../src/train/backend.js';
import { WebGpuBackend } from '../src/train/step.js';
import { pseudoRandom } from './common.js';

/** A stated benchmark configuration: the model's config.json fields, the batch and LoRA. */
export interface StepSpec {
  name: string;
  config: Record<string, unknown>;
  B: number;
  T: number;
  r: number;
  alpha: number;
  /** timed optimizer steps (after one warm-up step) */
  steps: number;
}

const TINY_MODEL = {
  model_type: 'llama', hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, vocab_size: 8192,
  rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 2048, tie_word_embeddings: true,
};

/** The software-GPU config (the issue's): 5.0 M parameters, seq 128, batch 8, r 8, all 7 modules. */
export const TINY: StepSpec = { name: 'tiny', config: TINY_MODEL, B: 8, T: 128, r: 8, alpha: 16, steps: 5 };
/** --quick: the same model, a 2 × 64 batch. */
export const QUICK: StepSpec = { name: 'tiny-quick', config: TINY_MODEL, B: 2, T: 64, r: 8, alpha: 16, steps: 1 };
/** Real GPUs: a 335 M-parameter Llama shape (24 layers, hidden 1024, GQA 16/8), seq 512, batch 8. */
export const LARGE: StepSpec = {
  name: 'llama-335m',
  config: {
    model_type: 'llama', hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 24,
    num_attention_heads: 16, num_key_value_heads: 8, head_dim: 64, vocab_size: 32000,
    rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 4096, tie_word_embeddings: true,
  },
  B: 8, T: 512, r: 16, alpha: 32, steps: 3,
};

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Seeded random weights (norm weights 1), every tensor config.json implies. */
export function randomWeights(cfg: ModelConfig, seed = 1): NamedTensor[] {
  return expectedTensors(cfg).map((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = t.name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : pseudoRandom(n, seed * 7919 + i, 0.1);
    return { name: t.name, shape: t.shape, data };
  });
}

/** B rows of T random tokens, one sample per row, every token a target (the next id). */
export function fullBatch(B: number, T: number, V: number, seed = 7): ModelBatch {
  const N = B * T;
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const ids = Int32Array.from({ length: N + 1 }, () => Math.floor(rnd() * V));
  const targets = Int32Array.from({ length: N }, (_, i) => ids[i + 1]);
  const segments = Int32Array.from({ length: N }, (_, i) => Math.floor(i / T));
  const positions = Int32Array.from({ length: N }, (_, i) => i % T);
  return { B, T, ids: ids.subarray(0, N), targets, segments, positions };
}

/** One side of the comparison: a prepared model that runs a training step or a scoring pass. */
export interface Runner {
  /** one optimizer step; its loss */
  step(): Promise<number>;
  /** one forward pass with the per-token statistics, read back */
  score(): Promise<void>;
  dispose(): Promise<void> | void;
}

export interface Ours extends Runner {
  /** the LoRA initialisation, for the peers (B random instead of PEFT's zeros, so that the
   *  first steps' losses check the whole step) */
  adapter: Adapter;
  /** peak bytes since the model was built, and the analytical need */
  peak(): number;
  need: number;
}

export const LR = 1e-3;

/** Our model for `spec`, built on `gpu` from `weights`, with the memory counted from here. */
export async function prepareOurs(gpu: Gpu, spec: StepSpec, weights: NamedTensor[], batch: ModelBatch): Promise<Ours> {
  const cfg = configFromJson(spec.config);
  await gpu.releaseCaches(); // scratch of earlier figures must not hide this step's allocations
  const base = gpu.memory.live;
  gpu.resetPeak();
  const store = await SafetensorsFile.open(bytesSource(safetensorsBytes(weights.map((w) => ({ ...w, dtype: 'F32' as const }))), 'random.safetensors'));
  const model = await modelFromStore(gpu, cfg, store, { weights: 'f32' });
  const adapter = initAdapter(cfg, { ...DEFAULT_LORA, r: spec.r, alpha: spec.alpha }, 1);
  adapter.weights.forEach((w, i) => w.b.set(pseudoRandom(w.b.length, 100 + i, 0.02)));
  attachLora(model, {}, 1, adapter);
  const backend = new WebGpuBackend(model);
  const opt = { ...DEFAULT_ADAMW, lr: LR };
  return {
    adapter,
    need: trainingMemory(cfg, { batch: batch.B, seqLen: batch.T, loraR: spec.r, modules: LORA_MODULES, full: false, recompute: false, f16: false }).total,
    peak: () => gpu.memory.peak - base,
    step: async () => (await backend.step([batch], opt)).loss,
    score: async () => void (await model.score(batch)),
    dispose: async () => {
      backend.dispose();
      await gpu.releaseCaches();
    },
  };
}
