// The options score and eval share: which model, adapter and data, and how records are read.
import { UsageError } from '../src/errors.js';
import { SCORE_DEFAULTS, type ScoreOptions } from '../src/train/train.js';

export const SCORE_FLAGS = {
  model: { type: 'string' }, adapter: { type: 'string' }, data: { type: 'string' },
  format: { type: 'string', default: SCORE_DEFAULTS.format }, 'chat-template': { type: 'string', default: SCORE_DEFAULTS.chatTemplate },
  'seq-len': { type: 'string', default: String(SCORE_DEFAULTS.seqLen) }, 'skip-bad': { type: 'boolean' },
  weights: { type: 'string', default: SCORE_DEFAULTS.weights },
  backend: { type: 'string', default: 'webgpu' },
} as const;

export const SCORE_USAGE = `  --data FILE          .jsonl or .parquet (Alpaca, OpenOrca, chat messages or {text})
  --model DIR          Hugging Face model folder (default: the embedded model)
  --adapter DIR        PEFT adapter folder (e.g. a train run's --out)
  --format F           auto|alpaca|openorca|chat|text [auto]
  --chat-template M    auto|on|off: render prompts with the tokenizer's chat_template [auto]
  --seq-len T          longest sample in tokens (longer ones are cut) [${SCORE_DEFAULTS.seqLen}]
  --skip-bad           skip malformed lines (counted) instead of stopping
  --weights W          auto|f16|f32 storage of the frozen weights [auto]
  --backend B          webgpu|wasm|auto: where the model runs — the GPU, the CPU (SIMD on every
                       core, no GPU needed), or a hardware GPU else the faster of the two [webgpu]`;

export function scoreArgs(v: Record<string, unknown>): Partial<ScoreOptions> {
  const pick = (name: string, allowed: string[]) => {
    const x = v[name] as string;
    if (!allowed.includes(x)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got '${x}'`);
    return x;
  };
  const seqLen = Number(v['seq-len']);
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new UsageError(`--seq-len must be an integer ≥ 2, got '${v['seq-len']}'`);
  return {
    model: (v.model as string) ?? null, adapter: (v.adapter as string) ?? null, data: v.data as string,
    format: pick('format', ['auto', 'alpaca', 'openorca', 'chat', 'text']) as ScoreOptions['format'],
    chatTemplate: pick('chat-template', ['auto', 'on', 'off']) as ScoreOptions['chatTemplate'],
    weights: pick('weights', ['auto', 'f16', 'f32']) as ScoreOptions['weights'],
    backend: pick('backend', ['webgpu', 'wasm', 'auto']) as ScoreOptions['backend'],
    seqLen, skipBad: Boolean(v['skip-bad']),
  };
}
