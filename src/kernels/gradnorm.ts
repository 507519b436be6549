// Wrapper for shaders/gradnorm.wgsl: global L2 norm over a list of gradient tensors, and the
// clip factor, written to a 4-float GPU buffer that adamw() reads (no read-back needed).
//   grads: each (n) f32; out (4) f32 = [norm, min(1, maxNorm / (norm + 1e-6)), bad, 0], where
//   bad = 1 when the norm is not finite (adamw() then skips the update)
import shader from '../../shaders/gradnorm.wgsl';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

const WG = 256;
const PER = 16; // elements per invocation: blocks of WG·PER = 4096 elements per partial sum

export interface GradNormArgs {
  grads: { buffer: GPUBuffer; n: number }[];
  out: GPUBuffer;
  /** Clip threshold (torch's max_norm); Infinity gives scale 1 (norm only). */
  maxNorm: number;
}

/** Scratch: 'gradnorm.partials', Σ ceil(n / 4096) floats. */
export function gradNorm(gpu: Gpu, encoder: GPUCommandEncoder, a: GradNormArgs): void {
  const block = WG * PER;
  let total = 0;
  for (const g of a.grads) total += Math.ceil(g.n / block);
  const partials = gpu.scratch('gradnorm.partials', Math.max(1, total) * 4);
  const partial = gpu.pipeline(shader, 'gradnorm_partial', { WG, PER });
  let offset = 0;
  for (const g of a.grads) {
    const blocks = Math.ceil(g.n / block);
    if (blocks === 0) continue;
    const grid = grid1d(gpu, blocks, 1);
    gpu.dispatch(encoder, partial, [gpu.uniform(params(g.n, offset, grid[0], 0)), g.buffer, partials], grid);
    offset += blocks;
  }
  const final = gpu.pipeline(shader, 'gradnorm_final', { WG, PER });
  gpu.dispatch(encoder, final, [gpu.uniform(params(total, 0, 0, a.maxNorm)), partials, a.out], [1]);
}

function params(n: number, offset: number, row: number, maxNorm: number): ArrayBuffer {
  const buf = new ArrayBuffer(16);
  new Uint32Array(buf, 0, 3).set([n, offset, row]);
  new Float32Array(buf, 12, 1)[0] = maxNorm;
  return buf;
}
