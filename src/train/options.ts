// Every option of `zpd-wgpu train` (and of the train() API) in one table: its flag, type,
// default and help line. The CLI's parser, its --help text, config files (JSON or YAML, keys as
// flags or camelCase) and run.json all come from this table, so a default is written once.
import { UsageError } from '../errors.js';
import { SIGNALS, type Signal } from '../curriculum/signals.js';
import { STRATEGIES, ZPD_WINDOWS, type StrategyName, type ZpdWindow } from '../curriculum/strategies.js';
import { LORA_MODULES, type LoraModule } from '../lora.js';

export interface TrainOptions {
  model: string | null;
  data: string | null;
  evalData: string | null;
  format: 'auto' | 'alpaca' | 'openorca' | 'chat' | 'text';
  chatTemplate: 'auto' | 'on' | 'off';
  skipBad: boolean;
  curriculum: StrategyName;
  steps: number;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  lr: number;
  warmup: number;
  schedule: 'cosine' | 'constant';
  minLrRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  beta1: number;
  beta2: number;
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: LoraModule[];
  rslora: boolean;
  full: boolean;
  recompute: boolean;
  weights: 'auto' | 'f16' | 'f32';
  backend: 'webgpu' | 'wasm' | 'auto';
  rescoreEvery: number;
  scorePool: number;
  zpdWindow: ZpdWindow;
  zpdBand: [number, number];
  zpdSignal: Signal;
  replay: number;
  pacingC0: number;
  pacingSteps: number;
  reference: string | null;
  seed: number;
  evalEvery: number;
  evalSamples: number;
  evalSplit: number;
  saveEvery: number;
  patience: number;
  exactMatch: number;
  out: string | null;
  resume: boolean;
  overwrite: boolean;
}

type Kind = 'string' | 'int' | 'number' | 'bool' | 'list' | 'pair' | 'choice';

interface Spec {
  key: keyof TrainOptions;
  flag: string;
  kind: Kind;
  arg?: string; // the value's name in --help
  choices?: readonly string[];
  help: string;
  min?: number;
  max?: number;
}

const g = (group: string, specs: Spec[]) => specs.map((s) => ({ ...s, group }));

