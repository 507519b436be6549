// bench/matmul — GFLOP/s of our f32 matmul in the x·Wᵀ layout (N = M = K), sweeping the tile
// shapes the autotuner tries and reporting the best per size, beside tfjs-webgpu's tf.matMul on
// the same adapter in the same process. Also exports the timing helpers bench/kernels uses.
import { getGpu } from '../src/gpu/device.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { matmul, TILE_CANDIDATES, type MatmulTiles } from '../src/kernels/matmul.js';
import type { BenchOpts, BenchRow } from './main.js';

export const title = 'matmul x·Wᵀ (f32, N=M=K): ours (best tile shape of the sweep) vs tfjs-webgpu tf.matMul, same adapter';

/** Best-of-`reps` milliseconds of `fn`'s GPU work (after one warm-up), and the clock used. */
export async function timeGpu(gpu: Gpu, fn: (enc: GPUCommandEncoder) => void, reps: number): Promise<{ ms: number; clock: string }> {
  await gpu.time(fn);
  let ms = Infinity, clock = 'wall';
  for (let r = 0; r < reps; r++) {
    const t = await gpu.time(fn);
    ms = Math.min(ms, t.ms);
    clock = t.clock;
  }
  return { ms, clock };
}

type Tf = typeof import('@tensorflow/tfjs-core');
let tfPromise: Promise<Tf | null> | undefined;

/** tfjs-core with the WebGPU backend on our navigator.gpu (the same adapter), or null if it fails. */
export function loadTfjs(gpu: Gpu): Promise<Tf | null> {
  tfPromise ??= (async () => {
    try {
      const g = globalThis as { navigator?: { gpu?: GPU } };
      if (!g.navigator?.gpu) Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: gpu.navigatorGpu }, configurable: true });
      const tf = await import('@tensorflow/tfjs-core');
      await import('@tensorflow/tfjs-backend-webgpu');
      if (!(await tf.setBackend('webgpu'))) return null;
      return tf;
    } catch (e) {
      console.error(`bench: tfjs-webgpu unavailable: ${String(e)}`);
      return null;
    }
  })();
  return tfPromise;
}

/** Best-of-`reps` kernel milliseconds of a tfjs computation (tf.time: GPU timestamps where it has them). */
export async function timeTf(tf: Tf, fn: () => import('@tensorflow/tfjs-core').Tensor, reps: number): Promise<number> {
  let best = Infinity;
  for (let r = 0; r <= reps; r++) {
    const t = await tf.time(() => {
      fn().dispose();
    });
    const ms = typeof t.kernelMs === 'number' ? t.kernelMs : t.wallMs;
    if (r > 0) best = Math.min(best, ms); // r = 0 compiles
  }
  return best;
}

const tilesName = (t: MatmulTiles) => `${t.WG_X}x${t.WG_Y}/${t.TM}x${t.TN}`;

export async function run(o: BenchOpts): Promise<BenchRow[]> {
  const gpu = await getGpu();
  const tf = await loadTfjs(gpu);
  const sizes = o.quick ? [256, 512, 1024] : [256, 512, 1024, 2048];
  const rows: BenchRow[] = [];
  for (const n of sizes) {
    const reps = n >= 1024 ? 2 : 3;
    const flop = 2 * n * n * n;
    const a = gpu.buffer(new Float32Array(n * n).fill(0.5)), b = gpu.buffer(new Float32Array(n * n).fill(0.25)), out = gpu.buffer(n * n * 4);
    let best = { ms: Infinity, tiles: TILE_CANDIDATES[0], clock: '' };
    let worst = 0;
    for (const tiles of TILE_CANDIDATES) {
      const t = await timeGpu(gpu, (enc) => matmul(gpu, enc, { a, bm: b, out, M: n, N: n, K: n, transB: true, tiles }), reps);
      if (t.ms < best.ms) best = { ms: t.ms, tiles, clock: t.clock };
      worst = Math.max(worst, t.ms);
    }
    a.destroy(); b.destroy(); out.destroy();
    let tfMs = NaN;
    if (tf) {
      const ta = tf.randomNormal([n, n]), tb = tf.randomNormal([n, n]);
      tfMs = await timeTf(tf, () => tf.matMul(ta, tb, false, true), reps);
      ta.dispose(); tb.dispose();
    }
    const ours = flop / best.ms / 1e6, theirs = flop / tfMs / 1e6;
    rows.push({
      n, best_tiles: tilesName(best.tiles), ours_ms: best.ms, ours_gflops: ours,
      worst_tiles_gflops: flop / worst / 1e6, tfjs_ms: tfMs, tfjs_gflops: theirs, ours_over_tfjs: ours / theirs, clock: best.clock,
    });
  }
  return rows;
}
