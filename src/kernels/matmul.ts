// Wrapper for shaders/matmul.wgsl: out[b] = alpha · op(a[b]) · op(bm[b]) (+ bias) (+ out[b]).
import shader from '../../shaders/matmul.wgsl';
import type { Gpu } from '../gpu/gpu.js';

export interface MatmulTiles {
  WG_X: number;
  WG_Y: number;
  TM: number;
  TN: number;
}

/** Measured best on lavapipe (2 cores) among the shapes bench/matmul sweeps. */
export const DEFAULT_TILES: MatmulTiles = { WG_X: 8, WG_Y: 8, TM: 4, TN: 4 };

export interface MatmulArgs {
  a: GPUBuffer;
  bm: GPUBuffer;
  out: GPUBuffer;
  bias?: GPUBuffer;
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  alpha?: number;
  tiles?: MatmulTiles;
}

// Tile choices per Gpu, set by the autotuner (bench/ or doctor) or left at the default.
const tuned = new WeakMap<Gpu, MatmulTiles>();
export function setMatmulTiles(gpu: Gpu, tiles: MatmulTiles): void {
  tuned.set(gpu, tiles);
}

const dummies = new WeakMap<Gpu, GPUBuffer>();
function dummy(gpu: Gpu): GPUBuffer {
  let d = dummies.get(gpu);
  if (!d) dummies.set(gpu, (d = gpu.buffer(16, 'matmul.dummy')));
  return d;
}

/** Encode one (batched) matmul into `encoder`. */
export function matmul(gpu: Gpu, encoder: GPUCommandEncoder, args: MatmulArgs): void {
  const { M, N, K } = args;
  const batch = args.batch ?? 1;
  const t = args.tiles ?? tuned.get(gpu) ?? DEFAULT_TILES;
  const pipeline = gpu.pipeline(shader, 'matmul', {
    WG_X: t.WG_X,
    WG_Y: t.WG_Y,
    TM: t.TM,
    TN: t.TN,
    TRANS_A: args.transA ? 1 : 0,
    TRANS_B: args.transB ? 1 : 0,
    HAS_BIAS: args.bias ? 1 : 0,
    ACCUMULATE: args.accumulate ? 1 : 0,
  });
  const params = new ArrayBuffer(32);
  new Uint32Array(params, 0, 7).set([M, N, K, batch, M * K, K * N, M * N]);
  new Float32Array(params, 28, 1)[0] = args.alpha ?? 1;
  gpu.dispatch(
    encoder,
    pipeline,
    [gpu.uniform(params), args.a, args.bm, args.out, args.bias ?? dummy(gpu)],
    [Math.ceil(N / (t.WG_X * t.TN)), Math.ceil(M / (t.WG_Y * t.TM)), batch],
  );
}
