// bench/profile-dev/shapes.ts — our matmul against tfjs-webgpu's at the shapes of the tiny LoRA
// step (bench/model.ts TINY: N = 1024 tokens, hidden 256, intermediate 688, vocab chunk), every
// layout the step uses, interleaved shape by shape; GPU timestamps (kernel time) on both sides.
//   npx esbuild bench/profile-dev/shapes.ts --bundle --platform=node --format=esm --packages=external \
//     --loader:.wgsl=text --loader:.py=text --outfile=dist/shapes-dev.js && node dist/shapes-dev.js [reps]
import { getGpu } from '../../src/gpu/device.js';
import { matmul } from '../../src/kernels/matmul.js';
import { bestOf, gpuTimer, loadTfjs, pseudoRandom, tfTimer } from '../common.js';

const reps = Number(process.argv[2] ?? 3);
const gpu = await getGpu();
const { tf } = await loadTfjs(gpu);
if (!tf) throw new Error('no tfjs');
// [name, M, N, K, transA, transB]
const shapes: [string, number, number, number, boolean, boolean][] = [
  ['q/o fwd x·Wᵀ', 1024, 256, 256, false, true],
  ['gate fwd x·Wᵀ', 1024, 688, 256, false, true],
  ['down fwd x·Wᵀ', 1024, 256, 688, false, true],
  ['lmhead chunk x·Wᵀ', 1024, 1024, 256, false, true],
  ['q/o bwd dy·W', 1024, 256, 256, false, false],
  ['gate bwd dy·W', 1024, 256, 688, false, false],
  ['down bwd dy·W', 1024, 688, 256, false, false],
  ['lmhead dh E·W', 1024, 256, 1024, false, false],
  ['lora x·Aᵀ', 1024, 8, 256, false, true],
  ['lora dA gᵀ·x', 8, 256, 1024, true, false],
];
for (const [name, M, N, K, tA, tB] of shapes) {
  const a = gpu.buffer(pseudoRandom(M * K, 1)), b = gpu.buffer(pseudoRandom(N * K, 2)), out = gpu.buffer(M * N * 4);
  const ta = tf.randomNormal(tA ? [K, M] : [M, K]), tb = tf.randomNormal(tB ? [N, K] : [K, N]);
  const [ours, theirs] = await bestOf([gpuTimer(gpu, (e) => matmul(gpu, e, { a, bm: b, out, M, N, K, transA: tA, transB: tB })), tfTimer(tf, () => tf.matMul(ta, tb, tA, tB))], reps);
  const gf = (ms: number) => (2 * M * N * K) / ms / 1e6;
  console.log(`${name.padEnd(20)} ${M}×${N}×${K}  ours ${ours.toFixed(1).padStart(7)} ms ${gf(ours).toFixed(2).padStart(6)} GFLOP/s   tfjs ${theirs.toFixed(1).padStart(7)} ms ${gf(theirs).toFixed(2).padStart(6)}   ×${(theirs / ours).toFixed(2)}`);
  a.destroy(); b.destroy(); out.destroy(); ta.dispose(); tb.dispose();
}
process.exit(0);
