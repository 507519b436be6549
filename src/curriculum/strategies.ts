// Curriculum strategies: scores in, sample indices out. Pure (no GPU, no files): the training
// loop asks a strategy what to score before a step, hands it the scores, asks which samples to
// train on, and tells it what the step measured. Every random choice comes from the Rng the loop
// passes in, and each strategy's state() serialises into the checkpoint, so a resumed run makes
// exactly the choices of an uninterrupted one.
//
//   random          uniform shuffling, epoch by epoch (the baseline)
//   easy2hard       one fixed order, easiest first, from the initial scores of every sample
//   hard2easy       the same order reversed
//   zpd             every K steps: score a random pool with the current model, keep the samples
//                   "just hard enough" (a window), train the next K steps on it (+ replay ε)
//   random-growing  a random subset growing with competence pacing (Platanios et al. 2019):
//                   c(t) = min(1, sqrt(t·(1 − c0²)/T + c0²)) of the set (the control of Wu, Dyer
//                   and Neyshabur 2021)
//   self-paced      samples whose latest difficulty is below a rising quantile threshold
//   reducible       RHO-LOSS (Mindermann et al. 2022): nll − a reference model's nll, the top
//                   of each scored pool
//
// zpd windows (--zpd-window): `band` a quantile band of the signal over the pool (--zpd-band
// 0.3,0.8 drops the easiest 30% and the hardest 20%); `mean` μ + lo·σ … μ + hi·σ of the signal;
// `learnability` the pool's share (hi − lo) with the largest a·(1 − a) of token accuracy a
// (largest at a = 0.5); `adaptive` a target quantile τ that moves by η·tanh(α·(a − β)) with the
// training accuracy a of the last K steps, and the (hi − lo) share of the pool nearest to it.
import type { Rng } from '../rng.js';
import { difficulty, mean, quantiles, std, type SampleScore, type Signal } from './signals.js';

export const STRATEGIES = ['random', 'easy2hard', 'hard2easy', 'zpd', 'random-growing', 'self-paced', 'reducible'] as const;
export type StrategyName = (typeof STRATEGIES)[number];
export const ZPD_WINDOWS = ['band', 'mean', 'learnability', 'adaptive'] as const;
export type ZpdWindow = (typeof ZPD_WINDOWS)[number];

export interface CurriculumOptions {
  strategy: StrategyName;
  /** training samples: indices 0..n-1 */
  n: number;
  /** samples per optimizer step (batch size × gradient accumulation) */
  perStep: number;
  /** the step budget */
  steps: number;
  /** zpd, self-paced, reducible: re-score every K steps */
  rescoreEvery: number;
  /** samples per re-scoring; 0: ceil(K · perStep / 4), at least 4 · perStep, at most n */
  scorePool: number;
  signal: Signal;
  window: ZpdWindow;
  /** band: quantiles; mean: multiples of σ around μ; learnability, adaptive: hi − lo is the share kept */
  band: [number, number];
  /** share of each step's samples drawn uniformly from the whole set (against forgetting) */
  replay: number;
  /** random-growing: the starting share c0; self-paced: the starting quantile */
  c0: number;
  /** random-growing, self-paced: steps until the whole set is in (0: steps / 2) */
  pacingSteps: number;
  /** adaptive target: step size η, steepness α, target accuracy β */
  eta: number;
  alpha: number;
  beta: number;
  /** reducible: the reference model's nll of every sample */
  reference?: number[];
}

export const CURRICULUM_DEFAULTS = {
  strategy: 'zpd' as StrategyName,
  rescoreEvery: 500,
  scorePool: 0,
  signal: 'nll' as Signal,
  window: 'band' as ZpdWindow,
  band: [0.3, 0.8] as [number, number],
  replay: 0.1,
  c0: 0.1,
  pacingSteps: 0,
  eta: 0.1,
  alpha: 5,
  beta: 0.5,
};

export interface Selection {
  indices: number[];
  /** which of `indices` were uniform replay draws (zpd); absent when none can be */
  replay?: boolean[];
}

/** A window chosen at a re-scoring, as metrics.jsonl and selections.jsonl record it. */
export interface WindowReport {
  /** difficulty bounds of the window, in the signal's units */
  lo: number;
  hi: number;
  size: number;
  pool: number;
  /** the window's dataset indices, sorted */
  members: number[];
  /** the adaptive target quantile, when there is one */
  target?: number;
}

