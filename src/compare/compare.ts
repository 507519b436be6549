// zpd-wgpu compare: the curriculum experiment. Every arm (random, easy2hard, hard2easy, zpd,
// random-growing, and any variant such as zpd:learnability) trains the same model with the same
// LR schedule, batch and step budget, once per seed; the held-out loss curve, exact match per
// bucket and level, scoring time and tokens of every run go into results.json; report.md and
// SVG charts compare each arm with random, paired by seed (paired bootstrap 95% intervals), on
// steps, tokens and wall time (scoring included) to reach random's final held-out loss.
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import type { DataRecord } from '../data/read.js';
import { deriveSeed, Rng } from '../rng.js';
import { sampleIndices, STRATEGIES, ZPD_WINDOWS, type StrategyName } from '../curriculum/strategies.js';
import { SIGNALS } from '../curriculum/signals.js';
import type { TrainSummary } from '../train/loop.js';
import { exactMatch, groupKeys, type ExactMatchResult } from '../train/eval.js';
import { resolveTrainOptions, type TrainOptions } from '../train/options.js';
import { embeddedPath, fileHash, modelTokenizer, openScorer, readRecords, train } from '../train/train.js';
import { mean, pairedBootstrap, stepsToTarget, type CurvePoint, type Interval } from './stats.js';
import { nodeFs, nodePath } from '../platform/node.js';

export interface Arm {
  /** as given: "zpd", "zpd:learnability", "zpd:band=0.2-0.7:replay=0.2" */
  label: string;
  curriculum: StrategyName;
  overrides: Partial<TrainOptions>;
}

export const DEFAULT_ARMS = ['random', 'easy2hard', 'hard2easy', 'zpd', 'random-growing'];

/** Parse "name[:key=value…]" (keys: window, band=LO-HI, signal, replay, pool, rescore; or a bare window name). */
export function parseArm(spec: string): Arm {
  const [name, ...parts] = spec.split(':');
  if (!(STRATEGIES as readonly string[]).includes(name)) throw new UsageError(`--arms: '${name}' is not a curriculum (${STRATEGIES.join(', ')})`);
  const o: Partial<TrainOptions> = {};
  for (const p of parts) {
    const [k, v] = p.split('=');
    const num = (x: string | undefined) => {
      const n = Number(x);
      if (x === undefined || !Number.isFinite(n)) throw new UsageError(`--arms ${spec}: '${p}' needs a number`);
      return n;
    };
    if (v === undefined && (ZPD_WINDOWS as readonly string[]).includes(k)) o.zpdWindow = k as TrainOptions['zpdWindow'];
    else if (k === 'window' && (ZPD_WINDOWS as readonly string[]).includes(v)) o.zpdWindow = v as TrainOptions['zpdWindow'];
    else if (k === 'band') {
      const [lo, hi] = (v ?? '').split('-').map(Number);
      if (!(lo < hi)) throw new UsageError(`--arms ${spec}: band=LO-HI with LO < HI, e.g. band=0.3-0.8`);
      o.zpdBand = [lo, hi];
    } else if (k === 'signal' && (SIGNALS as readonly string[]).includes(v)) o.zpdSignal = v as TrainOptions['zpdSignal'];
    else if (k === 'replay') o.replay = num(v);
    else if (k === 'pool') o.scorePool = num(v);
    else if (k === 'rescore') o.rescoreEvery = num(v);
    else throw new UsageError(`--arms ${spec}: unknown setting '${p}' (window=${ZPD_WINDOWS.join('|')}, band=LO-HI, signal=${SIGNALS.join('|')}, replay=X, pool=N, rescore=K)`);
  }
  return { label: spec, curriculum: name as StrategyName, overrides: o };
}

export interface CompareOptions {
  quick: boolean;
  seeds: number;
  /** the first seed (seeds first…first+seeds−1): a compare split over processes or machines */
  firstSeed?: number;
  arms: string[];
  steps: number;
  out: string;
  model: string | null;
  data: string | null;
  evalData: string | null;
  /** held-out samples each evaluation scores (the same subset for every arm of a seed) */
  evalSamples: number;
  evals: number;
  /** held-out records greedy-generated for exact match after each run */
  exactMatchSamples: number;
  /** everything else a run takes (batch, LR, LoRA, rescore-every, …) */
  train: Partial<TrainOptions>;
  /** reuse runs already complete in --out with the same settings */
  resume: boolean;
  /** train on a seeded subset of this many records (0: all) */
  trainSamples: number;
}

