// Wrapper for shaders/segment.wgsl: per-sample means of the per-token LM-head stats.
//   stats (N, 4) f32 [nll, entropy, max-probability, hit]; segments (N) i32 sample id or -1;
//   targets (N) i32 (-1 = token not counted); out (S, 8) f32 [mean nll, mean entropy,
//   mean max-probability, token accuracy, token count, 0, 0, 0]. Perplexity is exp(mean nll),
//   on the host.
import shader from '../../shaders/segment.wgsl';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

const WG = 256;

/** Floats per sample in `out`. */
export const SEGMENT_FLOATS = 8;

export interface SegmentMeansArgs {
  stats: GPUBuffer;
  segments: GPUBuffer;
  targets: GPUBuffer;
  out: GPUBuffer;
  N: number;
  S: number;
}

export function segmentMeans(gpu: Gpu, encoder: GPUCommandEncoder, a: SegmentMeansArgs): void {
  const pipeline = gpu.pipeline(shader, 'segment_mean', { WG });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(new Uint32Array([a.N, a.S, 0, 0])), a.stats, a.segments, a.targets, a.out], grid1d(gpu, a.S, 1));
}