export interface Strategy {
  readonly name: StrategyName;
  /** Samples to score before step `step` (1-based), or null when no scoring is due. */
  wantScores(step: number, rng: Rng): number[] | null;
  /** The scores of the samples wantScores asked for (same order); a window when one was chosen. */
  setScores(step: number, indices: number[], scores: SampleScore[]): WindowReport | null;
  /** The perStep dataset indices to train on at `step`. */
  next(step: number, rng: Rng): Selection;
  /** What the training step measured of the samples it trained on. */
  observe(step: number, indices: number[], scores: SampleScore[]): void;
  state(): unknown;
  restore(state: unknown): void;
}

export function makeStrategy(o: CurriculumOptions): Strategy {
  if (!(o.n > 0)) throw new Error('the curriculum needs at least one training sample');
  switch (o.strategy) {
    case 'random':
      return new RandomOrder(o);
    case 'easy2hard':
    case 'hard2easy':
      return new FixedOrder(o);
    case 'zpd':
      return new Zpd(o);
    case 'random-growing':
      return new RandomGrowing(o);
    case 'self-paced':
      return new SelfPaced(o);
    case 'reducible':
      if (!o.reference || o.reference.length !== o.n) throw new Error("the 'reducible' curriculum needs a reference model's scores (--reference DIR)");
      return new Zpd(o);
  }
}

/** The pool size of a re-scoring. */
export function poolSize(o: Pick<CurriculumOptions, 'n' | 'perStep' | 'rescoreEvery' | 'scorePool'>): number {
  const auto = Math.max(4 * o.perStep, Math.ceil((o.rescoreEvery * o.perStep) / 4));
  return Math.min(o.n, o.scorePool > 0 ? o.scorePool : auto);
}

/** `k` distinct indices of 0..n-1, uniformly (partial Fisher–Yates), in the order drawn. */
export function sampleIndices(n: number, k: number, rng: Rng): number[] {
  if (k >= n) return rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const vi = swapped.get(i) ?? i, vj = swapped.get(j) ?? j;
    swapped.set(j, vi);
    out.push(vj);
  }
  return out;
}

/** A cursor over a list that reshuffles the list each time it runs out (one pass = one epoch). */
class Cycle {
  constructor(public items: number[], public pos = 0, public shuffle = true) {}
  take(k: number, rng: Rng): number[] {
    const out: number[] = [];
    while (out.length < k) {
      if (this.pos === 0 && this.shuffle) rng.shuffle(this.items);
      out.push(this.items[this.pos]);
      this.pos = (this.pos + 1) % this.items.length;
    }
    return out;
  }
  toJSON() {
    return { items: this.items, pos: this.pos };
  }
}

class RandomOrder implements Strategy {
  readonly name = 'random' as const;
  private order: Cycle;
  constructor(private o: CurriculumOptions) {
    this.order = new Cycle(Array.from({ length: o.n }, (_, i) => i));
  }
  wantScores(): null {
    return null;
  }
  setScores(): null {
    return null;
  }
  next(_step: number, rng: Rng): Selection {
    return { indices: this.order.take(this.o.perStep, rng) };
  }
  observe(): void {}
  state() {
    return { order: this.order.toJSON() };
  }
  restore(s: unknown): void {
    const { order } = s as { order: { items: number[]; pos: number } };
    this.order = new Cycle(order.items, order.pos);
  }
}

/** easy2hard / hard2easy: the initial scores of every sample fix the order; the order repeats. */
class FixedOrder implements Strategy {
  readonly name: StrategyName;
  private order: Cycle | null = null;
  constructor(private o: CurriculumOptions) {
    this.name = o.strategy;
  }
  wantScores(): number[] | null {
    return this.order ? null : Array.from({ length: this.o.n }, (_, i) => i);
  }
  setScores(_step: number, indices: number[], scores: SampleScore[]): null {
    const d = difficulty(scores, this.o.signal);
    const sign = this.name === 'easy2hard' ? 1 : -1;
    const order = indices.map((_, k) => k).sort((a, b) => sign * (d[a] - d[b]) || indices[a] - indices[b]).map((k) => indices[k]);
    this.order = new Cycle(order, 0, false);
    return null;
  }
  next(_step: number, rng: Rng): Selection {
    if (!this.order) throw new Error(`${this.name}: next() before the initial scores`);
    return { indices: this.order.take(this.o.perStep, rng) };
  }
  observe(): void {}
  state() {
    return { order: this.order?.toJSON() ?? null };
  }
  restore(s: unknown): void {
    const { order } = s as { order: { items: number[]; pos: number } | null };
    this.order = order ? new Cycle(order.items, order.pos, false) : null;
  }
}

