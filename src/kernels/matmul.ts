// Wrapper for shaders/matmul.wgsl, shaders/matmul_subgroup.wgsl and, for x·Wᵀ and dy·W on the
// subgroup tiles, shaders/matmul_subgroup_w.wgsl (the tiles and the layout choose):
// out[b] = alpha · op(a[b]) · op(bm[b]) (+ bias) (+ out[b]). The kernels sum every output in the
// same order, so they give the same bits. `bm` may be f16 (bmF16: a Uint16Array of IEEE half bits,
// see src/io/dtype.ts) where the adapter has shader-f16: the frozen base weight of a linear layer.
// Accumulation is f32.
import shader from '../../shaders/matmul.wgsl';
import subgroupShader from '../../shaders/matmul_subgroup.wgsl';
import subgroupWShader from '../../shaders/matmul_subgroup_w.wgsl';
import { LimitError, UsageError } from '../errors.js';
import type { Binding, Gpu } from '../gpu/gpu.js';
import { withElementType } from './template.js';
import type { TextCache } from '../io/cache.js';

export interface MatmulTiles {
  WG_X: number;
  WG_Y: number;
  TM: number;
  TN: number;
  /** shaders/matmul_subgroup.wgsl (TM rows per workgroup of WG_X × 1, shared through
   *  subgroupBroadcast), for every layout. Needs the `subgroups` feature, WG_Y = 1, TM ≤ the
   *  adapter's smallest subgroup and WG_X a multiple of its largest (see checkTiles). x·Wᵀ and
   *  dy·W with K, N multiples of 4 and N ≥ 16 run shaders/matmul_subgroup_w.wgsl instead, at its
   *  own shape (SUBGROUP_W), where the smallest subgroup has ≥ 8 lanes (see matmulKernel). */
  subgroup?: true;
}

/** The regular kernel's default, used until autotuneMatmul picks for the adapter (the CLI does,
 *  once, and caches it) where the subgroup kernel cannot run (see getMatmulTiles): what the
 *  autotuner chose among the regular shapes on lavapipe (2 cores) in every run of 2026-12-01; timed
 *  interleaved with the others (bench/profile-dev/tiles.ts), it is the fastest or within noise of it
 *  for x·Wᵀ and dy·W at 512 and 1024 and at the tiny LoRA step's shapes. */
export const DEFAULT_TILES: MatmulTiles = { WG_X: 16, WG_Y: 4, TM: 4, TN: 8 };

/** "32×1 invocations of 8×4, subgroup kernel": tiles as the CLI and the benchmark print them. */
export function describeTiles(t: MatmulTiles): string {
  return `${t.WG_X}×${t.WG_Y} invocations of ${t.TM}×${t.TN}${t.subgroup ? ', subgroup kernel' : ''}`;
}

/** The subgroup kernel's shapes the autotuner tries where checkTiles allows them; the first is the
 *  default there. On lavapipe (2 cores, 8-lane subgroups), timed round-robin best of 6
 *  (bench/matmul-dev/sg.ts), 32 × 1 of 8×4 ran x·Wᵀ and dy·W at 512³ and 1024³ at 9–12.5 GFLOP/s,
 *  against 3.4–5.8 for DEFAULT_TILES on the regular kernel. */
export const SUBGROUP_CANDIDATES: MatmulTiles[] = [
  { WG_X: 32, WG_Y: 1, TM: 8, TN: 4, subgroup: true },
  { WG_X: 32, WG_Y: 1, TM: 8, TN: 2, subgroup: true },
  { WG_X: 64, WG_Y: 1, TM: 8, TN: 2, subgroup: true },
  { WG_X: 32, WG_Y: 1, TM: 4, TN: 4, subgroup: true },
];

/** shaders/matmul_subgroup_w.wgsl's shape: TM rows per invocation, WG_X = the larger of 8 and the
 *  adapter's largest subgroup; 16 columns per workgroup (fixed by the shader). */
export const SUBGROUP_W = { TM: 4, COLS: 16 } as const;

