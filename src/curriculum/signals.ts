// Difficulty signals: what a scoring pass (or a training step) measured of each sample, and the
// one number per sample a strategy ranks by. Pure: no GPU, nothing but numbers.
//
//   nll         mean negative log-likelihood of the response tokens (perplexity = exp(nll))
//   confidence  mean max-probability                       difficulty: 1 − confidence
//   entropy     mean predictive entropy
//   accuracy    share of response tokens whose argmax is the target    difficulty: 1 − accuracy
//   mix         mean of the z-scores of nll, 1 − confidence and entropy over the scored set
//   reducible   nll − a reference model's nll on the same sample (RHO-LOSS)

/** One sample's measurement (the model's SampleStats). */
export interface SampleScore {
  nll: number;
  entropy: number;
  confidence: number;
  accuracy: number;
  tokens: number;
}

export const SIGNALS = ['nll', 'confidence', 'entropy', 'accuracy', 'mix'] as const;
export type Signal = (typeof SIGNALS)[number];

/** Difficulty of each score under `signal` (higher = harder). */
export function difficulty(scores: SampleScore[], signal: Signal): number[] {
  switch (signal) {
    case 'nll':
      return scores.map((s) => s.nll);
    case 'confidence':
      return scores.map((s) => 1 - s.confidence);
    case 'entropy':
      return scores.map((s) => s.entropy);
    case 'accuracy':
      return scores.map((s) => 1 - s.accuracy);
    case 'mix': {
      const parts = [zscores(scores.map((s) => s.nll)), zscores(scores.map((s) => 1 - s.confidence)), zscores(scores.map((s) => s.entropy))];
      return scores.map((_, i) => (parts[0][i] + parts[1][i] + parts[2][i]) / 3);
    }
  }
}

export function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return x.length ? s / x.length : 0;
}

export function std(x: ArrayLike<number>): number {
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - m) ** 2;
  return x.length ? Math.sqrt(s / x.length) : 0;
}

function zscores(x: number[]): number[] {
  const m = mean(x), s = std(x) || 1;
  return x.map((v) => (v - m) / s);
}

/**
 * The ranks of `x` as quantiles in [0, 1]: the smallest is 0, the largest 1 (ties broken by
 * position, so the order is total and reproducible).
 */
export function quantiles(x: number[]): number[] {
  const order = x.map((_, i) => i).sort((a, b) => x[a] - x[b] || a - b);
  const q = new Array<number>(x.length);
  const d = Math.max(1, x.length - 1);
  order.forEach((i, r) => (q[i] = r / d));
  return q;
}

/**
 * Per-sample statistics seen in training steps, as an exponential moving average of each
 * signal (the free signal of RHO-LOSS-style selection: no extra forward pass). `step` is the
 * last step that saw the sample (0 = never).
 */
export class TrainingStats {
  readonly ema: Float64Array; // (n, 4): nll, entropy, confidence, accuracy
  readonly step: Int32Array; // (n)
  constructor(readonly n: number, readonly alpha = 0.5) {
    this.ema = new Float64Array(n * 4);
    this.step = new Int32Array(n);
  }

  observe(step: number, index: number, s: SampleScore): void {
    const o = index * 4, a = this.step[index] === 0 ? 1 : this.alpha;
    const v = [s.nll, s.entropy, s.confidence, s.accuracy];
    for (let k = 0; k < 4; k++) this.ema[o + k] = a * v[k] + (1 - a) * this.ema[o + k];
    this.step[index] = step;
  }

  /** The EMA as a score (tokens unknown: 0), or null when the sample was never trained on. */
  get(index: number): SampleScore | null {
    if (this.step[index] === 0) return null;
    const o = index * 4;
    return { nll: this.ema[o], entropy: this.ema[o + 1], confidence: this.ema[o + 2], accuracy: this.ema[o + 3], tokens: 0 };
  }

  toJSON(): { alpha: number; ema: number[]; step: number[] } {
    return { alpha: this.alpha, ema: Array.from(this.ema), step: Array.from(this.step) };
  }

  static fromJSON(n: number, j: { alpha: number; ema: number[]; step: number[] }): TrainingStats {
    const t = new TrainingStats(n, j.alpha);
    t.ema.set(j.ema);
    t.step.set(j.step);
    return t;
  }
}
