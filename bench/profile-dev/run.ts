// bench/profile-dev/run.ts — where the GPU time of one LoRA training step goes: every compute
// pass of the step gets GPU timestamps (timestamp-query), summed per pipeline entry point (and,
// with BY_GRID=1, per entry point and workgroup grid). A developer's tool, not part of the command.
//   npx esbuild bench/profile-dev/run.ts --bundle --platform=node --format=esm --packages=external \
//     --loader:.wgsl=text --loader:.py=text --outfile=dist/profile-dev.js && node dist/profile-dev.js [B] [T]
import { getGpu } from '../../src/gpu/device.js';
import { configFromJson } from '../../src/io/config.js';
import { fullBatch, prepareOurs, randomWeights, TINY } from '../model.js';

const B = Number(process.argv[2] ?? TINY.B), T = Number(process.argv[3] ?? TINY.T);
const gpu = await getGpu();
if (!gpu.features.has('timestamp-query')) throw new Error('profile: this adapter has no timestamp-query');
const cfg = configFromJson(TINY.config);
const ours = await prepareOurs(gpu, { ...TINY, B, T }, randomWeights(cfg), fullBatch(B, T, cfg.vocabSize));
await ours.step(); // warm-up

// every pass of encoders made from now on writes begin/end timestamps; labels from setPipeline
const dev = gpu.device;
const MAX = 4096; // queries: two per pass
// one pass per dispatch while profiling, so that each kernel gets its own timestamps
const dispatchOne = gpu.dispatch.bind(gpu);
gpu.dispatch = (enc, pl, b, wg) => (dispatchOne(enc, pl, b, wg), gpu.endPass(enc));
const qs = dev.createQuerySet({ type: 'timestamp', count: MAX });
const resolve = dev.createBuffer({ size: MAX * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const labels: string[] = [];
// a pipeline's name with the override constants that tell its variants apart (matmul layouts)
const names = new WeakMap<GPUComputePipeline, string>();
const pipeline = gpu.pipeline.bind(gpu);
gpu.pipeline = (code, entry, constants = {}) => {
  const p = pipeline(code, entry, constants);
  const k = entry === 'matmul' ? ['TRANS_A', 'TRANS_B', 'ACCUMULATE', 'VEC4', 'VEC4_NN'].filter((c) => constants[c]).join('+') || 'NN' : '';
  names.set(p, k ? `${entry} ${k}` : entry);
  return p;
};
const create = dev.createCommandEncoder.bind(dev);
let passes = 0;
dev.createCommandEncoder = (d?: GPUCommandEncoderDescriptor) => {
  const enc = create(d);
  const begin = enc.beginComputePass.bind(enc);
  enc.beginComputePass = (pd?: GPUComputePassDescriptor) => {
    const i = labels.length;
    if (pd?.timestampWrites || 2 * i + 1 >= MAX) return begin(pd);
    labels.push('?');
    const pass = begin({ ...pd, timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    const setPipeline = pass.setPipeline.bind(pass), dispatch = pass.dispatchWorkgroups.bind(pass);
    pass.setPipeline = (p: GPUComputePipeline) => ((labels[i] = names.get(p) ?? p.label), setPipeline(p));
    pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => {
      if (process.env.BY_GRID) labels[i] += ` [${x},${y ?? 1},${z ?? 1}]`;
      passes++;
      dispatch(x, y, z);
    };
    return pass;
  };
  return enc;
};
const t0 = performance.now();
await ours.step();
const wall = performance.now() - t0;
dev.createCommandEncoder = create;
const enc = dev.createCommandEncoder();
enc.resolveQuerySet(qs, 0, 2 * labels.length, resolve, 0);
gpu.finish(enc);
const t = new BigUint64Array(await gpu.readBytes(resolve, 2 * labels.length * 8));
const sum = new Map<string, { ms: number; n: number }>();
let total = 0;
for (let i = 0; i < labels.length; i++) {
  const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
  total += ms;
  const s = sum.get(labels[i]) ?? { ms: 0, n: 0 };
  s.ms += ms;
  s.n++;
  sum.set(labels[i], s);
}
console.log(`batch ${B}×${T}: ${passes} dispatches, GPU time in passes ${total.toFixed(0)} ms, wall ${wall.toFixed(0)} ms`);
for (const [k, s] of [...sum.entries()].sort((a, b) => b[1].ms - a[1].ms))
  console.log(`${s.ms.toFixed(1).padStart(9)} ms ${((100 * s.ms) / total).toFixed(1).padStart(5)}%  ×${String(s.n).padStart(4)}  ${k}`);
process.exit(0);
