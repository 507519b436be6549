// bench/profile-dev/ab.ts — the LoRA step's wall time under several matmul tile shapes (and with
// each dispatch in its own pass: "own"), interleaved round by round in one process so that a
// busy machine's load falls on every variant alike. Prints the per-round times and medians.
//   npx esbuild bench/profile-dev/ab.ts --bundle --platform=node --format=esm --packages=external \
//     --loader:.wgsl=text --loader:.py=text --outfile=dist/ab-dev.js && node dist/ab-dev.js B T rounds 8,8,8,8 16,4,4,8 32,1,8,4,1 own
import { getGpu } from '../../src/gpu/device.js';
import { configFromJson } from '../../src/io/config.js';
import { getMatmulTiles, setMatmulTiles } from '../../src/kernels/matmul.js';
import { fullBatch, prepareOurs, randomWeights, TINY } from '../model.js';

const [B, T, rounds] = process.argv.slice(2, 5).map(Number);
const variants = process.argv.slice(5);
const gpu = await getGpu();
const cfg = configFromJson(TINY.config);
const ours = await prepareOurs(gpu, { ...TINY, B, T }, randomWeights(cfg), fullBatch(B, T, cfg.vocabSize));
const base = getMatmulTiles(gpu);
const shared = gpu.dispatch.bind(gpu);
const own: typeof gpu.dispatch = (enc, pl, b, wg) => (shared(enc, pl, b, wg), gpu.endPass(enc));
const use = (v: string) => {
  gpu.dispatch = v === 'own' ? own : shared;
  if (v === 'own' || v === 'base') return setMatmulTiles(gpu, base);
  const [WG_X, WG_Y, TM, TN, sg] = v.split(',').map(Number);
  setMatmulTiles(gpu, { WG_X, WG_Y, TM, TN, ...(sg ? { subgroup: true as const } : {}) }); // a fifth field 1: the subgroup kernel
};
for (const v of variants) (use(v), await ours.step()); // compile every variant
const ms: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
const cpu: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...variants].reverse() : variants;
  for (const v of order) {
    use(v);
    const t0 = performance.now(), c0 = process.cpuUsage();
    await ours.step();
    ms[v].push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu[v].push((c.user + c.system) / 1000);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [k, v] of Object.entries(ms)) console.log(`${k.padEnd(10)} wall median ${median(v).toFixed(0).padStart(6)} ms   ${v.map((x) => x.toFixed(0)).join(' ')}   cpu median ${median(cpu[k]).toFixed(0).padStart(6)} ms   ${cpu[k].map((x) => x.toFixed(0)).join(' ')}`);
process.exit(0);
