// Evaluations beyond held-out loss: multiple choice by log-likelihood (the MMLU layout
// {question, choices, answer}, scored as evaluation harnesses do: the log-likelihood of each
// answer letter after the question and its lettered choices) and exact match of greedy
// generations, grouped by a record's bucket and level when it has them.
import { FormatError, UsageError } from '../errors.js';
import type { DataRecord } from '../data/read.js';
import { generate, type LlamaModel } from '../model/llama.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TrainBackend } from './backend.js';
import { BatchMaker, scoreSamples, type Sample } from './data.js';

export interface McQuestion {
  question: string;
  choices: string[];
  /** index of the right choice */
  answer: number;
  line: number;
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Is this parsed JSONL object a multiple-choice record? */
export function isMcRecord(o: unknown): boolean {
  return typeof o === 'object' && o !== null && Array.isArray((o as Record<string, unknown>).choices) && 'question' in o && 'answer' in o;
}

/** {question, choices, answer} (answer: 0-based index, a letter, or the choice's text). */
export function parseMc(o: Record<string, unknown>, file: string, line: number): McQuestion {
  const where = `line ${line}`;
  if (typeof o.question !== 'string') throw new FormatError(file, where, 'field "question" must be a string');
  const choices = o.choices as unknown[];
  if (choices.length < 2 || choices.length > LETTERS.length || !choices.every((c) => typeof c === 'string'))
    throw new FormatError(file, where, `field "choices" must be 2–${LETTERS.length} strings`);
  const a = o.answer;
  let answer = -1;
  if (typeof a === 'number' && Number.isInteger(a)) answer = a;
  else if (typeof a === 'string' && /^[A-Z]$/.test(a.trim())) answer = LETTERS.indexOf(a.trim());
  else if (typeof a === 'string') answer = (choices as string[]).indexOf(a);
  if (answer < 0 || answer >= choices.length) throw new FormatError(file, where, `field "answer" ${JSON.stringify(a)} names none of the ${choices.length} choices (give an index from 0, a letter, or the choice's text)`);
  return { question: o.question, choices: choices as string[], answer, line };
}

/** The prompt of a question as harnesses write it: the question, lettered choices, "Answer:". */
export function mcPrompt(q: McQuestion): string {
  return `${q.question.trim()}\n${q.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join('\n')}\nAnswer:`;
}

export interface McResult {
  accuracy: number;
  questions: number;
  /** per question: the chosen index and each choice's log-likelihood */
  picks: { line: number; chosen: number; answer: number; logLikelihoods: number[] }[];
}

/** Accuracy by comparing the log-likelihood of " A", " B", … after each question's prompt. */
export async function multipleChoice(backend: TrainBackend, tok: Tokenizer, questions: McQuestion[], seqLen: number): Promise<McResult> {
  const samples: Sample[] = [];
  const bos = tok.addBos && tok.bosId !== null ? 1 : 0;
  for (const q of questions) {
    const prompt = Int32Array.from(tok.encode(mcPrompt(q), { addSpecialTokens: false }));
    q.choices.forEach((_, i) => {
      const response = Int32Array.from(tok.encode(` ${LETTERS[i]}`, { addSpecialTokens: false }));
      samples.push({ id: samples.length, prompt, response, length: bos + prompt.length + response.length, line: q.line });
    });
  }
  const scores = await scoreSamples(backend, await BatchMaker.create(tok, seqLen), samples, samples.map((s) => s.id));
  let k = 0, right = 0;
  const picks = questions.map((q) => {
    const ll = q.choices.map(() => -scores[k].nll * scores[k++].tokens);
    const chosen = ll.indexOf(Math.max(...ll));
    if (chosen === q.answer) right++;
    return { line: q.line, chosen, answer: q.answer, logLikelihoods: ll };
  });
  return { accuracy: questions.length ? right / questions.length : NaN, questions: questions.length, picks };
}

export interface ExactMatchResult {
  rate: number;
  count: number;
  /** by bucket, by level and by bucket:level, when the records carry them */
  groups: Record<string, { rate: number; count: number }>;
  outputs: { line: number; expected: string; got: string; ok: boolean }[];
}

/** The key records are grouped under in reports: "bucket", "level N", "bucket:N". */
export function groupKeys(r: Pick<DataRecord, 'bucket' | 'level'>): string[] {
  const keys: string[] = [];
  if (r.bucket !== undefined) keys.push(r.bucket);
  if (r.level !== undefined) keys.push(`level ${r.level}`);
  if (r.bucket !== undefined && r.level !== undefined) keys.push(`${r.bucket}:${r.level}`);
  return keys;
}

/**
 * Greedy-generate each record's response and compare it, trimmed, with the expected one
 * (the record's answer as written). Generation stops at a stop id or after the expected
 * length plus `slack` tokens.
 */
export async function exactMatch(model: LlamaModel, tok: Tokenizer, records: DataRecord[], stopIds: number[], o: { slack?: number; seqLen?: number } = {}): Promise<ExactMatchResult> {
  if (records.some((r) => !r.prompt)) throw new UsageError('--exact-match needs instruction records with a prompt ({"text"} records have none)');
  const outputs: ExactMatchResult['outputs'] = [];
  const tally = new Map<string, { ok: number; n: number }>();
  const seqLen = o.seqLen ?? 512;
  for (const r of records) {
    const expected = (r.answer ?? r.response).trim();
    const prompt = tok.encode(r.prompt);
    const budget = Math.max(1, Math.min(seqLen - prompt.length, tok.encode(expected, { addSpecialTokens: false }).length + (o.slack ?? 4)));
    const ids = await generate(model, prompt.slice(Math.max(0, prompt.length - (seqLen - 1))), { maxNewTokens: budget, stop: stopIds });
    const got = tok.decode(ids, { skipSpecialTokens: true }).trim();
    const ok = got === expected;
    outputs.push({ line: r.line, expected, got, ok });
    for (const key of ['all', ...groupKeys(r)]) {
      const t = tally.get(key) ?? { ok: 0, n: 0 };
      t.n++, ok && t.ok++;
      tally.set(key, t);
    }
  }
  const groups: ExactMatchResult['groups'] = {};
  for (const [k, t] of [...tally].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) if (k !== 'all') groups[k] = { rate: t.ok / t.n, count: t.n };
  const all = tally.get('all') ?? { ok: 0, n: 0 };
  return { rate: all.n ? all.ok / all.n : NaN, count: all.n, groups, outputs };
}
