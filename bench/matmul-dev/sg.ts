// bench/matmul-dev/sg.ts — src/kernels/matmul.ts's tile shapes (the regular kernel's DEFAULT_TILES
// and the subgroup kernel's SUBGROUP_CANDIDATES, or TILES='[{…}, …]') side by side at the given
// sizes (N for N³, or MxNxK) and layouts (NT, NN, TN), each checked against src/reference/matmul.ts;
// GFLOP/s, best of REPS + 1 timed round-robin. Each entry is labelled with the kernel it ran
// (matmulKernel): x·Wᵀ and dy·W with K, N multiples of 4 and N ≥ 16 run shaders/matmul_subgroup_w.wgsl
// on every subgroup shape, so compare subgroup shapes there with an odd K or N, or with TN.
//   npx esbuild bench/matmul-dev/sg.ts --bundle --platform=node --format=esm --packages=external \
//     --loader:.wgsl=text --outfile=dist/sg.js && node dist/sg.js [sizes=512] [layouts=NT,NN] [reps=2] [which=all|index,…]
// What lavapipe makes of a kernel: LP_DEBUG=cs prints its NIR, and GALLIVM_DEBUG=ir its LLVM IR
// (with MESA_SHADER_CACHE_DISABLE=true, else a cached shader prints nothing). That is how the
// per-lane load loop the subgroup kernel avoids was found (shaders/matmul_subgroup.wgsl).
import { getGpu } from '../../src/gpu/device.js';
import { DEFAULT_TILES, matmul, matmulKernel, SUBGROUP_CANDIDATES, type MatmulTiles } from '../../src/kernels/matmul.js';
import { matmulRef } from '../../src/reference/matmul.js';
const [ss = '512', ls = 'NT,NN', rs = '2', which = 'all'] = process.argv.slice(2);
const gpu = await getGpu();
const all: MatmulTiles[] = process.env.TILES ? JSON.parse(process.env.TILES) : [DEFAULT_TILES, ...SUBGROUP_CANDIDATES];
const tiles = which === 'all' ? all : which.split(',').map((i) => all[Number(i)]);
const rnd = (len: number, seed: number) => { let s = seed; const r = new Float32Array(len); for (let i = 0; i < len; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; r[i] = s / 2 ** 32 - 0.5; } return r; };
for (const [M, N, K] of ss.split(',').map((x) => (x.includes('x') ? x.split('x').map(Number) : [Number(x), Number(x), Number(x)]))) {
  const ah = rnd(M * K, 1), bh = rnd(K * N, 2);
  const a = gpu.buffer(ah), b = gpu.buffer(bh), out = gpu.buffer(M * N * 4);
  for (const l of ls.split(',')) {
    const transB = l === 'NT', transA = l === 'TN';
    const ref = matmulRef({ a: ah, bm: bh, M, N, K, batch: 1, transA, transB });
    const line: string[] = [];
    const fs = tiles.map((t) => (e: GPUCommandEncoder) => matmul(gpu, e, { a, bm: b, out, M, N, K, transA, transB, tiles: t }));
    const best = tiles.map(() => Infinity);
    // round-robin, best of REPS each: a burst of load elsewhere slows one repetition of every shape
    for (let r = 0; r <= Number(rs); r++) for (let i = 0; i < tiles.length; i++) best[i] = Math.min(best[i], (await gpu.time(fs[i])).ms);
    for (let i = 0; i < tiles.length; i++) {
      const t = tiles[i];
      gpu.submit(fs[i]);
      const got = await gpu.readF32(out, M * N);
      let bad = 0;
      for (let j = 0; j < ref.length; j++) if (!(Math.abs(got[j] - ref[j]) <= 1e-4 + 1e-4 * Math.abs(ref[j]))) bad++;
      line.push(`${matmulKernel(gpu, { N, K, transA, transB }, t)} ${t.WG_X}x${t.WG_Y}/${t.TM}x${t.TN} ${(2 * M * N * K / best[i] / 1e6).toFixed(2)}${bad ? ` WRONG(${bad})` : ''}`);
    }
    console.log(`${l} ${M}x${N}x${K}: ${line.join(' | ')}`);
  }
  a.destroy(); b.destroy(); out.destroy();
}
gpu.destroy();
