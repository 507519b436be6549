// Tokenizer: the thin host side of assembly/tokenizer.ts. Text goes into wasm memory as UTF-8,
// ids come back as an Int32Array copy. Build one with Tokenizer.fromJSON (in-memory JSON) or
// loadTokenizer (src/tokenizer/files.ts: a path, with the msgpackr cache).
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { FormatError, UsageError } from '../errors.js';
import { byteLevelTables, compactFromJSON, MODE_BYTELEVEL, type CompactTokenizer } from './compact.js';
import { instantiateZpd, putBytes, type ZpdExports } from './wasm.js';

export interface EncodeOptions {
  /** add BOS/EOS as tokenizer_config.json (or the post-processor) says; default true */
  addSpecialTokens?: boolean;
  /** match added/special tokens written in the text (default true); false encodes them as text */
  splitSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** leave out special tokens (BOS, EOS, <|im_start|>, …); default false */
  skipSpecialTokens?: boolean;
  /** clean_up_tokenization_spaces (" ." → "." …); default: tokenizer_config.json's setting */
  cleanUpSpaces?: boolean;
}

export interface ChatMessage {
  role: string;
  content: string;
  [k: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** a template to use instead of tokenizer_config.json's chat_template */
  chatTemplate?: string;
  /** extra template variables (tools, enable_thinking, …) */
  [k: string]: unknown;
}

const utf8 = new TextEncoder();
const utf8dec = new TextDecoder('utf-8');

export class Tokenizer {
  readonly compact: CompactTokenizer;
  private readonly w: ZpdExports;
  private readonly addedByText = new Map<string, number>();
  private templates = new Map<string, Template>();

  private constructor(compact: CompactTokenizer, w: ZpdExports) {
    this.compact = compact;
    this.w = w;
    const c = compact;
    const offs = putBytes(w, new Uint8Array(c.offs.buffer, c.offs.byteOffset, c.offs.byteLength));
    const bytes = putBytes(w, c.bytes);
    const kinds = putBytes(w, c.kinds);
    const merges = putBytes(w, new Uint8Array(c.merges.buffer, c.merges.byteOffset, c.merges.byteLength));
    w.tk_init(c.mode, c.pretok, c.flags, c.unkId, c.n, offs, bytes, kinds, c.merges.length / 3, merges);
    for (let id = 0; id < c.n; id++) if (c.kinds[id] >= 2) this.addedByText.set(this.rawText(id), id);
  }

  /** From the compact form (what the cache holds). */
  static async fromCompact(compact: CompactTokenizer): Promise<Tokenizer> {
    return new Tokenizer(compact, await instantiateZpd());
  }

  /** From parsed tokenizer.json (and tokenizer_config.json) objects; `file` names them in errors. */
  static async fromJSON(tokenizerJSON: unknown, tokenizerConfig?: unknown, file?: string): Promise<Tokenizer> {
    return Tokenizer.fromCompact(compactFromJSON(tokenizerJSON, tokenizerConfig, file));
  }

  get vocabSize(): number {
    return this.compact.n;
  }
  get bosId(): number | null {
    return this.compact.bosId;
  }
  get eosId(): number | null {
    return this.compact.eosId;
  }
  get padId(): number | null {
    return this.compact.padId;
  }
  /** whether encode() with addSpecialTokens adds BOS / EOS */
  get addBos(): boolean {
    return this.compact.addBos && this.compact.bosId !== null;
  }
  get addEos(): boolean {
    return this.compact.addEos && this.compact.eosId !== null;
  }
  get chatTemplate(): string | null {
    return this.compact.chatTemplate;
  }

  /** Token ids of `text`. */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    const w = this.w;
    if (this.compact.nfc) text = text.normalize('NFC');
    const max = text.length * 3;
    const p = w.tk_input(max);
    const dst = new Uint8Array(w.memory.buffer, p, max);
    // sentencepiece byte fallback treats a lone surrogate as one unknown character: pass it as WTF-8
    const written = this.compact.mode !== MODE_BYTELEVEL && LONE_SURROGATE.test(text) ? wtf8Into(text, dst) : utf8.encodeInto(text, dst).written;
    const n = w.tk_encode(written, opts.splitSpecialTokens === false ? 0 : 1);
    const body = new Int32Array(w.memory.buffer, w.tk_out(), n);
    const special = opts.addSpecialTokens ?? true;
    const bos = special && this.addBos ? 1 : 0;
    const eos = special && this.addEos ? 1 : 0;
    const out = new Int32Array(bos + n + eos);
    if (bos) out[0] = this.compact.bosId!;
    out.set(body, bos);
    if (eos) out[bos + n] = this.compact.eosId!;
    return out;
  }

