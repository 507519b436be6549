// bench/matmul-dev/w.ts — x·Wᵀ (NT) and dy·W (NN) on shaders/matmul_subgroup_w.wgsl at several
// WG_X and TM, against shaders/matmul_subgroup.wgsl's 32 × 1 of 8×4 (what those layouts ran before)
// and the library's choice; each checked against src/reference/matmul.ts and, bit for bit, against
// the first. GFLOP/s, best of REPS + 1 timed round-robin. Sizes N for N³ or MxNxK (N a multiple of 4).
//   npx esbuild bench/matmul-dev/w.ts --bundle --platform=node --format=esm --packages=external \
//     --loader:.wgsl=text --outfile=dist/w.js && node dist/w.js [sizes=1024] [layouts=NT,NN] [reps=3] [WG_X/TM,…=8/4]
import wShader from '../../shaders/matmul_subgroup_w.wgsl';
import sgShader from '../../shaders/matmul_subgroup.wgsl';
import { getGpu } from '../../src/gpu/device.js';
import { matmul, matmulKernel } from '../../src/kernels/matmul.js';
import { matmulRef } from '../../src/reference/matmul.js';
const [ss = '1024', ls = 'NT,NN', rs = '3', shapes = '8/4'] = process.argv.slice(2);
const gpu = await getGpu();
const rnd = (len: number, seed: number) => { let s = seed; const r = new Float32Array(len); for (let i = 0; i < len; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; r[i] = s / 2 ** 32 - 0.5; } return r; };
const dummy = gpu.buffer(16);
for (const [M, N, K] of ss.split(',').map((x) => (x.includes('x') ? x.split('x').map(Number) : [Number(x), Number(x), Number(x)]))) {
  const ah = rnd(M * K, 1), bh = rnd(K * N, 2);
  const a = gpu.buffer(ah), b = gpu.buffer(bh), out = gpu.buffer(M * N * 4);
  const params = new ArrayBuffer(48);
  new Uint32Array(params, 0, 7).set([M, N, K, 1, M * K, K * N, M * N]);
  new Float32Array(params, 28, 1)[0] = 1;
  const u = gpu.uniform(params);
  for (const layout of ls.split(',')) {
    const transB = layout === 'NT';
    const ref = matmulRef({ a: ah, bm: bh, M, N, K, batch: 1, transA: false, transB });
    const sg = gpu.pipeline(sgShader, 'matmul', { WG_X: 32, TM: 8, TN: 4, TRANS_A: 0, TRANS_B: +transB, VEC4_A: 1, VEC4_B: +!transB });
    const names = ['subgroup 32/8x4', `library (${matmulKernel(gpu, { N, K, transB })})`];
    const fs: ((e: GPUCommandEncoder) => void)[] = [
      (e) => gpu.dispatch(e, sg, [u, a, b, out, dummy, dummy, dummy, dummy, dummy], [Math.ceil(N / 128), Math.ceil(M / 8), 1]),
      (e) => matmul(gpu, e, { a, bm: b, out, M, N, K, transB }),
    ];
    for (const [wx, tm] of shapes.split(',').map((x) => x.split('/').map(Number))) {
      const pl = gpu.pipeline(wShader, 'matmul', { WG_X: wx, TM: tm, TRANS_B: +transB });
      names.push(`w ${wx}/${tm}x16`);
      fs.push((e) => gpu.dispatch(e, pl, [u, a, b, out, dummy, dummy, dummy, dummy], [Math.ceil(N / 16), Math.ceil(M / (wx * tm)), 1]));
    }
    const best = fs.map(() => Infinity);
    for (let r = 0; r <= Number(rs); r++) for (let i = 0; i < fs.length; i++) best[i] = Math.min(best[i], (await gpu.time(fs[i])).ms);
    let first: Float32Array | undefined;
    const line: string[] = [];
    for (let i = 0; i < fs.length; i++) {
      gpu.submit(fs[i]);
      const got = await gpu.readF32(out, M * N);
      first ??= got;
      let bad = 0, diff = 0;
      for (let j = 0; j < ref.length; j++) { if (!(Math.abs(got[j] - ref[j]) <= 1e-4 + 1e-4 * Math.abs(ref[j]))) bad++; if (got[j] !== first[j]) diff++; }
      line.push(`${names[i]} ${(2 * M * N * K / best[i] / 1e6).toFixed(2)}${bad ? ` WRONG(${bad})` : ''}${diff ? ` BITS(${diff})` : ''}`);
    }
    console.log(`${layout} ${M}x${N}x${K}: ${line.join(' | ')}`);
  }
  a.destroy(); b.destroy(); out.destroy();
}
gpu.destroy();
