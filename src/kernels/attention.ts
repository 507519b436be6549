// Wrapper for shaders/attention.wgsl: causal grouped-query attention with segment masks, tiled
// with an online softmax; backward FlashAttention-2 style from the saved logsumexp, without
// atomics. Layouts (all f32 except seg):
//   q, out, dout, dq (B, Tq, Hq, D)    k, v (B, kvCapacity, Hkv, D)    dk, dv (B, T, Hkv, D)
//   seg (B, kvCapacity) i32 (sample id per key position, −1 padding)    lse (B, Hq, Tq)
import shader from '../../shaders/attention.wgsl';
import unfusedShader from '../../shaders/attention_unfused.wgsl';
import { LimitError, UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d, ROW_WG } from './elementwise.js';
import { matmul } from './matmul.js';

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
  /** fused (the online-softmax kernel), unfused (matmuls over the T×T scores; training and scoring
   *  shapes only: Tq = Tk = kvCapacity), or auto [auto]: unfused where attentionPath says so. */
  path?: 'auto' | 'fused' | 'unfused';
  /** A buffer the caller has free during the forward that the unfused path may use for the scores (when big enough). */
  workspace?: GPUBuffer;
}

/**
 * Encode out = softmax(scale·q·kᵀ + mask)·v and lse into `encoder`. Fused: one online-softmax
 * kernel, for any shape (a KV cache included). Unfused, for Tq = Tk = kvCapacity where the scores
 * fit (attentionPath): head-major copies, S = Q·Kᵀ, the masked row softmax, O = P·V — on lavapipe
 * 1.3–1.8× the fused kernel at T 128–1024 (`zpd-wgpu bench --only attention`), for the reason the
 * backward's unfused path is faster; the tiny LoRA step 8 % faster at T 128, 15 % at T 512
 * (bench/profile-dev/ab.ts). The scores go into `workspace` when it is big enough.
 */
export function attentionForward(gpu: Gpu, encoder: GPUCommandEncoder, a: AttentionForwardArgs): void {
  const s: Shape = {
    B: a.B, Tq: a.Tq, Tk: a.Tk, Hq: a.Hq, Hkv: a.Hkv, D: a.D,
    qOffset: a.qOffset ?? a.Tk - a.Tq, kvCapacity: a.kvCapacity ?? a.Tk, scale: a.scale ?? 1 / Math.sqrt(a.D),
  };
  validate(s);
  const whole = s.Tq === s.Tk && s.qOffset === 0 && s.kvCapacity === s.Tk;
  if (a.path === 'unfused' && !whole) throw new UsageError('attention: the unfused forward needs Tq = Tk = kvCapacity (no KV cache)');
  if (whole && attentionPath(gpu, { B: a.B, T: a.Tq, Hq: a.Hq, path: a.path }) === 'unfused') return unfusedForward(gpu, encoder, a, s.scale);
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
  /** fused (the FlashAttention-2 style kernels), unfused (matmuls over the T×T scores), or auto [auto]: see attentionPath. */
  path?: 'auto' | 'fused' | 'unfused';
  /** Buffers the caller has free during the backward that the unfused path may use for the scores and their gradient (each used when big enough). */
  workspace?: [GPUBuffer?, GPUBuffer?];
}

/**
 * The scores of the unfused paths may take at most this many bytes (each of S and dP): beyond it
 * the fused kernels run, whose memory does not grow with T². At or below it the unfused paths run:
 * on lavapipe the backward measured 2.1–3.4× the fused one at T 128–1024 (bench/results), since
 * its work is the matmul kernel's, which runs several times as fast per FLOP there as the fused
 * kernels' per-invocation rows, and the fused backward computes the scores twice (dq, then dk/dv).
 */
export const UNFUSED_SCORES_MAX_BYTES = 32 * 2 ** 20;

/** Which path attentionForward (training and scoring shapes) and attentionBackward take: unfused when the T×T scores fit (UNFUSED_SCORES_MAX_BYTES and the binding limits). */
export function attentionPath(gpu: Gpu, a: Pick<AttentionBackwardArgs, 'B' | 'T' | 'Hq' | 'path'>): 'fused' | 'unfused' {
  if (a.path === 'fused' || a.path === 'unfused') return a.path;
  const bytes = a.B * a.Hq * a.T * a.T * 4;
  return bytes <= Math.min(UNFUSED_SCORES_MAX_BYTES, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) ? 'unfused' : 'fused';
}

/**
 * Encode the backward of attentionForward for training (Tq = Tk = T, no cache). Both paths start
 * with the delta pre-pass into scratch 'attention.ld' (lse and delta, 2·B·Hq·T floats). Fused: dq,
 * then dk and dv (8 storage buffers at most: WebGPU's baseline limit). Unfused (where the scores
 * fit; attentionPath): shaders/attention_unfused.wgsl's head-major copies, five matmuls
 * and the masked softmax gradient in between; the same sums in another order (f32 rounding).
 */
export function attentionBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: AttentionBackwardArgs): void {
  const s: Shape = { B: a.B, Tq: a.T, Tk: a.T, Hq: a.Hq, Hkv: a.Hkv, D: a.D, qOffset: 0, kvCapacity: a.T, scale: a.scale ?? 1 / Math.sqrt(a.D) };
  validate(s);
  const t = tilesFor(gpu, a.tiles);
  const u = () => gpu.uniform(params(s));
  const ld = gpu.scratch('attention.ld', 2 * a.B * a.Hq * a.T * 4);
  const WG = 64;
  gpu.dispatch(encoder, gpu.pipeline(shader, 'attention_delta', { HEAD_DIM: a.D, WG }), [u(), a.out, a.dout, a.lse, ld], grid1d(gpu, a.B * a.T * a.Hq, WG));
  if (attentionPath(gpu, a) === 'unfused') return unfusedBackward(gpu, encoder, a, s.scale, ld);
  const c = { HEAD_DIM: a.D, ROWS: t.ROWS, TILE: t.TILE };
  gpu.dispatch(encoder, gpu.pipeline(shader, 'attention_backward_dq', c), [u(), a.q, a.k, a.v, a.seg, ld, a.dout, a.dq],
    [Math.ceil(a.T / t.ROWS), a.Hq, a.B]);
  gpu.dispatch(encoder, gpu.pipeline(shader, 'attention_backward_dkv', c), [u(), a.q, a.k, a.v, a.seg, ld, a.dout, a.dk, a.dv],
    [Math.ceil(a.T / t.ROWS), a.Hkv, a.B]);
}

