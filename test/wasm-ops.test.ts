// Every op of the wasm backend (src/wasm/ops.ts → assembly/kernels/) against the float64
// references of src/reference/ through checkOp, at the odd shapes and extremes the WebGPU op
// tests use; plus: results that do not depend on the thread count, bit-identical reruns, and the
// LoRA dropout mask equal to the WebGPU path's hash.
import { afterAll, describe, expect, it } from 'vitest';
import * as W from '../src/wasm/ops.js';
import { WasmKernels } from '../src/wasm/kernels.js';
import { matmulRef } from '../src/reference/matmul.js';
import { attentionBackwardRef, attentionRef } from '../src/reference/attention.js';
import { embeddingBackwardRef, embeddingForwardRef } from '../src/reference/embedding.js';
import { rmsnormBackwardRef, rmsnormForwardRef } from '../src/reference/rmsnorm.js';
import { ropeRef } from '../src/reference/rope.js';
import { swigluBackwardRef, swigluForwardRef } from '../src/reference/swiglu.js';
import { dropoutMask, loraBackwardRef, loraForwardRef } from '../src/reference/lora.js';
import { lmHeadBackwardRef, lmHeadForwardRef } from '../src/reference/lmhead.js';
import { segmentMeansRef } from '../src/reference/segment.js';
import { adamwRef, gradNormRef } from '../src/reference/adamw.js';
import { checkOp, expectClose, randn, rng } from './helpers/check.js';
import { segments } from './helpers/segments.js';

// smallWork 0: every call runs split over the threads, however small (by default small calls run on one)
const k2 = await WasmKernels.create({ threads: 2, smallWork: 0 });
const k1 = await WasmKernels.create({ threads: 1 });
const k3 = await WasmKernels.create({ threads: 3, smallWork: 0 });
// the other two builds: plain SIMD (no relaxed multiply-add) and unshared memory (no SharedArrayBuffer)
const kPlain = await WasmKernels.create({ threads: 2, smallWork: 0, simd: 'simd' });
const kSingle = await WasmKernels.create({ shared: false });
afterAll(() => [k1, k2, k3, kPlain, kSingle].forEach((k) => k.dispose()));

/** Tensors in a kernel memory for one test, given back after. */
function arena(k: WasmKernels) {
  const ptrs: number[] = [];
  const keep = (p: number) => (ptrs.push(p), p);
  return {
    k,
    put: (a: Float32Array | Int32Array) => keep(k.put(a)),
    /** n floats of NaN: an op must write every element it owns. */
    nan: (n: number) => keep(k.put(new Float32Array(Math.max(1, n)).fill(NaN))),
    zeros: (n: number) => keep(k.put(new Float32Array(Math.max(1, n)))),
    read: (p: number, n: number) => k.readF32(p, n),
    done: () => ptrs.forEach((p) => k.release(p)),
  };
}
async function using<T>(k: WasmKernels, f: (a: ReturnType<typeof arena>) => T | Promise<T>): Promise<T> {
  const a = arena(k);
  try {
    return await f(a);
  } finally {
    a.done();
  }
}
const same = (x: Float32Array, y: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));


