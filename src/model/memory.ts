// What a training run needs in GPU memory, worked out from config.json and the run's options
// before anything is loaded, so that a model too big for the device is refused up front with the
// numbers and what to change — not half-loaded, and not left to an out-of-memory error mid-run.
// The sum is a lower bound by design: weights, the trainable tensors with their gradients and two
// AdamW moments, and the activations the backward pass reads (per layer, with recomputation off:
// x, the two normed inputs, the attention output, the MLP input (C each); q and the attention
// result (Hq·D); k, v (Hkv·D); gate, up, the SwiGLU output (I); each LoRA module's r-wide
// intermediate; two rstd; the softmax log-sum-exp per query head), plus the final hidden state.
import { LimitError, UsageError } from '../errors.js';
import { expectedTensors, type ModelConfig } from '../io/config.js';
import type { LoraModule } from '../lora.js';

export interface MemoryOptions {
  batch: number; // rows per micro-batch
  seqLen: number;
  loraR: number;
  modules: readonly LoraModule[];
  full: boolean;
  recompute: boolean;
  /** frozen linear weights kept in f16 */
  f16: boolean;
}

export interface MemoryPlan {
  weights: number;
  trainable: number; // values + gradients + AdamW moments
  activations: number;
  total: number;
  /** the largest single buffer, which must fit the adapter's maxBufferSize and binding size */
  largest: { what: string; bytes: number };
}

const F32 = 4;

function moduleShape(cfg: ModelConfig, m: LoraModule): [number, number] {
  const C = cfg.hiddenSize, I = cfg.intermediateSize, q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
  const shapes: Record<LoraModule, [number, number]> = { q_proj: [C, q], k_proj: [C, kv], v_proj: [C, kv], o_proj: [q, C], gate_proj: [C, I], up_proj: [C, I], down_proj: [I, C] };
  return shapes[m];
}

export function trainingMemory(cfg: ModelConfig, o: MemoryOptions): MemoryPlan {
  const N = o.batch * o.seqLen, C = cfg.hiddenSize, I = cfg.intermediateSize, D = cfg.headDim, Hq = cfg.numHeads, Hkv = cfg.numKvHeads, L = cfg.numLayers;
  const tensors = expectedTensors(cfg).map((t) => ({ name: t.name, n: t.shape.reduce((a, b) => a * b, 1), linear: t.shape.length === 2 && !/embed_tokens|lm_head/.test(t.name) }));
  const weightBytes = (t: { n: number; linear: boolean }) => t.n * (o.f16 && !o.full && t.linear ? 2 : F32);
  const weights = tensors.reduce((a, t) => a + weightBytes(t), 0);
  const loraN = o.full ? 0 : o.modules.reduce((a, m) => a + o.loraR * moduleShape(cfg, m).reduce((x, y) => x + y, 0), 0) * L;
  const trainable = (o.full ? tensors.reduce((a, t) => a + t.n, 0) * 3 : loraN * 4) * F32; // full: the weight itself is counted above
  const perLayer = (N * (4 * C + 2 * Hq * D + 2 * Hkv * D + 3 * I + (o.full ? 0 : o.modules.length * o.loraR) + 2) + o.batch * Hq * o.seqLen) * F32;
  const activations = (o.recompute ? L * N * C * F32 + perLayer : L * perLayer) + N * C * F32;
  const candidates = [
    ...tensors.map((t) => ({ what: `the weight ${t.name}`, bytes: weightBytes(t) })),
    { what: `one layer's MLP activations (${o.batch}×${o.seqLen} tokens × intermediate ${I})`, bytes: N * I * F32 },
    { what: `one layer's attention activations (${o.batch}×${o.seqLen} tokens × ${Hq} heads × ${D})`, bytes: N * Hq * D * F32 },
  ];
  const largest = candidates.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return { weights, trainable, activations, total: weights + trainable + activations, largest };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** What to change when a run does not fit. */
export const FIT_HINT = 'try a smaller --batch-size (with --grad-accum to keep the batch) or --seq-len, --recompute, f16 weights (--weights f16), fewer --target-modules, or a smaller model';

/**
 * Refuse a run that cannot fit: its largest buffer beyond the adapter's limits, or its total
 * beyond `budget` bytes (the system memory for a software adapter; null: unknown, as WebGPU does
 * not tell a real GPU's memory).
 */
export function checkTrainingMemory(plan: MemoryPlan, limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }, budget: number | null, budgetName = 'memory'): void {
  const lim = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const name = limits.maxBufferSize <= limits.maxStorageBufferBindingSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  if (plan.largest.bytes > lim) throw new LimitError(plan.largest.what, plan.largest.bytes, name, lim, FIT_HINT);
  if (budget !== null && plan.total > budget)
    throw new UsageError(
      `this run needs at least ${mib(plan.total)} (weights ${mib(plan.weights)}, trainable tensors with gradients and AdamW moments ${mib(plan.trainable)}, activations ${mib(plan.activations)}) but the ${budgetName} is ${mib(budget)}`,
      FIT_HINT,
    );
}

