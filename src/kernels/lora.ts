// The LoRA linear layer, composed from shaders/matmul.wgsl and the dropout of shaders/lora.wgsl:
//
//   xd = drop(x)                          x, xd (N, inF); mask from (seed, n·inF + k), 1/(1−p) scaling
//   u  = xd · Aᵀ                          A (r, inF), u (N, r)       — saved for the backward
//   y  = x · Wᵀ (+ bias) + s · u · Bᵀ     W (outF, inF) frozen, f32 or f16; bias (outF); B (outF, r);
//                                         y (N, outF); s = alpha/r or alpha/√r (rsLoRA), from the caller
//
// Backward, with g = dy · B (N, r):
//   dx (+)= dy · W + s · mask ⊙ (g · A) / (1 − p)     the mask acts on the LoRA path only
//   dA (+)= s · gᵀ · xd        dB (+)= s · dyᵀ · u
//   dW (+)= dyᵀ · x            (full fine-tuning only)     db (+)= Σ_n dy[n, :]
// Without A and B the layer is plain x·Wᵀ (+ bias) and its backward only dx, dW, db.
//
// Scratch (cached per device, see Gpu.scratch): 'lora.g' (N·r floats) for g,
// and 'lora.nxin' (N·inF floats), used for the dropped x when the caller passes no `xd`, and
// in the backward for s·g·A before the mask. Pass `g`/`nxin` to use buffers of your own.
import shader from '../../shaders/lora.wgsl';
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d, sumRows } from './elementwise.js';
import { matmul } from './matmul.js';

const WG = 256;

export interface LoraForwardArgs {
  x: GPUBuffer;
  W: GPUBuffer;
  bias?: GPUBuffer;
  A?: GPUBuffer;
  B?: GPUBuffer;
  y: GPUBuffer;
  /** (N, r): written when A and B are given; the backward reads it. */
  u?: GPUBuffer;
  /** (N, inF): when given with dropout, the dropped x is written here and the backward may read it. */
  xd?: GPUBuffer;
  N: number;
  inF: number;
  outF: number;
  r: number;
  scale: number;
  dropout?: number;
  seed?: number;
  /** W holds f16 bits (needs gpu.hasF16). */
  weightF16?: boolean;
  nxin?: GPUBuffer;
}

export interface LoraBackwardArgs {
  x: GPUBuffer;
  /** The forward's `xd`, if it kept one; otherwise the mask is regenerated from `seed`. */
  xd?: GPUBuffer;
  W: GPUBuffer;
  A?: GPUBuffer;
  B?: GPUBuffer;
  u?: GPUBuffer;
  dy: GPUBuffer;
  /** (N, inF): overwritten, or added into when accumulateDx; omit when no input gradient is needed. */
  dx?: GPUBuffer;
  dA?: GPUBuffer;
  dB?: GPUBuffer;
  dW?: GPUBuffer;
  db?: GPUBuffer;
  N: number;
  inF: number;
  outF: number;
  r: number;
  scale: number;
  dropout?: number;
  seed?: number;
  accumulateDx?: boolean;
  /** Add into dA, dB, dW, db instead of overwriting (gradient accumulation over micro-batches). */
  accumulateGrads?: boolean;
  weightF16?: boolean;
  g?: GPUBuffer;
  nxin?: GPUBuffer;
}

function dropoutParams(n: number, seed: number, p: number): ArrayBuffer {
  const buf = new ArrayBuffer(16);
  new Uint32Array(buf, 0, 2).set([n, seed >>> 0]);
  new Float32Array(buf, 8, 2).set([p, 1 / (1 - Math.fround(p))]);
  return buf;
}

function checkDropout(p: number): void {
  if (!(p >= 0 && p < 1)) throw new UsageError(`lora: dropout must be in [0, 1), got ${p}`);
}

/** xd (N·inF) = drop(x) with the mask of `seed`. */
export function loraDropout(gpu: Gpu, encoder: GPUCommandEncoder, a: { x: GPUBuffer; xd: GPUBuffer; n: number; p: number; seed: number }): void {
  const pl = gpu.pipeline(shader, 'lora_dropout', { WG });
  gpu.dispatch(encoder, pl, [gpu.uniform(dropoutParams(a.n, a.seed, a.p)), a.x, a.xd], grid1d(gpu, a.n, WG));
}