export const TRAIN_SPECS = [
  ...g('Model and data', [
    { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json); default: the embedded model' },
    { key: 'data', flag: 'data', kind: 'string', arg: 'FILE', help: 'training data, .jsonl or .parquet (Alpaca, OpenOrca, chat messages or {text}); default: the embedded set' },
    { key: 'evalData', flag: 'eval-data', kind: 'string', arg: 'FILE', help: 'held-out data; default: a seeded --eval-split of --data (indices in run.json)' },
    { key: 'format', flag: 'format', kind: 'choice', choices: ['auto', 'alpaca', 'openorca', 'chat', 'text'], help: 'record format' },
    { key: 'chatTemplate', flag: 'chat-template', kind: 'choice', choices: ['auto', 'on', 'off'], help: "render prompts with the tokenizer's chat_template (auto: when it has one)" },
    { key: 'skipBad', flag: 'skip-bad', kind: 'bool', help: 'skip malformed data lines (counted) instead of stopping' },
  ]),
  ...g('Curriculum', [
    { key: 'curriculum', flag: 'curriculum', kind: 'choice', choices: STRATEGIES, help: 'sample order: zpd re-scores and trains on the just-hard-enough window' },
    { key: 'rescoreEvery', flag: 'rescore-every', kind: 'int', arg: 'K', min: 1, help: 'zpd, self-paced, reducible: re-score every K steps' },
    { key: 'scorePool', flag: 'score-pool', kind: 'int', arg: 'N', min: 0, help: 'samples scored per re-scoring (0: K·batch·accum/4, at least 4 steps\' worth)' },
    { key: 'zpdWindow', flag: 'zpd-window', kind: 'choice', choices: ZPD_WINDOWS, help: 'band: quantiles of the signal; mean: μ+lo·σ..μ+hi·σ; learnability: top (hi−lo) by a·(1−a); adaptive: moving target' },
    { key: 'zpdBand', flag: 'zpd-band', kind: 'pair', arg: 'LO,HI', help: 'the window: quantiles for band (drop the easiest LO, the hardest 1−HI), σ for mean, the kept share HI−LO otherwise' },
    { key: 'zpdSignal', flag: 'zpd-signal', kind: 'choice', choices: SIGNALS, help: 'difficulty: nll, 1−confidence, entropy, 1−accuracy, or a z-scored mix of the first three' },
    { key: 'replay', flag: 'replay', kind: 'number', arg: 'EPS', min: 0, max: 1, help: 'share of each batch drawn uniformly from the whole set (against forgetting)' },
    { key: 'pacingC0', flag: 'pacing-c0', kind: 'number', arg: 'C0', min: 0, max: 1, help: 'random-growing: starting share c0 of c(t)=min(1,sqrt(t(1−c0²)/T+c0²)); self-paced: starting quantile' },
    { key: 'pacingSteps', flag: 'pacing-steps', kind: 'int', arg: 'T', min: 0, help: 'random-growing, self-paced: steps until the whole set is in (0: steps/2)' },
    { key: 'reference', flag: 'reference', kind: 'string', arg: 'DIR', help: 'reducible: a reference model folder (RHO-LOSS: nll − the reference nll)' },
  ]),
  ...g('Optimisation', [
    { key: 'steps', flag: 'steps', kind: 'int', arg: 'N', min: 1, help: 'optimizer steps' },
    { key: 'epochs', flag: 'epochs', kind: 'number', arg: 'E', min: 0, help: 'instead of --steps: passes over the training set (0: use --steps)' },
    { key: 'batchSize', flag: 'batch-size', kind: 'int', arg: 'B', min: 1, help: 'samples per micro-batch (one per row)' },
    { key: 'gradAccum', flag: 'grad-accum', kind: 'int', arg: 'N', min: 1, help: 'micro-batches per optimizer step' },
    { key: 'seqLen', flag: 'seq-len', kind: 'int', arg: 'T', min: 2, help: 'longest sample in tokens (longer ones are cut: prompt head, then response)' },
    { key: 'lr', flag: 'lr', kind: 'number', arg: 'X', min: 0, help: 'peak learning rate' },
    { key: 'warmup', flag: 'warmup', kind: 'number', arg: 'N', min: 0, help: 'linear warm-up: N steps, or a fraction of the steps when below 1' },
    { key: 'schedule', flag: 'schedule', kind: 'choice', choices: ['cosine', 'constant'], help: 'after warm-up: cosine decay to --min-lr, or constant' },
    { key: 'minLrRatio', flag: 'min-lr-ratio', kind: 'number', arg: 'X', min: 0, max: 1, help: 'cosine: the last step\'s learning rate, as a share of --lr' },
    { key: 'weightDecay', flag: 'weight-decay', kind: 'number', arg: 'X', min: 0, help: 'AdamW decoupled weight decay' },
    { key: 'maxGradNorm', flag: 'max-grad-norm', kind: 'number', arg: 'X', min: 0, help: 'clip the global gradient norm (0: off)' },
    { key: 'beta1', flag: 'beta1', kind: 'number', arg: 'X', min: 0, max: 1, help: 'AdamW β1' },
    { key: 'beta2', flag: 'beta2', kind: 'number', arg: 'X', min: 0, max: 1, help: 'AdamW β2' },
    { key: 'seed', flag: 'seed', kind: 'int', arg: 'S', min: 0, help: 'seed of LoRA init, data order, curriculum and held-out split' },
  ]),
  ...g('LoRA / full fine-tuning', [
    { key: 'loraR', flag: 'lora-r', kind: 'int', arg: 'R', min: 1, help: 'LoRA rank' },
    { key: 'loraAlpha', flag: 'lora-alpha', kind: 'number', arg: 'A', min: 0, help: 'LoRA alpha (scaling alpha/r)' },
    { key: 'loraDropout', flag: 'lora-dropout', kind: 'number', arg: 'P', min: 0, max: 0.99, help: 'dropout on the LoRA path' },
    { key: 'targetModules', flag: 'target-modules', kind: 'list', arg: 'M,…', choices: LORA_MODULES, help: 'modules that get LoRA' },
    { key: 'rslora', flag: 'rslora', kind: 'bool', help: 'rank-stabilised LoRA (scaling alpha/sqrt(r))' },
    { key: 'full', flag: 'full', kind: 'bool', help: 'full fine-tuning of every weight (tiny models); writes a model folder instead of an adapter' },
    { key: 'recompute', flag: 'recompute', kind: 'bool', help: 'recompute activations in the backward (less memory, ~25% slower)' },
    { key: 'weights', flag: 'weights', kind: 'choice', choices: ['auto', 'f16', 'f32'], help: 'storage of frozen weights (auto: f16 for half-precision checkpoints where the GPU has shader-f16)' },
    { key: 'backend', flag: 'backend', kind: 'choice', choices: ['webgpu', 'wasm', 'auto'], help: 'where the model runs: webgpu; wasm (the CPU: SIMD on every core, no GPU needed; f32 weights); auto (a hardware GPU, else the faster of the two)' },
  ]),
  ...g('Evaluation, checkpoints, output', [
    { key: 'evalEvery', flag: 'eval-every', kind: 'int', arg: 'N', min: 0, help: 'held-out evaluation every N steps (0: steps/10)' },
    { key: 'evalSamples', flag: 'eval-samples', kind: 'int', arg: 'N', min: 1, help: 'held-out samples evaluated (a fixed seeded subset)' },
    { key: 'evalSplit', flag: 'eval-split', kind: 'number', arg: 'X', min: 0, max: 0.5, help: 'share of --data held out when there is no --eval-data' },
    { key: 'patience', flag: 'patience', kind: 'int', arg: 'N', min: 0, help: 'stop after N evaluations without a better held-out loss (0: never); the best adapter is kept' },
    { key: 'exactMatch', flag: 'exact-match', kind: 'int', arg: 'N', min: 0, help: 'greedy-generate N held-out records before and after training: exact match by bucket and level (0: off)' },
    { key: 'saveEvery', flag: 'save-every', kind: 'int', arg: 'N', min: 0, help: 'checkpoint every N steps (0: at evaluations)' },
    { key: 'out', flag: 'out', kind: 'string', arg: 'DIR', help: 'run folder: adapter, metrics.jsonl, selections.jsonl, run.json, checkpoint/ (default: a fresh ./zpd-runs/<time>)' },
    { key: 'resume', flag: 'resume', kind: 'bool', help: 'continue the run in --out from its checkpoint (exactly: the same losses as an uninterrupted run)' },
    { key: 'overwrite', flag: 'overwrite', kind: 'bool', help: 'replace an existing run in --out' },
  ]),
] as (Spec & { group: string })[];

