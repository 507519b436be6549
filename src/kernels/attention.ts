// Wrapper for shaders/attention.wgsl: causal grouped-query attention with segment masks, tiled
// with an online softmax; backward FlashAttention-2 style from the saved logsumexp, without
// atomics. Layouts (all f32 except seg):
//   q, out, dout, dq (B, Tq, Hq, D)    k, v (B, kvCapacity, Hkv, D)    dk, dv (B, T, Hkv, D)
//   seg (B, kvCapacity) i32 (sample id per key position, −1 padding)    lse (B, Hq, Tq)
import shader from '../../shaders/attention.wgsl';
import { LimitError, UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

/** Rows per workgroup (one per invocation) and keys per online-softmax chunk (forward). */
export interface AttentionTiles {
  ROWS: number;
  TILE: number;
}

// The shader's private array bounds, read from its text so they cannot drift.
const shaderConst = (name: string) => Number(new RegExp(`const ${name} = (\\d+)u;`).exec(shader)?.[1]);
const MAX_D = shaderConst('MAX_D');
/** The largest head_dim the attention kernels support (the shader's MAX_D). */
export const ATTENTION_MAX_HEAD_DIM = MAX_D;
const MAX_TILE = shaderConst('MAX_TILE');
/** Measured on lavapipe (bench/results/lavapipe-2cores.txt; bench/attention-dev/run.ts times any ROWS × TILE). */
export const DEFAULT_ATTENTION_TILES: AttentionTiles = { ROWS: 32, TILE: 32 };

function tilesFor(gpu: Gpu, want?: AttentionTiles): AttentionTiles {
  const t = want ?? DEFAULT_ATTENTION_TILES;
  if (t.TILE > MAX_TILE || t.TILE < 1) throw new UsageError(`attention: TILE must be in 1..${MAX_TILE}, got ${t.TILE}`);
  if (t.ROWS > gpu.limits.maxComputeInvocationsPerWorkgroup)
    throw new LimitError('attention ROWS', t.ROWS, 'maxComputeInvocationsPerWorkgroup', gpu.limits.maxComputeInvocationsPerWorkgroup);
  return t;
}

interface Shape {
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  qOffset: number;
  kvCapacity: number;
  scale: number;
}

function validate(s: Shape): void {
  const { Tq, Tk, Hq, Hkv, D, qOffset, kvCapacity } = s;
  if (D < 1 || D > MAX_D) throw new UsageError(`attention: head_dim ${D} is not supported (1..${MAX_D})`);
  if (Hkv < 1 || Hq % Hkv !== 0) throw new UsageError(`attention: Hq (${Hq}) must be a multiple of Hkv (${Hkv})`);
  if (!(qOffset >= 0) || qOffset + Tq > Tk) throw new UsageError(`attention: qOffset (${qOffset}) + Tq (${Tq}) exceeds Tk (${Tk})`);
  if (Tk > kvCapacity) throw new UsageError(`attention: Tk (${Tk}) exceeds kvCapacity (${kvCapacity})`);
}

function params(s: Shape): ArrayBuffer {
  const buf = new ArrayBuffer(48);
  new Uint32Array(buf, 0, 8).set([s.B, s.Tq, s.Tk, s.Hq, s.Hkv, s.qOffset, s.kvCapacity, s.Hq / s.Hkv]);
  new Float32Array(buf, 32, 1)[0] = s.scale;
  new Uint32Array(buf, 36, 1)[0] = s.D; // head_dim: the shader's loop bound over D
  return buf;
}

export interface AttentionForwardArgs {
  q: GPUBuffer; // (B, Tq, Hq, D)
  k: GPUBuffer; // (B, kvCapacity, Hkv, D); rows 0..Tk−1 are used
  v: GPUBuffer; // (B, kvCapacity, Hkv, D)
  out: GPUBuffer; // (B, Tq, Hq, D), written
  lse: GPUBuffer; // (B, Hq, Tq) f32, written; 0 for a query that attends nothing
  seg: GPUBuffer; // (B, kvCapacity) i32: sample id of each key position, −1 = padding
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Key position of query 0 (default Tk − Tq: the queries are the last Tq positions). */
  qOffset?: number;
  /** Rows per batch item of k, v and seg (a KV cache's capacity); default Tk. */
  kvCapacity?: number;
  /** Default 1/sqrt(D). */
  scale?: number;
  tiles?: AttentionTiles;
}

/** Encode out = softmax(scale·q·kᵀ + mask)·v and lse into `encoder`. */
export function attentionForward(gpu: Gpu, encoder: GPUCommandEncoder, a: AttentionForwardArgs): void {
  const s: Shape = {
    B: a.B, Tq: a.Tq, Tk: a.Tk, Hq: a.Hq, Hkv: a.Hkv, D: a.D,
    qOffset: a.qOffset ?? a.Tk - a.Tq, kvCapacity: a.kvCapacity ?? a.Tk, scale: a.scale ?? 1 / Math.sqrt(a.D),
  };
  validate(s);
  const t = tilesFor(gpu, a.tiles);
  const pipeline = gpu.pipeline(shader, 'attention_forward', { HEAD_DIM: a.D, ROWS: t.ROWS, TILE: t.TILE });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(params(s)), a.q, a.k, a.v, a.seg, a.out, a.lse], [Math.ceil(a.Tq / t.ROWS), a.Hq, a.B]);
}

