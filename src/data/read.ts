// Training data readers: JSONL and Parquet files in the formats people bring, turned into
// {prompt, response} text pairs (the batcher puts the loss on the response only).
//   alpaca    {instruction, input?, output}         (OpenOrca-KO uses this too)
//   openorca  {system_prompt?, question, response}
//   chat      {messages: [{role, content}, …]}      rendered with the model's chat_template
//   text      {text}                                 (no prompt: the loss covers all of it)
// With a chat renderer (Tokenizer.applyChatTemplate), Alpaca and OpenOrca records are rendered as
// chat messages too; without one they become "instruction\n\ninput\n\n" → output.
import { FormatError, UsageError } from '../errors.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import { nodeFs } from '../platform/node.js';

export type DataFormat = 'alpaca' | 'openorca' | 'chat' | 'text';

export interface DataRecord {
  prompt: string;
  response: string;
  /** 1-based line (JSONL) or row (Parquet) in the file */
  line: number;
  /** the assistant's reply as written, when `response` is its chat-template rendering (exact-match compares with it) */
  answer?: string;
  /** the record's `bucket` and `level` fields, when it has them (reports group by them) */
  bucket?: string;
  level?: number;
}

/** Renders chat messages; `addGenerationPrompt` ends the text where the assistant's reply starts. */
export type ChatRenderer = (messages: ChatMessage[], addGenerationPrompt: boolean) => string;

export interface ReadDataOptions {
  /** default 'auto': decided per record from its fields */
  format?: DataFormat | 'auto';
  /** skip malformed lines (counted in `skipped`) instead of throwing */
  skipBad?: boolean;
  /** chat rendering, e.g. (m, g) => tok.applyChatTemplate(m, {addGenerationPrompt: g}); needed for 'chat' */
  chat?: ChatRenderer;
}

export interface ReadDataResult {
  records: DataRecord[];
  skipped: number;
  /** the first problems found when skipping (at most 20), for reporting */
  problems: string[];
}

/** A record's fields did not fit its format: `problem` says which and why. */
class RecordError extends Error {}

function str(obj: Record<string, unknown>, key: string, fmt: string, optional = false): string {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (optional) return '';
    throw new RecordError(`missing field "${key}" (${fmt})`);
  }
  if (typeof v !== 'string') throw new RecordError(`field "${key}" must be a string, found ${Array.isArray(v) ? 'an array' : typeof v}`);
  return v;
}

const FORMAT_FIELDS: Record<DataFormat, string> = {
  alpaca: 'Alpaca format: instruction, input, output',
  openorca: 'OpenOrca format: system_prompt, question, response',
  chat: 'chat format: messages [{role, content}]',
  text: 'plain format: text',
};

export function detectFormat(obj: Record<string, unknown>): DataFormat {
  if ('messages' in obj) return 'chat';
  if ('instruction' in obj || 'output' in obj) return 'alpaca';
  if ('question' in obj || 'response' in obj) return 'openorca';
  if ('text' in obj) return 'text';
  throw new RecordError(`unknown record format (fields: ${Object.keys(obj).join(', ') || 'none'}); expected one of: ${Object.values(FORMAT_FIELDS).join('; ')}`);
}

function renderChat(messages: ChatMessage[], chat: ChatRenderer | undefined): { prompt: string; response: string; answer?: string } {
  if (!chat) throw new UsageError('chat records need a chat template: pass `chat` (e.g. from a Tokenizer with a chat_template)');
  const last = messages.length - 1;
  if (last < 0 || messages[last].role !== 'assistant') throw new RecordError('"messages" must end with an assistant message (the response to learn)');
  const prompt = chat(messages.slice(0, last), true);
  const full = chat(messages, false);
  // the response is what the full rendering adds after the prompt (content + end-of-turn tokens)
  if (full.startsWith(prompt)) return { prompt, response: full.slice(prompt.length), answer: messages[last].content };
  return { prompt, response: messages[last].content };
}

