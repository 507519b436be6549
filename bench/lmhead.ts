// bench/lmhead — the fused, vocabulary-chunked LM head + per-token reduction against the unfused
// path on the same adapter in the same run:
//   fused     lmHeadForward with chunk 4096: (N × 4096) logits scratch, running max/sum per chunk
//   unfused   the whole (N × V) logits matrix from one matmul, then one reduction pass over it
//             (lmHeadForward with chunk = V: the same shaders, no chunking)
//   tfjs      tf.matMul into (N × V), tf.logSumExp, tf.softmax, Σ p·z, tf.max: what a tfjs user
//             writes for NLL / entropy / confidence
// plus the fused forward + backward (recomputed logits, dhidden) of a LoRA step.
// GFLOP/s counts the logits matmul, 2·N·V·C (·3 for forward + backward: recompute, dhidden).
import { getGpu } from '../src/gpu/device.js';
import { DEFAULT_CHUNK, lmHeadBackward, lmHeadForward } from '../src/kernels/lmhead.js';
import type { BenchOpts, BenchRow } from './main.js';
import { loadTfjs, timeGpu, timeTf } from './matmul.js';

export const title = 'lmhead: fused chunked LM head + NLL/entropy/confidence vs unfused full logits, and tfjs-webgpu (same adapter)';

export async function run(o: BenchOpts): Promise<BenchRow[]> {
  const gpu = await getGpu();
  const tf = await loadTfjs(gpu);
  const reps = o.quick ? 1 : 3;
  const shapes: [number, number, number][] = o.quick
    ? [[64, 128, 32000], [128, 64, 151936]]
    : [[128, 256, 32000], [256, 128, 151936], [512, 64, 151936]];
  const rows: BenchRow[] = [];
  for (const [N, C, V] of shapes) {
    const h = new Float32Array(N * C).map((_, i) => Math.sin(i * 0.37));
    const w = new Float32Array(V * C).map((_, i) => Math.sin(i * 12.9898) * 0.1);
    const t = Int32Array.from({ length: N }, (_, i) => (i * 7919) % V);
    const hidden = gpu.buffer(h), weight = gpu.buffer(w), targets = gpu.buffer(t);
    const stats = gpu.buffer(N * 16), lse = gpu.buffer(N * 4), gscale = gpu.buffer(new Float32Array(N).fill(1 / N)), dhidden = gpu.buffer(N * C * 4);
    const args = { hidden, weight, targets, stats, lse, N, C, V };
    const flop = 2 * N * V * C;
    const shape = `N${N} C${C} V${V}`;
    const fused = await timeGpu(gpu, (enc) => lmHeadForward(gpu, enc, args), reps);
    const fb = await timeGpu(gpu, (enc) => {
      lmHeadForward(gpu, enc, args);
      lmHeadBackward(gpu, enc, { ...args, gscale, dhidden });
    }, reps);
    let unfusedMs = NaN, unfusedNote = '';
    try {
      gpu.checkSize(N * V * 4, 'the unfused (N × V) logits');
      unfusedMs = (await timeGpu(gpu, (enc) => lmHeadForward(gpu, enc, { ...args, chunk: V }), reps)).ms;
    } catch (e) {
      unfusedNote = `unfused: ${e instanceof Error ? e.message : String(e)}`;
    }
    let tfMs = NaN;
    // tfjs holds the whole (N × V) logits in one binding: past the limit its kernels fail
    // validation and tf.time reports a meaningless figure, so it is not run there.
    if (tf && N * V * 4 > gpu.limits.maxStorageBufferBindingSize) unfusedNote += ' tfjs: (N × V) logits exceed one binding';
    else if (tf) {
      const th = tf.tensor2d(h, [N, C]), tw = tf.tensor2d(w, [V, C]), tt = tf.tensor1d(t, 'int32');
      try {
        tfMs = await timeTf(tf, () => tf.tidy(() => {
          const z = tf.matMul(th, tw, false, true);
          const l = tf.logSumExp(z, 1);
          const p = tf.softmax(z);
          const ent = tf.sub(l, tf.sum(tf.mul(p, z), 1));
          const conf = tf.max(p, 1);
          const zt = tf.sum(tf.mul(z, tf.oneHot(tt, V)), 1);
          return tf.stack([tf.sub(l, zt), ent, conf], 1);
        }), reps);
      } catch (e) {
        unfusedNote += ` tfjs: ${String(e)}`;
      }
      th.dispose(); tw.dispose(); tt.dispose();
    }
    const scratchMiB = (N * Math.min(DEFAULT_CHUNK, V) * 4) / 2 ** 20;
    rows.push({
      shape,
      fused_ms: fused.ms, fused_gflops: flop / fused.ms / 1e6,
      unfused_ms: unfusedMs, unfused_gflops: flop / unfusedMs / 1e6,
      tfjs_ms: tfMs, tfjs_gflops: flop / tfMs / 1e6,
      fused_fwd_bwd_ms: fb.ms, fwd_bwd_gflops: (3 * flop) / fb.ms / 1e6,
      fused_scratch_MiB: scratchMiB, unfused_logits_MiB: (N * V * 4) / 2 ** 20,
      clock: fused.clock,
      note: unfusedNote.trim(),
    });
    for (const b of [hidden, weight, targets, stats, lse, gscale, dhidden]) b.destroy();
  }
  return rows;
}
