// zpd-wgpu compare: the curriculum experiment (src/compare/), report and charts out.
import { UsageError } from '../src/errors.js';
import { COMPARE_DEFAULTS, COMPARE_TRAIN, DEFAULT_ARMS, runCompare, type CompareOptions } from '../src/compare/compare.js';
import { writeReport } from '../src/compare/report.js';
import { parseTrainArgs } from '../src/train/options.js';
import { gpuForBackend } from './gpu.js';

const F = COMPARE_DEFAULTS.full, Q = COMPARE_DEFAULTS.quick;
export const summary = 'the curriculum experiment: random vs easy2hard vs hard2easy vs zpd vs controls, with 95% intervals';
export const usage = `Usage: zpd-wgpu compare [--quick] [--seeds N] [--arms A,B,…] [--steps N] [--out DIR]
                        [--model DIR] [--data FILE] [--eval-data FILE] [train options]

Trains every arm once per seed (same model, LR schedule, batch and step budget), then compares
each with random, paired by seed: steps, tokens and wall time (scoring included) to reach
random's final held-out loss, final held-out loss, exact match by bucket and level, with paired
bootstrap 95% intervals. Writes report.md, results.json and SVG charts into --out, and every
run's folder under runs/. With no --model/--data: the embedded model and graded set; with only
--data, a seeded held-out split of it.

  --quick                  ${Q.seeds} seeds × ${Q.steps} steps on ${Q.trainSamples} training records, small evaluations: a few minutes
  --seeds N                seeds per arm [${F.seeds}]
  --first-seed S           run seeds S…S+N−1 [1]: split a compare over processes or machines,
                           then copy every runs/ folder into one --out and run it with --resume
  --arms A,B,…             [${DEFAULT_ARMS.join(',')}]; variants as name:setting, e.g.
                           zpd:learnability, zpd:adaptive, zpd:mean:band=-0.5-1, zpd:band=0.2-0.7,
                           zpd:signal=entropy, zpd:replay=0.3, zpd:pool=200, zpd:rescore=10,
                           self-paced, reducible (needs --reference DIR)
  --steps N                step budget of every run [${F.steps}]
  --evals N                held-out evaluations per run (the loss curve) [${F.evals}]
  --eval-samples N         held-out samples per evaluation [${F.evalSamples}]
  --exact-match-samples N  held-out records generated for exact match after each run [${F.exactMatchSamples}]
  --train-samples N        train on a seeded subset of N records (0: all) [${F.trainSamples}]
  --out DIR                [zpd-compare]
  --resume                 reuse runs in --out that finished with the same settings
  --report-only            write report.md and the charts again from --out's results.json
  train options            any of zpd-wgpu train's (defaults here: ${Object.entries(COMPARE_TRAIN).map(([k, v]) => `${k} ${v}`).join(', ')})`;

export async function run(argv: string[]): Promise<number> {
  const own: Record<string, string | boolean> = {};
  const rest: string[] = [];
  const valued = new Set(['seeds', 'first-seed', 'arms', 'steps', 'out', 'evals', 'eval-samples', 'exact-match-samples', 'train-samples']);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].replace(/^--/, '').split(/=(.*)/s, 2);
    if (flag === 'quick' || flag === 'resume' || flag === 'report-only') own[flag] = true;
    else if (valued.has(flag)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`--${flag} needs a value`);
      own[flag] = v;
    } else rest.push(argv[i]);
  }
  if (own['report-only']) {
    // render report.md and the charts again from --out's results.json (e.g. after a change to the report)
    const { readFile } = await import('node:fs/promises');
    const dir = own.out ? String(own.out) : 'zpd-compare';
    const r = JSON.parse(await readFile(`${dir}/results.json`, 'utf8').catch(() => { throw new UsageError(`--report-only: ${dir}/results.json not found`); }));
    console.log(`wrote ${(await writeReport(r, dir, r.command ?? 'zpd-wgpu compare')).join(', ')}`);
    return 0;
  }
  const { options: train } = parseTrainArgs(rest, COMPARE_TRAIN);
  const d = own.quick ? Q : F;
  const int = (k: string, dflt: number) => {
    if (own[k] === undefined) return dflt;
    const x = Number(own[k]);
    if (!Number.isInteger(x) || x < 1) throw new UsageError(`--${k} must be a positive integer, got '${own[k]}'`);
    return x;
  };
  const o: CompareOptions = {
    quick: Boolean(own.quick), seeds: int('seeds', d.seeds), firstSeed: int('first-seed', 1), steps: int('steps', d.steps), evals: int('evals', d.evals),
    evalSamples: int('eval-samples', d.evalSamples), exactMatchSamples: int('exact-match-samples', d.exactMatchSamples),
    trainSamples: own['train-samples'] === '0' ? 0 : int('train-samples', d.trainSamples),
    arms: own.arms ? String(own.arms).split(',').map((a) => a.trim()).filter(Boolean) : DEFAULT_ARMS,
    out: own.out ? String(own.out) : 'zpd-compare', model: train.model ?? null, data: train.data ?? null, evalData: train.evalData ?? null,
    train, resume: Boolean(own.resume),
  };
  if (o.seeds < 2 && own['first-seed'] === undefined) throw new UsageError('--seeds must be at least 2 (intervals need pairs); one seed is allowed only as a shard of a larger compare (--first-seed)');
  const gpu = await gpuForBackend(train.backend);
  console.error(`compare: ${o.arms.length} arms × ${o.seeds} seeds × ${o.steps} steps → ${o.out}`);
  const result = await runCompare(o, gpu, (l) => console.error(l));
  const files = await writeReport(result, o.out, `zpd-wgpu compare ${argv.join(' ')}`.trim());
  console.log(`wrote ${files.join(', ')}`);
  return 0;
}
