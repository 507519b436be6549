import { expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/dtype.js';
import { loraBackward, loraDropout, loraForward } from '../src/kernels/lora.js';
import { dropoutMask, loraBackwardRef, loraForwardRef, type LoraRefArgs } from '../src/reference/lora.js';
import { checkOp, expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 1e-4, rtol: 1e-4 };

interface Case {
  N: number; inF: number; outF: number; r: number; scale: number;
  dropout?: number; seed?: number; bias?: boolean; lora?: boolean; keepXd?: boolean; f16?: boolean; full?: boolean;
}

describeGpu('lora linear', (gpu) => {
  const f = (a: ArrayLike<number>) => Float32Array.from(a);

  async function forward(c: Case, t: Record<string, Float32Array>) {
    const { N, inF, outF, r } = c;
    const lora = c.lora !== false;
    const y = gpu.buffer(N * outF * 4), u = gpu.buffer(N * r * 4), xd = gpu.buffer(N * inF * 4);
    const W = c.f16 ? gpu.buffer(f32ToF16Bits(t.W)) : gpu.buffer(t.W);
    gpu.submit((enc) =>
      loraForward(gpu, enc, {
        x: gpu.buffer(t.x), W, bias: c.bias ? gpu.buffer(t.bias) : undefined,
        A: lora ? gpu.buffer(t.A) : undefined, B: lora ? gpu.buffer(t.B) : undefined, u: lora ? u : undefined,
        xd: c.keepXd ? xd : undefined, y, N, inF, outF, r, scale: c.scale, dropout: c.dropout, seed: c.seed, weightF16: c.f16,
      }),
    );
    return { y: await gpu.readF32(y, N * outF), u: await gpu.readF32(u, N * r) };
  }

  async function backward(c: Case, t: Record<string, Float32Array>, dyv: Float32Array, prev?: Record<string, Float32Array>) {
    const { N, inF, outF, r } = c;
    const lora = c.lora !== false;
    const x = gpu.buffer(t.x), A = gpu.buffer(t.A), B = gpu.buffer(t.B), bias = gpu.buffer(t.bias);
    const W = c.f16 ? gpu.buffer(f32ToF16Bits(t.W)) : gpu.buffer(t.W);
    const y = gpu.buffer(N * outF * 4), u = gpu.buffer(N * r * 4), xd = gpu.buffer(N * inF * 4);
    const out = (name: string, n: number) => (prev ? gpu.buffer(prev[name]) : gpu.buffer(n * 4));
    const g = { dx: out('dx', N * inF), dA: out('dA', r * inF), dB: out('dB', outF * r), dW: out('dW', outF * inF), db: out('db', outF) };
    gpu.submit((enc) => {
      const common = { x, W, A: lora ? A : undefined, B: lora ? B : undefined, u: lora ? u : undefined, xd: c.keepXd ? xd : undefined,
        N, inF, outF, r, scale: c.scale, dropout: c.dropout, seed: c.seed, weightF16: c.f16 };
      loraForward(gpu, enc, { ...common, bias: c.bias ? bias : undefined, y });
      loraBackward(gpu, enc, {
        ...common, dy: gpu.buffer(dyv), dx: g.dx, dA: lora ? g.dA : undefined, dB: lora ? g.dB : undefined,
        dW: c.full ? g.dW : undefined, db: c.bias ? g.db : undefined, accumulateDx: !!prev, accumulateGrads: !!prev,
      });
    });
    const res: Record<string, Float32Array> = { dx: await gpu.readF32(g.dx, N * inF) };
    if (lora) { res.dA = await gpu.readF32(g.dA, r * inF); res.dB = await gpu.readF32(g.dB, outF * r); }
    if (c.full) res.dW = await gpu.readF32(g.dW, outF * inF);
    if (c.bias) res.dbias = await gpu.readF32(g.db, outF);
    return res;
  }

  function tensors(c: Case, seed: number) {
    return {
      x: randn(c.N * c.inF, seed), W: randn(c.outF * c.inF, seed + 1, -0.5, 0.5), bias: randn(c.outF, seed + 2),
      A: randn(c.r * c.inF, seed + 3, -0.5, 0.5), B: randn(c.outF * c.r, seed + 4, -0.5, 0.5),
    };
  }
  const refArgs = (c: Case, t: Record<string, ArrayLike<number>>): LoraRefArgs => ({
    x: t.x, W: c.f16 ? f16BitsToF32(f32ToF16Bits(f(t.W))) : t.W, bias: c.bias ? t.bias : undefined,
    A: c.lora !== false ? t.A : undefined, B: c.lora !== false ? t.B : undefined,
    N: c.N, inF: c.inF, outF: c.outF, r: c.r, scale: c.scale, dropout: c.dropout, seed: c.seed,
  });

  function check(c: Case, seed: number) {
    const lora = c.lora !== false;
    const wrt = ['x', ...(lora ? ['A', 'B'] : []), ...(c.full ? ['W'] : []), ...(c.bias ? ['bias'] : [])];
    return checkOp({
      name: `lora ${JSON.stringify(c)}`,
      inputs: tensors(c, seed),
      ref: (t) => {
        const { y, u } = loraForwardRef(refArgs(c, t));
        const o: Record<string, ArrayLike<number>> = { y };
        if (lora) o.u = u;
        return o;
      },
      gpu: (t) => forward(c, t),
      backward: {
        dout: { y: randn(c.N * c.outF, seed + 5) },
        wrt,
        ref: (t, { y }) => {
          const g = loraBackwardRef(refArgs(c, t), y);
          return { dx: g.dx, dA: g.dA, dB: g.dB, dW: g.dW, dbias: g.db };
        },
        gpu: (t, { y }) => backward(c, t, y),
      },
      tol: TOL,
    });
  }

  it('odd shapes 45 tokens, 65 → 37, r 8, bias, no dropout', () => check({ N: 45, inF: 65, outF: 37, r: 8, scale: 2, bias: true }, 1));
  it('dropout 0.3, dropped x kept from the forward', () => check({ N: 45, inF: 65, outF: 37, r: 4, scale: 0.5, dropout: 0.3, seed: 7, keepXd: true }, 2));
  it('dropout 0.1, mask regenerated in the backward (no xd), many workgroups', () =>
    check({ N: 130, inF: 96, outF: 70, r: 16, scale: 16 / Math.sqrt(16), dropout: 0.1, seed: 123456789 }, 3));
  it('plain linear (module not targeted): no A, B; with bias', () => check({ N: 33, inF: 20, outF: 45, r: 4, scale: 1, bias: true, lora: false }, 4));
  it('full fine-tuning: dW and db as well', () => check({ N: 45, inF: 30, outF: 26, r: 2, scale: 1, bias: true, full: true, dropout: 0.2, seed: 3 }, 5));
  it('f16 frozen W (reference on the f16-rounded W)', () => {
    if (!gpu.hasF16) throw new Error('this adapter lacks shader-f16; the f16 path cannot be tested here');
    return check({ N: 45, inF: 65, outF: 37, r: 8, scale: 2, f16: true, dropout: 0.25, seed: 11 }, 6);
  });

  it('accumulateDx and accumulateGrads add into every gradient', async () => {
    const c: Case = { N: 20, inF: 17, outF: 9, r: 3, scale: 1.5, bias: true, full: true, dropout: 0.4, seed: 5 };
    const t = tensors(c, 8), dy = randn(c.N * c.outF, 9);
    const prev = { dx: randn(c.N * c.inF, 10), dA: randn(c.r * c.inF, 11), dB: randn(c.outF * c.r, 12), dW: randn(c.outF * c.inF, 13), db: randn(c.outF, 14) };
    const got = await backward(c, t, dy, prev);
    const ref = loraBackwardRef(refArgs(c, t), dy);
    const plus = (a: Float64Array, b: Float32Array) => a.map((v, i) => v + b[i]);
    expectClose('dx', got.dx, plus(ref.dx, prev.dx), TOL);
    expectClose('dA', got.dA, plus(ref.dA, prev.dA), TOL);
    expectClose('dB', got.dB, plus(ref.dB, prev.dB), TOL);
    expectClose('dW', got.dW, plus(ref.dW, prev.dW), TOL);
    expectClose('db', got.dbias, plus(ref.db, prev.db), TOL);
  });

  it('dropout mask: equals the reference hash, same seed → same mask, other seed → other mask, rate ≈ p', async () => {
    const n = 100_003, p = 0.3;
    const ones = gpu.buffer(new Float32Array(n).fill(1));
    const mask = async (seed: number) => {
      const xd = gpu.buffer(n * 4);
      gpu.submit((enc) => loraDropout(gpu, enc, { x: ones, xd, n, p, seed }));
      return gpu.readF32(xd, n);
    };
    const a = await mask(42), b = await mask(42), c = await mask(43);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const ref = dropoutMask(42, n, p);
    const inv = Math.fround(1 / (1 - Math.fround(p)));
    let kept = 0, differ = 0;
    for (let i = 0; i < n; i++) {
      expect(a[i]).toBe(ref[i] ? inv : 0);
      kept += ref[i];
      if ((a[i] !== 0) !== (c[i] !== 0)) differ++;
    }
    expect(Math.abs(kept / n - (1 - p))).toBeLessThan(0.01);
    expect(differ / n).toBeGreaterThan(0.35); // independent masks differ in 2p(1−p) = 42% of places
  });

  it('is bit-identical when run twice', async () => {
    const c: Case = { N: 64, inF: 80, outF: 48, r: 8, scale: 2, dropout: 0.1, seed: 9, bias: true };
    const t = tensors(c, 20), dy = randn(c.N * c.outF, 21);
    const a = await backward(c, t, dy), b = await backward(c, t, dy);
    for (const k of Object.keys(a)) expect(Buffer.from(a[k].buffer).equals(Buffer.from(b[k].buffer)), k).toBe(true);
  });

  it('refuses a half-given adapter and a dropout outside [0, 1)', () => {
    const b = gpu.buffer(64);
    const base = { x: b, W: b, y: b, N: 1, inF: 2, outF: 2, r: 1, scale: 1 };
    expect(() => gpu.submit((enc) => loraForward(gpu, enc, { ...base, A: b, B: b }))).toThrow(/A, B and u/);
    expect(() => gpu.submit((enc) => loraForward(gpu, enc, { ...base, A: b, B: b, u: b, dropout: 1 }))).toThrow(/dropout/);
  });
});