export const TRAIN_DEFAULTS: TrainOptions = {
  model: null, data: null, evalData: null, format: 'auto', chatTemplate: 'auto', skipBad: false,
  curriculum: 'zpd', rescoreEvery: 500, scorePool: 0, zpdWindow: 'band', zpdBand: [0.3, 0.8], zpdSignal: 'nll',
  replay: 0.1, pacingC0: 0.1, pacingSteps: 0, reference: null,
  steps: 1000, epochs: 0, batchSize: 8, gradAccum: 1, seqLen: 512, lr: 2e-4, warmup: 0.05, schedule: 'cosine',
  minLrRatio: 0.1, weightDecay: 0, maxGradNorm: 1, beta1: 0.9, beta2: 0.999, seed: 0,
  loraR: 8, loraAlpha: 16, loraDropout: 0, targetModules: [...LORA_MODULES], rslora: false, full: false,
  recompute: false, weights: 'auto', backend: 'webgpu',
  evalEvery: 0, evalSamples: 200, evalSplit: 0.05, patience: 0, exactMatch: 0, saveEvery: 0, out: null, resume: false, overwrite: false,
};

/**
 * With neither --model nor --data, train fine-tunes the embedded model on the embedded graded
 * set, with these settings (each still overridable): about five minutes on two CPU cores with
 * the software GPU (README: measured figures).
 */
export const EMBEDDED_DEFAULTS: Partial<TrainOptions> = {
  steps: 280, batchSize: 8, seqLen: 64, lr: 5e-3, loraR: 16, loraAlpha: 32, rescoreEvery: 25, evalEvery: 40, evalSamples: 100, exactMatch: 150,
  chatTemplate: 'off', // its pretraining never saw the chat-template tokens
};

const BY_FLAG = new Map(TRAIN_SPECS.map((s) => [s.flag, s]));
const BY_KEY = new Map(TRAIN_SPECS.map((s) => [s.key as string, s]));