/** The register tile limit of both matmul shaders (their `const MAX_T`), read from the shaders. */
export const MAX_T = Math.min(...[shader, subgroupShader].map((s) => Number(/const MAX_T = (\d+)u;/.exec(s)?.[1] ?? NaN)));

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
  if (t.subgroup !== undefined) {
    if (t.subgroup !== true) throw bad('subgroup must be true or absent');
    const sg = gpu.subgroups;
    if (!sg) throw bad("the subgroup kernel needs the adapter feature 'subgroups', which this device lacks");
    if (t.WG_Y !== 1) throw bad('the subgroup kernel needs WG_Y = 1');
    if (t.TM > sg.min) throw bad(`the subgroup kernel needs TM ≤ the adapter's smallest subgroup (${sg.min} lanes)`);
    if (t.WG_X % sg.max !== 0) throw bad(`the subgroup kernel needs WG_X a multiple of the adapter's largest subgroup (${sg.max} lanes)`);
  }
  const L = gpu.limits;
  if (t.WG_X > L.maxComputeWorkgroupSizeX || t.WG_Y > L.maxComputeWorkgroupSizeY || t.WG_X * t.WG_Y > L.maxComputeInvocationsPerWorkgroup)
    throw new LimitError(`a matmul workgroup of ${t.WG_X}×${t.WG_Y}`, t.WG_X * t.WG_Y, 'maxComputeInvocationsPerWorkgroup (or maxComputeWorkgroupSizeX/Y)', L.maxComputeInvocationsPerWorkgroup);
}
/** The tiles matmul uses on `gpu`: the autotuner's choice, else the first subgroup shape the
 *  adapter can run (the faster kernel where it was measured), else DEFAULT_TILES. */
export function getMatmulTiles(gpu: Gpu): MatmulTiles {
  return tuned.get(gpu) ?? defaultTiles(gpu);
}
// per Gpu, once: getMatmulTiles runs for every matmul a step encodes
const defaults = new WeakMap<Gpu, MatmulTiles>();
function defaultTiles(gpu: Gpu): MatmulTiles {
  let t = defaults.get(gpu);
  if (!t) defaults.set(gpu, (t = SUBGROUP_CANDIDATES.find((c) => runnable(gpu, c)) ?? DEFAULT_TILES));
  return t;
}
function runnable(gpu: Gpu, t: MatmulTiles): boolean {
  try {
    checkTiles(gpu, t);
    return true;
  } catch {
    return false;
  }
}
const f16Shaders = new Map<string, string>();

/** Encode one (batched) matmul into `encoder`. */
export function matmul(gpu: Gpu, encoder: GPUCommandEncoder, args: MatmulArgs): void {
  const { M, N, K } = args;
  const batch = args.batch ?? 1;
  let t = args.tiles ?? getMatmulTiles(gpu);
  if (args.tiles) checkTiles(gpu, args.tiles);
  if (args.bmF16 && !gpu.hasF16)
    throw new UsageError("matmul: bmF16 needs the adapter feature 'shader-f16', which this device lacks; keep the weight in f32");
  const second = args.second;
  if (second && (args.transA || batch !== 1)) throw new UsageError('matmul: a second product is supported without transA and for batch 1 only');
  if (second && (args.alpha ?? 1) === 0) throw new UsageError('matmul: a second product needs a nonzero alpha');
  t = fitWidth(t, N, gpu.subgroups?.max ?? 1, gpu.limits.maxComputeWorkgroupSizeY);
  const kernel = matmulKernel(gpu, args, t);
  if (kernel === 'subgroup-w') return matmulSubgroupW(gpu, encoder, args);
  if (kernel === 'subgroup') return matmulSubgroup(gpu, encoder, args, t);
  const code = args.bmF16 ? f16(shader) : shader;
  // vec4 loads along K for the x·Wᵀ forward: a and bm bound a second time as vec4 arrays.
  const vec4 = Boolean(args.transB && !args.transA && K % 4 === 0);
  // vec4 loads for the dy·W backward: a along K, bm along N (whole vec4 column groups per tile).
  const vec4nn = !args.transA && !args.transB && K % 4 === 0 && N % 4 === 0 && t.TN % 4 === 0;
  const pipeline = gpu.pipeline(code, 'matmul', { ...constants(args, t), WG_Y: t.WG_Y, VEC4: vec4 ? 1 : 0, VEC4_NN: vec4nn ? 1 : 0 });
  const dummy = gpu.scratch('dummy', 16);
  gpu.dispatch(
    encoder,
    pipeline,
    [
      params(gpu, args), args.a, args.bm, args.out, args.bias ?? dummy, vec4 || vec4nn ? args.a : dummy, vec4 || vec4nn ? args.bm : dummy,
      second?.a ?? dummy, second?.bm ?? dummy,
    ],
    [Math.ceil(N / (t.WG_X * t.TN)), Math.ceil(M / (t.WG_Y * t.TM)), batch],
  );
}

