// Wrapper for shaders/rmsnorm.wgsl: out = weight · inp · rstd, rstd = 1/sqrt(mean(inp²) + eps),
// row by row. Buffers: inp, out, dout, dinp (N, C); weight, dweight (C); rstd (N) — all f32.
import shader from '../../shaders/rmsnorm.wgsl';
import type { Gpu } from '../gpu/gpu.js';
import { ROW_WG, sumRows } from './elementwise.js';

const ROWS = 64; // rows per chunk of the dweight reduction

function rowGrid(gpu: Gpu, N: number): [number, number] {
  const maxX = gpu.limits.maxComputeWorkgroupsPerDimension;
  return N <= maxX ? [N, 1] : [maxX, Math.ceil(N / maxX)];
}

function params(N: number, C: number, eps: number): ArrayBuffer {
  const buf = new ArrayBuffer(16);
  new Uint32Array(buf, 0, 2).set([N, C]);
  new Float32Array(buf, 8, 1)[0] = eps;
  return buf;
}

export interface RmsnormForwardArgs {
  inp: GPUBuffer; // (N, C)
  weight: GPUBuffer; // (C)
  out: GPUBuffer; // (N, C)
  rstd: GPUBuffer; // (N), saved for the backward
  N: number;
  C: number;
  eps: number;
}

export function rmsnormForward(gpu: Gpu, encoder: GPUCommandEncoder, a: RmsnormForwardArgs): void {
  const pipeline = gpu.pipeline(shader, 'rmsnorm_forward', { WG: ROW_WG });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(params(a.N, a.C, a.eps)), a.inp, a.weight, a.out, a.rstd], rowGrid(gpu, a.N));
}

export interface RmsnormBackwardArgs {
  inp: GPUBuffer; // (N, C)
  weight: GPUBuffer; // (C)
  rstd: GPUBuffer; // (N), from the forward
  dout: GPUBuffer; // (N, C)
  dinp: GPUBuffer; // (N, C): overwritten, or added into when accumulate
  /** (C): written (or added into when accumulateDweight); omit when the weight is frozen. */
  dweight?: GPUBuffer;
  N: number;
  C: number;
  accumulate?: boolean;
  accumulateDweight?: boolean;
}

/**
 * dinp (and dweight when given). dweight uses scratch 'rmsnorm.partial' (ceil(N/64)·C floats)
 * when N > 64, then sumRows.
 */
export function rmsnormBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: RmsnormBackwardArgs): void {
  const { N, C } = a;
  const u = () => gpu.uniform(params(N, C, 0));
  const pipeline = gpu.pipeline(shader, 'rmsnorm_backward', { WG: ROW_WG, ACCUMULATE: a.accumulate ? 1 : 0 });
  gpu.dispatch(encoder, pipeline, [u(), a.inp, a.weight, a.rstd, a.dout, a.dinp], rowGrid(gpu, N));
  if (!a.dweight) return;
  const chunks = Math.ceil(N / ROWS);
  const single = chunks <= 1;
  const dst = single ? a.dweight : gpu.scratch('rmsnorm.partial', chunks * C * 4);
  const pw = gpu.pipeline(shader, 'rmsnorm_dweight', { WG: 256, ROWS, ACCUMULATE: single && a.accumulateDweight ? 1 : 0 });
  gpu.dispatch(encoder, pw, [u(), a.inp, a.dout, a.rstd, dst], [Math.ceil(C / 256), Math.max(1, chunks)]);
  if (!single) sumRows(gpu, encoder, { inp: dst, out: a.dweight, N: chunks, C, accumulate: a.accumulateDweight });
}