/** zpd (all window modes) and reducible: a window over a freshly scored pool every K steps. */
class Zpd implements Strategy {
  readonly name: StrategyName;
  private window: Cycle | null = null;
  private target: number; // adaptive: the target quantile τ
  private accSum = 0; // adaptive: training accuracy since the last re-scoring
  private accCount = 0;
  constructor(private o: CurriculumOptions) {
    this.name = o.strategy;
    this.target = (o.band[0] + o.band[1]) / 2;
  }

  wantScores(step: number, rng: Rng): number[] | null {
    if (this.window && (step - 1) % this.o.rescoreEvery !== 0) return null;
    return sampleIndices(this.o.n, poolSize(this.o), rng).sort((a, b) => a - b);
  }

  setScores(_step: number, indices: number[], scores: SampleScore[]): WindowReport {
    const o = this.o;
    const [lo, hi] = o.band;
    let d: number[]; // the value the window is cut on
    let keep: number[]; // positions in `indices`
    if (this.name === 'reducible') {
      d = scores.map((s, k) => s.nll - o.reference![indices[k]]);
      const q = quantiles(d);
      keep = inside(q, lo, hi);
    } else if (o.window === 'band') {
      d = difficulty(scores, o.signal);
      const q = quantiles(d);
      keep = inside(q, lo, hi);
    } else if (o.window === 'mean') {
      d = difficulty(scores, o.signal);
      const m = mean(d), s = std(d);
      keep = inside(d, m + lo * s, m + hi * s);
    } else if (o.window === 'learnability') {
      d = scores.map((s) => s.accuracy * (1 - s.accuracy));
      const q = quantiles(d);
      keep = inside(q, 1 - (hi - lo), 1); // the largest a·(1 − a)
    } else {
      // adaptive: move the target with the accuracy measured in training since the last window
      if (this.accCount > 0) {
        const a = this.accSum / this.accCount;
        this.target = Math.min(1, Math.max(0, this.target + o.eta * Math.tanh(o.alpha * (a - o.beta))));
      }
      this.accSum = this.accCount = 0;
      d = difficulty(scores, o.signal);
      const q = quantiles(d);
      const half = (hi - lo) / 2;
      const c = Math.min(1 - half, Math.max(half, this.target));
      keep = inside(q, c - half, c + half);
    }
    if (keep.length === 0) keep = d.map((_, k) => k); // a degenerate pool: keep everything
    const members = keep.map((k) => indices[k]).sort((a, b) => a - b);
    let dlo = Infinity, dhi = -Infinity;
    for (const k of keep) (dlo = Math.min(dlo, d[k])), (dhi = Math.max(dhi, d[k]));
    this.window = new Cycle([...members]);
    return { lo: dlo, hi: dhi, size: members.length, pool: indices.length, members, ...(o.window === 'adaptive' && this.name === 'zpd' ? { target: this.target } : {}) };
  }

  next(_step: number, rng: Rng): Selection {
    if (!this.window) throw new Error(`${this.name}: next() before the first window`);
    const indices: number[] = [], replay: boolean[] = [];
    for (let i = 0; i < this.o.perStep; i++) {
      const r = this.o.replay > 0 && rng.next() < this.o.replay;
      indices.push(r ? rng.int(this.o.n) : this.window.take(1, rng)[0]);
      replay.push(r);
    }
    return { indices, replay };
  }

  observe(_step: number, _indices: number[], scores: SampleScore[]): void {
    for (const s of scores) (this.accSum += s.accuracy), this.accCount++;
  }

