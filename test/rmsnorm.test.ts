import { expect, it } from 'vitest';
import { rmsnormBackward, rmsnormForward } from '../src/kernels/rmsnorm.js';
import { rmsnormBackwardRef, rmsnormForwardRef } from '../src/reference/rmsnorm.js';
import { checkOp, expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

describeGpu('rmsnorm', (gpu) => {
  async function forward(inp: Float32Array, weight: Float32Array, N: number, C: number, eps: number) {
    const out = gpu.buffer(N * C * 4), rstd = gpu.buffer(N * 4);
    gpu.submit((enc) => rmsnormForward(gpu, enc, { inp: gpu.buffer(inp), weight: gpu.buffer(weight), out, rstd, N, C, eps }));
    return { out: await gpu.readF32(out, N * C), rstd: await gpu.readF32(rstd, N) };
  }
  async function backward(
    inp: Float32Array, weight: Float32Array, dout: Float32Array, N: number, C: number, eps: number,
    o: { prevDinp?: Float32Array; prevDweight?: Float32Array } = {},
  ) {
    const inpB = gpu.buffer(inp), wB = gpu.buffer(weight), out = gpu.buffer(N * C * 4), rstd = gpu.buffer(N * 4);
    const dinp = o.prevDinp ? gpu.buffer(o.prevDinp) : gpu.buffer(N * C * 4);
    const dweight = o.prevDweight ? gpu.buffer(o.prevDweight) : gpu.buffer(C * 4);
    gpu.submit((enc) => {
      rmsnormForward(gpu, enc, { inp: inpB, weight: wB, out, rstd, N, C, eps });
      rmsnormBackward(gpu, enc, {
        inp: inpB, weight: wB, rstd, dout: gpu.buffer(dout), dinp, dweight, N, C,
        accumulate: !!o.prevDinp, accumulateDweight: !!o.prevDweight,
      });
    });
    return { dinp: await gpu.readF32(dinp, N * C), dweight: await gpu.readF32(dweight, C) };
  }

  function check(N: number, C: number, eps: number, seed: number, amp = 1, tol = { atol: 1e-5, rtol: 1e-4 }) {
    const inp = randn(N * C, seed, -amp, amp);
    return checkOp({
      name: `rmsnorm ${N}x${C} amp ${amp}`,
      inputs: { inp, weight: randn(C, seed + 1, 0.5, 1.5) },
      ref: ({ inp, weight }) => rmsnormForwardRef(inp, weight, N, C, eps),
      gpu: ({ inp, weight }) => forward(inp, weight, N, C, eps),
      backward: {
        dout: { out: randn(N * C, seed + 2) },
        wrt: ['inp', 'weight'],
        ref: ({ inp, weight }, { out }) => rmsnormBackwardRef(inp, weight, out, N, C, eps),
        gpu: ({ inp, weight }, { out }) => backward(inp, weight, out, N, C, eps),
      },
      tol,
    });
  }

  it('odd shape 45×65 (one workgroup per row, C not a power of two)', () => check(45, 65, 1e-6, 1));
  it('rows of 1000 over many row chunks (N 300 > the 64-row dweight chunk)', () => check(300, 1000, 1e-5, 2));
  it('Qwen3 q_norm shape: N·H rows of head_dim 128', () => check(7 * 16, 128, 1e-6, 3));
  it('C = 1 and C = 3', async () => {
    await check(5, 1, 1e-6, 4);
    await check(70, 3, 1e-6, 5);
  });

  it('inputs of size 1e4 (sum of squares 1e8 per element) stay accurate', async () => {
    const [N, C, eps] = [8, 2048, 1e-6];
    const inp = randn(N * C, 7, -1e4, 1e4), weight = randn(C, 8, 0.5, 1.5);
    const got = await forward(inp, weight, N, C, eps);
    const ref = rmsnormForwardRef(inp, weight, N, C, eps);
    expectClose('out', got.out, ref.out, { atol: 1e-5, rtol: 1e-4 });
    expectClose('rstd', got.rstd, ref.rstd, { atol: 0, rtol: 1e-5 });
    const dout = randn(N * C, 9);
    const g = await backward(inp, weight, dout, N, C, eps);
    const r = rmsnormBackwardRef(inp, weight, dout, N, C, eps);
    expectClose('dinp', g.dinp, r.dinp, { atol: 1e-8, rtol: 1e-3 });
    expectClose('dweight', g.dweight, r.dweight, { atol: 1e-5, rtol: 1e-4 });
  });

  it('tiny inputs (1e-4, where eps dominates) and an all-zero row', async () => {
    const [N, C, eps] = [4, 96, 1e-6];
    const inp = randn(N * C, 10, -1e-4, 1e-4);
    inp.fill(0, 2 * C, 3 * C);
    const weight = randn(C, 11, 0.5, 1.5);
    const got = await forward(inp, weight, N, C, eps);
    const ref = rmsnormForwardRef(inp, weight, N, C, eps);
    expectClose('out', got.out, ref.out, { atol: 1e-7, rtol: 1e-4 });
    expectClose('rstd', got.rstd, ref.rstd, { atol: 0, rtol: 1e-5 });
    const dout = randn(N * C, 12);
    const g = await backward(inp, weight, dout, N, C, eps);
    const r = rmsnormBackwardRef(inp, weight, dout, N, C, eps);
    expectClose('dinp', g.dinp, r.dinp, { atol: 1e-3, rtol: 1e-4 });
    expectClose('dweight', g.dweight, r.dweight, { atol: 1e-7, rtol: 1e-4 });
  });

  it('accumulate adds into dinp and dweight', async () => {
    const [N, C, eps] = [100, 33, 1e-5];
    const inp = randn(N * C, 13), weight = randn(C, 14), dout = randn(N * C, 15);
    const prevDinp = randn(N * C, 16), prevDweight = randn(C, 17);
    const g = await backward(inp, weight, dout, N, C, eps, { prevDinp, prevDweight });
    const r = rmsnormBackwardRef(inp, weight, dout, N, C, eps);
    expectClose('dinp', g.dinp, r.dinp.map((v, i) => v + prevDinp[i]), { atol: 1e-5, rtol: 1e-4 });
    expectClose('dweight', g.dweight, r.dweight.map((v, i) => v + prevDweight[i]), { atol: 1e-4, rtol: 1e-4 });
  });

  it('is bit-identical when run twice', async () => {
    const [N, C] = [200, 300];
    const inp = randn(N * C, 18), weight = randn(C, 19), dout = randn(N * C, 20);
    const a = await backward(inp, weight, dout, N, C, 1e-6), b = await backward(inp, weight, dout, N, C, 1e-6);
    expect(Buffer.from(a.dinp.buffer).equals(Buffer.from(b.dinp.buffer))).toBe(true);
    expect(Buffer.from(a.dweight.buffer).equals(Buffer.from(b.dweight.buffer))).toBe(true);
  });
});