/**
 * Tiles no wider than the output where it is narrow — LoRA's rank-r products (N = r = 8) would
 * leave 15 of 16 columns of a 128-wide tile idle: the workgroup's width moves into its height
 * (the regular kernel) or shrinks to whole subgroups and fewer columns per invocation (the
 * subgroup kernel). Each output is summed in the same order whatever the tile: the results do not
 * change. On lavapipe, N = 8: 3–12× faster (bench/matmul-dev/sg.ts, e.g. x·Aᵀ 1024×8×688
 * 0.77 → 8.6 GFLOP/s, dB = dyᵀ·u 688×8×1024 1.06 → 3.13).
 */
function fitWidth(t: MatmulTiles, N: number, lanes: number, maxY: number): MatmulTiles {
  let { WG_X, WG_Y, TN } = t;
  if (t.subgroup) {
    while ((WG_X / 2) % lanes === 0 && (WG_X / 2) * TN >= N) WG_X /= 2;
    while (TN % 2 === 0 && WG_X * (TN / 2) >= N) TN /= 2;
  } else {
    while (WG_X % 2 === 0 && (WG_X / 2) * TN >= N && WG_Y * 2 <= maxY) (WG_X /= 2), (WG_Y *= 2);
  }
  return WG_X === t.WG_X && TN === t.TN ? t : { ...t, WG_X, WG_Y, TN };
}

/** Which shader matmul runs for `args` on `tiles` (default: getMatmulTiles): shaders/matmul.wgsl
 *  ('regular'), shaders/matmul_subgroup.wgsl ('subgroup') or, for x·Wᵀ and dy·W on subgroup
 *  tiles, shaders/matmul_subgroup_w.wgsl ('subgroup-w'). */
export function matmulKernel(gpu: Gpu, args: Pick<MatmulArgs, 'N' | 'K' | 'transA' | 'transB'>, tiles = getMatmulTiles(gpu)): 'regular' | 'subgroup' | 'subgroup-w' {
  if (!tiles.subgroup) return 'regular';
  const w = !args.transA && args.K % 4 === 0 && args.N % 4 === 0 && args.N >= SUBGROUP_W.COLS;
  return w && (gpu.subgroups?.min ?? 0) >= 8 ? 'subgroup-w' : 'subgroup';
}

/** What runs for `args` on `tiles`, as the benchmark prints it: "tiles 32×1 invocations of 8×4,
 *  subgroup kernel", or for shaders/matmul_subgroup_w.wgsl its own shape. */
export function describeMatmul(gpu: Gpu, args: Pick<MatmulArgs, 'N' | 'K' | 'transA' | 'transB'>, tiles = getMatmulTiles(gpu)): string {
  if (matmulKernel(gpu, args, tiles) !== 'subgroup-w') return `tiles ${describeTiles(tiles)}`;
  return `the weight-sharing subgroup kernel, ${wLanes(gpu)} invocations of ${SUBGROUP_W.TM}×${SUBGROUP_W.COLS} per workgroup`;
}
const wLanes = (gpu: Gpu) => Math.max(8, gpu.subgroups?.max ?? 8);