describe('wasm matmul', () => {
  const TOL = { atol: 1e-4, rtol: 1e-4 };
  function run(k: WasmKernels, o: { M: number; N: number; K: number; transA?: boolean; transB?: boolean; bias?: boolean; accumulate?: boolean; alpha?: number; seed?: number }) {
    const seed = o.seed ?? 1;
    const a = randn(o.M * o.K, seed), bm = randn(o.K * o.N, seed + 1);
    const bias = o.bias ? randn(o.N, seed + 2) : undefined, prev = o.accumulate ? randn(o.M * o.N, seed + 3) : undefined;
    return using(k, (x) => {
      const out = prev ? x.put(prev) : x.nan(o.M * o.N);
      W.matmul(k, { a: x.put(a), bm: x.put(bm), out, bias: bias && x.put(bias), M: o.M, N: o.N, K: o.K, transA: o.transA, transB: o.transB, alpha: o.alpha, accumulate: o.accumulate });
      return { got: x.read(out, o.M * o.N), ref: matmulRef({ a, bm, bias, out: prev, M: o.M, N: o.N, K: o.K, transA: o.transA, transB: o.transB, alpha: o.alpha }) };
    });
  }
  for (const [name, transA, transB] of [['NN', false, false], ['NT', false, true], ['TN', true, false], ['TT', true, true]] as const) {
    it(`${name} at odd shapes 45×65×77 and 44×64×76 (full tiles), on every build`, async () => {
      expect(kSingle.shared || kSingle.threads !== 1).toBe(false);
      expect(kPlain.isa).toBe('simd');
      for (const k of [k2, kPlain, kSingle]) {
        for (const [M, N, K] of [[45, 65, 77], [44, 64, 76]]) {
          const { got, ref } = await run(k, { M, N, K, transA, transB });
          expectClose(`${name} ${M}x${N}x${K} ${k.isa}${k.shared ? '' : ' unshared'}`, got, ref, TOL);
        }
      }
    });
  }
  it('degenerate edges 1×4096×1, 4096×1×1, 1×1×4096, 3×5×0', async () => {
    for (const [M, N, K] of [[1, 4096, 1], [4096, 1, 1], [1, 1, 4096]]) {
      const { got, ref } = await run(k2, { M, N, K, transB: true });
      expectClose(`${M}x${N}x${K}`, got, ref, { atol: 1e-3, rtol: 1e-4 });
    }
    const { got } = await run(k2, { M: 3, N: 5, K: 0, transB: true, bias: true });
    expect(got.every(Number.isFinite)).toBe(true);
  });
  it('bias, alpha and accumulate, in every layout', async () => {
    for (const [transA, transB] of [[false, false], [false, true], [true, false]]) {
      const { got, ref } = await run(k2, { M: 33, N: 17, K: 9, transA, transB, bias: true, alpha: 0.37, accumulate: true });
      expectClose('bias+alpha+acc', got, ref, TOL);
    }
  });
  it('gives bit-identical results on 1, 2 and 3 threads, and when run twice', async () => {
    for (const o of [{ M: 300, N: 260, K: 130, transB: true }, { M: 8, N: 256, K: 1000, transA: true }, { M: 70, N: 8, K: 513, transA: true }]) {
      const [a, b, c, d] = [await run(k1, o), await run(k2, o), await run(k3, o), await run(k3, o)];
      expect(same(a.got, b.got) && same(a.got, c.got) && same(c.got, d.got)).toBe(true);
      expectClose('threads', b.got, b.ref, { atol: 1e-3, rtol: 1e-4 });
    }
  });
  it('linear layer y = x·Wᵀ: forward and gradients at 45×65 with K 77', async () => {
    const [T, N, K] = [45, 65, 77];
    const mm = (o: W.MatmulArgs extends infer A ? Omit<A & object, 'a' | 'bm' | 'out'> : never, a: Float32Array, bm: Float32Array, n: number) =>
      using(k2, (x) => {
        const out = x.nan(n);
        W.matmul(k2, { ...o, a: x.put(a), bm: x.put(bm), out });
        return x.read(out, n);
      });
    await checkOp({
      name: 'wasm linear',
      inputs: { x: randn(T * K, 11), w: randn(N * K, 12) },
      ref: ({ x, w }) => ({ y: matmulRef({ a: x, bm: w, M: T, N, K, transB: true }) }),
      gpu: async ({ x, w }) => ({ y: await mm({ M: T, N, K, transB: true }, x, w, T * N) }),
      backward: {
        dout: { y: randn(T * N, 13) },
        wrt: ['x', 'w'],
        ref: ({ x, w }, { y: dy }) => ({ dx: matmulRef({ a: dy, bm: w, M: T, N: K, K: N }), dw: matmulRef({ a: dy, bm: x, M: N, N: K, K: T, transA: true }) }),
        gpu: async ({ x, w }, { y: dy }) => ({ dx: await mm({ M: T, N: K, K: N }, dy, w, T * K), dw: await mm({ M: N, N: K, K: T, transA: true }, dy, x, N * K) }),
      },
      tol: TOL,
    });
  });
});

