// Shared test helpers: comparison against a float64 reference with `atol + |ref|·rtol`,
// seeded random inputs, finite differences, and the GPU that every GPU test uses.
import { expect } from 'vitest';
import { makeRng } from '../../src/rng.js';

export interface Tol {
  atol: number;
  rtol: number;
}

/**
 * Compare `got` with `ref` elementwise: |got - ref| ≤ atol + |ref|·rtol. On failure, prints
 * the first mismatches (at most ten) and the count, then fails the test.
 */
export function expectClose(name: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tol): void {
  expect(got.length, `${name}: length`).toBe(ref.length);
  const bad: string[] = [];
  let count = 0;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i], r = ref[i];
    const err = Math.abs(g - r);
    const lim = tol.atol + Math.abs(r) * tol.rtol;
    if (!(err <= lim)) {
      // NaN fails too
      count++;
      worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
      if (bad.length < 10) bad.push(`  [${i}] got ${g} want ${r} (|err| ${err.toExponential(2)} > ${lim.toExponential(2)})`);
    }
  }
  if (count > 0) {
    throw new Error(`${name}: ${count}/${ref.length} elements differ (worst ${worst.toExponential(2)}):\n${bad.join('\n')}`);
  }
}

/** Deterministic pseudo-random numbers (mulberry32, the generator sampling uses) so failures reproduce. */
export const rng = makeRng;

/** n uniform values in [lo, hi). */
export function randn(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/**
 * Central finite-difference gradient of the scalar `f` with respect to `x`, in float64.
 * Used to check the backward references themselves.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-6): Float64Array {
  const xx = Float64Array.from(x);
  const g = new Float64Array(xx.length);
  for (let i = 0; i < xx.length; i++) {
    const v = xx[i];
    xx[i] = v + h;
    const fp = f(xx);
    xx[i] = v - h;
    const fm = f(xx);
    xx[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Σ w·y: a random projection that turns an op's output into a scalar loss for gradient checks. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

type Arrays = Record<string, Float32Array>;
type Outputs = Record<string, ArrayLike<number>>;

export interface OpCheck {
  name: string;
  /** The op's inputs (what the gradient is taken with respect to, and any others). */
  inputs: Arrays;
  /** float64 reference forward (src/reference/) and the GPU forward under test. */
  ref: (x: Record<string, Float64Array>) => Outputs;
  gpu: (x: Arrays) => Promise<Outputs>;
  /** Backward: upstream gradients for (some of) the outputs, and the reference/GPU backward. */
  backward?: {
    dout: Arrays;
    ref: (x: Record<string, Float64Array>, dout: Record<string, Float64Array>) => Outputs;
    gpu: (x: Arrays, dout: Arrays) => Promise<Outputs>;
    /** Names of inputs whose gradient is checked; the backward's outputs are called 'd' + name. */
    wrt: string[];
    /** At most this many elements per input are checked by finite differences (default 48). */
    fdSamples?: number;
  };
  tol: Tol;
  gradTol?: Tol;
}

const f64 = (r: Arrays): Record<string, Float64Array> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Float64Array.from(v)]));

/**
 * Check an op: GPU forward against the float64 reference; then the reference backward against
 * central finite differences of L = Σ dout·forward (on a sample of elements); then the GPU
 * backward against the reference backward. Tolerances are `atol + |ref|·rtol`.
 */
export async function checkOp(o: OpCheck): Promise<void> {
  const x64 = f64(o.inputs);
  const refOut = o.ref(x64);
  const gpuOut = await o.gpu(o.inputs);
  for (const k of Object.keys(refOut)) {
    if (!(k in gpuOut)) throw new Error(`${o.name}: GPU forward gave no '${k}'`);
    expectClose(`${o.name} forward ${k}`, gpuOut[k], refOut[k], o.tol);
  }
  if (!o.backward) return;
  const b = o.backward;
  const dout64 = f64(b.dout);
  const refGrad = b.ref(x64, dout64);
  const loss = (x: Record<string, Float64Array>) => {
    const y = o.ref(x);
    let s = 0;
    for (const k of Object.keys(dout64)) s += dot(dout64[k], y[k]);
    return s;
  };
  for (const w of b.wrt) {
    const g = refGrad[`d${w}`];
    if (!g) throw new Error(`${o.name}: reference backward gave no 'd${w}'`);
    const n = x64[w].length;
    const samples = Math.min(n, b.fdSamples ?? 48);
    const r = rng(samples * 7 + n);
    const idx = samples === n ? [...Array(n).keys()] : Array.from({ length: samples }, () => Math.floor(r() * n));
    const fd: number[] = [], an: number[] = [];
    for (const i of idx) {
      const xs = { ...x64, [w]: Float64Array.from(x64[w]) };
      const h = 1e-5 * Math.max(1, Math.abs(xs[w][i]));
      xs[w][i] += h;
      const fp = loss(xs);
      xs[w][i] -= 2 * h;
      const fm = loss(xs);
      fd.push((fp - fm) / (2 * h));
      an.push(g[i]);
    }
    expectClose(`${o.name} reference d${w} vs finite differences`, an, fd, { atol: 1e-5, rtol: 1e-4 });
  }
  const gpuGrad = await b.gpu(o.inputs, b.dout);
  for (const w of b.wrt) {
    const k = `d${w}`;
    if (!(k in gpuGrad)) throw new Error(`${o.name}: GPU backward gave no '${k}'`);
    expectClose(`${o.name} backward ${k}`, gpuGrad[k], refGrad[k], o.gradTol ?? o.tol);
  }
}

/**
 * Check an analytical gradient `g` of `loss` with respect to the values `w` (changed in place and
 * put back) by central differences at its `largest` largest elements and at `fixed` ones chosen
 * without looking at it.
 */
export function expectGradByDifferences(what: string, g: ArrayLike<number>, w: Float32Array | Float64Array, loss: () => number, fixed: number[], tol: Tol, largest = 4, h = 1e-5): void {
  const idx = Array.from({ length: g.length }, (_, i) => i).sort((i, j) => Math.abs(g[j]) - Math.abs(g[i])).slice(0, largest).concat(fixed);
  const fd: number[] = [], an: number[] = [];
  for (const i of idx) {
    const v = w[i];
    w[i] = v + h;
    const lp = loss();
    w[i] = v - h;
    const lm = loss();
    w[i] = v;
    fd.push((lp - lm) / (2 * h));
    an.push(g[i]);
  }
  expectClose(what, an, fd, tol);
}
