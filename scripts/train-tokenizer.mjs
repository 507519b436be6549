#!/usr/bin/env node
// Learn a small byte-level BPE tokenizer (GPT-2 / Qwen2 style) on a text corpus and write it as a
// Hugging Face tokenizer.json + tokenizer_config.json, loadable by zpd-wgpu's tokenizer
// (src/tokenizer/) and by Hugging Face-compatible libraries alike.
//
//   node scripts/train-tokenizer.mjs --corpus FILE [--vocab-size 2048] [--out default/model]
//                                    [--min-frequency 2]
//
// The pipeline is Qwen2's: NFC, then the Qwen2 pre-tokenizer regex (Split, Isolated: words,
// single digits, punctuation runs, whitespace), then ByteLevel (bytes → GPT-2's printable
// characters, no regex of its own). BPE merges are counted within those pieces only: every
// digit is its own piece, and no merge ever contains a digit.
//
// Vocabulary: ids 0..255 are the 256 bytes (id = byte value), then one token per merge in the
// order learned, then the added special tokens <|bos|> <|eos|> <|pad|> <|im_start|> <|im_end|>,
// vocab-size ids in all. Ties between equally frequent pairs go to the smaller (left id,
// right id), so the same corpus and vocab size always give the same files, byte for byte.
//
// Pair counts are kept incrementally over a table of distinct pieces and their frequencies, with a
// lazy max-heap: each merge only touches the pieces that contain the merged pair.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Qwen2/Qwen3 pre-tokenizer regex, exactly as tokenizer.json holds it (src/tokenizer/compact.ts QWEN_RE). */
export const QWEN_RE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const SPECIAL_TOKENS = ['<|bos|>', '<|eos|>', '<|pad|>', '<|im_start|>', '<|im_end|>'];
export const DEFAULT_VOCAB_SIZE = 2048;
export const DEFAULT_OUT = 'default/model';
export const MODEL_MAX_LENGTH = 512;

/** ChatML, as Qwen2 writes it (newlines as real characters inside the Jinja strings), without a default system message. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** GPT-2's byte ↔ printable character table (bytes_to_unicode), as src/tokenizer/compact.ts has it. */
export function byteLevelTables() {
  const byteToChar = new Array(256);
  const charToByte = new Map();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const ch = String.fromCharCode(printable ? b : 256 + extra++);
    byteToChar[b] = ch;
    charToByte.set(ch, b);
  }
  return { byteToChar, charToByte };
}

/**
 * QWEN_RE as a JavaScript RegExp: JS (before Node 23) has no inline `(?i:…)` group, so the
 * contraction alternatives are spelled out with both cases; the rest is the same text, with the
 * `u` flag for \p{…}.
 */
export function qwenRegExp() {
  const ci = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  if (!QWEN_RE.startsWith(ci)) throw new Error('QWEN_RE changed');
  const js = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])" + QWEN_RE.slice(ci.length);
  return new RegExp(js, 'gu');
}

/** The pre-tokenizer's pieces of `text` (Split with behavior Isolated: unmatched gaps are pieces too). */
export function pretokenize(text) {
  const re = qwenRegExp();
  const out = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[0].length > 0) out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// --- a binary max-heap of [count, left, right], biggest count first, then smallest (left, right)
