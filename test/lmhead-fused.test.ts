// lmHeadForwardBackward: the frozen head's forward and dhidden in one pass over the vocabulary
// (no recomputed logits), against the float64 references that test/lmhead.test.ts checks by
// finite differences, at the shapes and edge cases the two-pass path is tested at.
import { expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/dtype.js';
import { lmHeadForwardBackward } from '../src/kernels/lmhead.js';
import { lmHeadBackwardRef, lmHeadForwardRef } from '../src/reference/lmhead.js';
import { checkOp, expectClose, randn, rng } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 2e-4, rtol: 2e-4 };

function makeTargets(N: number, V: number, seed: number, padEvery = 5): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, (_, n) => (n % padEvery === 2 ? -1 : Math.floor(r() * V)));
}

async function fused(
  gpu: Gpu,
  o: { hidden: Float32Array; weight: Float32Array; targets: Int32Array; gscale: Float32Array; N: number; C: number; V: number; chunk?: number; weightF16?: boolean; prev?: Float32Array },
) {
  const { N, C, V } = o;
  const hidden = gpu.buffer(o.hidden), weight = gpu.buffer(o.weightF16 ? f32ToF16Bits(o.weight) : o.weight), targets = gpu.buffer(o.targets);
  const stats = gpu.buffer(N * 16), lse = gpu.buffer(N * 4), gscale = gpu.buffer(o.gscale);
  const dhidden = o.prev ? gpu.buffer(o.prev) : gpu.buffer(new Float32Array(N * C).fill(NaN)); // overwritten, whatever it held
  gpu.submit((enc) => lmHeadForwardBackward(gpu, enc, { hidden, weight, targets, stats, lse, gscale, dhidden, N, C, V, chunk: o.chunk, weightF16: o.weightF16, accumulate: !!o.prev }));
  const r = { stats: await gpu.readF32(stats, N * 4), lse: await gpu.readF32(lse, N), dhidden: await gpu.readF32(dhidden, N * C) };
  for (const b of [hidden, weight, targets, stats, lse, gscale, dhidden]) b.destroy();
  return r;
}