/** One parsed object → prompt and response text. Throws RecordError with what was wrong. */
export function recordToText(obj: unknown, format: DataFormat | 'auto', chat?: ChatRenderer): { prompt: string; response: string; answer?: string } {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new RecordError(`expected a JSON object, found ${Array.isArray(obj) ? 'an array' : obj === null ? 'null' : typeof obj}`);
  }
  const o = obj as Record<string, unknown>;
  const fmt = format === 'auto' ? detectFormat(o) : format;
  const what = FORMAT_FIELDS[fmt];
  switch (fmt) {
    case 'alpaca': {
      const instruction = str(o, 'instruction', what), input = str(o, 'input', what, true), output = str(o, 'output', what);
      const user = input ? `${instruction}\n\n${input}` : instruction;
      if (chat) return renderChat([{ role: 'user', content: user }, { role: 'assistant', content: output }], chat);
      return { prompt: `${user}\n\n`, response: output };
    }
    case 'openorca': {
      const system = str(o, 'system_prompt', what, true), question = str(o, 'question', what), response = str(o, 'response', what);
      if (chat) {
        const msgs: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
        return renderChat([...msgs, { role: 'user', content: question }, { role: 'assistant', content: response }], chat);
      }
      return { prompt: `${system ? `${system}\n\n` : ''}${question}\n\n`, response };
    }
    case 'chat': {
      const m = o.messages;
      if (!Array.isArray(m)) throw new RecordError(`field "messages" must be an array (${what})`);
      m.forEach((x, i) => {
        if (typeof x !== 'object' || x === null || typeof x.role !== 'string' || typeof x.content !== 'string') {
          throw new RecordError(`messages[${i}] must be {role: string, content: string}`);
        }
      });
      return renderChat(m as ChatMessage[], chat);
    }
    case 'text':
      return { prompt: '', response: str(o, 'text', what) };
  }
}

/** The optional grouping fields a record may carry. */
function groups(obj: unknown): Pick<DataRecord, 'bucket' | 'level'> {
  const o = obj as Record<string, unknown>;
  const out: Pick<DataRecord, 'bucket' | 'level'> = {};
  if (typeof o.bucket === 'string') out.bucket = o.bucket;
  if (typeof o.level === 'number' && Number.isFinite(o.level)) out.level = o.level;
  return out;
}

/** Records from JSONL text; `file` names it in errors. Blank lines are ignored. */
export function parseJsonl(text: string, file: string, opts: ReadDataOptions = {}): ReadDataResult {
  const out: ReadDataResult = { records: [], skipped: 0, problems: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
      out.records.push({ ...recordToText(obj, opts.format ?? 'auto', opts.chat), line: i + 1, ...groups(obj) });
    } catch (e) {
      if (!(e instanceof SyntaxError || e instanceof RecordError)) throw e;
      const problem = e instanceof SyntaxError ? `not valid JSON (${e.message})` : e.message;
      if (!opts.skipBad) {
        throw new FormatError(file, `line ${i + 1}`, problem, 'fix or remove the line, or skip bad lines (--skip-bad-lines / skipBad: true)');
      }
      out.skipped++;
      if (out.problems.length < 20) out.problems.push(`${file}: line ${i + 1}: ${problem}`);
    }
  }
  return out;
}

/** Records from rows (Parquet); `line` is the 1-based row number. */
export function rowsToRecords(rows: unknown[], file: string, opts: ReadDataOptions = {}): ReadDataResult {
  const out: ReadDataResult = { records: [], skipped: 0, problems: [] };
  rows.forEach((row, i) => {
    try {
      out.records.push({ ...recordToText(row, opts.format ?? 'auto', opts.chat), line: i + 1, ...groups(row) });
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      if (!opts.skipBad) throw new FormatError(file, `row ${i + 1}`, e.message, 'fix the row, or skip bad rows (skipBad: true)');
      out.skipped++;
      if (out.problems.length < 20) out.problems.push(`${file}: row ${i + 1}: ${e.message}`);
    }
  });
  return out;
}

/** Read a .jsonl / .json-lines or .parquet file (Node). */
export async function readDataset(file: string, opts: ReadDataOptions = {}): Promise<ReadDataResult> {
  const { readFile } = await nodeFs();
  const buf = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (/\.parquet$/i.test(file)) {
    const { parquetReadObjects } = await import('hyparquet');
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    let rows: unknown[];
    try {
      rows = await parquetReadObjects({ file: ab });
    } catch (e) {
      throw new FormatError(file, 'file', `not a readable Parquet file (${(e as Error).message})`);
    }
    return rowsToRecords(rows, file, opts);
  }
  return parseJsonl(buf.toString('utf8'), file, opts);
}