  /** Text of `ids` (byte-level or Metaspace decoding, byte fallback; invalid UTF-8 becomes U+FFFD). */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const w = this.w;
    const p = w.tk_input(ids.length * 4);
    new Int32Array(w.memory.buffer, p, ids.length).set(ids);
    const len = w.tk_decode(ids.length, opts.skipSpecialTokens ? 1 : 0);
    let text = utf8dec.decode(new Uint8Array(w.memory.buffer, w.tk_dec_out(), len));
    if (opts.cleanUpSpaces ?? this.compact.cleanUpSpaces) text = cleanUpSpaces(text);
    return text;
  }

  /** The token's string as tokenizer.json writes it (byte-level tokens as "Ġhello"). */
  idToToken(id: number): string | undefined {
    const c = this.compact;
    if (!Number.isInteger(id) || id < 0 || id >= c.n || c.kinds[id] === 0) return undefined;
    if (c.kinds[id] === 1 && c.mode === MODE_BYTELEVEL) {
      const { byteToChar } = tables();
      let s = '';
      for (let i = c.offs[id]; i < c.offs[id + 1]; i++) s += byteToChar[c.bytes[i]];
      return s;
    }
    return this.rawText(id);
  }

  /** The id of a token string as tokenizer.json writes it, or undefined. */
  tokenToId(token: string): number | undefined {
    const added = this.addedByText.get(token);
    if (added !== undefined) return added;
    let b: Uint8Array;
    if (this.compact.mode === MODE_BYTELEVEL) {
      const { charToByte } = tables();
      b = new Uint8Array(token.length);
      for (let i = 0; i < token.length; i++) {
        const v = charToByte.get(token[i]);
        if (v === undefined) return undefined;
        b[i] = v;
      }
    } else b = utf8.encode(token);
    const p = this.w.tk_input(b.length);
    new Uint8Array(this.w.memory.buffer, p, b.length).set(b);
    const id = this.w.tk_lookup(p, b.length);
    return id < 0 ? undefined : id;
  }

  /** Render messages with the chat template (@huggingface/jinja), as transformers does. */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const { addGenerationPrompt, chatTemplate, ...extra } = opts;
    const src = chatTemplate ?? this.compact.chatTemplate;
    if (!src) throw new UsageError('this tokenizer has no chat_template (tokenizer_config.json); pass chatTemplate or use another format');
    let t = this.templates.get(src);
    if (!t) {
      t = new Template(src);
      this.templates.set(src, t);
    }
    return renderLimited(t, { messages, add_generation_prompt: addGenerationPrompt ?? false, ...this.compact.specialTokens, ...extra });
  }

  private rawText(id: number): string {
    const c = this.compact;
    return utf8dec.decode(c.bytes.subarray(c.offs[id], c.offs[id + 1]));
  }
}

/** The chat template called raise_exception (usually: this conversation breaks its rules). */
export class TemplateRaised extends FormatError {}

/** Elements all range() calls of one rendering may produce, and the longest output kept. */
const TEMPLATE_RANGE_BUDGET = 100_000;
const TEMPLATE_MAX_OUTPUT = 4 << 20;

/**
 * Render a chat template as Template.render does, with limits: the only unbounded loops a chat
 * template can write go over range() (strings cannot be multiplied, macros cannot recurse), so
 * range() draws from a budget; an error inside the template, or an output too long to be a
 * prompt, is a FormatError naming tokenizer_config.json's chat_template.
 */
function renderLimited(t: Template, items: Record<string, unknown>): string {
  const fail = (why: string) => new FormatError('tokenizer_config.json', 'chat_template', why, 'fix the template, or train without it (--chat-template off)');
  let budget = TEMPLATE_RANGE_BUDGET;
  const range = (start: number, stop?: number, step = 1) => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() step must not be zero');
    const n = Math.max(0, Math.ceil((stop - start) / step));
    if ((budget -= n) < 0) throw fail(`range() asked for more than ${TEMPLATE_RANGE_BUDGET} elements in one rendering (a runaway loop)`);
    return Array.from({ length: n }, (_, i) => start + i * step);
  };
  const pad2 = (n: number) => String(n).padStart(2, '0');
  const strftime_now = (f: string) => {
    const d = new Date();
    const month = (style: 'long' | 'short') => new Intl.DateTimeFormat('en', { month: style }).format(d);
    const parts: Record<string, string> = { '%Y': String(d.getFullYear()), '%m': pad2(d.getMonth() + 1), '%d': pad2(d.getDate()), '%b': month('short'), '%B': month('long'), '%H': pad2(d.getHours()), '%M': pad2(d.getMinutes()), '%%': '%' };
    return f.replace(/%[YmdbBHM%]/g, (k) => parts[k]);
  };
  // the globals of @huggingface/jinja's Template.render, with range() bounded
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null, range, strftime_now,
    raise_exception: (msg: string) => {
      throw new TemplateRaised('tokenizer_config.json', 'chat_template', `the template refused the conversation: ${msg}`);
    },
  };
  for (const [k, v] of Object.entries({ ...globals, ...items })) env.set(k, v);
  let out: string;
  try {
    out = new Interpreter(env).run(t.parsed).value as string;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw fail(`rendering failed: ${(e as Error).message}`);
  }
  if (out.length > TEMPLATE_MAX_OUTPUT) throw fail(`it produced ${out.length} characters for one conversation (a runaway template)`);
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** UTF-8, except that lone surrogates are written as their 3-byte (WTF-8) form. */
function wtf8Into(text: string, dst: Uint8Array): number {
  let w = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) dst[w++] = c;
    else if (c < 0x800) {
      dst[w++] = 0xc0 | (c >> 6);
      dst[w++] = 0x80 | (c & 63);
    } else if (c < 0x10000) {
      dst[w++] = 0xe0 | (c >> 12);
      dst[w++] = 0x80 | ((c >> 6) & 63);
      dst[w++] = 0x80 | (c & 63);
    } else {
      dst[w++] = 0xf0 | (c >> 18);
      dst[w++] = 0x80 | ((c >> 12) & 63);
      dst[w++] = 0x80 | ((c >> 6) & 63);
      dst[w++] = 0x80 | (c & 63);
    }
  }
  return w;
}

let tablesCache: ReturnType<typeof byteLevelTables> | undefined;
function tables() {
  return (tablesCache ??= byteLevelTables());
}

/** transformers' clean_up_tokenization. */
export function cleanUpSpaces(text: string): string {
  return text
    .replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',')
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}