describe('wasm embedding, rmsnorm, rope, swiglu', () => {
  it('embedding: 45 tokens, C 65, V 37 with repeats; out-of-range ids give zero rows and no gradient', async () => {
    const [N, C, V] = [45, 65, 37];
    const r = rng(1);
    const ids = Int32Array.from({ length: N }, (_, n) => (n === 3 ? -1 : n === 9 ? V : Math.floor(r() * V)));
    const weight = randn(V * C, 2), dout = randn(N * C, 3), prev = randn(V * C, 4);
    await using(k2, (x) => {
      const out = x.nan(N * C);
      W.embeddingForward(k2, { ids: x.put(ids), weight: x.put(weight), out, N, C, V });
      expectClose('embedding forward', x.read(out, N * C), embeddingForwardRef(ids, weight, N, C, V), { atol: 0, rtol: 0 });
      const dw = x.nan(V * C);
      W.embeddingBackward(k2, { ids: x.put(ids), dout: x.put(dout), dweight: dw, N, C, V });
      expectClose('embedding backward', x.read(dw, V * C), embeddingBackwardRef(ids, dout, N, C, V), { atol: 1e-6, rtol: 1e-6 });
      const acc = x.put(prev);
      W.embeddingBackward(k2, { ids: x.put(ids), dout: x.put(dout), dweight: acc, N, C, V, accumulate: true });
      const want = embeddingBackwardRef(ids, dout, N, C, V).map((v, i) => v + prev[i]);
      expectClose('embedding backward accumulate', x.read(acc, V * C), want, { atol: 1e-6, rtol: 1e-6 });
    });
  });

  async function rms(N: number, C: number, eps: number, seed: number, mag = 1) {
    await checkOp({
      name: `wasm rmsnorm ${N}x${C}`,
      inputs: { inp: randn(N * C, seed, -mag, mag), weight: randn(C, seed + 1) },
      ref: ({ inp, weight }) => rmsnormForwardRef(inp, weight, N, C, eps),
      gpu: ({ inp, weight }) =>
        using(k2, (x) => {
          const out = x.nan(N * C), rstd = x.nan(N);
          W.rmsnormForward(k2, { inp: x.put(inp), weight: x.put(weight), out, rstd, N, C, eps });
          return { out: x.read(out, N * C), rstd: x.read(rstd, N) };
        }),
      backward: {
        dout: { out: randn(N * C, seed + 2) },
        wrt: ['inp', 'weight'],
        ref: ({ inp, weight }, { out }) => rmsnormBackwardRef(inp, weight, out, N, C, eps),
        gpu: ({ inp, weight }, { out: dout }) =>
          using(k2, (x) => {
            const ip = x.put(inp), wp = x.put(weight), out = x.nan(N * C), rstd = x.nan(N), dinp = x.nan(N * C), dweight = x.nan(C);
            W.rmsnormForward(k2, { inp: ip, weight: wp, out, rstd, N, C, eps });
            W.rmsnormBackward(k2, { inp: ip, weight: wp, rstd, dout: x.put(dout), dinp, dweight, N, C });
            return { dinp: x.read(dinp, N * C), dweight: x.read(dweight, C) };
          }),
        fdSamples: 24,
      },
      tol: { atol: 1e-5 * mag, rtol: 1e-4 },
      gradTol: { atol: 1e-4, rtol: 1e-3 },
    });
  }
  it('rmsnorm: 45×65, 300×1000, C 1 and 3, qk-norm rows of 128', async () => {
    await rms(45, 65, 1e-6, 1);
    await rms(300, 1000, 1e-5, 2);
    await rms(7 * 16, 128, 1e-6, 3);
    await rms(5, 1, 1e-6, 4);
    await rms(5, 3, 1e-6, 5);
  });
  it('rmsnorm: inputs of 1e4 and tiny ones (eps dominates) stay accurate', async () => {
    for (const mag of [1e4, 1e-4]) {
      const [N, C] = [9, 65];
      const inp = randn(N * C, 7, -mag, mag), weight = randn(C, 8);
      await using(k2, (x) => {
        const out = x.nan(N * C), rstd = x.nan(N);
        W.rmsnormForward(k2, { inp: x.put(inp), weight: x.put(weight), out, rstd, N, C, eps: 1e-5 });
        const ref = rmsnormForwardRef(inp, weight, N, C, 1e-5);
        expectClose(`rmsnorm at ${mag}`, x.read(out, N * C), ref.out, { atol: 1e-5, rtol: 1e-4 });
      });
    }
  });

  it('rope: forward and inverse at several shapes, positions to 131071', async () => {
    for (const [N, H, D, theta, maxPos] of [[45, 3, 64, 10000, 45], [13, 8, 16, 500000, 13], [6, 2, 128, 1e6, 131071]]) {
      const x0 = randn(N * H * D, N), inv = Float32Array.from({ length: D / 2 }, (_, i) => 1 / theta ** ((2 * i) / D));
      const pos = Int32Array.from({ length: N }, (_, n) => (maxPos > N ? maxPos - n * 997 : n));
      for (const inverse of [false, true]) {
        await using(k2, (x) => {
          const p = x.put(x0);
          W.ropeForward(k2, { x: p, pos: x.put(pos), invFreq: x.put(inv), N, H, D, inverse });
          expectClose(`rope ${N}/${H}/${D} inverse ${inverse}`, x.read(p, N * H * D), ropeRef(x0, pos, inv, N, H, D, inverse), { atol: 2e-6, rtol: 1e-5 });
        });
      }
    }
    expect(() => W.ropeForward(k2, { x: 0, pos: 0, invFreq: 0, N: 1, H: 1, D: 3 })).toThrow(/even/);
  });

  it('swiglu: 45×65 and 300×517 with gradients; gates of ±100 and ±1e4 stay finite', async () => {
    for (const [n, seed] of [[45 * 65, 1], [300 * 517, 2]]) {
      await checkOp({
        name: `wasm swiglu ${n}`,
        inputs: { gate: randn(n, seed, -4, 4), up: randn(n, seed + 1) },
        ref: ({ gate, up }) => ({ out: swigluForwardRef(gate, up) }),
        gpu: ({ gate, up }) =>
          using(k2, (x) => {
            const out = x.nan(n);
            W.swigluForward(k2, { gate: x.put(gate), up: x.put(up), out, n });
            return { out: x.read(out, n) };
          }),
        backward: {
          dout: { out: randn(n, seed + 2) },
          wrt: ['gate', 'up'],
          ref: ({ gate, up }, { out }) => swigluBackwardRef(gate, up, out),
          gpu: ({ gate, up }, { out: dout }) =>
            using(k2, (x) => {
              const dgate = x.nan(n), dup = x.nan(n);
              W.swigluBackward(k2, { gate: x.put(gate), up: x.put(up), dout: x.put(dout), dgate, dup, n });
              return { dgate: x.read(dgate, n), dup: x.read(dup, n) };
            }),
          fdSamples: 16,
        },
        tol: { atol: 1e-5, rtol: 1e-5 },
      });
    }
    const gate = Float32Array.of(100, -100, 1e4, -1e4), up = Float32Array.of(1, 2, 3, 4), dout = Float32Array.of(1, 1, 1, 1);
    await using(k2, (x) => {
      const out = x.nan(4), dg = x.nan(4), du = x.nan(4);
      W.swigluForward(k2, { gate: x.put(gate), up: x.put(up), out, n: 4 });
      W.swigluBackward(k2, { gate: x.put(gate), up: x.put(up), dout: x.put(dout), dgate: dg, dup: du, n: 4 });
      expectClose('swiglu extremes', x.read(out, 4), swigluForwardRef(gate, up), { atol: 1e-5, rtol: 1e-6 });
      const r = swigluBackwardRef(gate, up, dout);
      expectClose('swiglu extremes dgate', x.read(dg, 4), r.dgate, { atol: 1e-5, rtol: 1e-6 });
      expectClose('swiglu extremes dup', x.read(du, 4), r.dup, { atol: 1e-5, rtol: 1e-6 });
    });
  });
});

