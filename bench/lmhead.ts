// The fused, vocabulary-chunked LM head + per-token NLL / entropy / confidence (src/kernels/
// lmhead.ts) against what a tfjs-webgpu user writes on the same adapter in the same run:
// tf.matMul into the whole (N × V) logits, tf.logSumExp, tf.softmax, Σ p·z, tf.max.
// GFLOP/s counts the logits matmul, 2·N·V·C.
import { lmHeadForward } from '../src/kernels/lmhead.js';
import { bestOf, clockOf, figure, gpuTimer, loadTfjs, tfTimer, type BenchContext, type Figures } from './common.js';

export async function lmheadFigures(ctx: BenchContext, figs: Figures): Promise<void> {
  const { gpu } = ctx;
  const { tf, why } = await loadTfjs(gpu);
  const reps = ctx.quick ? 1 : 2;
  const shapes: [number, number, number][] = ctx.quick ? [[64, 128, 32000]] : [[128, 256, 32000], [1024, 256, 8192]];
  for (const [N, C, V] of shapes) {
    ctx.progress(`lmhead N${N} C${C} V${V}`);
    const h = new Float32Array(N * C).map((_, i) => Math.sin(i * 0.37));
    const w = new Float32Array(V * C).map((_, i) => Math.sin(i * 12.9898) * 0.1);
    const t = Int32Array.from({ length: N }, (_, i) => (i * 7919) % V);
    const hidden = gpu.buffer(h), weight = gpu.buffer(w), targets = gpu.buffer(t);
    const stats = gpu.buffer(N * 16), lse = gpu.buffer(N * 4);
    const flop = 2 * N * V * C;
    // tfjs holds the whole (N × V) logits in one binding: past the limit its kernels fail
    const fits = N * V * 4 <= gpu.limits.maxStorageBufferBindingSize;
    const note = !tf ? why : fits ? undefined : 'tfjs: the (N × V) logits exceed one storage binding';
    const th = tf && fits ? tf.tensor2d(h, [N, C]) : null, tw = tf && fits ? tf.tensor2d(w, [V, C]) : null, tt = tf && fits ? tf.tensor1d(t, 'int32') : null;
    const [ours, tfMs] = await bestOf([
      gpuTimer(gpu, (enc) => lmHeadForward(gpu, enc, { hidden, weight, targets, stats, lse, N, C, V })),
      tf && th && tw && tt ? tfTimer(tf, () => tf.tidy(() => {
        const z = tf.matMul(th, tw, false, true);
        const l = tf.logSumExp(z, 1);
        const p = tf.softmax(z);
        const ent = tf.sub(l, tf.sum(tf.mul(p, z), 1));
        const conf = tf.max(p, 1);
        const zt = tf.sum(tf.mul(z, tf.oneHot(tt, V)), 1);
        return tf.stack([tf.sub(l, zt), ent, conf], 1);
      })) : null,
    ], reps);
    th?.dispose(); tw?.dispose(); tt?.dispose();
    figs[`lmhead.fwd.N${N}.V${V}`] = figure(`fused LM head + NLL/entropy/confidence, N${N} C${C} V${V}, best of ${reps} alternating with the peer, ${clockOf(gpu)}`, flop / ours / 1e6, 'GFLOP/s', 'tfjs-webgpu matMul + logSumExp + softmax', flop / tfMs / 1e6, note);
    for (const b of [hidden, weight, targets, stats, lse]) b.destroy();
  }
}