function above(x, y) {
  return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
}
class Heap {
  constructor() { this.a = []; }
  get size() { return this.a.length; }
  push(e) {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!above(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && above(a[l], a[m])) m = l;
        if (r < a.length && above(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

const KEY = 1 << 20; // pair key = left * KEY + right (ids < 2^20)
const isDigitByte = (b) => b >= 0x30 && b <= 0x39;

/**
 * Learn byte-level BPE merges on `text`.
 * @param {string} text the corpus
 * @param {{ vocabSize?: number, minFrequency?: number, specialTokens?: string[] }} [opts]
 * @returns {{ tokens: Uint8Array[], merges: [number, number][], pieces: number, distinctPieces: number }}
 *   tokens[id]: the bytes of each non-special token (256 bytes, then the merged tokens);
 *   merges: (left id, right id) in rank order (a merge may produce a token an earlier merge made)
 */
export function learnBPE(text, { vocabSize = DEFAULT_VOCAB_SIZE, minFrequency = 2, specialTokens = SPECIAL_TOKENS } = {}) {
  const target = vocabSize - specialTokens.length; // byte + merged tokens
  if (target < 256) throw new Error(`vocab size ${vocabSize} is too small: 256 byte tokens + ${specialTokens.length} special tokens need ${256 + specialTokens.length}`);

  // distinct pieces and how often each occurs
  const freq = new Map();
  let pieces = 0;
  for (const p of pretokenize(text.normalize('NFC'))) {
    freq.set(p, (freq.get(p) ?? 0) + 1);
    pieces++;
  }
  const enc = new TextEncoder();
  const words = []; // symbol ids of each distinct piece
  const counts = [];
  for (const [p, c] of [...freq.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))) {
    words.push(Array.from(enc.encode(p)));
    counts.push(c);
  }

  const tokens = [];
  const hasDigit = [];
  for (let b = 0; b < 256; b++) { tokens.push(Uint8Array.of(b)); hasDigit.push(isDigitByte(b)); }
  const idOfBytes = new Map(); // latin1 string of the bytes → id
  const bkey = (u8) => String.fromCharCode(...u8);
  for (let b = 0; b < 256; b++) idOfBytes.set(bkey(tokens[b]), b);

  const pairCount = new Map(); // key → count
  const where = new Map(); // key → Set of word indices that (may) contain the pair
  const countable = (a, b) => !hasDigit[a] && !hasDigit[b];
  const addPairs = (w, sign, touched) => {
    const s = words[w], c = counts[w] * sign;
    for (let i = 0; i + 1 < s.length; i++) {
      if (!countable(s[i], s[i + 1])) continue;
      const k = s[i] * KEY + s[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      if (sign > 0) {
        let set = where.get(k);
        if (!set) where.set(k, (set = new Set()));
        set.add(w);
      }
      if (touched) touched.add(k);
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1, null);
  const heap = new Heap();
  for (const [k, c] of pairCount) heap.push([c, Math.floor(k / KEY), k % KEY]);

  const merges = [];
  while (tokens.length < target && heap.size > 0) {
    const [c, a, b] = heap.pop();
    const k = a * KEY + b;
    const cur = pairCount.get(k) ?? 0;
    if (cur !== c) {
      if (cur > 0) heap.push([cur, a, b]); // stale entry: counts only ever go down
      continue;
    }
    if (c < minFrequency) break;
    const bytes = new Uint8Array(tokens[a].length + tokens[b].length);
    bytes.set(tokens[a]);
    bytes.set(tokens[b], tokens[a].length);
    let id = idOfBytes.get(bkey(bytes));
    if (id === undefined) {
      id = tokens.length;
      tokens.push(bytes);
      hasDigit.push(hasDigit[a] || hasDigit[b]);
      idOfBytes.set(bkey(bytes), id);
    }
    merges.push([a, b]);
    const touched = new Set();
    const ws = [...where.get(k)].sort((x, y) => x - y);
    where.delete(k);
    for (const w of ws) {
      const s = words[w];
      let found = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) { found = true; break; }
      if (!found) continue;
      addPairs(w, -1, null);
      const t = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { t.push(id); i++; } else t.push(s[i]);
      }
      words[w] = t;
      addPairs(w, 1, touched);
    }
    pairCount.delete(k);
    // pairs with the new token are new: push them with their final counts
    for (const t of touched) {
      const l = Math.floor(t / KEY), r = t % KEY;
      if (l !== id && r !== id) continue;
      const n = pairCount.get(t) ?? 0;
      if (n > 0) heap.push([n, l, r]);
    }
  }
  return { tokens, merges, pieces, distinctPieces: words.length };
}

/** tokenizer.json and tokenizer_config.json objects for learned tokens and merges. */
export function buildTokenizerFiles({ tokens, merges }, { specialTokens = SPECIAL_TOKENS, modelMaxLength = MODEL_MAX_LENGTH } = {}) {
  const { byteToChar } = byteLevelTables();
  const str = (u8) => Array.from(u8, (x) => byteToChar[x]).join('');
  const vocab = tokens.map((t, id) => [str(t), id]);
  const specials = specialTokens.map((content, i) => ({
    id: tokens.length + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const idOf = (s) => specials.find((t) => t.content === s).id;
  const [bos, eos, pad] = specialTokens;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN_RE }, behavior: 'Isolated', invert: false },
        byteLevel,
      ],
    },
    // BOS in front of every sequence: tokenizer_config's add_bos_token says the same for readers
    // that look there (zpd-wgpu, transformers' slow path); readers of tokenizer.json use this
    post_processor: {
      type: 'Sequence',
      processors: [
        { ...byteLevel },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [idOf(bos)], tokens: [bos] } },
        },
      ],
    },
    decoder: { ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: '\u0000VOCAB\u0000', // written in id order by tokenizerJSONText
      merges: merges.map(([a, b]) => [str(tokens[a]), str(tokens[b])]),
    },
  };
  // as transformers saves it (added_tokens_decoder, keys sorted); add_prefix_space is left out: the
  // ByteLevel pre-tokenizer already says false, and transformers may rewrite a pre-tokenizer for it
  const addedDecoder = {};
  for (const t of specials) {
    addedDecoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  const config = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedDecoder,
    additional_special_tokens: specialTokens.filter((t) => t !== bos && t !== eos && t !== pad),
    bos_token: bos,
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    errors: 'replace',
    model_max_length: modelMaxLength,
    pad_token: pad,
    split_special_tokens: false,
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: null,
  };
  return { tokenizer, vocab, config };
}

