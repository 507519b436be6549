// bench/matmul-dev/run.ts — numbered matmul kernel variants (bench/matmul-dev/v*.wgsl), each
// validated against src/reference/matmul.ts (all layouts, batch, bias, accumulate, alpha) before
// it is timed; prints GFLOP/s per size and layout, and compile time (first dispatch, wall).
//   npx esbuild bench/matmul-dev/run.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=dist/matmul-dev.js && node dist/matmul-dev.js [variants] [sizes] [layouts] [reps]
//   e.g. node dist/matmul-dev.js v1_base,v3_klanes 512,1024,2048 NT,NN,TN 2
import { readFileSync } from 'node:fs';
import { getGpu } from '../../src/gpu/device.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import { matmulRef } from '../../src/reference/matmul.js';

type Tiles = Record<string, number>;
interface Variant {
  /** Workgroups for an (M, N, batch) problem. */
  grid(t: Tiles, M: number, N: number, batch: number): [number, number, number];
  tiles: Tiles[];
}
const byTile = (t: Tiles, M: number, N: number, batch: number): [number, number, number] =>
  [Math.ceil(N / (t.WG_X * t.TN)), Math.ceil(M / (t.WG_Y * t.TM)), batch];
const REG = [{ WG_X: 8, WG_Y: 8, TM: 4, TN: 4 }, { WG_X: 8, WG_Y: 8, TM: 8, TN: 8 }, { WG_X: 8, WG_Y: 8, TM: 2, TN: 4 }, { WG_X: 8, WG_Y: 8, TM: 4, TN: 8 }];
const VARIANTS: Record<string, Variant> = {
  v1_base: { grid: byTile, tiles: REG },
  v2_strided: { grid: byTile, tiles: REG },
  v3_klanes: {
    grid: byTile,
    tiles: [
      { KL: 8, WG_X: 4, WG_Y: 4, TM: 4, TN: 4 }, { KL: 8, WG_X: 4, WG_Y: 4, TM: 2, TN: 4 },
      { KL: 8, WG_X: 2, WG_Y: 2, TM: 4, TN: 4 }, { KL: 8, WG_X: 4, WG_Y: 2, TM: 4, TN: 8 },
      { KL: 8, WG_X: 8, WG_Y: 8, TM: 2, TN: 2 }, { KL: 16, WG_X: 4, WG_Y: 4, TM: 4, TN: 4 },
    ],
  },
};
const extra = (name: string): Variant => VARIANTS[name] ?? { grid: byTile, tiles: REG };

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; r[i] = s / 2 ** 32 * 2 - 1; }
  return r;
}

const LAYOUTS: Record<string, [boolean, boolean]> = { NN: [false, false], NT: [false, true], TN: [true, false], TT: [true, true] };

function encode(gpu: Gpu, code: string, v: Variant, t: Tiles, o: {
  a: GPUBuffer; bm: GPUBuffer; out: GPUBuffer; bias?: GPUBuffer; M: number; N: number; K: number; batch: number;
  transA: boolean; transB: boolean; accumulate?: boolean; alpha?: number;
}, dummy: GPUBuffer) {
  const pipeline = gpu.pipeline(code, 'matmul', { ...t, TRANS_A: +o.transA, TRANS_B: +o.transB, HAS_BIAS: o.bias ? 1 : 0, ACCUMULATE: o.accumulate ? 1 : 0 });
  const params = new ArrayBuffer(32);
  new Uint32Array(params, 0, 7).set([o.M, o.N, o.K, o.batch, o.M * o.K, o.K * o.N, o.M * o.N]);
  new Float32Array(params, 28, 1)[0] = o.alpha ?? 1;
  return (enc: GPUCommandEncoder) => gpu.dispatch(enc, pipeline, [gpu.uniform(params), o.a, o.bm, o.out, o.bias ?? dummy], v.grid(t, o.M, o.N, o.batch));
}

