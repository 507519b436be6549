// Statistics for the curriculum experiment: paired bootstrap confidence intervals (runs paired by
// seed), and the step at which a held-out loss curve first reaches a target.
import { Rng } from '../rng.js';

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * Paired bootstrap of mean(a − b) over pairs (a[i], b[i]): resample the pairs with replacement
 * `reps` times; the 2.5% and 97.5% percentiles of the resampled means. Seeded: reproducible.
 */
export function pairedBootstrap(a: number[], b: number[], reps = 10_000, seed = 12345): Interval {
  if (a.length !== b.length) throw new Error('pairedBootstrap: the two arms need the same seeds');
  const d = a.map((x, i) => x - b[i]).filter((x) => Number.isFinite(x));
  const n = d.length;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  const mean = d.reduce((s, x) => s + x, 0) / n;
  const rng = new Rng(seed);
  const means = new Float64Array(reps);
  for (let r = 0; r < reps; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[rng.int(n)];
    means[r] = s / n;
  }
  means.sort();
  return { mean, lo: percentile(means, 0.025), hi: percentile(means, 0.975), n };
}

/** The p-quantile of sorted values, linear between neighbours. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const x = p * (sorted.length - 1);
  const i = Math.floor(x), f = x - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

export interface CurvePoint {
  step: number;
  loss: number;
}

/** The first evaluated step whose loss is at most `target`, or null when the curve never gets there. */
export function stepsToTarget(curve: CurvePoint[], target: number): number | null {
  for (const p of curve) if (p.step > 0 && p.loss <= target) return p.step;
  return null;
}

export function mean(x: number[]): number {
  return x.length ? x.reduce((s, v) => s + v, 0) / x.length : NaN;
}
