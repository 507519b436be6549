// bench/matmul-dev/check-port.ts — the library's matmul (src/kernels/matmul.ts, shaders/matmul.wgsl)
// against the float64 reference on the shapes that take its VEC4 path (x·Wᵀ with K % 4 == 0):
// batch, bias, accumulate, alpha, every autotuner tile shape, f16 bm, and operands bound as
// slices at an offset.
import { getGpu } from '../../src/gpu/device.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/io/dtype.js';
import { matmul, TILE_CANDIDATES } from '../../src/kernels/matmul.js';
import { matmulRef } from '../../src/reference/matmul.js';

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; r[i] = s / 2 ** 32 * 2 - 1; }
  return r;
}

const gpu = await getGpu();
let bad = 0, runs = 0;
const cases = [
  { M: 45, N: 65, K: 76, batch: 1 }, { M: 33, N: 40, K: 64, batch: 3, bias: true, accumulate: true, alpha: 0.5 },
  { M: 1, N: 7, K: 4, batch: 1 }, { M: 130, N: 70, K: 132, batch: 2, bias: true },
];
for (const c of cases) for (const tiles of TILE_CANDIDATES) for (const f16 of gpu.hasF16 ? [false, true] : [false]) for (const slice of [false, true]) {
  const a = randn(c.batch * c.M * c.K, 1);
  let bm = randn(c.batch * c.K * c.N, 2);
  const bmBits = f32ToF16Bits(bm);
  if (f16) bm = f16BitsToF32(bmBits);
  const bias = c.bias ? randn(c.N, 3) : undefined, prev = c.accumulate ? randn(c.batch * c.M * c.N, 4) : undefined;
  const out = prev ? gpu.buffer(prev) : gpu.buffer(c.batch * c.M * c.N * 4);
  // slice: the operand sits 256 bytes into a larger buffer, bound as {buffer, offset, size}.
  const bind = (d: Float32Array | Uint16Array) => {
    if (!slice) return gpu.buffer(d);
    const pad = 256 / d.BYTES_PER_ELEMENT;
    const big = new (d.constructor as typeof Float32Array)(pad + d.length + pad) as Float32Array | Uint16Array;
    big.set(d, pad);
    return { buffer: gpu.buffer(big), offset: 256, size: Math.ceil(d.byteLength / 4) * 4 };
  };
  gpu.submit((enc) => matmul(gpu, enc, {
    a: bind(a), bm: bind(f16 ? bmBits : bm), out, bias: bias && gpu.buffer(bias), M: c.M, N: c.N, K: c.K, batch: c.batch,
    transB: true, accumulate: c.accumulate, alpha: c.alpha, tiles, bmF16: f16,
  }));
  const got = await gpu.readF32(out, c.batch * c.M * c.N);
  const ref = matmulRef({ a, bm, bias, out: prev, M: c.M, N: c.N, K: c.K, batch: c.batch, alpha: c.alpha, transB: true });
  runs++;
  for (let i = 0; i < ref.length; i++)
    if (!(Math.abs(got[i] - ref[i]) <= 1e-4 + 1e-4 * Math.abs(ref[i]))) {
      console.log(`WRONG ${JSON.stringify({ ...c, tiles, f16, slice })}: out[${i}] = ${got[i]}, expected ${ref[i]}`);
      bad++;
      break;
    }
}
gpu.check();
console.log(`${runs - bad}/${runs} VEC4-path cases match the reference (f16 ${gpu.hasF16 ? 'tested' : 'not available'})`);
gpu.destroy();
if (bad) process.exit(1);
