// zpd-wgpu eval: held-out loss, perplexity and token accuracy of a data file; multiple choice
// (MMLU layout) by log-likelihood; exact match of greedy generations with --exact-match.
import { parseArgs } from 'node:util';
import { FormatError, UsageError } from '../src/errors.js';
import { exactMatch, isMcRecord, multipleChoice, parseMc } from '../src/train/eval.js';
import { aggregate, BatchMaker, scoreSamples, toSamples } from '../src/train/data.js';
import { openScorer, readRecords, SCORE_DEFAULTS } from '../src/train/train.js';
import { gpuForBackend } from './gpu.js';
import { scoreArgs, SCORE_FLAGS, SCORE_USAGE } from './score-args.js';

export const summary = 'held-out loss/PPL/token accuracy; multiple choice by log-likelihood; --exact-match';
export const usage = `Usage: zpd-wgpu eval --data FILE [--model DIR] [--adapter DIR] [--exact-match] [--json]

Instruction or text records: the token-weighted held-out loss (mean NLL of the response tokens
and the end-of-sequence token), perplexity exp(loss) and token accuracy (argmax = target).
Multiple-choice records in the MMLU layout {"question", "choices": [...], "answer"} (answer: an
index from 0, a letter or the choice's text): accuracy by the log-likelihood of " A", " B", …
after the question and its lettered choices, as evaluation harnesses score MMLU.

  --exact-match        also greedy-generate every response and report the exact-match rate,
                       by bucket and level when the records carry those fields
  --json               print one JSON object
${SCORE_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: { ...SCORE_FLAGS, 'exact-match': { type: 'boolean' }, json: { type: 'boolean' } } });
  const o = { ...SCORE_DEFAULTS, ...scoreArgs(v) };
  if (!o.data) throw new UsageError('eval needs --data FILE; see --help');
  const gpu = await gpuForBackend(o.backend);
  const s = await openScorer(o, gpu);
  try {
    const mc = await readMcFile(o.data);
    if (mc) {
      const r = await multipleChoice(s.backend, s.tok, mc, o.seqLen);
      if (v.json) console.log(JSON.stringify({ data: o.data, kind: 'multiple-choice', accuracy: r.accuracy, questions: r.questions }));
      else console.log(`multiple choice: ${(100 * r.accuracy).toFixed(1)}% of ${r.questions} questions right (log-likelihood of the answer letter)`);
      return 0;
    }
    const { records } = await readRecords(o.data, s.tok, o);
    const samples = toSamples(s.tok, records, new Set(s.stopIds));
    const loss = aggregate(await scoreSamples(s.backend, await BatchMaker.create(s.tok, o.seqLen), samples, samples.map((x) => x.id)));
    const em = v['exact-match'] ? await exactMatch(s.model, s.tok, records, s.stopIds, { seqLen: o.seqLen }) : null;
    if (v.json) {
      console.log(JSON.stringify({ data: o.data, kind: 'held-out', ...loss, ...(em ? { exactMatch: { rate: em.rate, count: em.count, groups: em.groups } } : {}) }));
    } else {
      console.log(`held-out loss ${loss.loss.toFixed(4)}, ppl ${loss.ppl.toFixed(3)}, token accuracy ${(100 * loss.accuracy).toFixed(2)}% (${loss.samples} samples, ${loss.tokens} tokens)`);
      if (em) {
        console.log(`exact match ${(100 * em.rate).toFixed(1)}% of ${em.count}`);
        for (const [k, g] of Object.entries(em.groups)) console.log(`  ${k.padEnd(16)} ${(100 * g.rate).toFixed(1).padStart(5)}% of ${g.count}`);
      }
    }
    return 0;
  } finally {
    s.backend.dispose();
  }
}

/** The questions of a JSONL file in the MMLU layout, or null when its first record is not one. */
async function readMcFile(file: string) {
  if (/\.parquet$/i.test(file)) return null;
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) throw new UsageError(`cannot read ${file}`);
  const lines = text.split('\n');
  const first = lines.findIndex((l) => l.trim());
  if (first < 0) return null;
  let head: unknown;
  try {
    head = JSON.parse(lines[first]);
  } catch {
    return null; // readRecords reports the bad line
  }
  if (!isMcRecord(head)) return null;
  return lines.flatMap((l, i) => {
    if (!l.trim()) return [];
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch (e) {
      throw new FormatError(file, `line ${i + 1}`, `not valid JSON (${(e as Error).message})`);
    }
    if (!isMcRecord(o)) throw new FormatError(file, `line ${i + 1}`, 'expected a multiple-choice record {question, choices, answer} like the first line');
    return [parseMc(o as Record<string, unknown>, file, i + 1)];
  });
}