/** shaders/matmul_subgroup_w.wgsl: matmulKernel chose it. */
function matmulSubgroupW(gpu: Gpu, encoder: GPUCommandEncoder, args: MatmulArgs): void {
  const { M, N } = args;
  const batch = args.batch ?? 1;
  const WG_X = wLanes(gpu);
  const { TM, COLS } = SUBGROUP_W;
  const code = args.bmF16 ? f16(subgroupWShader) : subgroupWShader;
  const pipeline = gpu.pipeline(code, 'matmul', {
    WG_X, TM, TRANS_B: args.transB ? 1 : 0, HAS_BIAS: args.bias ? 1 : 0, ACCUMULATE: args.accumulate ? 1 : 0, HAS_SECOND: args.second ? 1 : 0,
  });
  const dummy = gpu.scratch('dummy', 16);
  gpu.dispatch(
    encoder,
    pipeline,
    [
      params(gpu, args), args.a, args.bm, args.out, args.bias ?? dummy, args.second?.a ?? dummy,
      (!args.transB && args.second?.bm) || dummy, (args.transB && args.second?.bm) || dummy,
    ],
    [Math.ceil(N / COLS), Math.ceil(M / (WG_X * TM)), batch],
  );
}

/** shaders/matmul_subgroup.wgsl, tiles checked by checkTiles. */
function matmulSubgroup(gpu: Gpu, encoder: GPUCommandEncoder, args: MatmulArgs, t: MatmulTiles): void {
  const { M, N, K } = args;
  const batch = args.batch ?? 1;
  const vec4a = !args.transA && K % 4 === 0;
  const vec4b = !args.transB && N % 4 === 0 && t.TN % 4 === 0;
  const code = args.bmF16 ? f16(subgroupShader) : subgroupShader;
  const pipeline = gpu.pipeline(code, 'matmul', { ...constants(args, t), VEC4_A: vec4a ? 1 : 0, VEC4_B: vec4b ? 1 : 0 });
  const dummy = gpu.scratch('dummy', 16);
  // each operand bound through the view (vec4 or element) its path reads, a dummy in the other
  const bm4 = (vec4a && args.transB) || vec4b;
  const bm1 = (!vec4a && args.transB) || (!args.transB && !vec4b);
  gpu.dispatch(
    encoder,
    pipeline,
    [
      params(gpu, args), vec4a ? args.a : dummy, bm4 ? args.bm : dummy, args.out, args.bias ?? dummy, bm1 ? args.bm : dummy,
      args.second?.a ?? dummy, args.second?.bm ?? dummy, vec4a ? dummy : args.a,
    ],
    [Math.ceil(N / (t.WG_X * t.TN)), Math.ceil(M / t.TM), batch],
  );
}

/** The override constants both matmul shaders take. */
function constants(args: MatmulArgs, t: MatmulTiles): Record<string, number> {
  return {
    WG_X: t.WG_X, TM: t.TM, TN: t.TN,
    TRANS_A: args.transA ? 1 : 0, TRANS_B: args.transB ? 1 : 0,
    HAS_BIAS: args.bias ? 1 : 0, ACCUMULATE: args.accumulate ? 1 : 0, HAS_SECOND: args.second ? 1 : 0,
  };
}

function f16(src: string): string {
  let s = f16Shaders.get(src);
  if (!s) f16Shaders.set(src, (s = withElementType(src, 'f16')));
  return s;
}

/** The Params block the matmul shaders share. */
function params(gpu: Gpu, args: MatmulArgs): GPUBuffer {
  const { M, N, K } = args;
  const p = new ArrayBuffer(48);
  new Uint32Array(p, 0, 7).set([M, N, K, args.batch ?? 1, M * K, K * N, M * N]);
  new Float32Array(p, 28, 1)[0] = args.alpha ?? 1;
  new Uint32Array(p, 32, 1)[0] = args.second?.K ?? 0;
  new Float32Array(p, 36, 1)[0] = args.second?.alpha ?? 1;
  return gpu.uniform(p);
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
  if (typeof t !== 'object' || t === null) return false;
  return candidates.some((c) => sameTiles(c, t)) && runnable(gpu, t as MatmulTiles);
}

