// Shared test helpers: comparison against a float64 reference with `atol + |ref|·rtol`,
// seeded random inputs, finite differences, and the GPU that every GPU test uses.
import { expect } from 'vitest';

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

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
