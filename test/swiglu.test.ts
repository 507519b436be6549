import { expect, it } from 'vitest';
import { add, axpy, scale, sumRows } from '../src/kernels/elementwise.js';
import { swigluBackward, swigluForward } from '../src/kernels/swiglu.js';
import { swigluBackwardRef, swigluForwardRef } from '../src/reference/swiglu.js';
import { checkOp, expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 1e-6, rtol: 1e-5 };

describeGpu('swiglu and elementwise', (gpu) => {
  async function fwd(gate: Float32Array, up: Float32Array) {
    const n = gate.length, out = gpu.buffer(n * 4);
    gpu.submit((enc) => swigluForward(gpu, enc, { gate: gpu.buffer(gate), up: gpu.buffer(up), out, n }));
    return gpu.readF32(out, n);
  }
  async function bwd(gate: Float32Array, up: Float32Array, dout: Float32Array) {
    const n = gate.length, dgate = gpu.buffer(n * 4), dup = gpu.buffer(n * 4);
    gpu.submit((enc) => swigluBackward(gpu, enc, { gate: gpu.buffer(gate), up: gpu.buffer(up), dout: gpu.buffer(dout), dgate, dup, n }));
    return { dgate: await gpu.readF32(dgate, n), dup: await gpu.readF32(dup, n) };
  }
  function check(N: number, I: number, seed: number, amp = 4) {
    const n = N * I;
    return checkOp({
      name: `swiglu ${N}x${I}`,
      inputs: { gate: randn(n, seed, -amp, amp), up: randn(n, seed + 1, -2, 2) },
      ref: ({ gate, up }) => ({ out: swigluForwardRef(gate, up) }),
      gpu: async ({ gate, up }) => ({ out: await fwd(gate, up) }),
      backward: {
        dout: { out: randn(n, seed + 2) },
        wrt: ['gate', 'up'],
        ref: ({ gate, up }, { out }) => swigluBackwardRef(gate, up, out),
        gpu: ({ gate, up }, { out }) => bwd(gate, up, out),
      },
      tol: TOL,
    });
  }

  it('backward in place (dgate over gate, dup over up) gives the out-of-place results bit for bit, 300×517', async () => {
    const n = 300 * 517;
    const gate = randn(n, 7, -4, 4), up = randn(n, 8, -2, 2), dout = randn(n, 9);
    const want = await bwd(gate, up, dout);
    const g = gpu.buffer(gate), u = gpu.buffer(up);
    gpu.submit((enc) => swigluBackward(gpu, enc, { gate: g, up: u, dout: gpu.buffer(dout), dgate: g, dup: u, n }));
    expect(Buffer.from((await gpu.readF32(g, n)).buffer).equals(Buffer.from(want.dgate.buffer))).toBe(true);
    expect(Buffer.from((await gpu.readF32(u, n)).buffer).equals(Buffer.from(want.dup.buffer))).toBe(true);
    g.destroy(); u.destroy();
  });

  it('odd shape 45×65', () => check(45, 65, 1));
  it('many workgroups (300×517)', () => check(300, 517, 2));

  it('extreme gates (±100, ±1e4) give finite, correct values', async () => {
    const gate = new Float32Array([-1e4, -100, -30, -1e-8, 0, 1e-8, 30, 100, 1e4, -88, 88]);
    const up = randn(gate.length, 3, 0.5, 2), dout = randn(gate.length, 4, 0.5, 2);
    const out = await fwd(gate, up);
    expectClose('out', out, swigluForwardRef(gate, up), TOL);
    const g = await bwd(gate, up, dout);
    const r = swigluBackwardRef(gate, up, dout);
    expectClose('dgate', g.dgate, r.dgate, TOL);
    expectClose('dup', g.dup, r.dup, TOL);
  });

  it('a 2-D grid past 65535 workgroups (17M elements)', async () => {
    const n = 65536 * 256 + 1000;
    const gate = new Float32Array(n), up = new Float32Array(n);
    for (let i = 0; i < n; i++) { gate[i] = ((i % 97) - 48) / 8; up[i] = ((i % 89) - 44) / 16; }
    const out = await fwd(gate, up);
    for (const i of [0, 1, 65535 * 256 - 1, 65535 * 256, 65535 * 256 + 1, n - 1]) {
      expect(Math.abs(out[i] - swigluForwardRef([gate[i]], [up[i]])[0])).toBeLessThan(1e-5);
    }
  });

  it('add, axpy, scale', async () => {
    const n = 1000;
    const a = randn(n, 5), b = randn(n, 6);
    const aB = gpu.buffer(a), bB = gpu.buffer(b), out = gpu.buffer(n * 4);
    gpu.submit((enc) => {
      add(gpu, enc, { a: aB, b: bB, out, n });
      axpy(gpu, enc, { x: aB, y: bB, alpha: -0.25, n });
      scale(gpu, enc, { x: aB, alpha: 3, n: n - 1 }); // the last element untouched
    });
    expectClose('add', await gpu.readF32(out, n), Array.from(a, (v, i) => v + b[i]), TOL);
    expectClose('axpy', await gpu.readF32(bB, n), Array.from(b, (v, i) => v - 0.25 * a[i]), TOL);
    expectClose('scale', await gpu.readF32(aB, n), Array.from(a, (v, i) => (i < n - 1 ? 3 * v : v)), TOL);
  });

  it('sumRows over 1 chunk, several, and two levels (N 5000), with accumulate; bit-identical twice', async () => {
    for (const [N, C] of [[45, 65], [300, 7], [5000, 33]]) {
      const inp = randn(N * C, N + C), prev = randn(C, 99);
      const ref = new Float64Array(C);
      for (let r = 0; r < N; r++) for (let c = 0; c < C; c++) ref[c] += inp[r * C + c];
      const run = async (accumulate: boolean) => {
        const out = accumulate ? gpu.buffer(prev) : gpu.buffer(C * 4);
        gpu.submit((enc) => sumRows(gpu, enc, { inp: gpu.buffer(inp), out, N, C, accumulate }));
        return gpu.readF32(out, C);
      };
      const got = await run(false);
      expectClose(`sumRows ${N}x${C}`, got, ref, { atol: 1e-4, rtol: 1e-5 });
      expectClose(`sumRows acc ${N}x${C}`, await run(true), ref.map((v, i) => v + prev[i]), { atol: 1e-4, rtol: 1e-5 });
      expect(Buffer.from((await run(false)).buffer).equals(Buffer.from(got.buffer))).toBe(true);
    }
  });
});
