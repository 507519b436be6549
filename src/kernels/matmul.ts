// Wrapper for shaders/matmul.wgsl: out[b] = alpha · op(a[b]) · op(bm[b]) (+ bias) (+ out[b]).
// `bm` may be f16 (bmF16: a Uint16Array of IEEE half bits, see src/io/dtype.ts) where the
// adapter has shader-f16: the frozen base weight of a linear layer. Accumulation is f32.
import shader from '../../shaders/matmul.wgsl';
import { LimitError, UsageError } from '../errors.js';
import type { Binding, Gpu } from '../gpu/gpu.js';
import { withElementType } from './template.js';
import type { TextCache } from '../io/cache.js';

export interface MatmulTiles {
  WG_X: number;
  WG_Y: number;
  TM: number;
  TN: number;
}

/** Used until autotuneMatmul picks for the adapter (the CLI does, once, and caches it): what the
 *  autotuner chose on lavapipe (2 cores) in every run of 2026-12-01, 16×4 invocations of 4×8; timed
 *  interleaved with the others (bench/profile-dev/tiles.ts), it is the fastest or within noise of it
 *  for x·Wᵀ and dy·W at 512 and 1024 and at the tiny LoRA step's shapes. */
export const DEFAULT_TILES: MatmulTiles = { WG_X: 16, WG_Y: 4, TM: 4, TN: 8 };

/** The register tile limit of shaders/matmul.wgsl (its `const MAX_T`), read from the shader. */
export const MAX_T = Number(/const MAX_T = (\d+)u;/.exec(shader)?.[1] ?? NaN);

/** The tile shapes the autotuner tries (TM, TN ≤ the shader's MAX_T). */
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
  /** + alpha2 · a2 · op(bm2) in the same pass: a2 (M, K2) row-major, bm2 (K2, N) — or (N, K2) with transB — f32; not with transA or batch > 1. */
  second?: { a: Binding; bm: Binding; K: number; alpha?: number };
}

// Tile choices per Gpu, set by the autotuner (bench/ or doctor) or left at the default.
const tuned = new WeakMap<Gpu, MatmulTiles>();
export function setMatmulTiles(gpu: Gpu, tiles: MatmulTiles): void {
  checkTiles(gpu, tiles);
  tuned.set(gpu, tiles);
}

/**
 * Refuse a tile shape the shader cannot run correctly (TM or TN above its MAX_T: the register
 * arrays would be overrun and the results silently wrong) or the device cannot launch.
 */
export function checkTiles(gpu: Gpu, t: MatmulTiles): void {
  const bad = (why: string) => new UsageError(`matmul tiles ${JSON.stringify(t)}: ${why}`);
  for (const k of ['WG_X', 'WG_Y', 'TM', 'TN'] as const) if (!Number.isInteger(t?.[k]) || t[k] < 1) throw bad(`${k} must be a positive integer`);
  if (t.TM > MAX_T || t.TN > MAX_T) throw bad(`TM and TN must be at most the shader's MAX_T = ${MAX_T}`);
  const L = gpu.limits;
  if (t.WG_X > L.maxComputeWorkgroupSizeX || t.WG_Y > L.maxComputeWorkgroupSizeY || t.WG_X * t.WG_Y > L.maxComputeInvocationsPerWorkgroup)
    throw new LimitError(`a matmul workgroup of ${t.WG_X}×${t.WG_Y}`, t.WG_X * t.WG_Y, 'maxComputeInvocationsPerWorkgroup (or maxComputeWorkgroupSizeX/Y)', L.maxComputeInvocationsPerWorkgroup);
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
  if (args.tiles) checkTiles(gpu, args.tiles);
  if (args.bmF16 && !gpu.hasF16)
    throw new UsageError("matmul: bmF16 needs the adapter feature 'shader-f16', which this device lacks; keep the weight in f32");
  const code = args.bmF16 ? (shaderF16 ??= withElementType(shader, 'f16')) : shader;
  const second = args.second;
  if (second && (args.transA || batch !== 1)) throw new UsageError('matmul: a second product is supported without transA and for batch 1 only');
  if (second && (args.alpha ?? 1) === 0) throw new UsageError('matmul: a second product needs a nonzero alpha');
  // vec4 loads along K for the x·Wᵀ forward: a and bm bound a second time as vec4 arrays.
  const vec4 = Boolean(args.transB && !args.transA && K % 4 === 0);
  // vec4 loads for the dy·W backward: a along K, bm along N (whole vec4 column groups per tile).
  const vec4nn = !args.transA && !args.transB && K % 4 === 0 && N % 4 === 0 && t.TN % 4 === 0;
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
    VEC4_NN: vec4nn ? 1 : 0,
    HAS_SECOND: second ? 1 : 0,
  });
  const params = new ArrayBuffer(48);
  new Uint32Array(params, 0, 7).set([M, N, K, batch, M * K, K * N, M * N]);
  new Float32Array(params, 28, 1)[0] = args.alpha ?? 1;
  new Uint32Array(params, 32, 1)[0] = second?.K ?? 0;
  new Float32Array(params, 36, 1)[0] = second?.alpha ?? 1;
  gpu.dispatch(
    encoder,
    pipeline,
    [
      gpu.uniform(params), args.a, args.bm, args.out, args.bias ?? gpu.scratch('dummy', 16), vec4 || vec4nn ? args.a : gpu.scratch('dummy', 16), vec4 || vec4nn ? args.bm : gpu.scratch('dummy', 16),
      second?.a ?? gpu.scratch('dummy', 16), second?.bm ?? gpu.scratch('dummy', 16),
    ],
    [Math.ceil(N / (t.WG_X * t.TN)), Math.ceil(M / (t.WG_Y * t.TM)), batch],
  );
}

