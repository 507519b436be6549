// zpd-wgpu score: per-sample difficulty signals of a data file under a model (and adapter).
import { parseArgs } from 'node:util';
import { UsageError } from '../src/errors.js';
import { SCORE_DEFAULTS, score } from '../src/train/train.js';
import { gpuForBackend } from './gpu.js';
import { scoreArgs, SCORE_FLAGS, SCORE_USAGE } from './score-args.js';

export const summary = 'per-sample nll, ppl, confidence, entropy, token accuracy of a data file (JSONL out)';
export const usage = `Usage: zpd-wgpu score --data FILE [--model DIR] [--adapter DIR] [--out scores.jsonl]

One line per sample: {index, line, nll, ppl, confidence, entropy, accuracy, tokens} (and bucket,
level when the record has them). The loss covers the response tokens and the end-of-sequence
token, as in training; for {"text": …} records every token after the first.

  --out FILE           write the lines here (atomically) instead of stdout
${SCORE_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: { ...SCORE_FLAGS, out: { type: 'string' } } });
  const o = scoreArgs(v);
  if (!o.data) throw new UsageError('score needs --data FILE; see --help');
  const gpu = await gpuForBackend(o.backend);
  const rows = await score({ ...SCORE_DEFAULTS, ...o, data: o.data }, gpu);
  const text = rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
  if (v.out) {
    const { writeFileAtomic } = await import('../src/io/safetensors.js');
    await writeFileAtomic(v.out as string, [new TextEncoder().encode(text)]);
    console.error(`scored ${rows.length} samples → ${v.out}`);
  } else process.stdout.write(text);
  return 0;
}