function sameTiles(c: MatmulTiles, t: object): boolean {
  return Object.keys(c).length === Object.keys(t).length && Object.entries(c).every(([k, v]) => (t as Record<string, unknown>)[k] === v);
}

/** The shapes the autotuner times on `gpu`: the regular kernel's and the subgroup kernel's it can run. */
export function tileCandidates(gpu: Gpu): MatmulTiles[] {
  return [...TILE_CANDIDATES, ...SUBGROUP_CANDIDATES.filter((t) => runnable(gpu, t))];
}

/**
 * Time the candidate tile shapes on this adapter (sum of the best-of-`reps` times over `sizes`),
 * install the fastest — the adapter's default (getMatmulTiles before tuning) unless another is
 * over 5 % faster — with setMatmulTiles, and remember it per adapter description: in memory,
 * and in `cache` when given. A cached choice is installed without timing anything — if it is one
 * of the shapes the shader supports; a corrupt, foreign or unknown entry is ignored (with a
 * warning) and the file rewritten.
 */
export async function autotuneMatmul(gpu: Gpu, opts: AutotuneOptions = {}): Promise<MatmulTiles> {
  const key = adapterKey(gpu);
  const sizes = opts.sizes ?? [512];
  const candidates = opts.candidates ?? tileCandidates(gpu);
  // the kernels timed are part of the key: a choice made before the subgroup kernels existed (or
  // before x·Wᵀ and dy·W had their own) is not reused
  const kernels = candidates.some((c) => c.subgroup) ? '|regular+subgroup+w' : '';
  const cacheKey = `${key}|${sizes.join(',')}${kernels}`;
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
        if (entry !== undefined && !isCandidate(gpu, entry, candidates)) {
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
    for (const c of candidates) checkTiles(gpu, c);
    // Sum of the best-of-`reps` times over `sizes`, timed round-robin over `which`: a burst of load
    // elsewhere on the machine then slows one repetition of every candidate rather than all of one's.
    const time = async (which: MatmulTiles[], reps: number): Promise<number[]> => {
      const total = new Array<number>(which.length).fill(0);
      for (const n of sizes) {
        const a = gpu.buffer(n * n * 4, 'autotune.a'), b = gpu.buffer(n * n * 4, 'autotune.b'), out = gpu.buffer(n * n * 4, 'autotune.out');
        // the forward's x·Wᵀ and the backward's dy·W: a training step spends about as long in each
        const encs = which.map((tiles) => (e: GPUCommandEncoder) => {
          matmul(gpu, e, { a, bm: b, out, M: n, N: n, K: n, transB: true, tiles });
          matmul(gpu, e, { a, bm: b, out, M: n, N: n, K: n, tiles });
        });
        for (const enc of encs) await gpu.time(enc); // compile + warm up
        const fastest = new Array<number>(which.length).fill(Infinity);
        for (let r = 0; r < reps; r++) for (let c = 0; c < which.length; c++) fastest[c] = Math.min(fastest[c], (await gpu.time(encs[c])).ms);
        fastest.forEach((ms, c) => (total[c] += ms));
        a.destroy(); b.destroy(); out.destroy();
      }
      return total;
    };
    const reps = opts.reps ?? 3;
    const total = await time(candidates, reps);
    // The default stays unless another shape is clearly faster, in the sweep and again head to
    // head: on lavapipe the two best subgroup shapes traded places at 512³ from run to run, and one
    // sweep picked 8×2 over the default 8×4 that, timed again, was faster at 512³ and at every
    // shape of the LoRA step (bench/matmul-dev/sg.ts; in the step 18 % faster, bench/profile-dev/ab.ts).
    const fastestTotal = Math.min(...total);
    const winner = candidates[total.indexOf(fastestTotal)];
    const fallback = defaultTiles(gpu);
    const preferred = candidates.findIndex((c) => sameTiles(c, fallback));
    const clearlyFaster = async () => {
      const [d, w] = await time([candidates[preferred], winner], reps + 2);
      return w * 1.05 < d;
    };
    best = preferred < 0 || (total[preferred] > fastestTotal * 1.05 && (await clearlyFaster())) ? winner : candidates[preferred];
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
