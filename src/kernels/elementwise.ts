// Wrappers for shaders/elementwise.wgsl (add, axpy, scale, sumRows), and a helper the other
// kernel wrappers share: a 2-D grid for long 1-D dispatches.
import shader from '../../shaders/elementwise.wgsl';
import type { Gpu } from '../gpu/gpu.js';

const WG = 256;

/** Invocations per row of the one-workgroup-a-row reductions (RMSNorm, the LM head's chunk, the
 *  unfused attention's row softmax): 32, a subgroup on most GPUs. On lavapipe, in the step
 *  (bench/profile-dev/run.ts), against up to 256: the LM head's chunk reduction 400 → 90 ms,
 *  RMSNorm 240 → 70 ms; against 64, the row softmax 154 → 74 ms (8: 64 ms) — fewer rounds of the
 *  tree behind workgroup barriers. */
export const ROW_WG = 32;

/** Workgroups for n elements at `wg` per workgroup, folded into 2-D past the 65535 limit. */
export function grid1d(gpu: Gpu, n: number, wg: number): [number, number] {
  const groups = Math.ceil(n / wg);
  const maxX = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxX) return [groups, 1];
  return [maxX, Math.ceil(groups / maxX)];
}

function params(n: number, C: number, alpha: number): ArrayBuffer {
  const buf = new ArrayBuffer(16);
  new Uint32Array(buf, 0, 2).set([n, C]);
  new Float32Array(buf, 8, 1)[0] = alpha;
  return buf;
}

/** out (n) = a + b. */
export function add(gpu: Gpu, encoder: GPUCommandEncoder, args: { a: GPUBuffer; b: GPUBuffer; out: GPUBuffer; n: number }): void {
  gpu.dispatch(encoder, gpu.pipeline(shader, 'add', { WG }), [gpu.uniform(params(args.n, 0, 0)), args.a, args.b, args.out], grid1d(gpu, args.n, WG));
}

/** y (n) += alpha · x. */
export function axpy(gpu: Gpu, encoder: GPUCommandEncoder, args: { x: GPUBuffer; y: GPUBuffer; alpha: number; n: number }): void {
  gpu.dispatch(encoder, gpu.pipeline(shader, 'axpy', { WG }), [gpu.uniform(params(args.n, 0, args.alpha)), args.x, args.y], grid1d(gpu, args.n, WG));
}

/** x (n) *= alpha, in place. */
export function scale(gpu: Gpu, encoder: GPUCommandEncoder, args: { x: GPUBuffer; alpha: number; n: number }): void {
  gpu.dispatch(encoder, gpu.pipeline(shader, 'scale', { WG }), [gpu.uniform(params(args.n, 0, args.alpha)), args.x], grid1d(gpu, args.n, WG));
}

/** Rows per chunk of the column sum: each invocation sums at most this many rows in order. */
const ROWS = 64;

export interface SumRowsArgs {
  inp: GPUBuffer; // (N, C)
  out: GPUBuffer; // (C)
  N: number;
  C: number;
  accumulate?: boolean;
}

/**
 * out (C) (+)= Σ_r inp (N, C)[r, :], deterministically: chunks of 64 rows summed in order, then
 * the chunk sums summed the same way (scratch 'sumRows.<level>', ceil(N/64)·C floats).
 */
export function sumRows(gpu: Gpu, encoder: GPUCommandEncoder, args: SumRowsArgs, level = 0): void {
  const { N, C } = args;
  const chunks = Math.ceil(N / ROWS);
  const last = chunks <= 1;
  const dst = last ? args.out : gpu.scratch(`sumRows.${level}`, chunks * C * 4);
  const pipeline = gpu.pipeline(shader, 'sum_rows', { WG, ROWS, ACCUMULATE: last && args.accumulate ? 1 : 0 });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(params(N, C, 0)), args.inp, dst], [Math.ceil(C / WG), Math.max(1, chunks)]);
  if (!last) sumRows(gpu, encoder, { inp: dst, out: args.out, N: chunks, C, accumulate: args.accumulate }, level + 1);
}
