// Wrapper for shaders/rope.wgsl: rotate-half RoPE in place on x (N, H, D), with positions
// pos (N) i32 and inverse frequencies invFreq (D/2) f32 (ropeInvFreq in src/model/config.ts).
// The backward of RoPE is the inverse rotation applied to the gradient: {x: dx, inverse: true}.
import shader from '../../shaders/rope.wgsl';
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

const WG = 64;

export interface RopeArgs {
  x: GPUBuffer; // (N, H, D), rotated in place
  pos: GPUBuffer; // (N) i32
  invFreq: GPUBuffer; // (D/2) f32
  N: number;
  H: number;
  D: number;
  /** Rotate by −angle: the backward of RoPE, applied to the gradient. */
  inverse?: boolean;
}

/** Encode RoPE (or its inverse) on x in place. */
export function ropeForward(gpu: Gpu, encoder: GPUCommandEncoder, a: RopeArgs): void {
  if (a.D % 2 !== 0) throw new UsageError(`rope: head_dim must be even, got ${a.D}`);
  const pipeline = gpu.pipeline(shader, 'rope_forward', { WG, INVERSE: a.inverse ? 1 : 0 });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(new Uint32Array([a.N, a.H, a.D, 0])), a.x, a.pos, a.invFreq], grid1d(gpu, a.N * a.H * (a.D / 2), WG));
}
