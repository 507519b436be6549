// tokenizer.json (+ tokenizer_config.json) → CompactTokenizer: the binary form that the wasm side
// loads (vocab bytes + offsets, merges as id triples) plus the few settings the host needs.
// This is the form cached with msgpackr (src/tokenizer/files.ts), so the JSON is parsed once.
import { FormatError } from '../errors.js';

export const COMPACT_VERSION = 1;

export const MODE_BYTELEVEL = 0;
export const MODE_SENTENCEPIECE = 1;
export const PRETOK_NONE = 0;
export const PRETOK_GPT2 = 1;
export const PRETOK_LLAMA3 = 2;
export const PRETOK_QWEN = 3;
export const F_IGNORE_MERGES = 1;
export const F_PREPEND_ALWAYS = 2;
export const F_PREPEND_FIRST = 4;
export const F_REPLACE_SPACE = 8;
export const F_STRIP_LEADING_SPACE = 16;

export interface CompactTokenizer {
  v: number;
  mode: number; // MODE_*
  pretok: number; // PRETOK_*
  flags: number; // F_*
  nfc: boolean; // host applies String.prototype.normalize('NFC') before encoding
  unkId: number; // -1: none
  n: number; // ids 0..n-1
  offs: Uint32Array; // [n+1] byte offsets into bytes
  bytes: Uint8Array; // token bytes (raw bytes for byte-level vocab, UTF-8 text otherwise)
  kinds: Uint8Array; // [n] 0 none, 1 vocab, 2 added, 3 added special
  merges: Int32Array; // [3·m] (left id, right id, merged id) in rank order
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  addBos: boolean;
  addEos: boolean;
  cleanUpSpaces: boolean; // clean_up_tokenization_spaces
  chatTemplate: string | null;
  /** bos_token, eos_token, pad_token, unk_token … as strings, for chat templates */
  specialTokens: Record<string, string>;
}

// Pre-tokenizer regexes we implement as scanners (assembly/tokenizer.ts), by their exact text.
const LLAMA3_RE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN_RE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** GPT-2's byte ↔ printable character table (bytes_to_unicode). */
export function byteLevelTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array(256);
  const charToByte = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const ch = String.fromCharCode(printable ? b : 256 + extra++);
    byteToChar[b] = ch;
    charToByte.set(ch, b);
  }
  return { byteToChar, charToByte };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.content === 'string') return v.content; // AddedToken objects in configs
  return null;
}

/**
 * Build the compact form. `file` names the source in errors; `config` is tokenizer_config.json
 * (optional: without it no BOS/EOS is added unless the post-processor says so).
 */
