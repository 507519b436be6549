// Wrapper for shaders/lmhead.wgsl: the fused LM head + per-token reduction, in vocabulary chunks.
//
//   hidden  (N, C) f32   after the final norm
//   weight  (V, C) f32   lm_head, or the tied embedding; f16 (IEEE half bits) with weightF16
//   targets (N) i32      next-token id, or -1 (no loss at this token)
//   stats   (N, 4) f32   [nll (0 without target), entropy, max-probability, argmax == target ? 1 : 0]
//   lse     (N) f32      logsumexp of the logits, written by the forward, read by the backward
//   gscale  (N) f32      per-token gradient weight (e.g. 1 / loss tokens; 0 drops a token)
//   dhidden (N, C) f32   Σ_v gscale·(p_v − 1[v = target])·W[v, :]   (0 for tokens without target)
//   dweight (V, C) f32   Σ_n gscale·(p − y)ᵀ·hidden                  (optional: full FT, tied)
//
// Per chunk of `chunk` vocabulary rows, matmul.wgsl writes logits (N × width) into one scratch
// buffer ('lmhead.logits', N·chunk floats — the largest thing the op allocates) and the reduction
// merges it into a running max / sum state. The backward recomputes each chunk's logits (so the
// forward stores nothing of size V), turns them into dlogits in place and multiplies them back.
// Each chunk binds only its slice of `weight` / `dweight`, so those may exceed one binding's
// maxStorageBufferBindingSize as long as the buffer fits maxBufferSize.
//
// Typical training use, in one encoder: lmHeadForward, then lmHeadBackward with the same
// hidden/weight/targets and the forward's lse. For a frozen head (LoRA: no dweight),
// lmHeadForwardBackward does both in one pass over the vocabulary, without recomputing the
// logits: dhidden accumulates e^(z − running max)·W chunk by chunk, rescaled when the max grows
// (shaders/lmhead_grad.wgsl), and is normalised at the end.
import shader from '../../shaders/lmhead.wgsl';
import gradShader from '../../shaders/lmhead_grad.wgsl';
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d, ROW_WG } from './elementwise.js';
import { matmul } from './matmul.js';
import { withElementType } from './template.js';

const WG = 256; // elementwise kernels
/** Default vocabulary chunk: (N × 4096) f32 scratch, 8 MiB at 512 tokens. */
export const DEFAULT_CHUNK = 4096;
/** lmHeadForwardBackward's default chunk keeps the (N × chunk) logits within 4 MiB (512 ≤ chunk ≤ 4096). */
const FUSED_LOGITS_BYTES = 4 << 20;
const RUN_FLOATS = 8; // size of struct Run in the shaders, in 4-byte words

export interface LmHeadForwardArgs {
  hidden: GPUBuffer;
  weight: GPUBuffer;
  targets: GPUBuffer;
  stats: GPUBuffer;
  lse: GPUBuffer;
  N: number;
  C: number;
  V: number;
  /** Vocabulary rows per chunk (default 4096, or less so that N·chunk f32 fit one storage
   *  binding); chunk·C·(4, or 2 with weightF16) bytes must be a multiple of the adapter's
   *  minStorageBufferOffsetAlignment (any multiple of 128 is). */
  chunk?: number;
  /** `weight` holds f16 elements (a frozen head kept in half precision; needs gpu.hasF16). */
  weightF16?: boolean;
}

export interface LmHeadBackwardArgs {
  hidden: GPUBuffer;
  weight: GPUBuffer;
  targets: GPUBuffer;
  lse: GPUBuffer;
  gscale: GPUBuffer;
  /** Written, or added into when `accumulate`. */
  dhidden: GPUBuffer;
  /** (V, C) f32: written, or added into when `accumulateDweight`; omit when the head is frozen. */
  dweight?: GPUBuffer;
  N: number;
  C: number;
  V: number;
  chunk?: number;
  weightF16?: boolean;
  /** Add into dhidden instead of overwriting it. */
  accumulate?: boolean;
  /** Add into dweight instead of overwriting it (gradient accumulation over micro-batches). */
  accumulateDweight?: boolean;
}

/** One chunk of `weight` / `dweight`, bound without a copy. */
const slice = (buffer: GPUBuffer, offset: number, size: number): GPUBufferBinding => ({ buffer, offset, size });

