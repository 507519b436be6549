// The wasm backend's ops on pointers into WasmKernels' memory: the same arguments and semantics
// as the WebGPU wrappers of src/kernels/ (same names), composed from assembly/kernels/. Each
// threaded kernel call is a barrier (WasmKernels.run), so the ops run strictly in program order.
import { UsageError } from '../errors.js';
import type { WasmKernels } from './kernels.js';

const b = (x: boolean | undefined) => (x ? 1 : 0);

export interface MatmulArgs {
  a: number;
  bm: number;
  out: number;
  /** (N) f32, or 0 */
  bias?: number;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  accumulate?: boolean;
}

/** The work counter of the next call (assembly/kernels/sched.ts), zeroed. */
function counter(k: WasmKernels): number {
  const ctr = k.scratch('sched.counter', 64);
  k.i32(ctr, 1)[0] = 0;
  return ctr;
}

/** out (M, N) = alpha · op(a) · op(bm) (+ bias) (+ out): see assembly/kernels/matmul.ts. */
export function matmul(k: WasmKernels, a: MatmulArgs): void {
  const { M, N, K } = a;
  if (M === 0 || N === 0) return;
  const e = k.exports;
  const pa = k.scratch('mm.pa', Math.max(1, e.mm_pack_a_floats(M, K)) * 4);
  const pb = k.scratch('mm.pb', Math.max(1, e.mm_pack_b_floats(N, K)) * 4);
  const tmp = k.perThread('mm.tile', 32);
  k.run('mm_pack', (M + N) * K, a.a, a.bm, M, N, K, b(a.transA), b(a.transB), pa, pb, counter(k));
  k.run('mm_compute', M * N * K, pa, pb, a.out, a.bias ?? 0, M, N, K, a.alpha ?? 1, b(a.accumulate), tmp, counter(k));
}

export function embeddingForward(k: WasmKernels, a: { ids: number; weight: number; out: number; N: number; C: number; V: number }): void {
  k.run('embedding_forward', a.N * a.C, a.ids, a.weight, a.out, a.N, a.C, a.V, counter(k));
}

/** dweight (V, C) (+)= the scattered rows of dout; overwritten unless accumulate. */
export function embeddingBackward(k: WasmKernels, a: { ids: number; dout: number; dweight: number; N: number; C: number; V: number; accumulate?: boolean }): void {
  if (!a.accumulate) k.zero(a.dweight, a.V * a.C * 4);
  k.run('embedding_backward', a.N * a.C, a.ids, a.dout, a.dweight, a.N, a.C, a.V);
}

export function add(k: WasmKernels, a: { a: number; b: number; out: number; n: number }): void {
  k.run('add', a.n, a.a, a.b, a.out, a.n);
}

export function swigluForward(k: WasmKernels, a: { gate: number; up: number; out: number; n: number }): void {
  k.run('swiglu_forward', 8 * a.n, a.gate, a.up, a.out, a.n, counter(k));
}

export function swigluBackward(k: WasmKernels, a: { gate: number; up: number; dout: number; dgate: number; dup: number; n: number }): void {
  k.run('swiglu_backward', 8 * a.n, a.gate, a.up, a.dout, a.dgate, a.dup, a.n, counter(k));
}

export function sumRows(k: WasmKernels, a: { inp: number; out: number; N: number; C: number; accumulate?: boolean }): void {
  k.run('sum_rows', a.N * a.C, a.inp, a.out, a.N, a.C, b(a.accumulate));
}

export function rmsnormForward(k: WasmKernels, a: { inp: number; weight: number; out: number; rstd: number; N: number; C: number; eps: number }): void {
  k.run('rmsnorm_forward', 2 * a.N * a.C, a.inp, a.weight, a.out, a.rstd, a.N, a.C, a.eps, counter(k));
}

export function rmsnormBackward(k: WasmKernels, a: {
  inp: number; weight: number; rstd: number; dout: number; dinp: number; N: number; C: number;
  accumulate?: boolean; dweight?: number; accumulateDweight?: boolean;
}): void {
  k.run('rmsnorm_backward', 3 * a.N * a.C, a.inp, a.weight, a.rstd, a.dout, a.dinp, a.N, a.C, b(a.accumulate), counter(k));
  if (a.dweight) k.run('rmsnorm_dweight', a.N * a.C, a.inp, a.dout, a.rstd, a.dweight, a.N, a.C, b(a.accumulateDweight));
}

