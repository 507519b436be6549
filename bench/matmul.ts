// matmul GFLOP/s with the tile shape the runtime uses on this adapter (autotuned and cached, or
// the default), beside tfjs-webgpu's tf.matMul on the same adapter in the same process: the
// x·Wᵀ layout of a forward (N = M = K) over sizes, and the dy·W layout of a backward.
import { f32ToF16Bits } from '../src/io/dtype.js';
import { describeMatmul, getMatmulTiles, matmul } from '../src/kernels/matmul.js';
import { bestOf, clockOf, figure, gpuTimer, loadTfjs, pseudoRandom, tfTimer, type BenchContext, type Figures } from './common.js';

export async function matmulFigures(ctx: BenchContext, figs: Figures): Promise<void> {
  const { gpu } = ctx;
  const { tf, why } = await loadTfjs(gpu);
  const t = getMatmulTiles(gpu);
  const runs: [string, number, boolean][] = ctx.quick
    ? [['nt', 256, true], ['nt', 512, true], ['nn', 256, false]]
    : [['nt', 256, true], ['nt', 512, true], ['nt', 1024, true], ['nt', 2048, true], ['nn', 1024, false]];
  for (const [layout, n, transB] of runs) {
    ctx.progress(`matmul ${layout.toUpperCase()} ${n}³`);
    // more repetitions at 1024: a burst of load elsewhere on the machine halved single figures there
    const reps = n >= 2048 ? 2 : n >= 1024 ? 4 : 3;
    const flop = 2 * n * n * n;
    const a = gpu.buffer(pseudoRandom(n * n, 1)), b = gpu.buffer(pseudoRandom(n * n, 2)), out = gpu.buffer(n * n * 4);
    // frozen weights kept in f16 (what 'auto' does with an f16/bf16 checkpoint where shader-f16 exists)
    const f16 = layout === 'nt' && n === (ctx.quick ? 256 : 1024) && gpu.hasF16;
    const w16 = f16 ? gpu.buffer(f32ToF16Bits(pseudoRandom(n * n, 2))) : null;
    const ta = tf?.randomNormal([n, n]), tb = tf?.randomNormal([n, n]);
    const [ours, tfMs, h] = await bestOf([
      gpuTimer(gpu, (enc) => matmul(gpu, enc, { a, bm: b, out, M: n, N: n, K: n, transB })),
      tf ? tfTimer(tf, () => tf.matMul(ta!, tb!, false, transB)) : null,
      w16 ? gpuTimer(gpu, (enc) => matmul(gpu, enc, { a, bm: w16, out, M: n, N: n, K: n, transB: true, bmF16: true })) : null,
    ], reps);
    for (const x of [a, b, out, w16]) x?.destroy();
    ta?.dispose(); tb?.dispose();
    const what = `f32 ${transB ? 'x·Wᵀ' : 'dy·W'} ${n}×${n}×${n}, ${describeMatmul(gpu, { N: n, K: n, transB }, t)}, best of ${reps} alternating with the peer, ${clockOf(gpu)}`;
    figs[`matmul.${layout}.${n}`] = figure(what, flop / ours / 1e6, 'GFLOP/s', 'tfjs-webgpu tf.matMul', tf ? flop / tfMs / 1e6 : null, tf ? undefined : why);
    if (w16) figs[`matmul.nt.${n}.f16w`] = figure(`x·Wᵀ ${n}×${n}×${n} with W in f16 (f32 accumulation), ${describeMatmul(gpu, { N: n, K: n, transB: true }, t)}, ${clockOf(gpu)}`, flop / h / 1e6, 'GFLOP/s', 'tfjs-webgpu tf.matMul (f32)', tf ? flop / tfMs / 1e6 : null, tf ? undefined : why);
  }
}