describe('wasm attention', () => {
  interface Case { B: number; T: number; Hq: number; Hkv: number; D: number; seg: Int32Array; scale?: number }
  function fwd(k: WasmKernels, c: Case, q: Float32Array, kk: Float32Array, v: Float32Array) {
    const { B, T, Hq, Hkv, D } = c;
    return using(k, (x) => {
      const out = x.nan(B * T * Hq * D), lse = x.nan(B * Hq * T);
      W.attentionForward(k, { q: x.put(q), k: x.put(kk), v: x.put(v), out, lse, seg: x.put(c.seg), B, Tq: T, Tk: T, Hq, Hkv, D, scale: c.scale });
      return { out: x.read(out, B * T * Hq * D), lse: x.read(lse, B * Hq * T) };
    });
  }
  function bwd(k: WasmKernels, c: Case, q: Float32Array, kk: Float32Array, v: Float32Array, dout: Float32Array) {
    const { B, T, Hq, Hkv, D } = c;
    return using(k, (x) => {
      const qp = x.put(q), kp = x.put(kk), vp = x.put(v), seg = x.put(c.seg);
      const out = x.nan(B * T * Hq * D), lse = x.nan(B * Hq * T), dq = x.nan(B * T * Hq * D), dk = x.nan(B * T * Hkv * D), dv = x.nan(B * T * Hkv * D);
      W.attentionForward(k, { q: qp, k: kp, v: vp, out, lse, seg, B, Tq: T, Tk: T, Hq, Hkv, D, scale: c.scale });
      W.attentionBackward(k, { q: qp, k: kp, v: vp, out, lse, dout: x.put(dout), seg, dq, dk, dv, B, T, Hq, Hkv, D, scale: c.scale });
      return { dq: x.read(dq, B * T * Hq * D), dk: x.read(dk, B * T * Hkv * D), dv: x.read(dv, B * T * Hkv * D) };
    });
  }
  async function check(name: string, c: Case, seed = 1, mag = 1) {
    const { B, T, Hq, Hkv, D } = c;
    await checkOp({
      name,
      inputs: { q: randn(B * T * Hq * D, seed, -mag, mag), k: randn(B * T * Hkv * D, seed + 1, -mag, mag), v: randn(B * T * Hkv * D, seed + 2) },
      ref: ({ q, k, v }) => attentionRef({ q, k, v, seg: c.seg, B, Tq: T, Tk: T, Hq, Hkv, D, scale: c.scale }),
      gpu: ({ q, k, v }) => fwd(k2, c, q, k, v),
      backward: {
        dout: { out: randn(B * T * Hq * D, seed + 3) },
        wrt: ['q', 'k', 'v'],
        ref: ({ q, k, v }, { out }) => attentionBackwardRef({ q, k, v, dout: out, seg: c.seg, B, T, Hq, Hkv, D, scale: c.scale }),
        gpu: ({ q, k, v }, { out }) => bwd(k2, c, q, k, v, out),
        fdSamples: 24,
      },
      tol: { atol: 2e-5, rtol: 1e-4 },
      gradTol: { atol: 5e-5, rtol: 2e-4 },
    });
  }
  it('T 45, D 64, GQA 2, two packed samples + padding in one row, a full row in the other', () =>
    check('att 45/64/gqa2', { B: 2, T: 45, Hq: 4, Hkv: 2, D: 64, seg: segments(45, [[20, 20], [45]]) }));
  it('T 13, D 128, GQA 4; T 1, D 16; T 100, D 16, GQA 4, scale 0.4, four samples; D 6 (not a multiple of 4)', async () => {
    await check('att 13/128/gqa4', { B: 1, T: 13, Hq: 8, Hkv: 2, D: 128, seg: segments(13, [[6, 5]]) }, 7);
    await check('att 1/16', { B: 2, T: 1, Hq: 2, Hkv: 2, D: 16, seg: segments(1, [[1], [1]]) }, 11);
    await check('att 100/16', { B: 1, T: 100, Hq: 4, Hkv: 1, D: 16, seg: segments(100, [[31, 9, 1, 50]]), scale: 0.4 }, 21);
    await check('att 9/6', { B: 1, T: 9, Hq: 2, Hkv: 1, D: 6, seg: segments(9, [[9]]) }, 25);
  });
  it('cached generation: Tq 1 and 4 against Tk 37 in a capacity-50 cache, left padding', async () => {
    const [B, Hq, Hkv, D, cap, Tk] = [2, 4, 2, 64, 50, 37];
    const seg = new Int32Array(B * cap);
    for (let t = 0; t < 3; t++) seg[cap + t] = -1; // row 1: three pad positions first
    const k = randn(B * cap * Hkv * D, 3), v = randn(B * cap * Hkv * D, 4);
    for (const Tq of [1, 4]) {
      const q = randn(B * Tq * Hq * D, 5 + Tq);
      await using(k2, (x) => {
        const out = x.nan(B * Tq * Hq * D), lse = x.nan(B * Hq * Tq);
        W.attentionForward(k2, { q: x.put(q), k: x.put(k), v: x.put(v), out, lse, seg: x.put(seg), B, Tq, Tk, Hq, Hkv, D, kvCapacity: cap });
        const ref = attentionRef({ q, k, v, seg, B, Tq, Tk, Hq, Hkv, D, kvCapacity: cap });
        expectClose(`cached Tq ${Tq} out`, x.read(out, B * Tq * Hq * D), ref.out, { atol: 2e-5, rtol: 1e-4 });
        expectClose(`cached Tq ${Tq} lse`, x.read(lse, B * Hq * Tq), ref.lse, { atol: 2e-5, rtol: 1e-4 });
      });
    }
  });
  it('padding queries give out 0, lse 0 and zero gradients; extreme scores (±1e4) stay finite', async () => {
    const c: Case = { B: 1, T: 24, Hq: 2, Hkv: 1, D: 16, seg: segments(24, [[10, 6]]) };
    const q = randn(24 * 2 * 16, 1), kk = randn(24 * 16, 2), v = randn(24 * 16, 3), dout = randn(24 * 2 * 16, 4);
    const f = await fwd(k2, c, q, kk, v), g = await bwd(k2, c, q, kk, v, dout);
    for (let t = 16; t < 24; t++) {
      expect(f.out.subarray(t * 32, (t + 1) * 32).every((x) => x === 0)).toBe(true);
      expect(g.dq.subarray(t * 32, (t + 1) * 32).every((x) => x === 0)).toBe(true);
      expect(g.dk.subarray(t * 16, (t + 1) * 16).every((x) => x === 0)).toBe(true);
      expect(f.lse[t]).toBe(0);
    }
    const e: Case = { B: 1, T: 45, Hq: 2, Hkv: 1, D: 16, seg: segments(45, [[45]]) };
    const [qe, ke, ve] = [randn(45 * 32, 5, -25, 25), randn(45 * 16, 6, -25, 25), randn(45 * 16, 7)];
    const fe = await fwd(k2, e, qe, ke, ve);
    expect(fe.out.every(Number.isFinite) && fe.lse.every(Number.isFinite)).toBe(true);
    const ref = attentionRef({ q: qe, k: ke, v: ve, seg: e.seg, B: 1, Tq: 45, Tk: 45, Hq: 2, Hkv: 1, D: 16 });
    expectClose('att extreme out', fe.out, ref.out, { atol: 1e-3, rtol: 1e-3 });
  });
  it('gives bit-identical results on 1, 2 and 3 threads (forward and backward)', async () => {
    const c: Case = { B: 2, T: 45, Hq: 4, Hkv: 1, D: 64, seg: segments(45, [[20, 20], [45]]) };
    const [q, kk, v, dout] = [randn(2 * 45 * 4 * 64, 1), randn(2 * 45 * 64, 2), randn(2 * 45 * 64, 3), randn(2 * 45 * 4 * 64, 4)];
    const runs = [await bwd(k1, c, q, kk, v, dout), await bwd(k2, c, q, kk, v, dout), await bwd(k3, c, q, kk, v, dout)];
    for (const r of runs.slice(1)) expect(same(r.dq, runs[0].dq) && same(r.dk, runs[0].dk) && same(r.dv, runs[0].dv)).toBe(true);
  });
  it('refuses Hq not a multiple of Hkv and a query range beyond Tk', () => {
    const base = { q: 0, k: 0, v: 0, out: 0, lse: 0, seg: 0, B: 1, Tq: 4, Tk: 4, Hq: 4, Hkv: 3, D: 8 };
    expect(() => W.attentionForward(k2, base)).toThrow(/multiple/);
    expect(() => W.attentionForward(k2, { ...base, Hkv: 2, Tq: 5 })).toThrow(/Tk/);
  });
});

