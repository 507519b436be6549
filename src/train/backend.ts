// What the training loop needs from whatever runs the model: one optimizer step, a scoring pass,
// and the optimizer's whole state out and back in. The loop (src/train/loop.ts) and the
// curriculum (src/curriculum/) see only this interface — no GPU types — so another backend (the
// WebGPU one is src/train/step.ts) can stand in without touching them.
import { UsageError } from '../errors.js';
import type { Adapter } from '../io/peft.js';
import type { ModelBatch, SampleStats } from '../model/llama.js';

export type { ModelBatch, SampleStats };

/** torch.optim.AdamW's hyper-parameters, and clip_grad_norm_'s threshold. */
export interface AdamwOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number; // ≤ 0: no clipping
}

export const DEFAULT_ADAMW: AdamwOptions = { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.0, maxGradNorm: 1.0 };

export interface StepResult {
  loss: number; // mean NLL over all loss tokens of the step
  gradNorm: number; // before clipping
  tokens: number; // loss tokens
  samples: SampleStats[][]; // per micro-batch, per segment
  /** A NaN/Inf gradient: nothing was updated and the optimizer's step count did not advance. */
  skipped: boolean;
}

/** One trainable tensor with its AdamW moments (float32, row-major). */
export interface TensorState {
  name: string;
  shape: number[];
  value: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** Everything the optimizer holds: restoring it continues training exactly. */
export interface OptimizerState {
  step: number; // AdamW's t: updates applied so far (it also seeds LoRA dropout)
  tensors: TensorState[];
}

export interface TrainBackend {
  /** e.g. 'webgpu' */
  readonly name: string;
  /** Forward, backward, clipping and AdamW over the micro-batches (gradient accumulation). */
  step(micro: ModelBatch[], opt: AdamwOptions): Promise<StepResult>;
  /** Forward only (no dropout): per-sample stats of each segment of the batch. */
  score(batch: ModelBatch): Promise<SampleStats[]>;
  saveState(): Promise<OptimizerState>;
  loadState(state: OptimizerState): Promise<void>;
  /** The LoRA tensors as a PEFT adapter (LoRA training only). */
  adapter(baseModelNameOrPath?: string | null): Promise<Adapter>;
  /** Bytes the backend holds now and at most so far. */
  memory(): { live: number; peak: number };
  dispose(): void;
}

/**
 * The loss tokens (targets ≥ 0) of one step's micro-batches — what both backends divide the
 * summed loss by; a step with nothing to train, or without a loss token, is refused.
 */
export function stepLossTokens(trainable: number, micro: ModelBatch[]): number {
  if (trainable === 0) throw new UsageError('step: nothing to train — attach LoRA (attachLora) or load with full fine-tuning');
  let n = 0;
  for (const b of micro) for (const t of b.targets) if (t >= 0) n++;
  if (n === 0) throw new UsageError('step: the batch has no loss tokens (every target is −1)');
  return n;
}
