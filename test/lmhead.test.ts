import { expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.js';
import { lmHeadBackward, lmHeadForward } from '../src/kernels/lmhead.js';
import { lmHeadBackwardRef, lmHeadForwardRef } from '../src/reference/lmhead.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/dtype.js';
import { checkOp, expectClose, randn, rng } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 2e-4, rtol: 2e-4 };

/** Targets in [0, V), with every `padEvery`-th token -1 (no loss). */
function makeTargets(N: number, V: number, seed: number, padEvery = 5): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, (_, n) => (n % padEvery === 2 ? -1 : Math.floor(r() * V)));
}

interface Run {
  stats: Float32Array;
  lse: Float32Array;
  dhidden?: Float32Array;
  dweight?: Float32Array;
}

async function runLmHead(
  gpu: Gpu,
  o: {
    hidden: Float32Array; weight: Float32Array; targets: Int32Array; gscale?: Float32Array;
    N: number; C: number; V: number; chunk?: number; backward?: boolean; dweight?: boolean; weightF16?: boolean;
    accumulate?: { dhidden: Float32Array; dweight: Float32Array };
  },
): Promise<Run> {
  const { N, C, V } = o;
  const hidden = gpu.buffer(o.hidden), weight = gpu.buffer(o.weightF16 ? f32ToF16Bits(o.weight) : o.weight), targets = gpu.buffer(o.targets);
  const stats = gpu.buffer(N * 16), lse = gpu.buffer(N * 4);
  const gscale = o.gscale && gpu.buffer(o.gscale);
  const dhidden = o.backward ? (o.accumulate ? gpu.buffer(o.accumulate.dhidden) : gpu.buffer(N * C * 4)) : undefined;
  const dweight = o.dweight ? (o.accumulate ? gpu.buffer(o.accumulate.dweight) : gpu.buffer(V * C * 4)) : undefined;
  gpu.submit((enc) => {
    lmHeadForward(gpu, enc, { hidden, weight, targets, stats, lse, N, C, V, chunk: o.chunk, weightF16: o.weightF16 });
    if (o.backward)
      lmHeadBackward(gpu, enc, {
        hidden, weight, targets, lse, gscale: gscale!, dhidden: dhidden!, dweight, N, C, V, chunk: o.chunk, accumulate: !!o.accumulate, accumulateDweight: !!o.accumulate, weightF16: o.weightF16,
      });
  });
  const res: Run = { stats: await gpu.readF32(stats, N * 4), lse: await gpu.readF32(lse, N) };
  if (dhidden) res.dhidden = await gpu.readF32(dhidden, N * C);
  if (dweight) res.dweight = await gpu.readF32(dweight, V * C);
  for (const b of [hidden, weight, targets, stats, lse, gscale, dhidden, dweight]) b?.destroy();
  return res;
}

