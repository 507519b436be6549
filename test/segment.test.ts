import { expect, it } from 'vitest';
import { lmHeadForward } from '../src/kernels/lmhead.js';
import { segmentMeans } from '../src/kernels/segment.js';
import { lmHeadForwardRef } from '../src/reference/lmhead.js';
import { segmentMeansRef } from '../src/reference/segment.js';
import { expectClose, randn, rng } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 1e-5, rtol: 1e-5 };

/** Packed batch: samples of random lengths back to back, some tokens -1 (padding). */
function packed(N: number, S: number, seed: number): { segments: Int32Array; targets: Int32Array } {
  const r = rng(seed);
  const segments = new Int32Array(N), targets = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    segments[n] = Math.min(S - 1, Math.floor((n / N) * S + r() * 0.5)); // non-decreasing runs
    if (r() < 0.05) segments[n] = -1;
    targets[n] = r() < 0.3 ? -1 : Math.floor(r() * 1000); // prompt tokens: no loss
  }
  return { segments, targets };
}

describeGpu('segment', (gpu) => {
  async function run(stats: Float32Array, segments: Int32Array, targets: Int32Array, N: number, S: number) {
    const out = gpu.buffer(S * 32);
    const b = [gpu.buffer(stats), gpu.buffer(segments), gpu.buffer(targets)];
    gpu.submit((enc) => segmentMeans(gpu, enc, { stats: b[0], segments: b[1], targets: b[2], out, N, S }));
    const got = await gpu.readF32(out, S * 8);
    for (const x of [...b, out]) x.destroy();
    return got;
  }

  it('means and counts of packed samples at an odd size (45 tokens, 7 samples, one empty)', async () => {
    const [N, S] = [45, 7];
    const { segments, targets } = packed(N, S, 1);
    for (let n = 0; n < N; n++) if (segments[n] === 3) segments[n] = 2; // sample 3 has no tokens
    const stats = randn(N * 4, 2, 0, 5);
    const got = await run(stats, segments, targets, N, S);
    expectClose('segment 45/7', got, segmentMeansRef({ stats, segments, targets, N, S }), TOL);
    expect(Array.from(got.subarray(24, 32))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('spans many workgroups and unsorted segment ids (5000 tokens, 37 samples)', async () => {
    const [N, S] = [5000, 37];
    const r = rng(3);
    const segments = Int32Array.from({ length: N }, () => Math.floor(r() * (S + 2)) - 1); // -1 … S (S = out of range)
    const targets = Int32Array.from({ length: N }, () => (r() < 0.2 ? -1 : 5));
    const stats = randn(N * 4, 4, 0, 10);
    const got = await run(stats, segments, targets, N, S);
    expectClose('segment 5000/37', got, segmentMeansRef({ stats, segments, targets, N, S }), { atol: 1e-5, rtol: 3e-5 });
  });

  it('is bit-identical when run twice', async () => {
    const [N, S] = [3001, 11];
    const { segments, targets } = packed(N, S, 5);
    const stats = randn(N * 4, 6, 0, 3);
    const a = await run(stats, segments, targets, N, S), b = await run(stats, segments, targets, N, S);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it('after the LM head in one submission: only S × 8 floats come back', async () => {
    const [N, C, V, S] = [60, 16, 500, 4];
    const { segments, targets } = packed(N, S, 7);
    for (let n = 0; n < N; n++) targets[n] = targets[n] < 0 ? -1 : targets[n] % V;
    const hidden = randn(N * C, 8), weight = randn(V * C, 9);
    const b = { hidden: gpu.buffer(hidden), weight: gpu.buffer(weight), targets: gpu.buffer(targets), segments: gpu.buffer(segments) };
    const stats = gpu.buffer(N * 16), lse = gpu.buffer(N * 4), out = gpu.buffer(S * 32);
    gpu.submit((enc) => {
      lmHeadForward(gpu, enc, { ...b, stats, lse, N, C, V, chunk: 128 });
      segmentMeans(gpu, enc, { stats, segments: b.segments, targets: b.targets, out, N, S });
    });
    const got = await gpu.readF32(out, S * 8);
    const ref = segmentMeansRef({ stats: lmHeadForwardRef({ hidden, weight, targets, N, C, V }).stats, segments, targets, N, S });
    expectClose('lmhead → segment', got, ref, { atol: 2e-4, rtol: 2e-4 });
  });
});