  state() {
    return { window: this.window?.toJSON() ?? null, target: this.target, accSum: this.accSum, accCount: this.accCount };
  }
  restore(s: unknown): void {
    const j = s as { window: { items: number[]; pos: number } | null; target: number; accSum: number; accCount: number };
    this.window = j.window ? new Cycle(j.window.items, j.window.pos) : null;
    this.target = j.target;
    this.accSum = j.accSum;
    this.accCount = j.accCount;
  }
}

/** Positions k with lo ≤ x[k] ≤ hi. */
function inside(x: number[], lo: number, hi: number): number[] {
  const out: number[] = [];
  x.forEach((v, k) => v >= lo && v <= hi && out.push(k));
  return out;
}

/** Competence c(t) = min(1, sqrt(t·(1 − c0²)/T + c0²)) (Platanios et al. 2019). */
export function competence(t: number, T: number, c0: number): number {
  return Math.min(1, Math.sqrt((t * (1 - c0 * c0)) / T + c0 * c0));
}

class RandomGrowing implements Strategy {
  readonly name = 'random-growing' as const;
  private perm: number[] | null = null;
  constructor(private o: CurriculumOptions) {}
  wantScores(): null {
    return null;
  }
  setScores(): null {
    return null;
  }
  next(step: number, rng: Rng): Selection {
    this.perm ??= rng.shuffle(Array.from({ length: this.o.n }, (_, i) => i));
    const T = this.o.pacingSteps > 0 ? this.o.pacingSteps : Math.max(1, this.o.steps / 2);
    const m = Math.min(this.o.n, Math.max(this.o.perStep, Math.ceil(competence(step, T, this.o.c0) * this.o.n)));
    return { indices: sampleIndices(m, this.o.perStep, rng).map((k) => this.perm![k]) };
  }
  observe(): void {}
  state() {
    return { perm: this.perm };
  }
  restore(s: unknown): void {
    this.perm = (s as { perm: number[] | null }).perm;
  }
}

/**
 * self-paced: the latest difficulty of every sample (initial scores, then each re-scored pool and
 * each training step's measurement); samples below the q(t) quantile are eligible, with q rising
 * linearly from c0 to 1 over the pacing steps. The `mix` signal (z-scores over a scored set)
 * has no meaning for one training batch, so self-paced ranks by nll then.
 */
class SelfPaced implements Strategy {
  readonly name = 'self-paced' as const;
  private latest: number[] | null = null;
  constructor(private o: CurriculumOptions) {}
  wantScores(step: number, rng: Rng): number[] | null {
    if (!this.latest) return Array.from({ length: this.o.n }, (_, i) => i);
    if ((step - 1) % this.o.rescoreEvery !== 0) return null;
    return sampleIndices(this.o.n, poolSize(this.o), rng).sort((a, b) => a - b);
  }
  setScores(_step: number, indices: number[], scores: SampleScore[]): null {
    this.latest ??= new Array<number>(this.o.n).fill(0);
    const d = difficulty(scores, this.o.signal === 'mix' ? 'nll' : this.o.signal);
    indices.forEach((i, k) => (this.latest![i] = d[k]));
    return null;
  }
  next(step: number, rng: Rng): Selection {
    if (!this.latest) throw new Error('self-paced: next() before the initial scores');
    const T = this.o.pacingSteps > 0 ? this.o.pacingSteps : Math.max(1, this.o.steps / 2);
    const q = Math.min(1, this.o.c0 + ((1 - this.o.c0) * step) / T);
    const m = Math.min(this.o.n, Math.max(this.o.perStep, Math.ceil(q * this.o.n)));
    const l = this.latest;
    const eligible = l.map((_, i) => i).sort((a, b) => l[a] - l[b] || a - b).slice(0, m);
    return { indices: sampleIndices(eligible.length, this.o.perStep, rng).map((k) => eligible[k]) };
  }
  observe(_step: number, indices: number[], scores: SampleScore[]): void {
    if (!this.latest) return;
    const d = difficulty(scores, this.o.signal === 'mix' ? 'nll' : this.o.signal);
    indices.forEach((i, k) => (this.latest![i] = d[k]));
  }
  state() {
    return { latest: this.latest };
  }
  restore(s: unknown): void {
    this.latest = (s as { latest: number[] | null }).latest;
  }
}