export interface AttentionBackwardArgs {
  q: GPUBuffer; // (B, T, Hq, D)
  k: GPUBuffer; // (B, T, Hkv, D)
  v: GPUBuffer; // (B, T, Hkv, D)
  out: GPUBuffer; // (B, T, Hq, D), from the forward
  lse: GPUBuffer; // (B, Hq, T), from the forward
  dout: GPUBuffer; // (B, T, Hq, D)
  seg: GPUBuffer; // (B, T) i32
  dq: GPUBuffer; // (B, T, Hq, D), written
  dk: GPUBuffer; // (B, T, Hkv, D), written
  dv: GPUBuffer; // (B, T, Hkv, D), written
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  scale?: number;
  tiles?: AttentionTiles;
}

/**
 * Encode the backward of attentionForward for training (Tq = Tk = T, no cache): the delta
 * pre-pass into scratch 'attention.ld' (lse and delta, 2·B·Hq·T floats), then dq, then dk and dv
 * (8 storage buffers at most: WebGPU's baseline limit).
 */
export function attentionBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: AttentionBackwardArgs): void {
  const s: Shape = { B: a.B, Tq: a.T, Tk: a.T, Hq: a.Hq, Hkv: a.Hkv, D: a.D, qOffset: 0, kvCapacity: a.T, scale: a.scale ?? 1 / Math.sqrt(a.D) };
  validate(s);
  const t = tilesFor(gpu, a.tiles);
  const u = () => gpu.uniform(params(s));
  const ld = gpu.scratch('attention.ld', 2 * a.B * a.Hq * a.T * 4);
  const WG = 64;
  gpu.dispatch(encoder, gpu.pipeline(shader, 'attention_delta', { HEAD_DIM: a.D, WG }), [u(), a.out, a.dout, a.lse, ld], grid1d(gpu, a.B * a.T * a.Hq, WG));
  const c = { HEAD_DIM: a.D, ROWS: t.ROWS, TILE: t.TILE };
  gpu.dispatch(encoder, gpu.pipeline(shader, 'attention_backward_dq', c), [u(), a.q, a.k, a.v, a.seg, ld, a.dout, a.dq],
    [Math.ceil(a.T / t.ROWS), a.Hq, a.B]);
  gpu.dispatch(encoder, gpu.pipeline(shader, 'attention_backward_dkv', c), [u(), a.q, a.k, a.v, a.seg, ld, a.dout, a.dk, a.dv],
    [Math.ceil(a.T / t.ROWS), a.Hkv, a.B]);
}