/**
 * tokenizer.json text: two-space indentation, the vocabulary in id order one token a line and
 * one merge a line (JSON.stringify alone would move integer-like keys such as "7" to the front).
 */
export function tokenizerJSONText({ tokenizer, vocab }) {
  const vocabText = '{\n' + vocab.map(([s, id]) => `      ${JSON.stringify(s)}: ${id}`).join(',\n') + '\n    }';
  const merges = tokenizer.model.merges;
  const mergesText = merges.length === 0 ? '[]' : '[\n' + merges.map((m) => `      ${JSON.stringify(m)}`).join(',\n') + '\n    ]';
  const body = JSON.stringify({ ...tokenizer, model: { ...tokenizer.model, merges: '\u0000MERGES\u0000' } }, null, 2);
  return body.replace('"\\u0000VOCAB\\u0000"', () => vocabText).replace('"\\u0000MERGES\\u0000"', () => mergesText) + '\n';
}

function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * Train on the corpus file and write DIR/tokenizer.json and DIR/tokenizer_config.json.
 * @param {{ corpus: string, vocabSize?: number, out?: string, minFrequency?: number, log?: (...a: unknown[]) => void }} opts
 */
export function trainTokenizer({ corpus, vocabSize = DEFAULT_VOCAB_SIZE, out = DEFAULT_OUT, minFrequency = 2, log = () => {} }) {
  const t0 = performance.now();
  const text = readFileSync(corpus, 'utf8');
  const learned = learnBPE(text, { vocabSize, minFrequency });
  const ms = performance.now() - t0;
  const files = buildTokenizerFiles(learned);
  const n = learned.tokens.length + SPECIAL_TOKENS.length;
  if (n < vocabSize) log(`note: the corpus ran out of pairs seen ${minFrequency}+ times: vocabulary ${n} < ${vocabSize}`);
  mkdirSync(resolve(out), { recursive: true });
  const tokenizerFile = join(resolve(out), 'tokenizer.json');
  const configFile = join(resolve(out), 'tokenizer_config.json');
  writeAtomic(tokenizerFile, tokenizerJSONText(files));
  writeAtomic(configFile, JSON.stringify(files.config, null, 2) + '\n');
  return {
    tokenizerFile, configFile, vocabSize: n, merges: learned.merges.length, ms,
    pieces: learned.pieces, distinctPieces: learned.distinctPieces, corpusBytes: Buffer.byteLength(text),
  };
}

function parseArgs(argv) {
  const o = { corpus: null, vocabSize: DEFAULT_VOCAB_SIZE, out: DEFAULT_OUT, minFrequency: 2 };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i], v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    const val = () => v ?? argv[++i];
    if (a === '--corpus') o.corpus = val();
    else if (a === '--vocab-size') o.vocabSize = Number(val());
    else if (a === '--out') o.out = val();
    else if (a === '--min-frequency') o.minFrequency = Number(val());
    else if (a === '-h' || a === '--help') o.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.help) return o;
  if (!o.corpus) throw new Error('--corpus FILE is required (e.g. node scripts/default-corpus.mjs, then --corpus .cache/corpus/corpus/train.txt)');
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < 256 + SPECIAL_TOKENS.length) throw new Error(`--vocab-size must be an integer ≥ ${256 + SPECIAL_TOKENS.length}`);
  if (!Number.isInteger(o.minFrequency) || o.minFrequency < 1) throw new Error('--min-frequency must be an integer ≥ 1');
  if (!o.out) throw new Error('--out needs a folder');
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const o = parseArgs(process.argv.slice(2));
    if (o.help) {
      console.log('usage: node scripts/train-tokenizer.mjs --corpus FILE [--vocab-size 2048] [--out default/model] [--min-frequency 2]');
      process.exit(0);
    }
    const r = trainTokenizer({ ...o, log: console.log });
    console.log(`corpus ${o.corpus}: ${r.corpusBytes} bytes, ${r.pieces} pre-tokenized pieces (${r.distinctPieces} distinct)`);
    console.log(`learned ${r.merges} merges in ${(r.ms / 1000).toFixed(2)} s: vocabulary ${r.vocabSize} (256 bytes + ${r.vocabSize - 256 - SPECIAL_TOKENS.length} merged + ${SPECIAL_TOKENS.length} special)`);
    console.log(`wrote ${r.tokenizerFile}\n      ${r.configFile}`);
  } catch (e) {
    console.error(`train-tokenizer: ${e.message}`);
    process.exit(1);
  }
}
