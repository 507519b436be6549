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
// hidden/weight/targets and the forward's lse.
import shader from '../../shaders/lmhead.wgsl';
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';
import { matmul } from './matmul.js';

const WG = 256;
/** Default vocabulary chunk: (N × 4096) f32 scratch, 8 MiB at 512 tokens. */
export const DEFAULT_CHUNK = 4096;
const RUN_FLOATS = 6; // size of struct Run in the shader, in 4-byte words

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
function chunkOf(gpu: Gpu, a: LmHeadForwardArgs | LmHeadBackwardArgs): [number, number] {
  const { N, C, V } = a;
  // Default: 4096 rows, fewer when (N × 4096) f32 logits would not fit one storage binding.
  const fit = Math.max(128, Math.floor(gpu.limits.maxStorageBufferBindingSize / (N * 4) / 128) * 128);
  const ch = Math.min(a.chunk ?? Math.min(DEFAULT_CHUNK, fit), V);
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

/** stats and lse for every token. Scratch: 'lmhead.logits' (N·chunk f32), 'lmhead.run' (N·6 f32). */
export function lmHeadForward(gpu: Gpu, encoder: GPUCommandEncoder, a: LmHeadForwardArgs): void {
  const { N, V } = a;
  if (N === 0) return;
  const [ch, el] = chunkOf(gpu, a);
  const logits = gpu.scratch('lmhead.logits', N * ch * 4);
  const run = gpu.scratch('lmhead.run', N * RUN_FLOATS * 4);
  const pipeline = gpu.pipeline(shader, 'lmhead_forward_chunk', { WG });
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
  const pipeline = gpu.pipeline(shader, 'lmhead_backward_chunk', { WG });
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