export const COMPARE_DEFAULTS = {
  full: { seeds: 5, steps: 150, evalSamples: 100, evals: 8, exactMatchSamples: 150, trainSamples: 0 },
  quick: { seeds: 2, steps: 12, evalSamples: 24, evals: 3, exactMatchSamples: 24, trainSamples: 400 },
};

/** The run settings every arm shares, unless the caller says otherwise. */
export const COMPARE_TRAIN: Partial<TrainOptions> = { batchSize: 8, seqLen: 64, lr: 5e-3, warmup: 0.05, loraR: 16, loraAlpha: 32, rescoreEvery: 25 };

export interface RunResult {
  arm: string;
  seed: number;
  folder: string;
  curve: CurvePoint[];
  /** per evaluated step: tokens trained on and seconds of training + scoring so far */
  cost: { step: number; tokens: number; seconds: number }[];
  finalLoss: number;
  exactMatch: { rate: number; groups: ExactMatchResult['groups'] } | null;
  scoringSeconds: number;
  trainSeconds: number;
  scoringShare: number;
  tokens: number;
}

export interface ArmSummary {
  arm: string;
  reached: number;
  runs: number;
  steps: (number | null)[];
  tokens: (number | null)[];
  seconds: (number | null)[];
  /** arm − random, paired by seed; unreached runs count as the budget (a lower bound for them) */
  stepsDelta: Interval;
  tokensDelta: Interval;
  secondsDelta: Interval;
  finalLoss: number;
  finalLossDelta: Interval;
  exactMatch: number;
  exactMatchDelta: Interval;
  scoringShare: number;
  tokensTrained: number;
}

export interface CompareResult {
  settings: Record<string, unknown>;
  machine: Record<string, unknown>;
  targets: Record<number, number>;
  runs: RunResult[];
  arms: ArmSummary[];
  groups: string[];
  /** The GPU's peak allocation over the whole compare (null on the wasm backend). */
  peakBytes: number | null;
  seconds: number;
}

type Log = (line: string) => void;