async function validate(gpu: Gpu, code: string, v: Variant, t: Tiles, dummy: GPUBuffer): Promise<string | null> {
  const cases = [
    { M: 45, N: 65, K: 77, batch: 1 }, { M: 33, N: 40, K: 64, batch: 2, bias: true, accumulate: true, alpha: 0.5 },
    { M: 1, N: 7, K: 3, batch: 1 },
  ];
  for (const c of cases) for (const [ln, [transA, transB]] of Object.entries(LAYOUTS)) {
    const a = randn(c.batch * c.M * c.K, 1), bm = randn(c.batch * c.K * c.N, 2);
    const bias = c.bias ? randn(c.N, 3) : undefined, prev = c.accumulate ? randn(c.batch * c.M * c.N, 4) : undefined;
    const out = prev ? gpu.buffer(prev) : gpu.buffer(c.batch * c.M * c.N * 4);
    gpu.submit(encode(gpu, code, v, t, { M: c.M, N: c.N, K: c.K, batch: c.batch, alpha: c.alpha, accumulate: c.accumulate, a: gpu.buffer(a), bm: gpu.buffer(bm), out, bias: bias && gpu.buffer(bias), transA, transB }, dummy));
    const got = await gpu.readF32(out, c.batch * c.M * c.N);
    const ref = matmulRef({ a, bm, bias, out: prev, M: c.M, N: c.N, K: c.K, batch: c.batch, alpha: c.alpha, transA, transB });
    for (let i = 0; i < ref.length; i++)
      if (!(Math.abs(got[i] - ref[i]) <= 1e-4 + 1e-4 * Math.abs(ref[i])))
        return `${ln} ${JSON.stringify(c)}: out[${i}] = ${got[i]}, expected ${ref[i]}`;
  }
  return null;
}

async function main() {
  const [vs = Object.keys(VARIANTS).join(','), ss = '512,1024,2048', ls = 'NT,NN,TN', rs = '2', ts = ''] = process.argv.slice(2);
  const gpu = await getGpu();
  const dummy = gpu.buffer(16);
  const reps = Number(rs);
  for (const name of vs.split(',')) {
    const code = readFileSync(new URL(`../bench/matmul-dev/${name}.wgsl`, import.meta.url), 'utf8');
    const v = extra(name);
    for (const t of ts ? ts.split(',').map((i) => v.tiles[Number(i)]) : v.tiles) {
      const tn = Object.entries(t).map(([k, x]) => `${k}=${x}`).join(' ');
      // Compile time: the NT pipeline, created and run once on a 4×4×4 problem (wall).
      let compile = performance.now();
      { const s = gpu.buffer(64); gpu.submit(encode(gpu, code, v, t, { a: s, bm: s, out: gpu.buffer(64), M: 4, N: 4, K: 4, batch: 1, transA: false, transB: true }, dummy)); await gpu.sync(); }
      compile = (performance.now() - compile) / 1000;
      const c0 = performance.now();
      const err = await validate(gpu, code, v, t, dummy);
      if (err) { console.log(`${name} [${tn}] WRONG: ${err}`); continue; }
      const line: string[] = [];
      for (const n of ss.split(',').map(Number)) {
        const a = gpu.buffer(randn(n * n, 5)), bm = gpu.buffer(randn(n * n, 6)), out = gpu.buffer(n * n * 4);
        for (const ln of ls.split(',')) {
          const [transA, transB] = LAYOUTS[ln];
          const fn = encode(gpu, code, v, t, { a, bm, out, M: n, N: n, K: n, batch: 1, transA, transB }, dummy);
          const w0 = performance.now();
          const first = await gpu.time(fn); // compiles
          const firstWall = performance.now() - w0;
          let ms = first.ms;
          for (let r = 0; r < reps; r++) ms = Math.min(ms, (await gpu.time(fn)).ms);
          line.push(`${ln}${n} ${(2 * n ** 3 / ms / 1e6).toFixed(2)}${n === 512 ? ` (c${((firstWall - ms) / 1000).toFixed(1)}s)` : ''}`);
        }
        a.destroy(); bm.destroy(); out.destroy();
      }
      console.log(`${name} [${tn}] valid; compile NT ${compile.toFixed(1)}s, validate ${((performance.now() - c0) / 1000).toFixed(1)}s | ${line.join(' | ')}`);
    }
  }
  gpu.destroy();
}
await main();
