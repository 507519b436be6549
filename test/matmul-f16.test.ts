// matmul with an f16 `bm` (frozen base weights in f16 storage): the reference is computed on the
// f16-rounded weights, in float64; accumulation on the GPU is f32.
import { expect, it } from 'vitest';
import { createGpu } from '../src/gpu/device.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/dtype.js';
import { DEFAULT_TILES, matmul, type MatmulTiles } from '../src/kernels/matmul.js';
import { withElementType } from '../src/kernels/template.js';
import { matmulRef } from '../src/reference/matmul.js';
import shader from '../shaders/matmul.wgsl';
import { expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 1e-4, rtol: 1e-4 };

describeGpu('matmul with f16 weights', (gpu) => {
  async function run(M: number, N: number, K: number, o: { transB?: boolean; bias?: boolean; alpha?: number; tiles?: MatmulTiles } = {}) {
    const a = randn(M * K, M + N), w = randn(K * N, K + 1, -2, 2);
    const w16 = f32ToF16Bits(w);
    const bias = o.bias ? randn(N, 3) : undefined;
    const out = gpu.buffer(M * N * 4);
    gpu.submit((enc) => matmul(gpu, enc, { a: gpu.buffer(a), bm: gpu.buffer(w16), out, bias: bias && gpu.buffer(bias), M, N, K, transB: o.transB, alpha: o.alpha, bmF16: true, tiles: o.tiles }));
    const got = await gpu.readF32(out, M * N);
    const ref = matmulRef({ a, bm: f16BitsToF32(w16), bias, M, N, K, transB: o.transB, alpha: o.alpha });
    const refUnrounded = matmulRef({ a, bm: w, bias, M, N, K, transB: o.transB, alpha: o.alpha });
    return { got, ref, refUnrounded };
  }

  it.runIf(gpu.hasF16)('NT (y = x·Wᵀ) and NN (dx = dy·W) at odd shapes 45×65×77, odd f16 element count', async () => {
    for (const transB of [true, false]) {
      const { got, ref, refUnrounded } = await run(45, 65, 77, { transB });
      expectClose(`f16 ${transB ? 'NT' : 'NN'}`, got, ref, TOL);
      // the test can tell f16 from f32 weights: the unrounded reference is further off
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - refUnrounded[i]));
      expect(worst).toBeGreaterThan(1e-3);
    }
  });

  // the adapter's default tiles (the subgroup kernel where it has subgroups) and the regular kernel's
  it.runIf(gpu.hasF16)('x·Wᵀ with K a multiple of 4 (the vec4 path): 45×65×76 and 45×68×76', async () => {
    for (const N of [65, 68])
      for (const tiles of [undefined, DEFAULT_TILES]) {
        const { got, ref } = await run(45, N, 76, { transB: true, bias: true, tiles });
        expectClose(`f16 vec4 NT 45x${N}x76 ${JSON.stringify(tiles)}`, got, ref, TOL);
      }
  });

  it.runIf(gpu.hasF16)('dy·W with K and N multiples of 4 (the vec4 NN path): 45×68×76', async () => {
    for (const tiles of [undefined, DEFAULT_TILES]) {
      const { got, ref } = await run(45, 68, 76, { transB: false, bias: true, tiles });
      expectClose(`f16 vec4 NN 45x68x76 ${JSON.stringify(tiles)}`, got, ref, TOL);
    }
  });

  it.runIf(gpu.hasF16)('many workgroups (300×260×130), with bias and alpha', async () => {
    const { got, ref } = await run(300, 260, 130, { transB: true, bias: true, alpha: 0.5 });
    expectClose('f16 300x260x130', got, ref, TOL);
  });

  it('the f16 variant is the f32 shader with only the element type and `enable f16;` changed', () => {
    const f16 = withElementType(shader, 'f16');
    expect(f16.startsWith('enable f16;\n')).toBe(true);
    expect(f16.replace('enable f16;\n', '').replace('alias WT = f16;', 'alias WT = f32;')).toBe(shader);
    expect(withElementType(shader, 'f32')).toBe(shader);
  });

  it('without shader-f16, an f16 weight is refused with an error saying so', async () => {
    const plain = await createGpu({ disableFeatures: ['shader-f16'] });
    try {
      expect(plain.hasF16).toBe(false);
      const b = plain.buffer(64);
      expect(() => plain.submit((enc) => matmul(plain, enc, { a: b, bm: b, out: b, M: 2, N: 2, K: 2, bmF16: true }))).toThrow(/shader-f16/);
    } finally {
      plain.destroy();
    }
  });
});