/** Run every arm for every seed and summarise. Files are written by writeReport (report.ts). */
export async function runCompare(o: CompareOptions, gpu: Gpu | undefined, log: Log = () => {}): Promise<CompareResult> {
  const t0 = performance.now();
  const arms = o.arms.map(parseArm);
  if (!arms.some((a) => a.label === 'random')) throw new UsageError("--arms must include 'random': its final held-out loss is every arm's target");
  if (new Set(arms.map((a) => a.label)).size !== arms.length) throw new UsageError('--arms lists an arm twice');
  const { writeFile, mkdir, readFile } = await nodeFs();
  const { join, resolve } = await nodePath();
  const out = resolve(o.out);
  await mkdir(out, { recursive: true });

  // one held-out split for every run, written beside the results
  const modelDir = o.model ?? (await embeddedPath('model'));
  const { tok } = await modelTokenizer(modelDir);
  // the embedded model never saw chat-template tokens in pretraining: plain prompts, unless asked
  const shared: Partial<TrainOptions> = { ...(o.model === null && o.train.chatTemplate === undefined ? { chatTemplate: 'off' as const } : {}), ...o.train };
  const base = resolveTrainOptions({ ...shared, data: 'x' });
  const trainFile = o.data ?? (await embeddedPath('data/train.jsonl'));
  let evalFile = o.evalData ?? (o.data === null ? await embeddedPath('data/eval.jsonl') : null);
  if (!evalFile) {
    const text = (await readFile(trainFile, 'utf8')).split('\n').filter((l) => l.trim());
    const k = Math.max(1, Math.round(base.evalSplit * text.length));
    const held = new Set(sampleIndices(text.length, k, new Rng(deriveSeed(0, 3))));
    await writeFile(join(out, 'train.jsonl'), text.filter((_, i) => !held.has(i)).join('\n') + '\n');
    await writeFile(join(out, 'heldout.jsonl'), text.filter((_, i) => held.has(i)).join('\n') + '\n');
    evalFile = join(out, 'heldout.jsonl');
  }
  let dataFile = o.data && !o.evalData ? join(out, 'train.jsonl') : trainFile;
  if (o.trainSamples > 0) {
    const text = (await readFile(dataFile, 'utf8')).split('\n').filter((l) => l.trim());
    if (text.length > o.trainSamples) {
      const keep = new Set(sampleIndices(text.length, o.trainSamples, new Rng(deriveSeed(0, 6))));
      dataFile = join(out, 'train-subset.jsonl');
      await writeFile(dataFile, text.filter((_, i) => keep.has(i)).join('\n') + '\n');
    }
  }
  const evalRecords: DataRecord[] = (await readRecords(evalFile, tok, base)).records;
  const emIds = sampleIndices(evalRecords.length, Math.min(o.exactMatchSamples, evalRecords.length), new Rng(deriveSeed(0, 4))).sort((a, b) => a - b);
  const emRecords = emIds.map((i) => evalRecords[i]);
  // report exact match per bucket:level when the records have both fields, else per whichever they have
  const both = emRecords.some((r) => r.level !== undefined && r.bucket !== undefined);
  const groups = [...new Set(emRecords.flatMap((r) => groupKeys(r)))].filter((g) => !both || g.includes(':')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));

  const runs: RunResult[] = [];
  const total = o.seeds * arms.length;
  const initialScores = {}; // the starting model's scores of the whole set, computed once (see TrainHooks)
  const first = o.firstSeed ?? 1;
  for (let s = first; s < first + o.seeds; s++) {
    for (const arm of arms) {
      const folder = join(out, 'runs', `${arm.label.replace(/[^A-Za-z0-9=.-]+/g, '_')}-seed${s}`);
      const opts: Partial<TrainOptions> = {
        ...shared, ...arm.overrides, model: o.model, data: dataFile, evalData: evalFile, curriculum: arm.curriculum, seed: s, steps: o.steps,
        evalEvery: Math.max(1, Math.round(o.steps / o.evals)), evalSamples: o.evalSamples, saveEvery: o.steps, out: folder, overwrite: true,
      };
      const done = o.resume ? await reusable(folder, opts) : null;
      const label = `[${runs.length + 1}/${total}] ${arm.label} seed ${s}`;
      let summary: TrainSummary;
      if (done) {
        summary = done;
        log(`${label}: reusing ${folder}`);
      } else {
        const ts = performance.now();
        summary = await train(opts, { gpu, initialScores });
        log(`${label}: final held-out loss ${summary.after?.loss.toFixed(4)}, ${((performance.now() - ts) / 1000).toFixed(0)} s (scoring ${(100 * summary.scoringShare).toFixed(0)}%)`);
      }
      const em = await cachedExactMatch(folder, emIds, done !== null, () => runExactMatch(gpu, { model: o.model, backend: o.train.backend }, folder, emRecords));
      const metrics = (await readFile(join(folder, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
      runs.push(collect(arm.label, s, folder, metrics, summary, em));
    }
  }

  // the target of each seed: random's final held-out loss
  const targets: Record<number, number> = {};
  for (const r of runs) if (r.arm === 'random') targets[r.seed] = r.finalLoss;
  const seeds = [...Array(o.seeds)].map((_, i) => i + first);
  const of = (arm: string) => seeds.map((s) => runs.find((r) => r.arm === arm && r.seed === s)!);
  const at = (r: RunResult, key: 'tokens' | 'seconds'): number | null => {
    const step = stepsToTarget(r.curve, targets[r.seed]);
    return step === null ? null : (r.cost.find((c) => c.step === step)?.[key] ?? null);
  };
  const budgetOf = (r: RunResult, key: 'step' | 'tokens' | 'seconds') => {
    const last = r.cost[r.cost.length - 1];
    return key === 'step' ? o.steps : last[key];
  };
  const rnd = of('random');
  const summaries: ArmSummary[] = arms.map((a) => {
    const rs = of(a.label);
    const steps = rs.map((r) => stepsToTarget(r.curve, targets[r.seed]));
    const tokens = rs.map((r) => at(r, 'tokens')), seconds = rs.map((r) => at(r, 'seconds'));
    const filled = (xs: (number | null)[], runsOf: RunResult[], key: 'step' | 'tokens' | 'seconds') => xs.map((x, i) => x ?? budgetOf(runsOf[i], key));
    const rSteps = rnd.map((r) => stepsToTarget(r.curve, targets[r.seed]));
    const emA = rs.map((r) => r.exactMatch?.rate ?? NaN), emR = rnd.map((r) => r.exactMatch?.rate ?? NaN);
    return {
      arm: a.label, reached: steps.filter((x) => x !== null).length, runs: rs.length, steps, tokens, seconds,
      stepsDelta: pairedBootstrap(filled(steps, rs, 'step'), filled(rSteps, rnd, 'step')),
      tokensDelta: pairedBootstrap(filled(tokens, rs, 'tokens'), filled(rnd.map((r) => at(r, 'tokens')), rnd, 'tokens')),
      secondsDelta: pairedBootstrap(filled(seconds, rs, 'seconds'), filled(rnd.map((r) => at(r, 'seconds')), rnd, 'seconds')),
      finalLoss: mean(rs.map((r) => r.finalLoss)),
      finalLossDelta: pairedBootstrap(rs.map((r) => r.finalLoss), rnd.map((r) => r.finalLoss)),
      exactMatch: mean(emA), exactMatchDelta: pairedBootstrap(emA, emR),
      scoringShare: mean(rs.map((r) => r.scoringShare)), tokensTrained: mean(rs.map((r) => r.tokens)),
    };
  });
  const { deviceSummary } = await import('./report.js');
  return {
    settings: { ...o, train: undefined, arms: arms.map((a) => a.label), model: modelDir, data: dataFile, evalData: evalFile, run: { ...base, data: dataFile, evalData: evalFile, out: null } },
    machine: await deviceSummary(gpu), targets, runs, arms: summaries, groups, peakBytes: gpu ? gpu.memory.peak : null, seconds: (performance.now() - t0) / 1000,
  };
}

/** A run folder that already holds a finished run with these settings, as its summary. */
async function reusable(folder: string, opts: Partial<TrainOptions>): Promise<TrainSummary | null> {
  const { readFile } = await nodeFs();
  try {
    const run = JSON.parse(await readFile(`${folder}/run.json`, 'utf8'));
    const want = resolveTrainOptions(opts);
    // the same settings and the same data: a run made in another folder and copied here
    // (--first-seed) names other paths (its --out, a subset file beside it), so files go by hash
    const same = { overwrite: true, out: want.out, data: want.data, evalData: want.evalData };
    if (run.summary?.status !== 'done' || JSON.stringify({ ...run.options, ...same }) !== JSON.stringify(want)) return null;
    const hash = async (f: string | null) => (f === null ? null : fileHash(f));
    if (run.inputs?.hashes?.data !== (await hash(want.data)) || (run.inputs?.hashes?.evalData ?? null) !== (await hash(want.evalData))) return null;
    return run.summary as TrainSummary;
  } catch {
    return null;
  }
}

/**
 * A run's exact match, kept in its folder (exact-match.json, with the held-out record indices it
 * covers) so that --resume, or runs gathered from several processes, need not generate again;
 * a run trained now always generates (its folder may hold a previous run's file).
 */
async function cachedExactMatch(folder: string, ids: number[], reused: boolean, compute: () => Promise<RunResult['exactMatch']>): Promise<RunResult['exactMatch']> {
  const { readFile } = await nodeFs();
  const file = `${folder}/exact-match.json`;
  if (reused) {
    try {
      const kept = JSON.parse(await readFile(file, 'utf8'));
      if (JSON.stringify(kept.ids) === JSON.stringify(ids)) return kept.result;
    } catch {
      // absent or unreadable: generate
    }
  }
  const result = await compute();
  const { writeFileAtomic } = await import('../io/safetensors.js');
  await writeFileAtomic(file, [JSON.stringify({ ids, result }) + '\n']);
  return result;
}

async function runExactMatch(gpu: Gpu | undefined, m: { model: string | null; backend?: TrainOptions['backend'] }, folder: string, records: DataRecord[]): Promise<RunResult['exactMatch']> {
  if (records.length === 0 || records.some((r) => !r.prompt)) return null;
  const s = await openScorer({ ...m, adapter: folder, weights: 'auto' }, gpu);
  try {
    const em = await exactMatch(s.model, s.tok, records, s.stopIds);
    return { rate: em.rate, groups: em.groups };
  } finally {
    s.backend.dispose();
  }
}

type Metric = { type: string; step: number; loss: number; inputTokens?: number; seconds?: number; scoringSeconds?: number };

function collect(arm: string, seed: number, folder: string, metrics: Metric[], summary: TrainSummary, em: RunResult['exactMatch']): RunResult {
  const curve: CurvePoint[] = [], cost: RunResult['cost'] = [];
  let tokens = 0, seconds = 0, scoring = 0;
  for (const m of metrics) {
    if (m.type === 'step') (tokens += m.inputTokens ?? 0), (seconds += m.seconds ?? 0), (scoring = m.scoringSeconds ?? scoring);
    if (m.type === 'eval' && !curve.some((p) => p.step === m.step)) {
      curve.push({ step: m.step, loss: m.loss });
      cost.push({ step: m.step, tokens, seconds: seconds + scoring });
    }
  }
  return {
    arm, seed, folder, curve, cost, finalLoss: summary.after?.loss ?? NaN, exactMatch: em, tokens,
    scoringSeconds: summary.seconds.scoring, trainSeconds: summary.seconds.train, scoringShare: summary.scoringShare,
  };
}
