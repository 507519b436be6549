// The curriculum strategies as pure functions: scores in, indices out (no GPU).
import { describe, expect, it } from 'vitest';
import { difficulty, quantiles, type SampleScore } from '../src/curriculum/signals.js';
import { competence, CURRICULUM_DEFAULTS, makeStrategy, poolSize, sampleIndices, type CurriculumOptions, type Strategy } from '../src/curriculum/strategies.js';
import { Rng } from '../src/rng.js';

const N = 200;
/** Sample i: nll i/20, accuracy falling with i, so difficulty order = index order. */
const truth = (i: number): SampleScore => ({ nll: i / 20, entropy: 1 + i / 100, confidence: 1 - i / (2 * N), accuracy: 1 - i / N, tokens: 5 });

function opts(o: Partial<CurriculumOptions>): CurriculumOptions {
  return { ...CURRICULUM_DEFAULTS, n: N, perStep: 8, steps: 100, ...o };
}

/** Drive a strategy like the loop does for `steps` steps; returns the indices of every step. */
function drive(s: Strategy, steps: number, rng: Rng, from = 1, scoreOf = truth) {
  const out: number[][] = [];
  const windows: number[][] = [];
  for (let step = from; step < from + steps; step++) {
    const want = s.wantScores(step, rng);
    if (want) {
      const w = s.setScores(step, want, want.map(scoreOf));
      if (w) windows.push(w.members);
    }
    const sel = s.next(step, rng);
    out.push(sel.indices);
    s.observe(step, sel.indices, sel.indices.map(scoreOf));
  }
  return { steps: out, windows };
}

describe('signals', () => {
  it('difficulty per signal, and quantiles with ties broken by position', () => {
    const sc = [truth(0), truth(10), truth(5)];
    expect(difficulty(sc, 'nll')).toEqual([0, 0.5, 0.25]);
    expect(difficulty(sc, 'accuracy')).toEqual([0, 10 / N, 5 / N].map((x) => 1 - (1 - x)));
    const mix = difficulty(sc, 'mix');
    expect(mix[0]).toBeLessThan(mix[2]);
    expect(mix[2]).toBeLessThan(mix[1]);
    expect(quantiles([3, 1, 2, 1])).toEqual([1, 0, 2 / 3, 1 / 3]);
  });

  it('sampleIndices draws distinct indices uniformly', () => {
    const rng = new Rng(1);
    const hits = new Array(10).fill(0);
    for (let t = 0; t < 2000; t++) {
      const s = sampleIndices(10, 3, rng);
      expect(new Set(s).size).toBe(3);
      s.forEach((i) => hits[i]++);
    }
    for (const h of hits) expect(h).toBeGreaterThan(500); // 600 expected each
  });
});

