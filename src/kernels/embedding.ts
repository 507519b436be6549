// Wrapper for shaders/embedding.wgsl. ids (N) i32; weight (V, C) f32 or f16; dweight (V, C), out, dout (N, C) f32.
// An id outside [0, V) gives a zero row and no gradient (use −1 for padding).
import shader from '../../shaders/embedding.wgsl';
import { LimitError, UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';
import { withElementType } from './template.js';

const WG = 256;

function params(N: number, C: number, V: number): Uint32Array {
  return new Uint32Array([N, C, V, 0]);
}

export interface EmbeddingForwardArgs {
  ids: GPUBuffer;
  weight: GPUBuffer;
  out: GPUBuffer;
  N: number;
  C: number;
  V: number;
  /** weight holds f16 bits (a frozen table in f16 storage; needs gpu.hasF16). */
  weightF16?: boolean;
}

let shaderF16: string | undefined;

export function embeddingForward(gpu: Gpu, encoder: GPUCommandEncoder, a: EmbeddingForwardArgs): void {
  if (a.weightF16 && !gpu.hasF16) throw new UsageError("embeddingForward: weightF16 needs the adapter feature 'shader-f16'; keep the table in f32");
  const code = a.weightF16 ? (shaderF16 ??= withElementType(shader, 'f16')) : shader;
  const p = gpu.pipeline(code, 'embedding_forward', { WG });
  gpu.dispatch(encoder, p, [gpu.uniform(params(a.N, a.C, a.V)), a.ids, a.weight, a.out], grid1d(gpu, a.N * a.C, WG));
}

export interface EmbeddingBackwardArgs {
  ids: GPUBuffer;
  dout: GPUBuffer;
  /** (V, C): overwritten (rows of absent ids zeroed), or added into when accumulate. */
  dweight: GPUBuffer;
  N: number;
  C: number;
  V: number;
  accumulate?: boolean;
  /** (2N) u32 links; by default the cached scratch 'embedding.links'. */
  links?: GPUBuffer;
}

/** Deterministic scatter-add: link pass (N² id compares), then one ordered sum per (id, c). */
export function embeddingBackward(gpu: Gpu, encoder: GPUCommandEncoder, a: EmbeddingBackwardArgs): void {
  const { N, C, V } = a;
  const groups = Math.ceil(N / WG);
  if (groups > gpu.limits.maxComputeWorkgroupsPerDimension)
    throw new LimitError('embedding backward over N tokens', N, 'maxComputeWorkgroupsPerDimension × 256', gpu.limits.maxComputeWorkgroupsPerDimension * WG);
  const links = a.links ?? gpu.scratch('embedding.links', 2 * N * 4);
  if (!a.accumulate) encoder.clearBuffer(a.dweight, 0, V * C * 4);
  gpu.dispatch(encoder, gpu.pipeline(shader, 'embedding_link', { WG }), [gpu.uniform(params(N, C, V)), a.ids, links], [groups]);
  const p = gpu.pipeline(shader, 'embedding_backward', { WG, ACCUMULATE: a.accumulate ? 1 : 0 });
  gpu.dispatch(encoder, p, [gpu.uniform(params(N, C, V)), a.ids, links, a.dout, a.dweight], grid1d(gpu, N * C, WG));
}