describe('wasm LoRA linear', () => {
  interface Case { N: number; inF: number; outF: number; r: number; scale: number; bias?: boolean; dropout?: number; seed?: number; lora?: boolean; full?: boolean }
  async function check(c: Case, seed: number) {
    const { N, inF, outF, r } = c;
    const lora = c.lora ?? true;
    const inputs: Record<string, Float32Array> = { x: randn(N * inF, seed), W: randn(outF * inF, seed + 1) };
    if (lora) Object.assign(inputs, { A: randn(r * inF, seed + 2), B: randn(outF * r, seed + 3) });
    const bias = c.bias ? randn(outF, seed + 4) : undefined;
    const ref = (x: Record<string, Float64Array>) => ({ ...c, x: x.x, W: x.W, A: x.A, B: x.B, bias });
    const wrt = ['x', ...(lora ? ['A', 'B'] : []), ...(c.full ? ['W'] : [])];
    await checkOp({
      name: `wasm lora ${JSON.stringify(c)}`,
      inputs,
      ref: (x) => ({ y: loraForwardRef(ref(x)).y }),
      gpu: (x) =>
        using(k2, (m) => {
          const y = m.nan(N * outF), u = m.nan(N * r);
          W.loraForward(k2, { ...c, x: m.put(x.x), W: m.put(x.W), A: lora ? m.put(x.A) : undefined, B: lora ? m.put(x.B) : undefined, bias: bias && m.put(bias), y, u: lora ? u : undefined });
          return { y: m.read(y, N * outF) };
        }),
      backward: {
        dout: { y: randn(N * outF, seed + 5) },
        wrt,
        ref: (x, { y }) => {
          const g = loraBackwardRef(ref(x), y);
          return { dx: g.dx, dA: g.dA, dB: g.dB, dW: g.dW };
        },
        gpu: (x, { y: dy }) =>
          using(k2, (m) => {
            const xp = m.put(x.x), Wp = m.put(x.W), Ap = lora ? m.put(x.A) : undefined, Bp = lora ? m.put(x.B) : undefined;
            const y = m.nan(N * outF), u = m.nan(N * r), dx = m.nan(N * inF), dA = m.zeros(r * inF), dB = m.zeros(outF * r), dW = m.zeros(outF * inF), db = m.zeros(outF);
            W.loraForward(k2, { ...c, x: xp, W: Wp, A: Ap, B: Bp, bias: bias && m.put(bias), y, u: lora ? u : undefined });
            W.loraBackward(k2, {
              ...c, x: xp, W: Wp, A: Ap, B: Bp, u: lora ? u : undefined, dy: m.put(dy), dx,
              dA: lora ? dA : undefined, dB: lora ? dB : undefined, dW: c.full ? dW : undefined, db: c.full ? db : undefined, accumulateGrads: true,
            });
            const out: Record<string, Float32Array> = { dx: m.read(dx, N * inF) };
            if (lora) (out.dA = m.read(dA, r * inF)), (out.dB = m.read(dB, outF * r));
            if (c.full) {
              out.dW = m.read(dW, outF * inF);
              let s = 0;
              for (let n = 0; n < N; n++) s += dy[n * outF + 3];
              expect(m.read(db, outF)[3]).toBeCloseTo(s, 4);
            }
            return out;
          }),
        fdSamples: 16,
      },
      tol: { atol: 1e-4, rtol: 1e-4 },
      gradTol: { atol: 2e-4, rtol: 2e-4 },
    });
  }
  it('odd shapes 45 tokens, 65 → 37, r 8, bias, no dropout', () => check({ N: 45, inF: 65, outF: 37, r: 8, scale: 2, bias: true }, 1));
  it('dropout 0.3 and 0.1 (mask regenerated in the backward)', async () => {
    await check({ N: 45, inF: 65, outF: 37, r: 4, scale: 0.5, dropout: 0.3, seed: 7 }, 2);
    await check({ N: 130, inF: 64, outF: 48, r: 16, scale: 1, dropout: 0.1, seed: 9 }, 3);
  });
  it('plain linear (no A, B) with bias; full fine-tuning dW and db with dropout', async () => {
    await check({ N: 33, inF: 20, outF: 45, r: 4, scale: 1, bias: true, lora: false }, 4);
    await check({ N: 45, inF: 30, outF: 26, r: 2, scale: 1, bias: true, full: true, dropout: 0.2, seed: 3 }, 5);
  });
  it('dropout mask: equals the reference hash (the WebGPU shader mirrors it bit for bit) at several seeds and rates', async () => {
    const n = 5000;
    for (const [seed, p] of [[1, 0.1], [0xdeadbeef, 0.5], [7, 0.05]]) {
      const mask = dropoutMask(seed, n, p);
      await using(k2, (x) => {
        const xd = x.nan(n);
        W.loraDropout(k2, { x: x.put(new Float32Array(n).fill(1)), xd, n, p, seed });
        const got = x.read(xd, n);
        const inv = Math.fround(1 / (1 - Math.fround(p)));
        for (let i = 0; i < n; i++) expect(got[i]).toBe(mask[i] ? inv : 0);
      });
    }
    expect(() => W.loraForward(k2, { x: 0, W: 0, y: 0, N: 1, inF: 1, outF: 1, r: 1, scale: 1, A: 1, B: 1 })).toThrow(/A, B and u/);
    expect(() => W.loraForward(k2, { x: 0, W: 0, y: 0, N: 1, inF: 1, outF: 1, r: 1, scale: 1, dropout: 1 })).toThrow(/dropout/);
  });
});