describe('strategies', () => {
  it('random: every sample exactly once per epoch', () => {
    const s = makeStrategy(opts({ strategy: 'random' }));
    const { steps } = drive(s, 50, new Rng(2)); // 50 × 8 = 400 = two epochs
    const flat = steps.flat();
    expect([...flat.slice(0, N)].sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
    expect([...flat.slice(N)].sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
    expect(flat.slice(0, N)).not.toEqual(flat.slice(N)); // reshuffled
  });

  it('easy2hard / hard2easy: the initial scores fix one order', () => {
    const scoreOf = (i: number) => truth((i * 37) % N); // a permuted difficulty
    for (const name of ['easy2hard', 'hard2easy'] as const) {
      const s = makeStrategy(opts({ strategy: name }));
      const { steps } = drive(s, 25, new Rng(3), 1, scoreOf);
      const d = steps.flat().map((i) => scoreOf(i).nll);
      for (let k = 1; k < d.length; k++) expect(name === 'easy2hard' ? d[k] >= d[k - 1] : d[k] <= d[k - 1]).toBe(true);
    }
  });

  it('zpd band: re-scores every K steps, the window is the 30–80% quantile band, the steps draw from it (+ replay)', () => {
    const s = makeStrategy(opts({ strategy: 'zpd', rescoreEvery: 10, scorePool: 100, replay: 0 }));
    const { steps, windows } = drive(s, 30, new Rng(4));
    expect(windows.length).toBe(3); // steps 1, 11, 21
    for (const w of windows) {
      expect(w.length).toBe(50); // quantiles 0.3..0.8 of 100 scored: ranks 30..79
    }
    steps.slice(0, 10).flat().forEach((i) => expect(windows[0]).toContain(i));
    // the band drops the easiest and hardest of each pool
    const pool = windows[0].map((i) => truth(i).nll);
    expect(Math.min(...pool)).toBeGreaterThan(0);
    // replay: about ε of the draws are uniform over the set
    const r = makeStrategy(opts({ strategy: 'zpd', rescoreEvery: 10, scorePool: 100, replay: 0.25 }));
    const rng = new Rng(5);
    r.setScores(1, r.wantScores(1, rng)!, r.wantScores(1, new Rng(5))!.map(truth));
    let replays = 0;
    for (let t = 0; t < 100; t++) replays += r.next(2, rng).replay!.filter(Boolean).length;
    expect(replays / 800).toBeGreaterThan(0.18);
    expect(replays / 800).toBeLessThan(0.32);
  });

  it('zpd mean, learnability and adaptive windows', () => {
    const pool = [...Array(N).keys()];
    const mean = makeStrategy(opts({ strategy: 'zpd', window: 'mean', band: [-0.5, 0.5] }));
    const m = mean.setScores(1, pool, pool.map(truth))!;
    const d = pool.map((i) => truth(i).nll), mu = d.reduce((a, b) => a + b) / N;
    const sd = Math.sqrt(d.reduce((a, b) => a + (b - mu) ** 2, 0) / N);
    for (const i of m.members) expect(Math.abs(truth(i).nll - mu)).toBeLessThanOrEqual(0.5 * sd + 1e-12);
    // learnability: a·(1 − a) is largest at accuracy 0.5, i.e. around index N/2
    const learn = makeStrategy(opts({ strategy: 'zpd', window: 'learnability', band: [0, 0.2] }));
    const l = learn.setScores(1, pool, pool.map(truth))!;
    expect(l.members.length).toBe(40); // the top 20% by a(1 − a)
    for (const i of l.members) expect(Math.abs(i - N / 2)).toBeLessThanOrEqual(21);
    // adaptive: training accuracy above β moves the target up (harder samples)
    const ad = makeStrategy(opts({ strategy: 'zpd', window: 'adaptive', band: [0.4, 0.6] }));
    const first = ad.setScores(1, pool, pool.map(truth))!;
    ad.observe(2, [0, 1], [{ ...truth(0), accuracy: 0.9 }, { ...truth(1), accuracy: 0.9 }]);
    const second = ad.setScores(11, pool, pool.map(truth))!;
    expect(second.target!).toBeGreaterThan(first.target!);
    expect(Math.min(...second.members)).toBeGreaterThan(Math.min(...first.members));
  });

  it('random-growing follows competence pacing; self-paced admits harder samples as its threshold rises', () => {
    expect(competence(0, 100, 0.1)).toBeCloseTo(0.1, 12);
    expect(competence(100, 100, 0.1)).toBe(1);
    const g = makeStrategy(opts({ strategy: 'random-growing', steps: 100, pacingSteps: 100 }));
    const rng = new Rng(6);
    const early = new Set<number>(), late = new Set<number>();
    for (let t = 1; t <= 5; t++) g.next(t, rng).indices.forEach((i) => early.add(i));
    for (let t = 95; t <= 100; t++) g.next(t, rng).indices.forEach((i) => late.add(i));
    expect(early.size).toBeLessThanOrEqual(Math.ceil(competence(5, 100, 0.1) * N));
    const sp = makeStrategy(opts({ strategy: 'self-paced', steps: 100, pacingSteps: 100, c0: 0.2, rescoreEvery: 1000 }));
    const { steps } = drive(sp, 100, new Rng(7));
    expect(Math.max(...steps[0])).toBeLessThan(Math.ceil((0.2 + 0.8 / 100) * N)); // the easiest ~20% (difficulty = index)
    expect(Math.max(...steps.slice(90).flat())).toBeGreaterThan(0.8 * N);
  });

  it('reducible: the window is the samples with the largest nll − reference nll', () => {
    const reference = [...Array(N)].map((_, i) => (i % 2 ? truth(i).nll : -1)); // odd samples: nothing to reduce
    const s = makeStrategy(opts({ strategy: 'reducible', reference, band: [0.5, 1] }));
    const pool = [...Array(N).keys()];
    const w = s.setScores(1, pool, pool.map(truth))!;
    expect(w.members.every((i) => i % 2 === 0)).toBe(true);
  });

  it('state() and restore() continue a strategy exactly where it was', () => {
    for (const strategy of ['random', 'easy2hard', 'zpd', 'random-growing', 'self-paced'] as const) {
      const o = opts({ strategy, rescoreEvery: 7, scorePool: 50 });
      const a = makeStrategy(o), rngA = new Rng(8);
      const whole = drive(a, 30, rngA).steps;
      const b = makeStrategy(o), rngB = new Rng(8);
      const head = drive(b, 13, rngB).steps;
      const saved = JSON.parse(JSON.stringify(b.state())); // as a checkpoint carries it
      const c = makeStrategy(o);
      c.restore(saved);
      const tail = drive(c, 17, new Rng(rngB.state), 14).steps;
      expect([...head, ...tail], strategy).toEqual(whole);
    }
  });

  it('the auto pool is a quarter of the next K steps\' draws, at least four steps\' worth, at most the set', () => {
    expect(poolSize({ n: 10_000, perStep: 8, rescoreEvery: 500, scorePool: 0 })).toBe(1000);
    expect(poolSize({ n: 10_000, perStep: 8, rescoreEvery: 2, scorePool: 0 })).toBe(32);
    expect(poolSize({ n: 100, perStep: 8, rescoreEvery: 500, scorePool: 0 })).toBe(100);
    expect(poolSize({ n: 10_000, perStep: 8, rescoreEvery: 500, scorePool: 123 })).toBe(123);
  });
});