export function loraForward(gpu: Gpu, encoder: GPUCommandEncoder, a: LoraForwardArgs): void {
  const { N, inF, outF, r } = a;
  const p = a.dropout ?? 0;
  checkDropout(p);
  const base = { a: a.x, bm: a.W, out: a.y, bias: a.bias, M: N, N: outF, K: inF, transB: true, bmF16: a.weightF16 };
  if (!a.A && !a.B) return matmul(gpu, encoder, base);
  if (!a.A || !a.B || !a.u) throw new UsageError('loraForward: give A, B and u together (or none of them for a plain linear)');
  let xin = a.x;
  if (p > 0) {
    xin = a.xd ?? a.nxin ?? gpu.scratch('lora.nxin', N * inF * 4);
    loraDropout(gpu, encoder, { x: a.x, xd: xin, n: N * inF, p, seed: a.seed ?? 0 });
  }
  matmul(gpu, encoder, { a: xin, bm: a.A, out: a.u, M: N, N: r, K: inF, transB: true });
  // y = x·Wᵀ (+ bias) + scale·u·Bᵀ in one pass over y
  matmul(gpu, encoder, { ...base, second: { a: a.u, bm: a.B, K: r, alpha: a.scale } });
}

export function loraBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: LoraBackwardArgs): void {
  const { N, inF, outF, r, scale } = a;
  const p = a.dropout ?? 0;
  checkDropout(p);
  const acc = a.accumulateGrads ?? false;
  const lora = Boolean(a.A || a.B);
  const dxBase = a.dx && { a: a.dy, bm: a.W, out: a.dx, M: N, N: inF, K: outF, accumulate: a.accumulateDx, bmF16: a.weightF16 };
  // with LoRA and no dropout, dx = dy·W + scale·g·A in one pass (below, once g = dy·B exists)
  if (dxBase && (!lora || p > 0)) matmul(gpu, encoder, dxBase);
  if (a.dW) matmul(gpu, encoder, { a: a.dy, bm: a.x, out: a.dW, M: outF, N: inF, K: N, transA: true, accumulate: acc });
  if (a.db) sumRows(gpu, encoder, { inp: a.dy, out: a.db, N, C: outF, accumulate: acc });
  if (!lora) return;
  if (!a.A || !a.B || !a.u) throw new UsageError('loraBackward: give A, B and u together (or none of them for a plain linear)');
  const g = a.g ?? gpu.scratch('lora.g', N * r * 4);
  const nxin = () => a.nxin ?? gpu.scratch('lora.nxin', N * inF * 4); // only with dropout
  matmul(gpu, encoder, { a: a.dy, bm: a.B, out: g, M: N, N: r, K: outF });
  if (a.dB) matmul(gpu, encoder, { a: a.dy, bm: a.u, out: a.dB, M: outF, N: r, K: N, transA: true, alpha: scale, accumulate: acc });
  if (a.dA) {
    let xin = a.x;
    if (p > 0) {
      xin = a.xd ?? nxin();
      if (!a.xd) loraDropout(gpu, encoder, { x: a.x, xd: xin, n: N * inF, p, seed: a.seed ?? 0 });
    }
    matmul(gpu, encoder, { a: g, bm: xin, out: a.dA, M: r, N: inF, K: N, transA: true, alpha: scale, accumulate: acc });
  }
  if (!a.dx || !dxBase) return;
  if (p === 0) return matmul(gpu, encoder, { ...dxBase, second: { a: g, bm: a.A, K: r, alpha: scale } });
  // nxin is free again: dA has consumed the dropped x.
  const gA = nxin();
  matmul(gpu, encoder, { a: g, bm: a.A, out: gA, M: N, N: inF, K: r, alpha: scale });
  const pl = gpu.pipeline(shader, 'lora_dropout_backward', { WG });
  gpu.dispatch(encoder, pl, [gpu.uniform(dropoutParams(N * inF, a.seed ?? 0, p)), gA, a.dx], grid1d(gpu, N * inF, WG));
}
