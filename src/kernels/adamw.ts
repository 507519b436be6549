// Wrapper for shaders/adamw.wgsl: one torch.optim.AdamW step on f32 tensors.
//   param, grad, m (exp_avg), v (exp_avg_sq): (n) f32; clip: (4) f32 [norm, scale, bad, 0] from
//   gradNorm (bad = 1: a non-finite gradient, the update is skipped).
import shader from '../../shaders/adamw.wgsl';
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

const WG = 256;

export interface AdamwArgs {
  param: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  n: number;
  lr: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0.01, as torch.optim.AdamW
  /** 1-based step count t after this update (torch's state['step']). */
  step: number;
  /** [norm, scale, bad, 0] from gradNorm: the gradient is multiplied by scale; nothing changes when bad = 1. */
  clip?: GPUBuffer;
  /**
   * A (4) f32 buffer holding adamwScalars(lr, weightDecay, step, …) for this update, written by
   * the caller (queue.writeBuffer) before the submission: the step-dependent scalars then stay
   * out of the uniform block, whose buffer and bind group are the same every step.
   */
  scalars?: GPUBuffer;
}

/** [1 − lr·wd, lr / (1 − β1^t), sqrt(1 − β2^t), 0]: what `AdamwArgs.scalars` holds (float64 math). */
export function adamwScalars(a: Pick<AdamwArgs, 'lr' | 'weightDecay' | 'step' | 'beta1' | 'beta2'>): Float32Array {
  const beta1 = a.beta1 ?? 0.9, beta2 = a.beta2 ?? 0.999, wd = a.weightDecay ?? 0.01;
  return Float32Array.of(1 - a.lr * wd, a.lr / (1 - beta1 ** a.step), Math.sqrt(1 - beta2 ** a.step), 0);
}

/** Encode one AdamW update of `param` (and its moments m, v) into `encoder`. */
export function adamw(gpu: Gpu, encoder: GPUCommandEncoder, a: AdamwArgs): void {
  const { lr, step } = a;
  const beta1 = a.beta1 ?? 0.9, beta2 = a.beta2 ?? 0.999, eps = a.eps ?? 1e-8, wd = a.weightDecay ?? 0.01;
  if (!(Number.isInteger(step) && step >= 1)) throw new UsageError(`adamw: step must be an integer ≥ 1 (the count after this update), got ${step}`);
  const grid = grid1d(gpu, a.n, WG);
  const params = new ArrayBuffer(48);
  new Uint32Array(params, 0, 2).set([a.n, grid[0] * WG]);
  new Float32Array(params, 16, 3).set([beta1, beta2, eps]);
  if (!a.scalars) new Float32Array(params, 28, 3).set(adamwScalars({ lr, weightDecay: wd, step, beta1, beta2 }).subarray(0, 3));
  const dummy = gpu.scratch('dummy', 16);
  const pipeline = gpu.pipeline(shader, 'adamw', { WG, HAS_CLIP: a.clip ? 1 : 0, HAS_STEP: a.scalars ? 1 : 0 });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(params), a.param, a.grad, a.m, a.v, a.clip ?? dummy, a.scalars ?? dummy], grid);
}
