// Wrapper for shaders/rope.wgsl: rotate-half RoPE in place on x (N, H, D), with positions
// pos (N) i32 and inverse frequencies invFreq (D/2) f32 from ropeInvFreq. The backward of RoPE
// is the inverse rotation applied to the gradient: ropeForward(…, {x: dx, inverse: true}).
import shader from '../../shaders/rope.wgsl';
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

const WG = 64;

/** config.json's rope_scaling, as Hugging Face writes it (`type` is the legacy key). */
export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

export interface RopeConfig {
  headDim: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling | null;
}

/**
 * inv_freq (D/2) as Hugging Face's rope init computes it, in float64, rounded to f32 at the end:
 * default: 1 / theta^(2i/D); llama3: the Llama-3.1 frequency-dependent scaling
 * (transformers' _compute_llama3_parameters). Other rope types are refused.
 */
export function ropeInvFreq(cfg: RopeConfig): Float32Array {
  const D = cfg.headDim;
  if (!Number.isInteger(D) || D <= 0 || D % 2 !== 0) throw new UsageError(`ropeInvFreq: head_dim must be a positive even integer, got ${D}`);
  const half = D / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / D);
  const sc = cfg.ropeScaling;
  const type = sc ? (sc.rope_type ?? sc.type ?? 'default') : 'default';
  if (type === 'llama3') {
    const s = sc as RopeScaling;
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = s;
    if (factor === undefined || lo === undefined || hi === undefined || old === undefined)
      throw new UsageError(
        'ropeInvFreq: rope_scaling of type llama3 needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings',
      );
    const lowWavelen = old / lo, highWavelen = old / hi;
    for (let i = 0; i < half; i++) {
      const f = inv[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) inv[i] = f / factor; // low frequencies: scaled
      else if (wavelen >= highWavelen) {
        // medium: interpolate between scaled and unscaled
        const smooth = (old / wavelen - lo) / (hi - lo);
        inv[i] = ((1 - smooth) * f) / factor + smooth * f;
      } // high frequencies: unchanged
    }
  } else if (type !== 'default') {
    throw new UsageError(`ropeInvFreq: rope_scaling type '${type}' is not supported (supported: default, llama3)`);
  }
  return Float32Array.from(inv);
}

export interface RopeArgs {
  x: GPUBuffer; // (N, H, D), rotated in place
  pos: GPUBuffer; // (N) i32
  invFreq: GPUBuffer; // (D/2) f32
  N: number;
  H: number;
  D: number;
  /** Rotate by −angle: the backward of RoPE, applied to the gradient. */
  inverse?: boolean;
}

/** Encode RoPE (or its inverse) on x in place. */
export function ropeForward(gpu: Gpu, encoder: GPUCommandEncoder, a: RopeArgs): void {
  if (a.D % 2 !== 0) throw new UsageError(`rope: head_dim must be even, got ${a.D}`);
  const pipeline = gpu.pipeline(shader, 'rope_forward', { WG, INVERSE: a.inverse ? 1 : 0 });
  gpu.dispatch(encoder, pipeline, [gpu.uniform(new Uint32Array([a.N, a.H, a.D, 0])), a.x, a.pos, a.invFreq], grid1d(gpu, a.N * a.H * (a.D / 2), WG));
}