/** A buffer of `bytes` for the unfused scores: the caller's free `room` when big enough, else scratch `name`. */
function scores(gpu: Gpu, room: GPUBuffer | undefined, bytes: number, name: string): GPUBuffer {
  return room && room.size >= bytes ? room : gpu.scratch(name, bytes);
}

/**
 * What both unfused paths start with: head-major copies of q, k and v (scratch shared by the
 * forward and the backward) and S = Q·Kᵀ into `S`, with GQA as batches over kv heads (the G query
 * heads of kv head hk are G·T consecutive rows). Returns the copies and the helpers the rest needs.
 */
function headMajorScores(gpu: Gpu, enc: GPUCommandEncoder, a: Pick<AttentionForwardArgs, 'q' | 'k' | 'v' | 'B' | 'Hq' | 'Hkv' | 'D'>, T: number, scale: number, S: GPUBuffer) {
  const { B, Hq, Hkv, D } = a;
  const WG = 64;
  const up = (H: number) => {
    const b = new ArrayBuffer(32);
    new Uint32Array(b, 0, 4).set([B, T, H, D]);
    new Float32Array(b, 16, 1)[0] = scale;
    return gpu.uniform(b);
  };
  const permute = (src: GPUBuffer, dst: GPUBuffer, H: number, toHeadMajor: boolean) =>
    gpu.dispatch(enc, gpu.pipeline(unfusedShader, 'permute', { WG, TO_HEAD_MAJOR: toHeadMajor ? 1 : 0 }), [up(H), src, dst], grid1d(gpu, B * T * H * D, WG));
  const qh = gpu.scratch('attention.qh', B * T * Hq * D * 4), kh = gpu.scratch('attention.kh', B * T * Hkv * D * 4);
  const vh = gpu.scratch('attention.vh', B * T * Hkv * D * 4);
  permute(a.q, qh, Hq, true);
  permute(a.k, kh, Hkv, true);
  permute(a.v, vh, Hkv, true);
  const G = Hq / Hkv, batch = B * Hkv, GT = G * T;
  matmul(gpu, enc, { a: qh, bm: kh, out: S, M: GT, N: T, K: D, batch, transB: true }); // S = Q·Kᵀ
  return { qh, kh, vh, up, permute, WG, batch, GT };
}

function unfusedForward(gpu: Gpu, enc: GPUCommandEncoder, a: AttentionForwardArgs, scale: number): void {
  const { B, Tq: T, Hq, D } = a;
  const S = scores(gpu, a.workspace, B * Hq * T * T * 4, 'attention.s');
  const { qh, vh, up, permute, batch, GT } = headMajorScores(gpu, enc, a, T, scale, S);
  gpu.dispatch(enc, gpu.pipeline(unfusedShader, 'softmax_rows', { WG: ROW_WG }), [up(Hq), S, a.lse, a.seg], grid1d(gpu, B * Hq * T * ROW_WG, ROW_WG)); // P, lse
  matmul(gpu, enc, { a: S, bm: vh, out: qh, M: GT, N: D, K: T, batch }); // O = P·V, into the spent Q copy
  permute(qh, a.out, Hq, false);
}

function unfusedBackward(gpu: Gpu, enc: GPUCommandEncoder, a: AttentionBackwardArgs, scale: number, ld: GPUBuffer): void {
  const { B, T, Hq, Hkv, D } = a;
  const sBytes = B * Hq * T * T * 4;
  const S = scores(gpu, a.workspace?.[0], sBytes, 'attention.s'), dP = scores(gpu, a.workspace?.[1], sBytes, 'attention.dp');
  // head-major copies; the gradients reuse them once their inputs are spent
  const { qh, kh, vh, up, permute, WG, batch, GT } = headMajorScores(gpu, enc, a, T, scale, S);
  const doh = gpu.scratch('attention.doh', B * T * Hq * D * 4);
  permute(a.dout, doh, Hq, true);
  matmul(gpu, enc, { a: doh, bm: vh, out: dP, M: GT, N: T, K: D, batch, transB: true }); // dP = dO·Vᵀ
  gpu.dispatch(enc, gpu.pipeline(unfusedShader, 'probs', { WG }), [up(Hq), S, dP, ld, a.seg], grid1d(gpu, B * Hq * T * T, WG));
  matmul(gpu, enc, { a: S, bm: doh, out: vh, M: T, N: D, K: GT, batch, transA: true }); // dV = Pᵀ·dO (over the group's heads)
  matmul(gpu, enc, { a: dP, bm: qh, out: doh, M: T, N: D, K: GT, batch, transA: true, alpha: scale }); // dK = scale·dSᵀ·Q
  matmul(gpu, enc, { a: dP, bm: kh, out: qh, M: GT, N: D, K: T, batch, alpha: scale }); // dQ = scale·dS·K
  permute(qh, a.dq, Hq, false);
  permute(doh, a.dk, Hkv, false);
  permute(vh, a.dv, Hkv, false);
}