/** Checked chunk size, and the bytes per weight element. */
function chunkOf(gpu: Gpu, a: LmHeadForwardArgs | LmHeadBackwardArgs, preferred = DEFAULT_CHUNK): [number, number] {
  const { N, C, V } = a;
  // Default: 4096 rows, fewer when (N × 4096) f32 logits would not fit one storage binding.
  const fit = Math.max(128, Math.floor(gpu.limits.maxStorageBufferBindingSize / (N * 4) / 128) * 128);
  const ch = Math.min(a.chunk ?? Math.min(preferred, fit), V);
  const el = a.weightF16 ? 2 : 4;
  if (a.weightF16 && !gpu.hasF16)
    throw new UsageError("lmhead: weightF16 needs the adapter feature 'shader-f16', which this device lacks; keep the head in f32");
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  if (!Number.isInteger(ch) || ch < 1) throw new UsageError(`lmhead: chunk must be a positive integer, got ${a.chunk}`);
  if (ch < V && ((ch * C * el) % align !== 0 || (ch * C * 4) % align !== 0))
    throw new UsageError(
      `lmhead: a chunk of ${ch} rows × C ${C} is not a multiple of the adapter's minStorageBufferOffsetAlignment (${align} bytes); use a chunk that is a multiple of 128`,
    );
  gpu.checkSize(ch * C * 4, `lmhead: one chunk of the weight (${ch} × ${C})`);
  gpu.checkSize(N * ch * 4, `lmhead: the logits of one chunk (${N} tokens × ${ch})`);
  return [ch, el];
}

function params(N: number, V: number, v0: number, width: number, first: boolean, last: boolean): Uint32Array {
  return new Uint32Array([N, V, v0, width, first ? 1 : 0, last ? 1 : 0, 0, 0]);
}

/** Encode the chunk's logits (N × width) = hidden · W[v0 : v0+width]ᵀ into `logits`. */
function chunkLogits(gpu: Gpu, encoder: GPUCommandEncoder, a: LmHeadForwardArgs | LmHeadBackwardArgs, logits: GPUBuffer, v0: number, width: number, el: number): void {
  matmul(gpu, encoder, {
    a: a.hidden, bm: slice(a.weight, v0 * a.C * el, Math.ceil((width * a.C * el) / 4) * 4), out: logits,
    M: a.N, N: width, K: a.C, transB: true, bmF16: a.weightF16,
  });
}

/** stats and lse for every token. Scratch: 'lmhead.logits' (N·chunk f32), 'lmhead.run' (N·8 f32). */
export function lmHeadForward(gpu: Gpu, encoder: GPUCommandEncoder, a: LmHeadForwardArgs): void {
  const { N, V } = a;
  if (N === 0) return;
  const [ch, el] = chunkOf(gpu, a);
  const logits = gpu.scratch('lmhead.logits', N * ch * 4);
  const run = gpu.scratch('lmhead.run', N * RUN_FLOATS * 4);
  const pipeline = gpu.pipeline(shader, 'lmhead_forward_chunk', { WG: ROW_WG });
  for (let v0 = 0; v0 < V; v0 += ch) {
    const width = Math.min(ch, V - v0);
    chunkLogits(gpu, encoder, a, logits, v0, width, el);
    const u = gpu.uniform(params(N, V, v0, width, v0 === 0, v0 + ch >= V));
    gpu.dispatch(encoder, pipeline, [u, logits, a.targets, run, a.stats, a.lse], grid1d(gpu, N, 1));
  }
}

/** dhidden (and dweight) from the forward's lse. Scratch: 'lmhead.logits' (N·chunk f32). */
export function lmHeadBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: LmHeadBackwardArgs): void {
  const { N, C, V } = a;
  if (N === 0) return;
  const [ch, el] = chunkOf(gpu, a);
  const logits = gpu.scratch('lmhead.logits', N * ch * 4);
  const pipeline = gpu.pipeline(shader, 'lmhead_backward_chunk', { WG: ROW_WG });
  for (let v0 = 0; v0 < V; v0 += ch) {
    const width = Math.min(ch, V - v0);
    chunkLogits(gpu, encoder, a, logits, v0, width, el);
    const u = gpu.uniform(params(N, V, v0, width, false, false));
    gpu.dispatch(encoder, pipeline, [u, logits, a.targets, a.lse, a.gscale], grid1d(gpu, N, 1));
    // dhidden (N, C) (+)= dlogits (N, width) · W_chunk (width, C); chunks add in order.
    matmul(gpu, encoder, {
      a: logits, bm: slice(a.weight, v0 * C * el, Math.ceil((width * C * el) / 4) * 4), out: a.dhidden,
      M: N, N: C, K: width, accumulate: v0 > 0 || a.accumulate, bmF16: a.weightF16,
    });
    // dweight_chunk (width, C) (+)= dlogitsᵀ · hidden (N, C).
    if (a.dweight)
      matmul(gpu, encoder, {
        a: logits, bm: a.hidden, out: slice(a.dweight, v0 * C * 4, width * C * 4),
        M: width, N: C, K: N, transA: true, accumulate: a.accumulateDweight,
      });
  }
}