export function compactFromJSON(json: unknown, config: unknown = {}, file = 'tokenizer.json'): CompactTokenizer {
  if (!isObj(json)) throw new FormatError(file, 'top level', `expected a JSON object, found ${Array.isArray(json) ? 'an array' : typeof json}`);
  const model = json.model;
  if (!isObj(model)) throw new FormatError(file, 'model', 'missing: a tokenizer.json needs a "model" object', 'is this a Hugging Face tokenizer.json (from a fast tokenizer)?');
  const type = model.type ?? (model.merges !== undefined ? 'BPE' : undefined);
  if (type !== 'BPE') {
    throw new FormatError(file, 'model.type', `unsupported model type ${JSON.stringify(type)}; zpd-wgpu supports "BPE" (byte-level or sentencepiece-style with byte fallback)`,
      'WordPiece, Unigram and WordLevel tokenizers are not supported');
  }
  if (!isObj(model.vocab)) throw new FormatError(file, 'model.vocab', 'missing: a BPE model needs its vocabulary (token → id)');
  if (!Array.isArray(model.merges)) throw new FormatError(file, 'model.merges', 'missing: a BPE model needs its merges list');
  const cfg: Json = isObj(config) ? config : {};

  // --- which BPE: byte-level (ByteLevel pre-tokenizer/decoder) or sentencepiece-style
  const pre = json.pre_tokenizer;
  const preList: Json[] = !isObj(pre) ? [] : pre.type === 'Sequence' ? (pre.pretokenizers ?? []) : [pre];
  const normList: Json[] = !isObj(json.normalizer) ? [] : json.normalizer.type === 'Sequence' ? (json.normalizer.normalizers ?? []) : [json.normalizer];
  const isByteLevel = preList.some((p) => p?.type === 'ByteLevel') || json.decoder?.type === 'ByteLevel';
  let mode = isByteLevel ? MODE_BYTELEVEL : MODE_SENTENCEPIECE;
  let pretok = PRETOK_NONE;
  let flags = model.ignore_merges ? F_IGNORE_MERGES : 0;
  let nfc = false;
  for (const nm of normList) {
    if (nm?.type === 'NFC') nfc = true;
    else if (nm?.type === 'Prepend' && nm.prepend === '▁') flags |= F_PREPEND_ALWAYS;
    else if (nm?.type === 'Replace' && nm.pattern?.String === ' ' && nm.content === '▁') flags |= F_REPLACE_SPACE;
    else throw new FormatError(file, 'normalizer', `unsupported normalizer ${JSON.stringify(nm?.type)}`, 'supported: NFC, Prepend("▁"), Replace(" " → "▁")');
  }
  for (const [i, p] of preList.entries()) {
    const where = `pre_tokenizer${preList.length > 1 ? `.pretokenizers[${i}]` : ''}`;
    if (p?.type === 'Split') {
      const re = p.pattern?.Regex;
      if (re === LLAMA3_RE) pretok = PRETOK_LLAMA3;
      else if (re === QWEN_RE) pretok = PRETOK_QWEN;
      else if (re === GPT2_RE) pretok = PRETOK_GPT2;
      else throw new FormatError(file, where, `unsupported Split pattern ${JSON.stringify(re ?? p.pattern)}`, 'supported: the GPT-2, Llama 3 and Qwen2/3 pre-tokenizer regexes');
      if (p.behavior !== 'Isolated' || p.invert) throw new FormatError(file, where, `unsupported Split behavior ${p.behavior}${p.invert ? ' (inverted)' : ''}`);
    } else if (p?.type === 'ByteLevel') {
      if (p.use_regex) pretok = PRETOK_GPT2;
      if (p.add_prefix_space) throw new FormatError(file, where, 'ByteLevel with add_prefix_space is not supported');
    } else if (p?.type === 'Metaspace') {
      mode = MODE_SENTENCEPIECE;
      if (p.replacement !== '▁' || p.split) throw new FormatError(file, where, 'only Metaspace("▁") without split is supported');
      flags |= F_REPLACE_SPACE;
      const scheme = p.prepend_scheme ?? (p.add_prefix_space === false ? 'never' : 'always');
      if (scheme === 'always') flags |= F_PREPEND_ALWAYS;
      else if (scheme === 'first') flags |= F_PREPEND_FIRST;
    } else {
      throw new FormatError(file, where, `unsupported pre-tokenizer ${JSON.stringify(p?.type)}`, 'supported: Split (GPT-2/Llama 3/Qwen regexes), ByteLevel, Metaspace');
    }
  }
  if (mode === MODE_SENTENCEPIECE) {
    // Strip(" ", start 1) in the decoder removes the space that the prepended "▁" became
    const decs: Json[] = json.decoder?.type === 'Sequence' ? (json.decoder.decoders ?? []) : json.decoder ? [json.decoder] : [];
    if (decs.some((d) => (d?.type === 'Strip' && d.start >= 1) || (d?.type === 'Metaspace' && d.prepend_scheme !== 'never' && d.add_prefix_space !== false))) {
      flags |= F_STRIP_LEADING_SPACE;
    }
  }

  // --- ids → bytes
  const enc = new TextEncoder();
  const { charToByte } = byteLevelTables();
  const vocab = model.vocab as Record<string, number>;
  const addedTokens: Json[] = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  // ids index arrays: they must be dense enough (a real vocabulary numbers its tokens 0..n-1,
  // added tokens right after), so an absurd id is refused instead of allocated
  const entries = Object.keys(vocab).length + addedTokens.length;
  const maxId = Math.min(2 ** 24, 2 * entries + 1024);
  let n = 0;
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= maxId) throw new FormatError(file, `model.vocab[${JSON.stringify(tok).slice(0, 40)}]`, `token ids must be integers from 0 to ${maxId - 1} for ${entries} tokens, found ${JSON.stringify(id)}`);
    if (id + 1 > n) n = id + 1;
  }
  for (const [i, a] of addedTokens.entries()) {
    if (!isObj(a) || typeof a.content !== 'string' || !Number.isInteger(a.id)) throw new FormatError(file, `added_tokens[${i}]`, 'expected {id, content, special}');
    if (a.id < 0 || a.id >= maxId) throw new FormatError(file, `added_tokens[${i}].id`, `must be an integer from 0 to ${maxId - 1} for ${entries} tokens, found ${a.id}`);
    if (a.id + 1 > n) n = a.id + 1;
  }
  const parts: (Uint8Array | undefined)[] = new Array(n);
  const kinds = new Uint8Array(n);
  const toBytes = (tok: string): Uint8Array => {
    if (mode !== MODE_BYTELEVEL) return enc.encode(tok);
    const out = new Uint8Array(tok.length);
    for (let i = 0; i < tok.length; i++) {
      const b = charToByte.get(tok[i]);
      if (b === undefined) return enc.encode(tok); // not a byte-level token (should not happen)
      out[i] = b;
    }
    return out;
  };
  for (const [tok, id] of Object.entries(vocab)) {
    parts[id] = toBytes(tok);
    kinds[id] = 1;
  }
  for (const a of addedTokens) {
    parts[a.id] = enc.encode(a.content);
    kinds[a.id] = a.special ? 3 : 2;
  }
  const offs = new Uint32Array(n + 1);
  let total = 0;
  for (let id = 0; id < n; id++) {
    offs[id] = total;
    total += parts[id]?.length ?? 0;
  }
  offs[n] = total;
  const bytes = new Uint8Array(total);
  for (let id = 0; id < n; id++) if (parts[id]) bytes.set(parts[id]!, offs[id]);

  // --- merges → id triples
  const merges = new Int32Array(model.merges.length * 3);
  for (let r = 0; r < model.merges.length; r++) {
    const m = model.merges[r];
    let a: string | undefined, b: string | undefined;
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp > 0) { a = m.slice(0, sp); b = m.slice(sp + 1); }
    } else if (Array.isArray(m) && m.length === 2) {
      [a, b] = m;
    }
    if (typeof a !== 'string' || typeof b !== 'string') throw new FormatError(file, `model.merges[${r}]`, `expected "a b" or ["a", "b"], found ${JSON.stringify(m)}`);
    const ia = vocab[a], ib = vocab[b], ic = vocab[a + b];
    merges[3 * r] = ia ?? -1;
    merges[3 * r + 1] = ib ?? -1;
    merges[3 * r + 2] = ic ?? -1;
  }

  // --- special tokens and config
  const idOf = (tok: string | null): number | null => {
    if (tok === null) return null;
    const a = addedTokens.find((t) => t.content === tok);
    if (a) return a.id;
    return vocab[tok] ?? null;
  };
  const specialTokens: Record<string, string> = {};
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const s = tokenString(cfg[k]);
    if (s !== null) specialTokens[k] = s;
  }
  // BOS/EOS: tokenizer_config's add_bos_token/add_eos_token; otherwise the post-processor's template
  let addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : false;
  let addEos = typeof cfg.add_eos_token === 'boolean' ? cfg.add_eos_token : false;
  let bosId = idOf(specialTokens.bos_token ?? null);
  let eosId = idOf(specialTokens.eos_token ?? null);
  const post = json.post_processor;
  const tp: Json | undefined = post?.type === 'TemplateProcessing' ? post
    : post?.type === 'Sequence' ? (post.processors ?? []).find((p: Json) => p?.type === 'TemplateProcessing') : undefined;
  if (tp && Array.isArray(tp.single)) {
    const first = tp.single[0]?.SpecialToken?.id, last = tp.single.at(-1)?.SpecialToken?.id;
    if (typeof cfg.add_bos_token !== 'boolean' && typeof first === 'string') { addBos = true; bosId = idOf(first); }
    if (typeof cfg.add_eos_token !== 'boolean' && typeof last === 'string' && tp.single.length > 1) { addEos = true; eosId = idOf(last); }
  }
  const unk = typeof model.unk_token === 'string' ? idOf(model.unk_token) : null;
  let chatTemplate: string | null = null;
  if (typeof cfg.chat_template === 'string') chatTemplate = cfg.chat_template;
  else if (Array.isArray(cfg.chat_template)) chatTemplate = cfg.chat_template.find((t: Json) => t?.name === 'default')?.template ?? null;

  return {
    v: COMPACT_VERSION, mode, pretok, flags, nfc, unkId: unk ?? -1, n, offs, bytes, kinds, merges,
    bosId, eosId, padId: idOf(specialTokens.pad_token ?? null), addBos, addEos,
    cleanUpSpaces: cfg.clean_up_tokenization_spaces === true,
    chatTemplate, specialTokens,
  };
}