describeGpu('lmHeadForwardBackward (frozen head, one pass)', (gpu) => {
  it('forward and dhidden at 45 tokens, C 65, V 1000, chunk 256 (the last chunk partial), with padding', async () => {
    const [N, C, V, chunk] = [45, 65, 1000, 256];
    const targets = makeTargets(N, V, 3);
    const gscale = randn(N, 4, 0.1, 1);
    const dstats = new Float32Array(N * 4);
    for (let n = 0; n < N; n++) dstats[n * 4] = gscale[n];
    await checkOp({
      name: 'lmhead fused',
      inputs: { hidden: randn(N * C, 1), weight: randn(V * C, 2) },
      ref: ({ hidden, weight }) => lmHeadForwardRef({ hidden, weight, targets, N, C, V }),
      gpu: async ({ hidden, weight }) => {
        const r = await fused(gpu, { hidden, weight, targets, gscale, N, C, V, chunk });
        return { stats: r.stats, lse: r.lse };
      },
      backward: {
        dout: { stats: dstats },
        wrt: ['hidden'],
        ref: ({ hidden, weight }) => lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }),
        gpu: async ({ hidden, weight }) => ({ dhidden: (await fused(gpu, { hidden, weight, targets, gscale, N, C, V, chunk })).dhidden }),
        fdSamples: 24,
      },
      tol: TOL,
      gradTol: { atol: 1e-5, rtol: 1e-3 },
    });
  });

  it('the running max moving up chunk after chunk (sorted logits), padding and out-of-range targets give zero rows', async () => {
    const [N, C, V, chunk] = [16, 8, 640, 128];
    const hidden = randn(N * C, 6);
    const weight = randn(V * C, 7);
    for (let v = 0; v < V; v++) for (let c = 0; c < C; c++) weight[v * C + c] *= 1 + v / 40; // later chunks: larger logits
    const targets = makeTargets(N, V, 5, 3);
    targets[4] = V + 7;
    const gscale = new Float32Array(N).fill(1);
    const r = await fused(gpu, { hidden, weight, targets, gscale, N, C, V, chunk });
    expectClose('stats', r.stats, lmHeadForwardRef({ hidden, weight, targets, N, C, V }).stats, TOL);
    expectClose('dhidden', r.dhidden, lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }).dhidden, { atol: 1e-5, rtol: 1e-3 });
    for (let n = 0; n < N; n++)
      if (!(targets[n] >= 0 && targets[n] < V)) expect(Array.from(r.dhidden.subarray(n * C, (n + 1) * C)).every((x) => x === 0), `row ${n}`).toBe(true);
  });

  it('is stable for logits of ±1e4 (the max in a late chunk)', async () => {
    const [N, C, V, chunk] = [20, 16, 700, 128];
    const hidden = randn(N * C, 8), weight = randn(V * C, 9);
    for (let i = 0; i < hidden.length; i++) hidden[i] *= 400;
    for (let i = 0; i < weight.length; i++) weight[i] *= 4;
    const targets = makeTargets(N, V, 10);
    const gscale = new Float32Array(N).fill(1 / N);
    const got = await fused(gpu, { hidden, weight, targets, gscale, N, C, V, chunk });
    for (const [k, a] of Object.entries(got)) expect(a.every(Number.isFinite), `${k} finite`).toBe(true);
    expectClose('lse ±1e4', got.lse, lmHeadForwardRef({ hidden, weight, targets, N, C, V }).lse, { atol: 2e-2, rtol: 1e-5 });
    expectClose('dhidden ±1e4', got.dhidden, lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }).dhidden, { atol: 2e-2, rtol: 1e-2 });
  });

  it('accumulates into dhidden; one chunk covering V; the default chunk', async () => {
    const [N, C, V] = [9, 12, 130];
    const hidden = randn(N * C, 11), weight = randn(V * C, 12), targets = makeTargets(N, V, 13), gscale = randn(N, 14, 0, 1);
    const prev = randn(N * C, 15);
    const ref = lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }).dhidden;
    const r = await fused(gpu, { hidden, weight, targets, gscale, N, C, V, chunk: 4096, prev });
    expectClose('dhidden accumulated', r.dhidden, ref.map((x, i) => x + prev[i]), TOL);
    const d = await fused(gpu, { hidden, weight, targets, gscale, N, C, V });
    expectClose('dhidden, default chunk', d.dhidden, ref, TOL);
  });

  it.runIf(!!gpu?.hasF16)('f16 weight: forward and dhidden, chunk 128, C 20', async () => {
    const [N, C, V, chunk] = [21, 20, 333, 128];
    const hidden = randn(N * C, 51), targets = makeTargets(N, V, 52), gscale = randn(N, 53, 0, 1);
    const weight = f16BitsToF32(f32ToF16Bits(randn(V * C, 54)));
    const r = await fused(gpu, { hidden, weight, targets, gscale, N, C, V, chunk, weightF16: true });
    expectClose('f16 stats', r.stats, lmHeadForwardRef({ hidden, weight, targets, N, C, V }).stats, TOL);
    expectClose('f16 dhidden', r.dhidden, lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }).dhidden, { atol: 1e-5, rtol: 1e-3 });
  });

  it('is bit-identical when run twice', async () => {
    const [N, C, V, chunk] = [33, 24, 900, 192];
    const o = { hidden: randn(N * C, 21), weight: randn(V * C, 22), targets: makeTargets(N, V, 23), gscale: randn(N, 24, 0, 1), N, C, V, chunk };
    const a = await fused(gpu, o), b = await fused(gpu, o);
    for (const k of ['stats', 'lse', 'dhidden'] as const) expect(Buffer.from(a[k].buffer).equals(Buffer.from(b[k].buffer)), k).toBe(true);
  });
});
