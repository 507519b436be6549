// bench/profile-dev/tiles.ts — every tile candidate of the autotuner at the tiny step's matmul
// shapes, per layout (x·Wᵀ forward, dy·W backward), round-robin over candidates, best of reps.
//   npx esbuild bench/profile-dev/tiles.ts --bundle --platform=node --format=esm --packages=external \
//     --loader:.wgsl=text --loader:.py=text --outfile=dist/tiles-dev.js && node dist/tiles-dev.js [reps]
import { getGpu } from '../../src/gpu/device.js';
import { matmul, TILE_CANDIDATES } from '../../src/kernels/matmul.js';
import { pseudoRandom } from '../common.js';

const reps = Number(process.argv[2] ?? 3);
const gpu = await getGpu();
// SHAPES=NT:1024:1024:1024,NN:512:512:512 (layout:M:N:K) replaces the step's shapes
const fromEnv = process.env.SHAPES?.split(',').map((x) => {
  const [l, M, N, K] = x.split(':');
  return [x, Number(M), Number(N), Number(K), l === 'NT'] as [string, number, number, number, boolean];
});
const shapes: [string, number, number, number, boolean][] = fromEnv ?? [
  ['NT 1024×688×256', 1024, 688, 256, true], ['NT 1024×1024×256', 1024, 1024, 256, true], ['NT 1024×256×688', 1024, 256, 688, true],
  ['NN 1024×256×688', 1024, 256, 688, false], ['NN 1024×688×256', 1024, 688, 256, false], ['NN 1024×256×1024', 1024, 256, 1024, false],
];
const cands = process.env.ONLY ? TILE_CANDIDATES.filter((t) => process.env.ONLY!.split(' ').includes(`${t.WG_X}x${t.WG_Y}/${t.TM}x${t.TN}`)) : TILE_CANDIDATES;
const best = shapes.map(() => cands.map(() => Infinity));
const bufs = shapes.map(([, M, N, K]) => ({ a: gpu.buffer(pseudoRandom(M * K, 1)), b: gpu.buffer(pseudoRandom(N * K, 2)), out: gpu.buffer(M * N * 4) }));
const enc = (s: number, c: number) => (e: GPUCommandEncoder) => {
  const [, M, N, K, transB] = shapes[s];
  matmul(gpu, e, { ...bufs[s], bm: bufs[s].b, M, N, K, transB, tiles: cands[c] });
};
for (let s = 0; s < shapes.length; s++) for (let c = 0; c < cands.length; c++) await gpu.time(enc(s, c));
for (let r = 0; r < reps; r++)
  for (let s = 0; s < shapes.length; s++) for (let c = 0; c < cands.length; c++) best[s][c] = Math.min(best[s][c], (await gpu.time(enc(s, c))).ms);
console.log('tiles'.padEnd(14) + shapes.map((s) => s[0].padStart(18)).join(''));
for (let c = 0; c < cands.length; c++) {
  const t = cands[c];
  console.log(`${t.WG_X}x${t.WG_Y}/${t.TM}x${t.TN}`.padEnd(14) + shapes.map((_, s) => best[s][c].toFixed(1).padStart(18)).join(''));
}
process.exit(0);