export interface LmHeadForwardBackwardArgs extends LmHeadForwardArgs {
  gscale: GPUBuffer;
  /** Written, or added into when `accumulate`. */
  dhidden: GPUBuffer;
  accumulate?: boolean;
  /** (N, C) f32 buffers of the caller's to use as the scratch 'lmhead.p' and 'lmhead.wt' (their contents are overwritten). */
  p?: GPUBuffer;
  wt?: GPUBuffer;
}

let gradShaderF16: string | undefined;

/**
 * lmHeadForward and lmHeadBackward (without dweight: a frozen head) in one pass over the
 * vocabulary: each chunk's logits are computed once. Writes stats, lse and dhidden. Scratch:
 * 'lmhead.logits' (N·chunk f32; the default chunk keeps it within 4 MiB), 'lmhead.run' (N·8),
 * 'lmhead.wt' and 'lmhead.p' (N·C each: the target rows of the weight, one chunk's product),
 * and 'lmhead.acc' (N·C) when `accumulate`.
 */
export function lmHeadForwardBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: LmHeadForwardBackwardArgs): void {
  const { N, C, V } = a;
  if (N === 0) return;
  const preferred = Math.min(DEFAULT_CHUNK, Math.max(512, Math.floor(FUSED_LOGITS_BYTES / (N * 4) / 128) * 128));
  const [ch, el] = chunkOf(gpu, a, preferred);
  const logits = gpu.scratch('lmhead.logits', N * ch * 4);
  const run = gpu.scratch('lmhead.run', N * RUN_FLOATS * 4);
  const wt = a.wt ?? gpu.scratch('lmhead.wt', N * C * 4);
  const pc = a.p ?? gpu.scratch('lmhead.p', N * C * 4);
  const acc = a.accumulate ? gpu.scratch('lmhead.acc', N * C * 4) : a.dhidden;
  const fwd = gpu.pipeline(shader, 'lmhead_forward_chunk', { WG: ROW_WG, GRAD: 1 });
  const code = a.weightF16 ? (gradShaderF16 ??= withElementType(gradShader, 'f16')) : gradShader;
  const combine = gpu.pipeline(code, 'lmhead_grad_combine', { WG });
  const grid = grid1d(gpu, N * C, WG);
  const gparams = (v0: number, width: number, first: boolean) => new Uint32Array([N, C, v0, width, first ? 1 : 0, grid[0] * WG, V, 0]);
  for (let v0 = 0; v0 < V; v0 += ch) {
    const width = Math.min(ch, V - v0);
    const w = slice(a.weight, v0 * C * el, Math.ceil((width * C * el) / 4) * 4);
    chunkLogits(gpu, encoder, a, logits, v0, width, el);
    gpu.dispatch(encoder, fwd, [gpu.uniform(params(N, V, v0, width, v0 === 0, v0 + ch >= V)), logits, a.targets, run, a.stats, a.lse], grid1d(gpu, N, 1));
    // P (N, C) = e^(z − chunk max) (N, width) · W_chunk (width, C); acc ← a·acc + b·P
    matmul(gpu, encoder, { a: logits, bm: w, out: pc, M: N, N: C, K: width, bmF16: a.weightF16 });
    gpu.dispatch(encoder, combine, [gpu.uniform(gparams(v0, width, v0 === 0)), run, a.targets, acc, w, wt, pc], grid);
  }
  const fin = gpu.pipeline(gradShader, a.accumulate ? 'lmhead_grad_final_add' : 'lmhead_grad_final', { WG });
  const bind = [gpu.uniform(gparams(0, 0, false)), run, a.targets, acc, wt, a.gscale];
  gpu.dispatch(encoder, fin, a.accumulate ? [...bind, a.dhidden] : bind, grid);
}