export function ropeForward(k: WasmKernels, a: { x: number; pos: number; invFreq: number; N: number; H: number; D: number; inverse?: boolean }): void {
  if (a.D % 2 !== 0) throw new UsageError(`rope: head_dim must be even, got ${a.D}`);
  k.run('rope', a.N * (a.H * a.D + 8 * a.D), a.x, a.pos, a.invFreq, a.N, a.H, a.D, b(a.inverse), counter(k));
}

export interface AttentionForwardArgs {
  q: number; k: number; v: number; out: number; lse: number; seg: number;
  B: number; Tq: number; Tk: number; Hq: number; Hkv: number; D: number;
  qOffset?: number; kvCapacity?: number; scale?: number;
}

export function attentionForward(k: WasmKernels, a: AttentionForwardArgs): void {
  const qOff = a.qOffset ?? a.Tk - a.Tq, cap = a.kvCapacity ?? a.Tk;
  if (a.Hkv < 1 || a.Hq % a.Hkv !== 0) throw new UsageError(`attention: Hq (${a.Hq}) must be a multiple of Hkv (${a.Hkv})`);
  if (qOff < 0 || qOff + a.Tq > a.Tk || a.Tk > cap) throw new UsageError(`attention: qOffset ${qOff} + Tq ${a.Tq} must be ≤ Tk ${a.Tk} ≤ kvCapacity ${cap}`);
  const scr = k.perThread('attention.scores', cap);
  k.run('attention_forward', a.B * a.Hq * a.Tq * a.Tk * a.D, a.q, a.k, a.v, a.seg, a.out, a.lse, a.B, a.Tq, a.Tk, a.Hq, a.Hkv, a.D, qOff, cap, a.scale ?? 1 / Math.sqrt(a.D), scr, counter(k));
}

export function attentionBackward(k: WasmKernels, a: {
  q: number; k: number; v: number; out: number; lse: number; dout: number; seg: number; dq: number; dk: number; dv: number;
  B: number; T: number; Hq: number; Hkv: number; D: number; scale?: number;
}): void {
  k.run('attention_backward', 3 * a.B * a.Hq * a.T * a.T * a.D, a.q, a.k, a.v, a.out, a.lse, a.dout, a.seg, a.dq, a.dk, a.dv, a.B, a.T, a.Hq, a.Hkv, a.D, a.scale ?? 1 / Math.sqrt(a.D), counter(k));
}

// ---- LoRA linear (src/kernels/lora.ts: the same composition and the same dropout mask) -----

function dropoutArgs(p: number): [number, number] {
  if (!(p >= 0 && p < 1)) throw new UsageError(`lora: dropout must be in [0, 1), got ${p}`);
  return [p, 1 / (1 - Math.fround(p))];
}

/** xd (n) = drop(x) with the mask of `seed` (shaders/lora.wgsl's hash). */
export function loraDropout(k: WasmKernels, a: { x: number; xd: number; n: number; p: number; seed: number }): void {
  const [p, inv] = dropoutArgs(a.p);
  k.run('lora_dropout', 4 * a.n, a.x, a.xd, a.n, a.seed >>> 0, p, inv, counter(k));
}

export interface LoraForwardArgs {
  x: number; W: number; bias?: number; A?: number; B?: number; y: number; u?: number;
  N: number; inF: number; outF: number; r: number; scale: number; dropout?: number; seed?: number;
}

/** y = x·Wᵀ (+ bias) + s·(drop(x)·Aᵀ)·Bᵀ; u = drop(x)·Aᵀ is kept for the backward. */
export function loraForward(k: WasmKernels, a: LoraForwardArgs): void {
  const { N, inF, outF, r } = a;
  const p = a.dropout ?? 0;
  dropoutArgs(p);
  matmul(k, { a: a.x, bm: a.W, out: a.y, bias: a.bias, M: N, N: outF, K: inF, transB: true });
  if (!a.A && !a.B) return;
  if (!a.A || !a.B || !a.u) throw new UsageError('loraForward: give A, B and u together (or none of them for a plain linear)');
  let xin = a.x;
  if (p > 0) {
    xin = k.scratch('lora.nxin', N * inF * 4);
    loraDropout(k, { x: a.x, xd: xin, n: N * inF, p, seed: a.seed ?? 0 });
  }
  matmul(k, { a: xin, bm: a.A, out: a.u, M: N, N: r, K: inF, transB: true });
  matmul(k, { a: a.u, bm: a.B, out: a.y, M: N, N: outF, K: r, transB: true, alpha: a.scale, accumulate: true });
}

