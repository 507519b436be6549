import { expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/dtype.js';
import { embeddingBackward, embeddingForward } from '../src/kernels/embedding.js';
import { embeddingBackwardRef, embeddingForwardRef } from '../src/reference/embedding.js';
import { checkOp, expectClose, randn, rng } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 1e-5, rtol: 1e-5 };

function randIds(N: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, () => Math.floor(r() * V));
}

describeGpu('embedding', (gpu) => {
  async function forward(ids: Int32Array, weight: Float32Array, N: number, C: number, V: number) {
    const out = gpu.buffer(N * C * 4);
    gpu.submit((enc) => embeddingForward(gpu, enc, { ids: gpu.buffer(ids), weight: gpu.buffer(weight), out, N, C, V }));
    return gpu.readF32(out, N * C);
  }
  async function backward(ids: Int32Array, dout: Float32Array, N: number, C: number, V: number, prev?: Float32Array) {
    const dweight = prev ? gpu.buffer(prev) : gpu.buffer(randn(V * C, 77)); // garbage unless accumulating: must be cleared
    gpu.submit((enc) => embeddingBackward(gpu, enc, { ids: gpu.buffer(ids), dout: gpu.buffer(dout), dweight, N, C, V, accumulate: !!prev }));
    return gpu.readF32(dweight, V * C);
  }

  function check(N: number, C: number, V: number, ids: Int32Array, seed: number) {
    return checkOp({
      name: `embedding N${N} C${C} V${V}`,
      inputs: { weight: randn(V * C, seed) },
      ref: ({ weight }) => ({ out: embeddingForwardRef(ids, weight, N, C, V) }),
      gpu: async ({ weight }) => ({ out: await forward(ids, weight, N, C, V) }),
      backward: {
        dout: { out: randn(N * C, seed + 1) },
        wrt: ['weight'],
        ref: (_x, { out }) => ({ dweight: embeddingBackwardRef(ids, out, N, C, V) }),
        gpu: async (_x, { out }) => ({ dweight: await backward(ids, out, N, C, V) }),
      },
      tol: TOL,
    });
  }

  it('odd shape: 45 tokens, C 65, V 37 (ids repeat)', () => check(45, 65, 37, randIds(45, 37, 1), 2));
  it('tokens spanning several link tiles (N 700, V 50: long chains)', () => check(700, 24, 50, randIds(700, 50, 3), 4));
  it('a sparse batch in a large vocabulary (N 300, V 20000, C 8)', () => check(300, 8, 20000, randIds(300, 20000, 5), 6));
  it('Qwen2.5 vocabulary of 151,936 with 512 tokens (work scales with N, not V)', () =>
    check(512, 4, 151936, randIds(512, 151936, 15), 16));
  it('one id everywhere, and out-of-range ids (−1, V) give zero rows and no gradient', async () => {
    await check(600, 5, 9, new Int32Array(600).fill(4), 7);
    const ids = randIds(130, 11, 8);
    ids[0] = -1; ids[5] = 11; ids[129] = -7; ids[64] = 1 << 30;
    await check(130, 7, 11, ids, 9);
  });

  it('f16 table: the gather returns the f16 values exactly', async () => {
    if (!gpu.hasF16) throw new Error('this adapter lacks shader-f16; the f16 path cannot be tested here');
    const [N, C, V] = [45, 65, 37];
    const ids = randIds(N, V, 30);
    ids[3] = -1;
    const w16 = f32ToF16Bits(randn(V * C, 31, -3, 3));
    const out = gpu.buffer(N * C * 4);
    gpu.submit((enc) => embeddingForward(gpu, enc, { ids: gpu.buffer(ids), weight: gpu.buffer(w16), out, N, C, V, weightF16: true }));
    const got = await gpu.readF32(out, N * C);
    expect(Array.from(got)).toEqual(Array.from(embeddingForwardRef(ids, f16BitsToF32(w16), N, C, V)));
  });

  it('accumulate adds into dweight', async () => {
    const [N, C, V] = [90, 13, 17];
    const ids = randIds(N, V, 10), dout = randn(N * C, 11), prev = randn(V * C, 12);
    const got = await backward(ids, dout, N, C, V, prev);
    expectClose('dweight acc', got, embeddingBackwardRef(ids, dout, N, C, V).map((v, i) => v + prev[i]), TOL);
  });

  it('is bit-identical when run twice', async () => {
    const [N, C, V] = [1000, 32, 40];
    const ids = randIds(N, V, 13), dout = randn(N * C, 14);
    const a = await backward(ids, dout, N, C, V), b = await backward(ids, dout, N, C, V);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});
