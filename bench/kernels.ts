// Elementwise and row-wise kernels in GB/s of compulsory traffic (each input read once, each
// output written once), beside the same op composed from tfjs-webgpu ops on the same adapter.
import { rmsnormForward } from '../src/kernels/rmsnorm.js';
import { swigluForward } from '../src/kernels/swiglu.js';
import { bestOf, clockOf, figure, gpuTimer, loadTfjs, pseudoRandom, tfTimer, type BenchContext, type Figures } from './common.js';

export async function elementwiseFigures(ctx: BenchContext, figs: Figures): Promise<void> {
  const { gpu } = ctx;
  const { tf, why } = await loadTfjs(gpu);
  const reps = ctx.quick ? 2 : 4;
  {
    const [N, C] = ctx.quick ? [512, 1024] : [2048, 2048];
    ctx.progress(`rmsnorm ${N}×${C}`);
    const inp = gpu.buffer(pseudoRandom(N * C, 1)), weight = gpu.buffer(pseudoRandom(C, 2)), out = gpu.buffer(N * C * 4), rstd = gpu.buffer(N * 4);
    const x = tf?.randomNormal([N, C]), w = tf?.randomNormal([C]);
    const [t, tfMs] = await bestOf([
      gpuTimer(gpu, (enc) => rmsnormForward(gpu, enc, { inp, weight, out, rstd, N, C, eps: 1e-6 })),
      tf ? tfTimer(tf, () => tf.tidy(() => tf.mul(tf.mul(x!, tf.rsqrt(tf.add(tf.mean(tf.square(x!), -1, true), 1e-6))), w!))) : null,
    ], reps);
    x?.dispose(); w?.dispose();
    const bytes = 2 * N * C * 4;
    figs['elementwise.rmsnorm'] = figure(`RMSNorm forward ${N}×${C} (read x, write y), best of ${reps} alternating with the peer, ${clockOf(gpu)}`, bytes / t / 1e6, 'GB/s', 'tfjs-webgpu x·rsqrt(mean(x²)+ε)·w', bytes / tfMs / 1e6, tf ? undefined : why);
    for (const b of [inp, weight, out, rstd]) b.destroy();
  }
  {
    const [N, I] = ctx.quick ? [512, 2048] : [2048, 5632];
    ctx.progress(`swiglu ${N}×${I}`);
    const n = N * I;
    const gate = gpu.buffer(pseudoRandom(n, 3)), up = gpu.buffer(pseudoRandom(n, 4)), out = gpu.buffer(n * 4);
    const g = tf?.randomNormal([N, I]), u = tf?.randomNormal([N, I]);
    const [t, tfMs] = await bestOf([
      gpuTimer(gpu, (enc) => swigluForward(gpu, enc, { gate, up, out, n })),
      tf ? tfTimer(tf, () => tf.tidy(() => tf.mul(tf.mul(g!, tf.sigmoid(g!)), u!))) : null,
    ], reps);
    g?.dispose(); u?.dispose();
    const bytes = 3 * n * 4;
    figs['elementwise.swiglu'] = figure(`SwiGLU forward ${N}×${I} (read gate, up; write h), best of ${reps} alternating with the peer, ${clockOf(gpu)}`, bytes / t / 1e6, 'GB/s', 'tfjs-webgpu g·sigmoid(g)·u', bytes / tfMs / 1e6, tf ? undefined : why);
    for (const b of [gate, up, out]) b.destroy();
  }
}
