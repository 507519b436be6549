// Training data readers: JSONL and Parquet files in the formats people bring, turned into
// {prompt, response} text pairs (the batcher puts the loss on the response only).
//   alpaca    {instruction, input?, output}         (OpenOrca-KO uses this too)
//   openorca  {system_prompt?, question, response}
//   chat      {messages: [{role, content}, …]}      rendered with the model's chat_template
//   text      {text}                                 (no prompt: the loss covers all of it)
// With a chat renderer (Tokenizer.applyChatTemplate), Alpaca and OpenOrca records are rendered as
// chat messages too; without one they become "instruction\n\ninput\n\n" → output.
import { FormatError, UsageError } from '../errors.js';
import { TemplateRaised } from '../tokenizer/tokenizer.js';
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

/** The longest line a record may be: far beyond any sample (--seq-len tokens of a few bytes each). */
const MAX_LINE = 4 << 20;

function str(obj: Record<string, unknown>, key: string, fmt: string, optional = false): string {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (optional) return '';
    throw new RecordError(`missing field "${key}" (${fmt})`);
  }
  if (typeof v !== 'string') throw new RecordError(`field "${key}" must be a string, found ${Array.isArray(v) ? 'an array' : typeof v}`);
  return v;
}

function nonEmpty(v: string, key: string): string {
  if (v.trim() === '') throw new RecordError(`field "${key}" is empty: there is nothing to learn`);
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
  nonEmpty(messages[last].content, 'messages[-1].content');
  let prompt: string, full: string;
  try {
    prompt = chat(messages.slice(0, last), true);
    full = chat(messages, false);
  } catch (e) {
    // the template refusing this conversation (raise_exception) is this record's problem
    if (e instanceof TemplateRaised) throw new RecordError(e.message);
    throw e;
  }
  // the response is what the full rendering adds after the prompt (content + end-of-turn tokens)
  if (full.startsWith(prompt)) return { prompt, response: full.slice(prompt.length), answer: messages[last].content };
  return { prompt, response: messages[last].content };
}

/**
 * The prompt an instruction becomes, exactly as training writes it: one user message in the chat
 * template (with the assistant's turn opened), or, without one, the instruction and a blank line.
 */
export function instructionPrompt(instruction: string, chat?: ChatRenderer): string {
  return chat ? chat([{ role: 'user', content: instruction }], true) : `${instruction}\n\n`;
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
      const instruction = str(o, 'instruction', what), input = str(o, 'input', what, true), output = nonEmpty(str(o, 'output', what), 'output');
      const user = input ? `${instruction}\n\n${input}` : instruction;
      if (chat) return renderChat([{ role: 'user', content: user }, { role: 'assistant', content: output }], chat);
      return { prompt: instructionPrompt(user), response: output };
    }
    case 'openorca': {
      const system = str(o, 'system_prompt', what, true), question = str(o, 'question', what), response = nonEmpty(str(o, 'response', what), 'response');
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
      return { prompt: '', response: nonEmpty(str(o, 'text', what), 'text') };
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
  let first: { line: number; problem: string } | null = null, lineCount = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    lineCount++;
    let obj: unknown;
    try {
      if (line.length > MAX_LINE) throw new RecordError(`${(line.length / 2 ** 20).toFixed(1)} MB on one line: longer than any sample can be (split it, or remove it)`);
      obj = JSON.parse(line);
      if (Array.isArray(obj)) throw new RecordError('a JSON array, where JSON Lines has one object per line (a file that is one array converts with: jq -c ".[]" FILE)');
      out.records.push({ ...recordToText(obj, opts.format ?? 'auto', opts.chat), line: i + 1, ...groups(obj) });
    } catch (e) {
      if (!(e instanceof SyntaxError || e instanceof RecordError)) throw e;
      const problem = e instanceof SyntaxError ? `not valid JSON (${e.message})` : e.message;
      first ??= { line: i + 1, problem };
      out.skipped++;
      if (out.problems.length < 20) out.problems.push(`${file}: line ${i + 1}: ${problem}`);
    }
  }
  if (first && !opts.skipBad) {
    throw new FormatError(file, `line ${first.line}`, `${first.problem}${out.skipped > 1 ? ` (${out.skipped} of ${lineCount} lines are bad)` : ''}`, 'fix or remove the bad lines, or skip them with --skip-bad (skipBad: true)');
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
  return parseDataset(buf, file, opts);
}

/** Records from a data file's bytes (.parquet by its name, else JSONL); `file` names it in errors. */
export async function parseDataset(buf: Uint8Array, file: string, opts: ReadDataOptions = {}): Promise<ReadDataResult> {
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
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    const line = firstBadUtf8Line(buf);
    throw new FormatError(file, `line ${line}`, 'not valid UTF-8 text', 'convert the file to UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)');
  }
  return parseJsonl(text, file, opts);
}

/** The 1-based line holding the first byte sequence that is not UTF-8. */
function firstBadUtf8Line(buf: Uint8Array): number {
  const dec = new TextDecoder('utf-8', { fatal: true });
  let start = 0, line = 1;
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === 0x0a) {
      try {
        dec.decode(buf.subarray(start, i));
      } catch {
        return line;
      }
      start = i + 1;
      line++;
    }
  }
  return line;
}