// ---- autotuner -----------------------------------------------------------------------------

export interface AutotuneOptions {
  /** Square sizes (M = N = K; the x·Wᵀ and dy·W layouts, summed) to time each candidate at; default [512]. */
  sizes?: number[];
  candidates?: MatmulTiles[];
  /** Timed repetitions per candidate and size (after one warm-up); default 3. */
  reps?: number;
  /** Where the choice per adapter is kept between runs (src/io/cache.ts cacheFile in Node). */
  cache?: TextCache;
  /** Told when the cache holds something unusable (it is then rewritten). */
  warn?: (message: string) => void;
  /** Told where the choice came from. */
  source?: (from: 'memory' | 'cache' | 'timed') => void;
}

const memo = new Map<string, MatmulTiles>();

function adapterKey(gpu: Gpu): string {
  const i = gpu.info;
  return `${i.vendor}|${i.architecture}|${i.device}|${i.description}|${i.backend}`;
}

/** One of `candidates`, field for field, and runnable here. */
function isCandidate(gpu: Gpu, t: unknown, candidates: MatmulTiles[]): t is MatmulTiles {
  if (typeof t !== 'object' || t === null || Object.keys(t).length !== 4) return false;
  const x = t as MatmulTiles;
  if (!candidates.some((c) => c.WG_X === x.WG_X && c.WG_Y === x.WG_Y && c.TM === x.TM && c.TN === x.TN)) return false;
  try {
    checkTiles(gpu, x);
    return true;
  } catch {
    return false;
  }
}

/**
 * Time the candidate tile shapes on this adapter (sum of the best-of-`reps` times over `sizes`),
 * install the fastest with setMatmulTiles, and remember it per adapter description: in memory,
 * and in `cache` when given. A cached choice is installed without timing anything — if it is one
 * of the shapes the shader supports; a corrupt, foreign or unknown entry is ignored (with a
 * warning) and the file rewritten.
 */
export async function autotuneMatmul(gpu: Gpu, opts: AutotuneOptions = {}): Promise<MatmulTiles> {
  const key = adapterKey(gpu);
  const sizes = opts.sizes ?? [512];
  const cacheKey = `${key}|${sizes.join(',')}`;
  let best = memo.get(cacheKey);
  let from: 'memory' | 'cache' | 'timed' = 'memory';
  let file: Record<string, unknown> = {};
  if (!best && opts.cache) {
    const text = await opts.cache.read();
    if (text !== null) {
      try {
        const j = JSON.parse(text) as unknown;
        if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not an object');
        file = j as Record<string, unknown>;
        const entry = file[cacheKey];
        if (entry !== undefined && !isCandidate(gpu, entry, opts.candidates ?? TILE_CANDIDATES)) {
          opts.warn?.(`${opts.cache.where}: the cached matmul tiles ${JSON.stringify(entry)} are not a shape the shader supports; tuning again`);
          delete file[cacheKey];
        } else if (entry) (best = entry as MatmulTiles), (from = 'cache');
      } catch (e) {
        opts.warn?.(`${opts.cache.where}: not a readable tile cache (${(e as Error).message}); it will be rewritten`);
        file = {};
      }
    }
  }
  if (!best) {
    const candidates = opts.candidates ?? TILE_CANDIDATES;
    for (const c of candidates) checkTiles(gpu, c);
    const reps = opts.reps ?? 3;
    const total = new Array<number>(candidates.length).fill(0);
    for (const n of sizes) {
      const a = gpu.buffer(n * n * 4, 'autotune.a'), b = gpu.buffer(n * n * 4, 'autotune.b'), out = gpu.buffer(n * n * 4, 'autotune.out');
      // the forward's x·Wᵀ and the backward's dy·W: a training step spends about as long in each
      const encs = candidates.map((tiles) => (e: GPUCommandEncoder) => {
        matmul(gpu, e, { a, bm: b, out, M: n, N: n, K: n, transB: true, tiles });
        matmul(gpu, e, { a, bm: b, out, M: n, N: n, K: n, tiles });
      });
      for (const enc of encs) await gpu.time(enc); // compile + warm up
      // round-robin over the candidates, best of `reps` each: a burst of load elsewhere on the
      // machine then slows one repetition of every candidate rather than all of one candidate's
      const fastest = new Array<number>(candidates.length).fill(Infinity);
      for (let r = 0; r < reps; r++) for (let c = 0; c < candidates.length; c++) fastest[c] = Math.min(fastest[c], (await gpu.time(encs[c])).ms);
      fastest.forEach((ms, c) => (total[c] += ms));
      a.destroy(); b.destroy(); out.destroy();
    }
    best = candidates[total.indexOf(Math.min(...total))];
    from = 'timed';
    if (opts.cache) {
      file[cacheKey] = best;
      await opts.cache.write(JSON.stringify(file, null, 2));
    }
  }
  opts.source?.(from);
  memo.set(cacheKey, best);
  setMatmulTiles(gpu, best);
  return best;
}
