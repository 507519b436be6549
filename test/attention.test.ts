import { expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { attentionBackward, attentionPath, attentionForward, UNFUSED_SCORES_MAX_BYTES, type AttentionTiles } from '../src/kernels/attention.js';
import { attentionBackwardRef, attentionRef } from '../src/reference/attention.js';
import { checkOp, expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';
import { segments } from './helpers/segments.js';

const TOL = { atol: 2e-5, rtol: 1e-4 };
const GRAD_TOL = { atol: 5e-5, rtol: 2e-4 };
// Every head_dim-16 case shares one tile shape: on lavapipe, LLVM unrolls the short head_dim
// loops and each new pipeline takes seconds to compile.
const D16_TILES = { ROWS: 8, TILE: 5 };


const close = (x: Float32Array, y: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));

describeGpu('attention', (gpu) => {
  interface Case {
    B: number; T: number; Hq: number; Hkv: number; D: number;
    seg: Int32Array; tiles?: AttentionTiles; scale?: number;
    path?: 'fused' | 'unfused'; // the forward's and the backward's (default: both where a test loops over PATHS)
  }
  const PATHS = ['fused', 'unfused'] as const;

  type QKV = Record<string, Float32Array>; // q (B, T, Hq, D), k and v (B, T, Hkv, D)

  async function forward(c: Case, x: QKV) {
    const { B, T, Hq, Hkv, D } = c;
    const out = gpu.buffer(B * T * Hq * D * 4), lse = gpu.buffer(B * Hq * T * 4);
    gpu.submit((enc) =>
      attentionForward(gpu, enc, {
        q: gpu.buffer(x.q), k: gpu.buffer(x.k), v: gpu.buffer(x.v), out, lse, seg: gpu.buffer(c.seg),
        B, Tq: T, Tk: T, Hq, Hkv, D, scale: c.scale, tiles: c.tiles, path: c.path,
      }),
    );
    return { out: await gpu.readF32(out, B * T * Hq * D), lse: await gpu.readF32(lse, B * Hq * T) };
  }

  // Forward and backward in one submission, as a training step encodes them.
  async function backward(c: Case, x: QKV, dout: Float32Array) {
    const { B, T, Hq, Hkv, D } = c;
    const q = gpu.buffer(x.q), k = gpu.buffer(x.k), v = gpu.buffer(x.v), seg = gpu.buffer(c.seg);
    const out = gpu.buffer(B * T * Hq * D * 4), lse = gpu.buffer(B * Hq * T * 4);
    // dq, dk, dv start as NaN garbage: the kernels must write every element, not accumulate.
    const nan = (n: number) => gpu.buffer(new Float32Array(n).fill(NaN));
    const dq = nan(B * T * Hq * D), dk = nan(B * T * Hkv * D), dv = nan(B * T * Hkv * D);
    gpu.submit((enc) => {
      attentionForward(gpu, enc, { q, k, v, out, lse, seg, B, Tq: T, Tk: T, Hq, Hkv, D, scale: c.scale, tiles: c.tiles, path: c.path });
      attentionBackward(gpu, enc, { q, k, v, out, lse, seg, dout: gpu.buffer(dout), dq, dk, dv, B, T, Hq, Hkv, D, scale: c.scale, tiles: c.tiles, path: c.path });
    });
    return {
      dq: await gpu.readF32(dq, B * T * Hq * D),
      dk: await gpu.readF32(dk, B * T * Hkv * D),
      dv: await gpu.readF32(dv, B * T * Hkv * D),
    };
  }

  // the forward, and the backward on each path: both against the float64 reference and finite differences
  async function check(name: string, c0: Case, seed = 1, mag = 1) {
    for (const path of PATHS) await checkPath(`${name} ${path}`, { ...c0, path }, seed, mag);
  }

  async function checkPath(name: string, c: Case, seed: number, mag: number) {
    const { B, T, Hq, Hkv, D } = c;
    const r = (n: number, s: number) => randn(n, s, -mag, mag);
    await checkOp({
      name,
      inputs: { q: r(B * T * Hq * D, seed), k: r(B * T * Hkv * D, seed + 1), v: randn(B * T * Hkv * D, seed + 2) },
      ref: ({ q, k, v }) => attentionRef({ q, k, v, seg: c.seg, B, Tq: T, Tk: T, Hq, Hkv, D, scale: c.scale }),
      gpu: (x) => forward(c, x),
      backward: {
        dout: { out: randn(B * T * Hq * D, seed + 3) },
        wrt: ['q', 'k', 'v'],
        ref: ({ q, k, v }, { out }) => attentionBackwardRef({ q, k, v, dout: out, seg: c.seg, B, T, Hq, Hkv, D, scale: c.scale }),
        gpu: (x, { out }) => backward(c, x, out),
        fdSamples: 32,
      },
      tol: TOL,
      gradTol: GRAD_TOL,
    });
  }

  it('T 45, D 64, GQA 2, two packed samples + padding in one row, full row in the other', async () => {
    await check('att 45/64/gqa2', { B: 2, T: 45, Hq: 4, Hkv: 2, D: 64, seg: segments(45, [[20, 20], [45]]) });
  });

  it('T 13, D 128, GQA 4, many small workgroups and a tile (3) that divides nothing', async () => {
    await check('att 13/128/gqa4', { B: 1, T: 13, Hq: 8, Hkv: 2, D: 128, seg: segments(13, [[6, 5]]), tiles: { ROWS: 4, TILE: 3 } }, 7);
  });

  it('T 1, D 16, GQA 1', async () => {
    await check('att 1/16', { B: 2, T: 1, Hq: 2, Hkv: 2, D: 16, seg: segments(1, [[1], [1]]), tiles: D16_TILES }, 11);
  });

  it('T 100, D 16, GQA 4, non-default scale, four samples packed, tiles {ROWS 8, TILE 5}', async () => {
    await check('att 100/16/gqa4', {
      B: 1, T: 100, Hq: 4, Hkv: 1, D: 16, seg: segments(100, [[31, 9, 1, 50]]), tiles: D16_TILES, scale: 0.4,
    }, 21);
  });

  it('T 77, D 64, GQA 1, default tiles spanning three workgroups', async () => {
    await check('att 77/64', { B: 1, T: 77, Hq: 2, Hkv: 2, D: 64, seg: segments(77, [[70]]) }, 31);
  });

  it('cached generation: Tq 1 and 4 against Tk 37 in a capacity-50 cache, left padding', async () => {
    const [B, Hq, Hkv, D, cap, Tk] = [2, 4, 2, 64, 50, 37];
    const seg = new Int32Array(B * cap).fill(-1);
    for (let j = 5; j < Tk; j++) seg[j] = 0; // row 0: 5 pads on the left, then one sample
    for (let j = 0; j < Tk; j++) seg[cap + j] = j < 10 ? 0 : 1; // row 1: two samples
    const k = randn(B * cap * Hkv * D, 2), v = randn(B * cap * Hkv * D, 3);
    for (const Tq of [1, 4]) {
      const q = randn(B * Tq * Hq * D, 1 + Tq);
      const out = gpu.buffer(B * Tq * Hq * D * 4), lse = gpu.buffer(B * Hq * Tq * 4);
      gpu.submit((enc) =>
        attentionForward(gpu, enc, {
          q: gpu.buffer(q), k: gpu.buffer(k), v: gpu.buffer(v), out, lse, seg: gpu.buffer(seg),
          B, Tq, Tk, Hq, Hkv, D, qOffset: Tk - Tq, kvCapacity: cap,
        }),
      );
      const ref = attentionRef({ q, k, v, seg, B, Tq, Tk, Hq, Hkv, D, qOffset: Tk - Tq, kvCapacity: cap });
      expectClose(`cached Tq ${Tq} out`, await gpu.readF32(out, B * Tq * Hq * D), ref.out, TOL);
      expectClose(`cached Tq ${Tq} lse`, await gpu.readF32(lse, B * Hq * Tq), ref.lse, TOL);
    }
  });

  it.each(PATHS)('padding queries give out 0, finite lse and exactly zero gradients; padding keys get zero dk, dv (%s paths)', async (path) => {
    const c: Case = { B: 1, T: 24, Hq: 2, Hkv: 1, D: 16, seg: segments(24, [[10, 6]]), tiles: D16_TILES, path };
    const x = { q: randn(24 * 2 * 16, 1), k: randn(24 * 16, 2), v: randn(24 * 16, 3) };
    const f = await forward(c, x);
    const g = await backward(c, x, randn(24 * 2 * 16, 4));
    for (let t = 16; t < 24; t++) {
      for (let i = 0; i < 32; i++) {
        expect(f.out[t * 32 + i]).toBe(0);
        expect(g.dq[t * 32 + i]).toBe(0);
      }
      for (let i = 0; i < 16; i++) {
        expect(g.dk[t * 16 + i]).toBe(0);
        expect(g.dv[t * 16 + i]).toBe(0);
      }
      expect(Number.isFinite(f.lse[t]) && Number.isFinite(f.lse[24 + t])).toBe(true);
    }
  });

  it.each(PATHS)('extreme scores (±1e4): the online max keeps everything finite and right (%s paths)', async (path) => {
    const [B, T, Hq, Hkv, D] = [1, 45, 2, 1, 16];
    const c: Case = { B, T, Hq, Hkv, D, seg: segments(T, [[45]]), tiles: D16_TILES, path };
    const x = { q: randn(B * T * Hq * D, 3, -100, 100), k: randn(B * T * Hkv * D, 4, -100, 100), v: randn(B * T * Hkv * D, 5) };
    const ref = attentionRef({ ...x, seg: c.seg, B, Tq: T, Tk: T, Hq, Hkv, D });
    expect(Math.max(...ref.lse.map(Math.abs))).toBeGreaterThan(5e3); // the test reaches the regime
    expect(Math.min(...ref.lse)).toBeLessThan(-1e3);
    const f = await forward(c, x);
    expectClose('extreme out', f.out, ref.out, { atol: 1e-4, rtol: 1e-4 });
    expectClose('extreme lse', f.lse, ref.lse, { atol: 1e-3, rtol: 1e-5 });
    const dout = randn(B * T * Hq * D, 6);
    const g = await backward(c, x, dout);
    const rg = attentionBackwardRef({ ...x, dout, seg: c.seg, B, T, Hq, Hkv, D });
    // ds = p(dp − delta) cancels at p ≈ 1 and is multiplied by |k| ≈ 100: absolute slack.
    expectClose('extreme dq', g.dq, rg.dq, { atol: 5e-3, rtol: 1e-3 });
    expectClose('extreme dk', g.dk, rg.dk, { atol: 5e-3, rtol: 1e-3 });
    expectClose('extreme dv', g.dv, rg.dv, { atol: 1e-4, rtol: 1e-4 });
  });

  it.each(PATHS)('is bit-identical when run twice (forward and backward, %s)', async (path) => {
    const c: Case = { B: 2, T: 45, Hq: 4, Hkv: 1, D: 64, seg: segments(45, [[20, 20], [45]]), path };
    const x = { q: randn(2 * 45 * 4 * 64, 1), k: randn(2 * 45 * 64, 2), v: randn(2 * 45 * 64, 3) };
    const dout = randn(2 * 45 * 4 * 64, 4);
    const [f1, f2] = [await forward(c, x), await forward(c, x)];
    const [g1, g2] = [await backward(c, x, dout), await backward(c, x, dout)];
    expect(close(f1.out, f2.out) && close(f1.lse, f2.lse)).toBe(true);
    expect(close(g1.dq, g2.dq) && close(g1.dk, g2.dk) && close(g1.dv, g2.dv)).toBe(true);
  });

  it('the forward and the backward take the unfused path where the T×T scores fit, the fused one beyond; the forward with a KV cache is fused', async () => {
    const limit = Math.min(UNFUSED_SCORES_MAX_BYTES, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    expect(attentionPath(gpu, { B: 8, T: 128, Hq: 4 })).toBe('unfused'); // the bench's tiny step: 2 MiB of scores
    const T = Math.ceil(Math.sqrt(limit / 4 / 16)) + 1; // B·Hq = 16
    expect(attentionPath(gpu, { B: 4, T, Hq: 4 })).toBe('fused');
    expect(attentionPath(gpu, { B: 4, T, Hq: 4, path: 'unfused' })).toBe('unfused');
    expect(attentionPath(gpu, { B: 1, T: 8, Hq: 1, path: 'fused' })).toBe('fused');
    // a cache (Tq < Tk): auto runs the fused kernel (right answer), unfused is refused
    const [Hq, Hkv, D, Tk] = [2, 1, 16, 9];
    const seg = new Int32Array(Tk), q = randn(Hq * D, 1), k = randn(Tk * Hkv * D, 2), v = randn(Tk * Hkv * D, 3);
    const out = gpu.buffer(Hq * D * 4), lse = gpu.buffer(Hq * 4);
    const args = { q: gpu.buffer(q), k: gpu.buffer(k), v: gpu.buffer(v), out, lse, seg: gpu.buffer(seg), B: 1, Tq: 1, Tk, Hq, Hkv, D };
    gpu.submit((enc) => attentionForward(gpu, enc, args));
    expectClose('cache, auto', await gpu.readF32(out), attentionRef({ q, k, v, seg, B: 1, Tq: 1, Tk, Hq, Hkv, D }).out, TOL);
    gpu.submit((enc) => expect(() => attentionForward(gpu, enc, { ...args, path: 'unfused' })).toThrow(/unfused forward needs Tq = Tk = kvCapacity/));
  });

  it('refuses unsupported shapes with a UsageError', () => {
    const b = gpu.buffer(16);
    const base = { q: b, k: b, v: b, out: b, lse: b, seg: b, B: 1, Tq: 4, Tk: 4, Hq: 4, Hkv: 2, D: 64 };
    gpu.submit((enc) => {
      expect(() => attentionForward(gpu, enc, { ...base, D: 256 })).toThrow(UsageError);
      expect(() => attentionForward(gpu, enc, { ...base, Hkv: 3 })).toThrow(UsageError);
      expect(() => attentionForward(gpu, enc, { ...base, Tq: 5 })).toThrow(UsageError);
    });
  });
});
