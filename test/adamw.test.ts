import { expect, it } from 'vitest';
import { adamw, adamwScalars } from '../src/kernels/adamw.js';
import { gradNorm } from '../src/kernels/gradnorm.js';
import { adamwRef, gradNormRef, type AdamwRefHyper } from '../src/reference/adamw.js';
import { expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

describeGpu('adamw and grad norm', (gpu) => {
  const H: AdamwRefHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

  async function norm(grads: Float32Array[], maxNorm: number): Promise<Float32Array> {
    const bufs = grads.map((g) => gpu.buffer(g));
    const out = gpu.buffer(16);
    gpu.submit((enc) => gradNorm(gpu, enc, { grads: grads.map((g, i) => ({ buffer: bufs[i], n: g.length })), out, maxNorm }));
    const r = await gpu.readF32(out, 3);
    for (const b of [...bufs, out]) b.destroy();
    return r;
  }

  it('grad norm over tensors of awkward sizes (1, 4095, 4097, 70001, 45×65) and the clip scale', async () => {
    const grads = [1, 4095, 4097, 70001, 45 * 65].map((n, i) => randn(n, 10 + i, -0.1, 0.1));
    for (const maxNorm of [1, 1e6]) {
      const got = await norm(grads, maxNorm);
      const ref = gradNormRef(grads, maxNorm);
      expectClose(`gradnorm maxNorm ${maxNorm}`, got, ref, { atol: 0, rtol: 1e-5 });
    }
    expect((await norm(grads, 1e6))[1]).toBe(1);
  });

  it('grad norm is bit-identical when run twice', async () => {
    const grads = [randn(123457, 20), randn(999, 21)];
    const a = await norm(grads, 1), b = await norm(grads, 1);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it('10 AdamW steps match torch.optim.AdamW semantics (float64 reference), odd size 1237', async () => {
    const n = 1237;
    const p0 = randn(n, 1);
    const param = gpu.buffer(p0), m = gpu.buffer(n * 4), v = gpu.buffer(n * 4), grad = gpu.buffer(n * 4);
    const ref = { param: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
    for (let t = 1; t <= 10; t++) {
      const g = randn(n, 100 + t, -1 + t * 0.05, 1); // drifting gradients
      if (t === 3) g.fill(0, 0, 50); // zero gradient: the update comes from the moments alone
      gpu.write(grad, g);
      gpu.submit((enc) => adamw(gpu, enc, { param, grad, m, v, n, step: t, ...H }));
      adamwRef(ref, g, H, t);
    }
    expectClose('adamw param', await gpu.readF32(param, n), ref.param, { atol: 2e-6, rtol: 1e-5 });
    expectClose('adamw m', await gpu.readF32(m, n), ref.m, { atol: 1e-6, rtol: 1e-5 });
    expectClose('adamw v', await gpu.readF32(v, n), ref.v, { atol: 1e-7, rtol: 1e-5 });
    for (const b of [param, m, v, grad]) b.destroy();
  });

  it('the step scalars from a buffer (the training step\'s way) give the uniform path\'s updates bit for bit', async () => {
    const n = 1237;
    const p0 = randn(n, 2);
    const run = async (fromBuffer: boolean) => {
      const param = gpu.buffer(p0), m = gpu.buffer(n * 4), v = gpu.buffer(n * 4), grad = gpu.buffer(n * 4), scalars = gpu.buffer(16);
      for (let t = 1; t <= 5; t++) {
        gpu.write(grad, randn(n, 200 + t));
        if (fromBuffer) gpu.write(scalars, adamwScalars({ ...H, step: t }));
        gpu.submit((enc) => adamw(gpu, enc, { param, grad, m, v, n, step: t, ...H, scalars: fromBuffer ? scalars : undefined }));
      }
      const r = [await gpu.readF32(param, n), await gpu.readF32(m, n), await gpu.readF32(v, n)];
      for (const b of [param, m, v, grad, scalars]) b.destroy();
      return r;
    };
    const [a, b] = [await run(false), await run(true)];
    for (let i = 0; i < 3; i++) expect(Buffer.from(b[i].buffer).equals(Buffer.from(a[i].buffer)), ['param', 'm', 'v'][i]).toBe(true);
    expect(a[0].some((x, i) => x !== p0[i])).toBe(true);
  });

  it('10 clipped steps on two tensors, grad norm → AdamW in one submission, no read-back between', async () => {
    const sizes = [45 * 65, 300];
    const bufs = sizes.map((n, i) => {
      const p0 = randn(n, 30 + i);
      return { n, p0, param: gpu.buffer(p0), grad: gpu.buffer(n * 4), m: gpu.buffer(n * 4), v: gpu.buffer(n * 4) };
    });
    const refs = bufs.map((b) => ({ param: Float64Array.from(b.p0), m: new Float64Array(b.n), v: new Float64Array(b.n) }));
    const clip = gpu.buffer(16);
    const h = { ...H, weightDecay: 0.01, beta2: 0.999 };
    const scales: number[] = [];
    for (let t = 1; t <= 10; t++) {
      const gs = bufs.map((b, i) => randn(b.n, 200 + 10 * t + i, -1, 1).map((x) => x * (t % 2 ? 1 : 0.001)));
      bufs.forEach((b, i) => gpu.write(b.grad, gs[i]));
      gpu.submit((enc) => {
        gradNorm(gpu, enc, { grads: bufs.map((b) => ({ buffer: b.grad, n: b.n })), out: clip, maxNorm: 1 });
        for (const b of bufs) adamw(gpu, enc, { param: b.param, grad: b.grad, m: b.m, v: b.v, n: b.n, step: t, clip, ...h });
      });
      const [, scale] = gradNormRef(gs, 1);
      scales.push(scale);
      refs.forEach((r, i) => adamwRef(r, gs[i], h, t, scale));
    }
    expect(scales.some((s) => s < 0.1) && scales.some((s) => s === 1)).toBe(true); // both regimes hit
    for (let i = 0; i < bufs.length; i++) {
      expectClose(`clipped adamw param ${i}`, await gpu.readF32(bufs[i].param, bufs[i].n), refs[i].param, { atol: 2e-6, rtol: 1e-5 });
      expectClose(`clipped adamw m ${i}`, await gpu.readF32(bufs[i].m, bufs[i].n), refs[i].m, { atol: 1e-7, rtol: 1e-5 });
    }
  });

  it('a NaN or Inf gradient is flagged by the grad norm and AdamW leaves param, m and v unchanged', async () => {
    const n = 4097;
    for (const poison of [NaN, Infinity, -Infinity]) {
      const g = randn(n, 50);
      g[4000] = poison;
      const r = await norm([randn(10, 51), g], 1);
      expect(r[2]).toBe(1);
      expect(gradNormRef([g], 1)[2]).toBe(1);
      const p0 = randn(n, 52), m0 = randn(n, 53), v0 = randn(n, 54, 0, 1);
      const param = gpu.buffer(p0), grad = gpu.buffer(g), m = gpu.buffer(m0), v = gpu.buffer(v0), clip = gpu.buffer(16);
      gpu.submit((enc) => {
        gradNorm(gpu, enc, { grads: [{ buffer: grad, n }], out: clip, maxNorm: 1 });
        adamw(gpu, enc, { param, grad, m, v, n, step: 3, clip, ...H });
      });
      expect(Buffer.from((await gpu.readF32(param, n)).buffer).equals(Buffer.from(p0.buffer))).toBe(true);
      expect(Buffer.from((await gpu.readF32(m, n)).buffer).equals(Buffer.from(m0.buffer))).toBe(true);
      expect(Buffer.from((await gpu.readF32(v, n)).buffer).equals(Buffer.from(v0.buffer))).toBe(true);
      for (const b of [param, grad, m, v, clip]) b.destroy();
    }
    // finite gradients are not flagged, and the update happens
    expect((await norm([randn(n, 55)], 1))[2]).toBe(0);
  });

  it('AdamW is bit-identical when run twice', async () => {
    const n = 5000;
    const once = async () => {
      const param = gpu.buffer(randn(n, 40)), grad = gpu.buffer(randn(n, 41)), m = gpu.buffer(randn(n, 42)), v = gpu.buffer(randn(n, 43, 0, 1));
      gpu.submit((enc) => { for (let t = 1; t <= 3; t++) adamw(gpu, enc, { param, grad, m, v, n, step: t, ...H }); });
      return gpu.readF32(param, n);
    };
    const a = await once(), b = await once();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});