/** One option's value from text (a flag's argument or a config entry), checked. */
function parseValue(s: Spec, raw: unknown, where: string): unknown {
  const bad = (what: string) => new UsageError(`${where}: ${what}`);
  const num = (v: unknown, int: boolean) => {
    const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!Number.isFinite(x) || (int && !Number.isInteger(x))) throw bad(`expected ${int ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
    if (s.min !== undefined && x < s.min) throw bad(`must be ≥ ${s.min}, got ${x}`);
    if (s.max !== undefined && x > s.max) throw bad(`must be ≤ ${s.max}, got ${x}`);
    return x;
  };
  switch (s.kind) {
    case 'string':
      if (raw === null) return null;
      if (typeof raw !== 'string' || raw === '') throw bad(`expected a path, got ${JSON.stringify(raw)}`);
      return raw;
    case 'int':
      return num(raw, true);
    case 'number':
      return num(raw, false);
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      throw bad(`expected true or false, got ${JSON.stringify(raw)}`);
    case 'choice':
      if (typeof raw !== 'string' || !s.choices!.includes(raw)) throw bad(`expected one of ${s.choices!.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'list': {
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : null;
      if (!items || items.length === 0) throw bad(`expected a comma-separated list of ${s.choices!.join(', ')}`);
      for (const m of items) if (!s.choices!.includes(m)) throw bad(`'${m}' is not one of ${s.choices!.join(', ')}`);
      return s.choices!.filter((c) => items.includes(c));
    }
    case 'pair': {
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [];
      if (items.length !== 2) throw bad(`expected two numbers LO,HI, got ${JSON.stringify(raw)}`);
      const [lo, hi] = items.map((x) => num(x, false));
      if (!(lo < hi)) throw bad(`LO must be below HI, got ${lo},${hi}`);
      return [lo, hi];
    }
  }
}

/**
 * Parse train's command line: the options given (flags override `base`, e.g. a config file's
 * values); resolveTrainOptions fills in the rest.
 */
export function parseTrainArgs(argv: string[], base: Partial<TrainOptions> = {}): { options: Partial<TrainOptions>; config: string | null; json: boolean } {
  const o: Record<string, unknown> = { ...base };
  let config: string | null = null, json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}' (options start with --; see --help)`);
    let [flag, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === 'json') {
      json = true;
      continue;
    }
    if (flag === 'config') {
      config = value ?? argv[++i] ?? null;
      if (!config) throw new UsageError('--config needs a FILE');
      continue;
    }
    const negated = flag.startsWith('no-') && BY_FLAG.get(flag.slice(3))?.kind === 'bool';
    const s = BY_FLAG.get(negated ? flag.slice(3) : flag);
    if (!s) throw new UsageError(`unknown option --${flag} (see zpd-wgpu train --help)`);
    if (s.kind === 'bool') {
      o[s.key] = negated ? false : value === undefined ? true : parseValue(s, value, `--${flag}`);
      continue;
    }
    value ??= argv[++i];
    if (value === undefined) throw new UsageError(`--${flag} needs a value${s.arg ? ` (${s.arg})` : ''}`);
    o[s.key] = parseValue(s, value, `--${flag}`);
  }
  return { options: o as Partial<TrainOptions>, config, json };
}

/** Options from a config file's object: keys are flag names or camelCase keys. */
export function optionsFromConfig(obj: unknown, file: string): Partial<TrainOptions> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new UsageError(`${file}: expected a mapping of options (e.g. {"lr": 1e-4})`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const s = BY_FLAG.get(k) ?? BY_KEY.get(k);
    if (!s) throw new UsageError(`${file}: unknown option '${k}' (options are train's flags without --, see zpd-wgpu train --help)`);
    out[s.key] = parseValue(s, v, `${file}: ${k}`);
  }
  return out as Partial<TrainOptions>;
}

/** Check the options given and fill in the rest: the defaults, and the embedded run's without --model and --data. */
export function resolveTrainOptions(o: Partial<TrainOptions>): TrainOptions {
  const given = optionsFromConfig(o, 'train options');
  const embedded = (given.model ?? null) === null && (given.data ?? null) === null;
  return { ...TRAIN_DEFAULTS, ...(embedded ? EMBEDDED_DEFAULTS : {}), ...given };
}

/** --help: every option with its default, grouped. */
export function trainHelp(): string {
  const lines: string[] = [`Without --model and --data (the embedded run) the defaults differ: ${Object.entries(EMBEDDED_DEFAULTS).map(([k, v]) => `--${BY_KEY.get(k)!.flag} ${v}`).join(' ')}.`];
  let group = '';
  for (const s of TRAIN_SPECS) {
    if (s.group !== group) lines.push('', `${(group = s.group)}:`);
    const d = TRAIN_DEFAULTS[s.key];
    const shown = d === null ? '' : Array.isArray(d) ? d.join(',') : String(d);
    const left = `  --${s.flag}${s.kind === 'bool' ? '' : ` ${s.arg ?? s.choices?.join('|') ?? 'X'}`}`;
    const def = s.kind === 'bool' ? '' : shown ? ` [${shown}]` : '';
    lines.push(`${left.padEnd(34)} ${s.help}${def}`);
  }
  return lines.join('\n');
}
