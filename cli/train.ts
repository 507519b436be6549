// zpd-wgpu train: LoRA (or full) fine-tuning driven by a curriculum, with progress, checkpoints,
// exact resume and a PEFT adapter out. Every option is in src/train/options.ts.
import { UsageError } from '../src/errors.js';
import { type ProgressEvent, type TrainSummary } from '../src/train/loop.js';
import { parseTrainArgs, trainHelp } from '../src/train/options.js';
import { readConfigFile } from './config-file.js';
import { train } from '../src/train/train.js';
import { gpuForBackend } from './gpu.js';
import { duration, mib, Progress } from './progress.js';

export const summary = 'fine-tune a model (LoRA or full) with a ZPD curriculum; adapter, logs, checkpoints, exact resume';
export const usage = `Usage: zpd-wgpu train [--model DIR] [--data FILE] [options]

With no --model and --data, fine-tunes the embedded tiny model on the embedded graded set.
Options may also come from --config FILE (JSON or YAML: keys are the flags without --, or
camelCase); flags given on the command line override the file. Ctrl-C stops after the current
step and writes a checkpoint (a second Ctrl-C quits at once); --resume continues exactly.

  --config FILE                      options from a JSON or YAML file
  --json                             print one JSON object (the run's summary) at the end
${trainHelp()}`;

export async function run(argv: string[]): Promise<number> {
  let { options, config, json } = parseTrainArgs(argv);
  if (config) ({ options } = parseTrainArgs(argv, await readConfigFile(config)));
  if (options.resume && !options.out) throw new UsageError('--resume needs --out DIR (the run folder to continue)');

  const gpu = await gpuForBackend(options.backend); // the wasm backend needs no GPU
  const progress = new Progress();
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) process.exit(130);
    progress.log('zpd-wgpu: stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  let latest = '';
  const trace = process.env.ZPD_WGPU_TRACE === '1'; // phases on stderr, for tests that kill at a phase
  const onProgress = (e: ProgressEvent) => {
    if (trace && (e.type === 'saving' || e.type === 'scoring' || e.type === 'checkpoint')) process.stderr.write(`trace: ${e.type} ${e.step}\n`);
    switch (e.type) {
      case 'start':
        progress.log(`training: ${e.trainSamples} samples, ${e.evalSamples} held out for evaluation, ${e.steps} steps${e.resumedAt ? `, resuming after step ${e.resumedAt}` : ''}; run folder ${e.folder}`);
        break;
      case 'rescore':
        if (!progress.tty) progress.log(`step ${e.step}: scored ${e.pool} samples in ${e.seconds.toFixed(1)}s${e.window ? `, window [${e.window.lo.toFixed(3)}, ${e.window.hi.toFixed(3)}] of ${e.window.size}` : ''}`);
        break;
      case 'eval':
        progress.log(`step ${e.step}: held-out loss ${e.loss.toFixed(4)}, ppl ${e.ppl.toFixed(2)}, token accuracy ${(100 * e.accuracy).toFixed(1)}% (${e.seconds.toFixed(1)}s)`);
        break;
      case 'step': {
        const w = e.window ? ` | window [${e.window.lo.toFixed(2)},${e.window.hi.toFixed(2)}] ${e.window.size}/${e.window.pool}` : '';
        const held = e.evalLoss === null ? '' : ` held-out ${e.evalLoss.toFixed(3)} ppl ${Math.exp(e.evalLoss).toFixed(2)}`;
        latest = `step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)}${e.skipped ? ' (skipped: NaN/Inf)' : ''}${held} | ${e.tokensPerSecond.toFixed(0)} tok/s | ETA ${duration(e.etaSeconds)} | scoring ${(100 * e.scoringShare).toFixed(0)}%${w} | GPU ${mib(e.peakBytes)}`;
        progress.update(latest, e.step === e.steps);
        break;
      }
      case 'exact-match':
        progress.log(`exact match ${e.when} training: ${(100 * e.result.rate).toFixed(1)}% of ${e.result.count} held-out records`);
        break;
      case 'end':
        progress.done();
        break;
    }
  };
  let result: TrainSummary;
  try {
    result = await train(options, { gpu, onProgress, signal: controller.signal });
  } finally {
    process.off('SIGINT', onSigint);
    progress.done();
  }
  if (json) console.log(JSON.stringify(result));
  else report(result);
  return 0;
}

/** Exact match by bucket and level, before → after. */
function exactMatchTable(s: TrainSummary): string[] {
  const em = s.exactMatch;
  if (!em) return [];
  const pct = (x: number | undefined) => (x === undefined ? '   —' : `${(100 * x).toFixed(0).padStart(3)}%`);
  const keys = Object.keys(em.after.groups).filter((k) => k.includes(':') || !Object.keys(em.after.groups).some((j) => j.includes(':')));
  return [
    `exact match on ${em.after.count} held-out records: ${pct(em.before?.rate)} before → ${pct(em.after.rate)} after`,
    ...keys.map((k) => `  ${k.padEnd(14)} ${pct(em.before?.groups[k]?.rate)} → ${pct(em.after.groups[k].rate)}   (${em.after.groups[k].count})`),
  ];
}

function report(s: TrainSummary): void {
  const l = (e: TrainSummary['before']) => (e ? `${e.loss.toFixed(4)} (ppl ${e.ppl.toFixed(2)}, token accuracy ${(100 * e.accuracy).toFixed(1)}%)` : 'n/a');
  const lines = [
    s.status === 'interrupted'
      ? `interrupted after step ${s.steps} of ${s.budget}: checkpoint in ${s.folder}/checkpoint — continue with the same command and --resume --out ${s.folder}`
      : `${s.status === 'early-stopped' ? `stopped early after step ${s.steps} of ${s.budget} (held-out loss no longer improving)` : `done: ${s.steps} steps`} in ${duration(s.seconds.total)}`,
    `held-out loss before ${l(s.before)}`,
    `held-out loss after  ${l(s.after)}${s.best && s.output === 'best' ? ` — the adapter kept is step ${s.best.step}'s (best)` : ''}`,
    `scoring took ${duration(s.seconds.scoring)} (${(100 * s.scoringShare).toFixed(1)}% of the wall time); peak GPU memory ${mib(s.peakBytes)}${s.skippedSteps ? `; ${s.skippedSteps} steps skipped (NaN/Inf)` : ''}`,
    ...exactMatchTable(s),
    `output: ${s.folder} (${s.artifact === 'adapter' ? 'adapter_model.safetensors + adapter_config.json' : 'model.safetensors + config.json + tokenizer'}, metrics.jsonl, selections.jsonl, run.json)`,
  ];
  console.log(lines.join('\n'));
}
