// Wrapper for shaders/matmul.wgsl: out[b] = alpha · op(a[b]) · op(bm[b]) (+ bias) (+ out[b]).
// `bm` may be f16 (bmF16: a Uint16Array of IEEE half bits, see src/io/dtype.ts) where the
// adapter has shader-f16: the frozen base weight of a linear layer. Accumulation is f32.
import shader from '../../shaders/matmul.wgsl';
import { UsageError } from '../errors.js';
import type { Binding, Gpu } from '../gpu/gpu.js';
import { withElementType } from './template.js';

export interface MatmulTiles {
  WG_X: number;
  WG_Y: number;
  TM: number;
  TN: number;
}

/** Used until autotuneMatmul picks for the adapter (the CLI does, once, and caches it). On lavapipe
 *  (2 cores) the sweep prefers 8×8 invocations of 8×8 (bench/results/lavapipe-2cores.txt). */
export const DEFAULT_TILES: MatmulTiles = { WG_X: 8, WG_Y: 8, TM: 4, TN: 4 };

/** The tile shapes the autotuner tries (TM, TN ≤ the shader's MAX_T = 8). */
export const TILE_CANDIDATES: MatmulTiles[] = [
  { WG_X: 8, WG_Y: 8, TM: 4, TN: 4 },
  { WG_X: 16, WG_Y: 16, TM: 4, TN: 4 },
  { WG_X: 16, WG_Y: 8, TM: 4, TN: 4 },
  { WG_X: 8, WG_Y: 8, TM: 8, TN: 8 },
  { WG_X: 16, WG_Y: 16, TM: 2, TN: 2 },
  { WG_X: 8, WG_Y: 16, TM: 8, TN: 4 },
  { WG_X: 16, WG_Y: 4, TM: 4, TN: 8 },
];

/** Operands are whole buffers or a slice of one ({buffer, offset, size}: e.g. one vocabulary chunk). */
export interface MatmulArgs {
  a: Binding;
  bm: Binding;
  out: Binding;
  bias?: Binding;
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  alpha?: number;
  tiles?: MatmulTiles;
  /** `bm` holds f16 elements (needs gpu.hasF16). */
  bmF16?: boolean;
}

// Tile choices per Gpu, set by the autotuner (bench/ or doctor) or left at the default.
const tuned = new WeakMap<Gpu, MatmulTiles>();
export function setMatmulTiles(gpu: Gpu, tiles: MatmulTiles): void {
  tuned.set(gpu, tiles);
}
export function getMatmulTiles(gpu: Gpu): MatmulTiles {
  return tuned.get(gpu) ?? DEFAULT_TILES;
}
let shaderF16: string | undefined;

/** Encode one (batched) matmul into `encoder`. */
export function matmul(gpu: Gpu, encoder: GPUCommandEncoder, args: MatmulArgs): void {
  const { M, N, K } = args;
  const batch = args.batch ?? 1;
  const t = args.tiles ?? getMatmulTiles(gpu);
  if (args.bmF16 && !gpu.hasF16)
    throw new UsageError("matmul: bmF16 needs the adapter feature 'shader-f16', which this device lacks; keep the weight in f32");
  const code = args.bmF16 ? (shaderF16 ??= withElementType(shader, 'f16')) : shader;
  // vec4 loads along K for the x·Wᵀ forward: a and bm bound a second time as vec4 arrays.
  const vec4 = Boolean(args.transB && !args.transA && K % 4 === 0);
  const pipeline = gpu.pipeline(code, 'matmul', {
    WG_X: t.WG_X,
    WG_Y: t.WG_Y,
    TM: t.TM,
    TN: t.TN,
    TRANS_A: args.transA ? 1 : 0,
    TRANS_B: args.transB ? 1 : 0,
    HAS_BIAS: args.bias ? 1 : 0,
    ACCUMULATE: args.accumulate ? 1 : 0,
    VEC4: vec4 ? 1 : 0,
  });
  const params = new ArrayBuffer(32);
  new Uint32Array(params, 0, 7).set([M, N, K, batch, M * K, K * N, M * N]);
  new Float32Array(params, 28, 1)[0] = args.alpha ?? 1;
  gpu.dispatch(
    encoder,
    pipeline,
    [gpu.uniform(params), args.a, args.bm, args.out, args.bias ?? gpu.scratch('dummy', 16), vec4 ? args.a : gpu.scratch('dummy', 16), vec4 ? args.bm : gpu.scratch('dummy', 16)],
    [Math.ceil(N / (t.WG_X * t.TN)), Math.ceil(M / (t.WG_Y * t.TM)), batch],
  );
}

// ---- autotuner -----------------------------------------------------------------------------

export interface AutotuneOptions {
  /** Square sizes (M = N = K, the x·Wᵀ layout) to time each candidate at; default [512]. */
  sizes?: number[];
  candidates?: MatmulTiles[];
  /** Timed repetitions per candidate and size (after one warm-up); default 3. */
  reps?: number;
  /** Optional JSON file caching the choice per adapter (Node only). */
  cacheFile?: string;
}

const memo = new Map<string, MatmulTiles>();

function adapterKey(gpu: Gpu): string {
  const i = gpu.info;
  return `${i.vendor}|${i.architecture}|${i.device}|${i.description}|${i.backend}`;
}

/**
 * Time the candidate tile shapes on this adapter (sum of the best-of-`reps` times over `sizes`),
 * install the fastest with setMatmulTiles, and remember it per adapter description: in memory,
 * and in `cacheFile` when given. A cached choice is installed without timing anything.
 */
export async function autotuneMatmul(gpu: Gpu, opts: AutotuneOptions = {}): Promise<MatmulTiles> {
  const key = adapterKey(gpu);
  const sizes = opts.sizes ?? [512];
  const cacheKey = `${key}|${sizes.join(',')}`;
  let best = memo.get(cacheKey);
  let file: Record<string, MatmulTiles> = {};
  if (!best && opts.cacheFile) {
    const fs = await import('node:fs/promises');
    try {
      file = JSON.parse(await fs.readFile(opts.cacheFile, 'utf8')) as Record<string, MatmulTiles>;
      best = file[cacheKey];
    } catch {
      file = {};
    }
  }
  if (!best) {
    const candidates = opts.candidates ?? TILE_CANDIDATES;
    const reps = opts.reps ?? 3;
    const total = new Array<number>(candidates.length).fill(0);
    for (const n of sizes) {
      const a = gpu.buffer(n * n * 4, 'autotune.a'), b = gpu.buffer(n * n * 4, 'autotune.b'), out = gpu.buffer(n * n * 4, 'autotune.out');
      for (let c = 0; c < candidates.length; c++) {
        const enc = (e: GPUCommandEncoder) => matmul(gpu, e, { a, bm: b, out, M: n, N: n, K: n, transB: true, tiles: candidates[c] });
        await gpu.time(enc); // compile + warm up
        let ms = Infinity;
        for (let r = 0; r < reps; r++) ms = Math.min(ms, (await gpu.time(enc)).ms);
        total[c] += ms;
      }
      a.destroy(); b.destroy(); out.destroy();
    }
    best = candidates[total.indexOf(Math.min(...total))];
    if (opts.cacheFile) {
      const fs = await import('node:fs/promises');
      file[cacheKey] = best;
      const tmp = `${opts.cacheFile}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(file, null, 2));
      await fs.rename(tmp, opts.cacheFile);
    }
  }
  memo.set(cacheKey, best);
  setMatmulTiles(gpu, best);
  return best;
}