export interface LoraBackwardArgs {
  x: number; W: number; A?: number; B?: number; u?: number; dy: number;
  dx?: number; dA?: number; dB?: number; dW?: number; db?: number;
  N: number; inF: number; outF: number; r: number; scale: number; dropout?: number; seed?: number;
  accumulateDx?: boolean; accumulateGrads?: boolean;
}

/** dx (+)= dy·W + s·mask⊙(g·A)/(1−p), g = dy·B;  dA (+)= s·gᵀ·drop(x);  dB (+)= s·dyᵀ·u;  dW (+)= dyᵀ·x;  db (+)= Σ dy. */
export function loraBackward(k: WasmKernels, a: LoraBackwardArgs): void {
  const { N, inF, outF, r, scale } = a;
  const p = a.dropout ?? 0;
  const [, inv] = dropoutArgs(p);
  const acc = a.accumulateGrads ?? false;
  if (a.dx) matmul(k, { a: a.dy, bm: a.W, out: a.dx, M: N, N: inF, K: outF, accumulate: a.accumulateDx });
  if (a.dW) matmul(k, { a: a.dy, bm: a.x, out: a.dW, M: outF, N: inF, K: N, transA: true, accumulate: acc });
  if (a.db) sumRows(k, { inp: a.dy, out: a.db, N, C: outF, accumulate: acc });
  if (!a.A && !a.B) return;
  if (!a.A || !a.B || !a.u) throw new UsageError('loraBackward: give A, B and u together (or none of them for a plain linear)');
  const g = k.scratch('lora.g', N * r * 4);
  const nxin = k.scratch('lora.nxin', N * inF * 4);
  matmul(k, { a: a.dy, bm: a.B, out: g, M: N, N: r, K: outF });
  if (a.dB) matmul(k, { a: a.dy, bm: a.u, out: a.dB, M: outF, N: r, K: N, transA: true, alpha: scale, accumulate: acc });
  if (a.dA) {
    let xin = a.x;
    if (p > 0) {
      xin = nxin;
      loraDropout(k, { x: a.x, xd: nxin, n: N * inF, p, seed: a.seed ?? 0 });
    }
    matmul(k, { a: g, bm: xin, out: a.dA, M: r, N: inF, K: N, transA: true, alpha: scale, accumulate: acc });
  }
  if (!a.dx) return;
  if (p === 0) {
    matmul(k, { a: g, bm: a.A, out: a.dx, M: N, N: inF, K: r, alpha: scale, accumulate: true });
    return;
  }
  matmul(k, { a: g, bm: a.A, out: nxin, M: N, N: inF, K: r, alpha: scale });
  k.run('lora_dropout_backward', 4 * N * inF, nxin, a.dx, N * inF, (a.seed ?? 0) >>> 0, p, inv, counter(k));
}

// ---- LM head (src/kernels/lmhead.ts) --------------------------------------------------------

/** Vocabulary rows per chunk: about 4 MiB of logits. */
function chunkOf(N: number, V: number, chunk?: number): number {
  const c = chunk ?? Math.max(64, Math.floor((1 << 20) / Math.max(1, N) / 8) * 8);
  if (!Number.isInteger(c) || c < 1) throw new UsageError(`lmhead: chunk must be a positive integer, got ${chunk}`);
  return Math.min(c, V);
}

export interface LmHeadForwardArgs {
  hidden: number; weight: number; targets: number; stats: number; lse: number; N: number; C: number; V: number; chunk?: number;
  /** (N·V) floats: keep every chunk's logits here (chunk at v0 occupies N·width floats from N·v0) for lmHeadBackward's `kept`. */
  keep?: number;
}

/** stats (N, 4) = [nll, entropy, max-probability, hit] and lse (N), chunk by chunk (shaders/lmhead.wgsl's merge). */
export function lmHeadForward(k: WasmKernels, a: LmHeadForwardArgs): void {
  const { N, C, V } = a;
  if (N === 0) return;
  const ch = chunkOf(N, V, a.chunk);
  const run = k.scratch('lmhead.run', N * 6 * 4);
  for (let v0 = 0; v0 < V; v0 += ch) {
    const width = Math.min(ch, V - v0);
    const logits = a.keep ? a.keep + N * v0 * 4 : k.scratch('lmhead.logits', N * ch * 4);
    matmul(k, { a: a.hidden, bm: a.weight + v0 * C * 4, out: logits, M: N, N: width, K: C, transB: true });
    k.run('lmhead_forward_chunk', 8 * N * width, logits, a.targets, run, a.stats, a.lse, N, V, v0, width, b(v0 === 0), b(v0 + ch >= V), counter(k));
  }
}