describeGpu('lmhead', (gpu) => {
  const bindLimit = gpu?.limits.maxStorageBufferBindingSize ?? 0; // gpu is null when GPU tests are skipped
  it('forward and gradients (dhidden, dweight) at 45 tokens, C 65, V 1000, chunk 256, with padding', async () => {
    const [N, C, V, chunk] = [45, 65, 1000, 256];
    const targets = makeTargets(N, V, 3);
    const gscale = randn(N, 4, 0.1, 1);
    const dstats = new Float32Array(N * 4);
    for (let n = 0; n < N; n++) dstats[n * 4] = gscale[n]; // L = Σ gscale · nll
    await checkOp({
      name: 'lmhead',
      inputs: { hidden: randn(N * C, 1), weight: randn(V * C, 2) },
      ref: ({ hidden, weight }) => lmHeadForwardRef({ hidden, weight, targets, N, C, V }),
      gpu: async ({ hidden, weight }) => ({ ...(await runLmHead(gpu, { hidden, weight, targets, N, C, V, chunk })) }),
      backward: {
        dout: { stats: dstats },
        wrt: ['hidden', 'weight'],
        ref: ({ hidden, weight }) => lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }),
        gpu: async ({ hidden, weight }) => {
          const r = await runLmHead(gpu, { hidden, weight, targets, gscale, N, C, V, chunk, backward: true, dweight: true });
          return { dhidden: r.dhidden!, dweight: r.dweight! };
        },
        fdSamples: 24,
      },
      tol: TOL,
      gradTol: { atol: 1e-5, rtol: 1e-3 },
    });
  });

  it('padding tokens (target -1, or out of range) have nll 0, hit 0 and a zero dhidden row', async () => {
    const [N, C, V] = [16, 8, 300];
    const targets = makeTargets(N, V, 5, 3);
    targets[4] = V + 7; // out of range counts as no target
    const r = await runLmHead(gpu, {
      hidden: randn(N * C, 6), weight: randn(V * C, 7), targets, gscale: new Float32Array(N).fill(1), N, C, V, chunk: 64, backward: true,
    });
    for (let n = 0; n < N; n++) {
      if (targets[n] >= 0 && targets[n] < V) {
        expect(r.stats[n * 4], `nll of token ${n}`).toBeGreaterThan(0);
        continue;
      }
      expect(r.stats[n * 4], `nll of pad ${n}`).toBe(0);
      expect(r.stats[n * 4 + 3], `hit of pad ${n}`).toBe(0);
      expect(r.stats[n * 4 + 1], `entropy of pad ${n}`).toBeGreaterThan(0); // still scored
      expect(Array.from(r.dhidden!.subarray(n * C, (n + 1) * C)).every((x) => x === 0), `dhidden row ${n}`).toBe(true);
    }
  });

  it('is stable for logits of ±1e4 (ties across chunks, first argmax wins)', async () => {
    const [N, C, V, chunk] = [20, 16, 700, 128];
    const hidden = randn(N * C, 8);
    const weight = randn(V * C, 9);
    for (let i = 0; i < hidden.length; i++) hidden[i] *= 400; // logits up to ~1e4
    for (let i = 0; i < weight.length; i++) weight[i] *= 4;
    // Rows 100 and 600 (chunks 0 and 4) equal: tokens 0..3 point straight at them, so the top two
    // logits tie at ~+1e4 (p = 0.5 each, entropy log 2), and token 4 at −row 100.
    // Row 100 is 3× longer than any other, so no other logit comes near it (Cauchy–Schwarz).
    for (let c = 0; c < C; c++) weight[600 * C + c] = weight[100 * C + c] *= 3;
    for (let n = 0; n < 5; n++)
      for (let c = 0; c < C; c++) hidden[n * C + c] = (n === 4 ? -1 : 1) * weight[100 * C + c] * (1e4 / dotSelf(weight, 100, C));
    const targets = makeTargets(N, V, 10);
    targets[0] = 100; targets[1] = 600; targets[2] = 5;
    const gscale = new Float32Array(N).fill(1 / N);
    const got = await runLmHead(gpu, { hidden, weight, targets, gscale, N, C, V, chunk, backward: true, dweight: true });
    for (const [k, a] of Object.entries(got)) expect(a.every(Number.isFinite), `${k} finite`).toBe(true);
    const ref = lmHeadForwardRef({ hidden, weight, targets, N, C, V });
    const refB = lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V });
    // f32 logits of 1e4 carry ~1e-3 of rounding, which moves nll and lse by as much.
    expectClose('lse ±1e4', got.lse, ref.lse, { atol: 2e-2, rtol: 1e-5 });
    expectClose('stats ±1e4', got.stats, ref.stats, { atol: 2e-2, rtol: 1e-4 });
    expectClose('dhidden ±1e4', got.dhidden!, refB.dhidden, { atol: 2e-2, rtol: 1e-2 });
    expectClose('dweight ±1e4', got.dweight!, refB.dweight, { atol: 2e-1, rtol: 1e-2 });
    expect(got.stats[0 * 4 + 1]).toBeCloseTo(Math.log(2), 3);
    expect(got.stats[0 * 4 + 2]).toBeCloseTo(0.5, 4);
    expect(got.stats[0 * 4 + 3]).toBe(1); // argmax is 100, the first of the tie
    expect(got.stats[1 * 4 + 3]).toBe(0);
    expect(got.stats[1 * 4 + 0]).toBeCloseTo(Math.log(2), 3);
  });

  it('gradient accumulation adds into dhidden and dweight; one chunk covering V works', async () => {
    const [N, C, V] = [9, 12, 130];
    const hidden = randn(N * C, 11), weight = randn(V * C, 12), targets = makeTargets(N, V, 13);
    const gscale = randn(N, 14, 0, 1);
    const prev = { dhidden: randn(N * C, 15), dweight: randn(V * C, 16) };
    const r = await runLmHead(gpu, { hidden, weight, targets, gscale, N, C, V, chunk: 4096, backward: true, dweight: true, accumulate: prev });
    const ref = lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V });
    expectClose('dhidden accumulated', r.dhidden!, ref.dhidden.map((x, i) => x + prev.dhidden[i]), TOL);
    expectClose('dweight accumulated', r.dweight!, ref.dweight.map((x, i) => x + prev.dweight[i]), TOL);
    expectClose('stats, one chunk', r.stats, lmHeadForwardRef({ hidden, weight, targets, N, C, V }).stats, TOL);
  });

  it.runIf(!!gpu?.hasF16)('f16 weight (frozen head in half precision): forward and dhidden, chunk 128, C 20', async () => {
    const [N, C, V, chunk] = [21, 20, 333, 128];
    const hidden = randn(N * C, 51), targets = makeTargets(N, V, 52), gscale = randn(N, 53, 0, 1);
    const weight = f16BitsToF32(f32ToF16Bits(randn(V * C, 54))); // the values the GPU sees
    const r = await runLmHead(gpu, { hidden, weight, targets, gscale, N, C, V, chunk, backward: true, weightF16: true });
    expectClose('f16 stats', r.stats, lmHeadForwardRef({ hidden, weight, targets, N, C, V }).stats, TOL);
    expectClose('f16 dhidden', r.dhidden!, lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }).dhidden, { atol: 1e-5, rtol: 1e-3 });
  });

  it('refuses a chunk whose weight slice would be misaligned, naming the limit', () => {
    const b = gpu.buffer(64);
    const enc = gpu.device.createCommandEncoder();
    // One row of one float per chunk: a 4-byte offset, below any adapter's alignment (≥ 32 bytes in practice).
    expect(gpu.limits.minStorageBufferOffsetAlignment).toBeGreaterThan(4);
    expect(() => lmHeadForward(gpu, enc, { hidden: b, weight: b, targets: b, stats: b, lse: b, N: 4, C: 1, V: 3, chunk: 1 }))
      .toThrow(/minStorageBufferOffsetAlignment/);
    b.destroy();
  });

  it('without a chunk argument, many tokens get a smaller chunk so the logits fit one binding (encoded, not run)', () => {
    const [N, C, V] = [Math.ceil(bindLimit / (4096 * 4)) + 100, 8, 10_000];
    // Real sizes, so the bind groups validate (an invalid one would poison the shared device).
    const b = {
      hidden: gpu.buffer(N * C * 4), weight: gpu.buffer(V * C * 4), targets: gpu.buffer(N * 4), stats: gpu.buffer(N * 16), lse: gpu.buffer(N * 4),
    };
    const sizes: number[] = [];
    const create = gpu.device.createBuffer.bind(gpu.device);
    gpu.device.createBuffer = (d: GPUBufferDescriptor) => (sizes.push(d.size), create(d));
    try {
      lmHeadForward(gpu, gpu.device.createCommandEncoder(), { ...b, N, C, V });
    } finally {
      gpu.device.createBuffer = create;
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(bindLimit);
    expect(Math.max(...sizes)).toBeGreaterThan(bindLimit / 2); // the largest multiple of 128 rows that fits
    for (const x of Object.values(b)) x.destroy();
  });

  it('is bit-identical when run twice', async () => {
    const [N, C, V, chunk] = [33, 24, 900, 192];
    const o = { hidden: randn(N * C, 21), weight: randn(V * C, 22), targets: makeTargets(N, V, 23), gscale: randn(N, 24, 0, 1), N, C, V, chunk, backward: true, dweight: true };
    const a = await runLmHead(gpu, o), b = await runLmHead(gpu, o);
    for (const k of ['stats', 'lse', 'dhidden', 'dweight'] as const)
      expect(Buffer.from(a[k]!.buffer).equals(Buffer.from(b[k]!.buffer)), k).toBe(true);
  });

  it.runIf(bindLimit <= 256 * 2 ** 20)(`a weight larger than maxStorageBufferBindingSize (${bindLimit} bytes) is bound chunk by chunk`, async () => {
    const [N, V] = [4, 151_936];
    const C = Math.floor(bindLimit / (V * 4)) + 1;
    const hidden = randn(N * C, 41, -0.5, 0.5), weight = randn(V * C, 42), targets = makeTargets(N, V, 43, 4);
    const gscale = new Float32Array(N).fill(0.5);
    const b = {
      hidden: gpu.buffer(hidden), weight: bigBuffer(gpu, weight), targets: gpu.buffer(targets), gscale: gpu.buffer(gscale),
      stats: gpu.buffer(N * 16), lse: gpu.buffer(N * 4), dhidden: gpu.buffer(N * C * 4),
    };
    expect(b.weight.size).toBeGreaterThan(bindLimit);
    gpu.submit((enc) => {
      lmHeadForward(gpu, enc, { ...b, N, C, V });
      lmHeadBackward(gpu, enc, { ...b, N, C, V });
    });
    const stats = await gpu.readF32(b.stats, N * 4), dh = await gpu.readF32(b.dhidden, N * C);
    for (const x of Object.values(b)) x.destroy();
    expectClose('stats, weight > one binding', stats, lmHeadForwardRef({ hidden, weight, targets, N, C, V }).stats, { atol: 5e-4, rtol: 5e-4 });
    expectClose('dhidden, weight > one binding', dh, lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }).dhidden, { atol: 1e-5, rtol: 1e-3 });
  });

  it('V = 151,936 (Qwen2.5) with 512 tokens: no buffer beyond N × chunk floats, matches the reference', async () => {
    const [N, C, V, chunk] = [512, 16, 151_936, 4096];
    const hidden = randn(N * C, 31, -2, 2), weight = randn(V * C, 32), targets = makeTargets(N, V, 33, 7);
    const gscale = new Float32Array(N).fill(1 / N);
    const b = {
      hidden: gpu.buffer(hidden), weight: gpu.buffer(weight), targets: gpu.buffer(targets), gscale: gpu.buffer(gscale),
      stats: gpu.buffer(N * 16), lse: gpu.buffer(N * 4), dhidden: gpu.buffer(N * C * 4),
    };
    const sizes: number[] = [];
    const create = gpu.device.createBuffer.bind(gpu.device);
    gpu.device.createBuffer = (d: GPUBufferDescriptor) => (sizes.push(d.size), create(d));
    try {
      gpu.submit((enc) => {
        lmHeadForward(gpu, enc, { ...b, N, C, V, chunk });
        lmHeadBackward(gpu, enc, { ...b, N, C, V, chunk });
      });
    } finally {
      gpu.device.createBuffer = create;
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(N * chunk * 4);
    expect(sizes.reduce((s, x) => s + x, 0)).toBeLessThan(N * V * 4 / 8);
    const stats = await gpu.readF32(b.stats, N * 4), lse = await gpu.readF32(b.lse, N), dh = await gpu.readF32(b.dhidden, N * C);
    for (const x of Object.values(b)) x.destroy();
    const rows = [0, 1, 2, 100, 255, 256, 300, 511];
    const ref = lmHeadForwardRef({ hidden, weight, targets, N, C, V, rows });
    const refB = lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V, rows });
    const pick = (a: ArrayLike<number>, w: number) => rows.flatMap((n) => Array.from({ length: w }, (_, j) => a[n * w + j]));
    expectClose('stats V=151936', pick(stats, 4), pick(ref.stats, 4), { atol: 5e-4, rtol: 5e-4 });
    expectClose('lse V=151936', pick(lse, 1), pick(ref.lse, 1), { atol: 5e-4, rtol: 1e-5 });
    expectClose('dhidden V=151936', pick(dh, C), pick(refB.dhidden, C), { atol: 1e-6, rtol: 1e-3 });
  });
});

function bigBuffer(gpu: Gpu, data: Float32Array): GPUBuffer {
  // gpu.buffer refuses more than one binding's worth; the LM head binds the weight chunk by chunk.
  const buf = gpu.device.createBuffer({ size: data.byteLength, usage: 0x0080 | 0x0008, mappedAtCreation: true });
  new Float32Array(buf.getMappedRange()).set(data);
  buf.unmap();
  return buf;
}

function dotSelf(w: Float32Array, row: number, C: number): number {
  let s = 0;
  for (let c = 0; c < C; c++) s += w[row * C + c] * w[row * C + c];
  return s;
}