describe('wasm LM head, segment means, grad norm, AdamW', () => {
  function lm(k: WasmKernels, o: { hidden: Float32Array; weight: Float32Array; targets: Int32Array; gscale: Float32Array; N: number; C: number; V: number; chunk?: number; keep?: boolean; accumulate?: { dhidden: Float32Array; dweight: Float32Array } }) {
    const { N, C, V } = o;
    return using(k, (x) => {
      const h = x.put(o.hidden), w = x.put(o.weight), t = x.put(o.targets), stats = x.nan(N * 4), lse = x.nan(N);
      const keep = o.keep ? x.nan(N * V) : undefined;
      const dhidden = o.accumulate ? x.put(o.accumulate.dhidden) : x.nan(N * C), dweight = o.accumulate ? x.put(o.accumulate.dweight) : x.nan(V * C);
      W.lmHeadForward(k, { hidden: h, weight: w, targets: t, stats, lse, N, C, V, chunk: o.chunk, keep });
      const res = { stats: x.read(stats, N * 4), lse: x.read(lse, N) };
      W.lmHeadBackward(k, { hidden: h, weight: w, targets: t, lse, gscale: x.put(o.gscale), dhidden, dweight, N, C, V, chunk: o.chunk, kept: keep, accumulate: !!o.accumulate, accumulateDweight: !!o.accumulate });
      return { ...res, dhidden: x.read(dhidden, N * C), dweight: x.read(dweight, V * C) };
    });
  }
  const targetsOf = (N: number, V: number, seed: number) => {
    const r = rng(seed);
    return Int32Array.from({ length: N }, (_, n) => (n % 5 === 2 ? -1 : n % 11 === 7 ? V : Math.floor(r() * V)));
  };
  it('forward and gradients at 45 tokens, C 65, V 1000, chunk 256 (recomputed and kept logits), with padding', async () => {
    const [N, C, V] = [45, 65, 1000];
    const targets = targetsOf(N, V, 3), gscale = randn(N, 4, 0.1, 1);
    for (const keep of [false, true]) {
      await checkOp({
        name: `wasm lmhead keep ${keep}`,
        inputs: { hidden: randn(N * C, 1), weight: randn(V * C, 2) },
        ref: ({ hidden, weight }) => lmHeadForwardRef({ hidden, weight, targets, N, C, V }),
        gpu: async ({ hidden, weight }) => {
          const r = await lm(k2, { hidden, weight, targets, gscale, N, C, V, chunk: 256, keep });
          return { stats: r.stats, lse: r.lse };
        },
        backward: {
          dout: { stats: Float32Array.from({ length: N * 4 }, (_, i) => (i % 4 === 0 ? gscale[i / 4] : 0)) },
          wrt: ['hidden', 'weight'],
          ref: ({ hidden, weight }) => lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V }),
          gpu: async ({ hidden, weight }) => {
            const r = await lm(k2, { hidden, weight, targets, gscale, N, C, V, chunk: 256, keep });
            return { dhidden: r.dhidden, dweight: r.dweight };
          },
          fdSamples: 16,
        },
        tol: { atol: 2e-4, rtol: 2e-4 },
      });
    }
  });
  it('logits of ±1e4 (a tie across chunks: the first argmax wins); accumulation; one chunk covering V', async () => {
    const [N, C, V, chunk] = [20, 16, 700, 128];
    const hidden = randn(N * C, 8), weight = randn(V * C, 9);
    for (let i = 0; i < hidden.length; i++) hidden[i] *= 400;
    for (let i = 0; i < weight.length; i++) weight[i] *= 4;
    for (let c = 0; c < C; c++) weight[600 * C + c] = weight[100 * C + c] *= 3;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += weight[100 * C + c] ** 2;
    for (let n = 0; n < 5; n++) for (let c = 0; c < C; c++) hidden[n * C + c] = (n === 4 ? -1 : 1) * weight[100 * C + c] * (1e4 / ss);
    const targets = targetsOf(N, V, 10);
    targets[0] = 100, targets[1] = 600, targets[2] = 5;
    const gscale = new Float32Array(N).fill(1 / N);
    const got = await lm(k2, { hidden, weight, targets, gscale, N, C, V, chunk });
    for (const [key, a] of Object.entries(got)) expect(a.every(Number.isFinite), `${key} finite`).toBe(true);
    const ref = lmHeadForwardRef({ hidden, weight, targets, N, C, V }), refB = lmHeadBackwardRef({ hidden, weight, targets, gscale, N, C, V });
    expectClose('lse ±1e4', got.lse, ref.lse, { atol: 2e-2, rtol: 1e-5 });
    expectClose('stats ±1e4', got.stats, ref.stats, { atol: 2e-2, rtol: 1e-4 });
    expectClose('dhidden ±1e4', got.dhidden, refB.dhidden, { atol: 2e-2, rtol: 1e-2 });
    expect(got.stats[2]).toBeCloseTo(0.5, 4);
    expect(got.stats[3]).toBe(1);
    expect(got.stats[7]).toBe(0);
    const prev = { dhidden: randn(N * C, 11), dweight: randn(V * C, 12) };
    const h2 = randn(N * C, 13);
    const acc = await lm(k2, { hidden: h2, weight, targets, gscale, N, C, V, accumulate: prev });
    const rb = lmHeadBackwardRef({ hidden: h2, weight, targets, gscale, N, C, V });
    expectClose('accumulated dhidden', acc.dhidden, rb.dhidden.map((v, i) => v + prev.dhidden[i]), { atol: 2e-4, rtol: 2e-4 });
    expectClose('accumulated dweight', acc.dweight, rb.dweight.map((v, i) => v + prev.dweight[i]), { atol: 2e-4, rtol: 2e-4 });
  });
  it('segment means: per-sample means over tokens with a target', async () => {
    const N = 50, S = 4;
    const stats = randn(N * 4, 1, 0, 3), r = rng(2);
    const segs = Int32Array.from({ length: N }, () => Math.floor(r() * (S + 1)) - 1);
    const targets = Int32Array.from({ length: N }, (_, n) => (n % 3 === 0 ? -1 : 5));
    await using(k2, (x) => {
      const out = x.nan(S * 8);
      W.segmentMeans(k2, { stats: x.put(stats), segments: x.put(segs), targets: x.put(targets), out, N, S });
      expectClose('segment means', x.read(out, S * 8), segmentMeansRef({ stats, segments: segs, targets, N, S }), { atol: 1e-6, rtol: 1e-6 });
    });
  });
  it('grad norm with clipping and a non-finite gradient; AdamW against torch semantics over 3 steps', async () => {
    const g1 = randn(1000, 1), g2 = randn(37, 2, -3, 3);
    await using(k2, (x) => {
      const grads = [{ ptr: x.put(g1), n: 1000 }, { ptr: x.put(g2), n: 37 }];
      const [norm, scale, bad] = W.gradNorm(k2, grads, 1);
      const [rn, rs, rb] = gradNormRef([g1, g2], 1);
      expect(norm).toBeCloseTo(rn, 4);
      expect(scale).toBeCloseTo(rs, 6);
      expect(bad).toBe(rb);
      const nan = g2.slice();
      nan[5] = NaN;
      expect(W.gradNorm(k2, [{ ptr: x.put(nan), n: 37 }], 1)[2]).toBe(1);
      const n = 1037, h = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
      const p0 = randn(n, 3), g = randn(n, 4);
      const param = x.put(p0), grad = x.put(g), m = x.zeros(n), v = x.zeros(n);
      const ref = { param: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
      for (let t = 1; t <= 3; t++) {
        W.adamw(k2, { param, grad, m, v, n, ...h, step: t, clip: 0.5 });
        adamwRef(ref, g, h, t, 0.5);
      }
      expectClose('adamw param', x.read(param, n), ref.param, { atol: 1e-6, rtol: 1e-5 });
      expectClose('adamw m', x.read(m, n), ref.m, { atol: 1e-7, rtol: 1e-5 });
      // 1 − β2 in f32 (0.999 rounds to 0.99900001) is 1.3e-5 off 0.001, and v inherits it
      expectClose('adamw v', x.read(v, n), ref.v, { atol: 1e-9, rtol: 3e-5 });
      expect(() => W.adamw(k2, { param, grad, m, v, n, lr: 1, step: 0 })).toThrow(/step/);
    });
  });
});

describe('wasm memory', () => {
  it('refuses more than the 4 GiB wasm32 can address, naming the limit', () => {
    expect(() => k1.alloc(5 * 2 ** 30, 'a test tensor')).toThrow(/4 GiB/);
  });
  it('freed blocks are reused: allocating the same sizes again does not grow the memory', () => {
    const before = k1.memory.buffer.byteLength;
    for (let i = 0; i < 20; i++) {
      const ps = [k1.alloc(1 << 20), k1.alloc(3 << 18), k1.alloc(12345)];
      ps.forEach((p) => k1.release(p));
    }
    expect(k1.memory.buffer.byteLength - before).toBeLessThanOrEqual(4 << 20);
  });
});