export interface LmHeadBackwardArgs {
  hidden: number; weight: number; targets: number; lse: number; gscale: number; dhidden: number; dweight?: number;
  N: number; C: number; V: number; chunk?: number; accumulate?: boolean; accumulateDweight?: boolean;
  /** The forward's `keep`: its logits are reused (and overwritten) instead of recomputed. */
  kept?: number;
}

/** dhidden (+)= Σ_v gscale·(p − y)·W[v];  dweight (+)= (p − y)ᵀ·hidden (chunk by chunk). */
export function lmHeadBackward(k: WasmKernels, a: LmHeadBackwardArgs): void {
  const { N, C, V } = a;
  if (N === 0) return;
  const ch = chunkOf(N, V, a.chunk);
  for (let v0 = 0; v0 < V; v0 += ch) {
    const width = Math.min(ch, V - v0);
    const w = a.weight + v0 * C * 4;
    let logits: number;
    if (a.kept) logits = a.kept + N * v0 * 4;
    else {
      logits = k.scratch('lmhead.logits', N * ch * 4);
      matmul(k, { a: a.hidden, bm: w, out: logits, M: N, N: width, K: C, transB: true });
    }
    k.run('lmhead_backward_chunk', 8 * N * width, logits, a.targets, a.lse, a.gscale, N, V, v0, width, counter(k));
    matmul(k, { a: logits, bm: w, out: a.dhidden, M: N, N: C, K: width, accumulate: v0 > 0 || a.accumulate });
    if (a.dweight) matmul(k, { a: logits, bm: a.hidden, out: a.dweight + v0 * C * 4, M: width, N: C, K: N, transA: true, accumulate: a.accumulateDweight });
  }
}

// ---- per-sample means, grad norm, AdamW ------------------------------------------------------

/** out (S, 8) floats: src/kernels/segment.ts's layout (one thread). */
export function segmentMeans(k: WasmKernels, a: { stats: number; segments: number; targets: number; out: number; N: number; S: number }): void {
  k.exports.segment_means(a.stats, a.segments, a.targets, a.out, a.N, a.S);
}

/**
 * [norm, scale, bad] as shaders/gradnorm.wgsl: norm = sqrt(Σ g²) (summed in f64, tensor by
 * tensor in order, on one thread), scale = min(1, maxNorm / (norm + 1e-6)), bad = 1 when the sum
 * of squares is not finite in f32.
 */
export function gradNorm(k: WasmKernels, grads: { ptr: number; n: number }[], maxNorm: number): [number, number, number] {
  let s = 0;
  for (const g of grads) s += k.exports.sum_squares(g.ptr, g.n);
  const norm = Math.fround(Math.sqrt(s));
  const scale = Math.fround(Math.min(1, Math.fround(maxNorm) / Math.fround(norm + 1e-6)));
  return [norm, scale, Number.isFinite(Math.fround(s)) ? 0 : 1];
}

export interface AdamwArgs {
  param: number; grad: number; m: number; v: number; n: number;
  lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; step: number;
  /** gradient multiplier (the clip scale); default 1 */
  clip?: number;
}

/** One AdamW update, the host-side scalars of src/kernels/adamw.ts. */
export function adamw(k: WasmKernels, a: AdamwArgs): void {
  const { lr, step } = a;
  const beta1 = a.beta1 ?? 0.9, beta2 = a.beta2 ?? 0.999, eps = a.eps ?? 1e-8, wd = a.weightDecay ?? 0.01;
  if (!(Number.isInteger(step) && step >= 1)) throw new UsageError(`adamw: step must be an integer ≥ 1 (the count after this update), got ${step}`);
  k.run('adamw', 8 * a.n, a.param, a.grad, a.m, a.v, a.n, beta1, beta2, eps, 1 - lr * wd, lr / (1 - beta1 ** step), Math.sqrt(1 - beta2 ** step), a.clip ?? 1, counter(k));
}
