// The default model's tokenizer (scripts/train-tokenizer.mjs): a byte-level BPE learned on a
// corpus, written as tokenizer.json + tokenizer_config.json. zpd-wgpu's loader and
// @lenml/tokenizers (Hugging Face-compatible) must read it alike, id for id; digits stay single
// tokens; training is deterministic. The shipped default/model/tokenizer.json, when present, gets
// the same agreement checks.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { TokenizerLoader } from '@lenml/tokenizers';
import { loadTokenizer } from '../src/tokenizer/files.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import {
  CHAT_TEMPLATE, QWEN_RE, SPECIAL_TOKENS, byteLevelTables, learnBPE, pretokenize, trainTokenizer,
} from '../scripts/train-tokenizer.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'zpd-deftok-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A few KB of English with numbers, punctuation and newlines; deterministic. */
function smallCorpus(): string {
  const lines = [
    'In 1611, 12 men finished the translation of the book.',
    'The quick brown fox jumps over the lazy dog; the dog sleeps on.',
    "It's 5 o'clock, and we'll see whether they've gone or they're still here.",
    'And God said, Let there be light: and there was light.',
    'She sells sea shells by the sea shore, 3 shells for 20 pence!',
    'Numbers: 0 1 2 3 4 5 6 7 8 9, 10, 100, 2048 and 3.14159.',
    'Where are the others? They went to the market at 7:30 in the morning.',
    'The cafe on the corner serves tea, coffee, and bread (fresh every day).',
    'Then the king answered and said unto them, Go in peace.',
    'A small model learns the shape of the words before their meaning.',
  ];
  const out: string[] = [];
  for (let r = 0; r < 12; r++) {
    for (let i = 0; i < lines.length; i++) out.push((r + i) % 3 === 0 ? lines[i].toUpperCase() : lines[(i * 7 + r) % lines.length]);
    out.push(`Chapter ${r + 1}, verse ${r * 3 + 2}: the end of part ${r}.`);
  }
  return out.join('\n') + '\n';
}

const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is 12+30?' },
  { role: 'assistant', content: '42.' },
  { role: 'user', content: 'Thanks!\n\nAnd in 1611?' },
];

const TEXTS: { name: string; text: string }[] = [
  { name: 'prose', text: 'The quick brown fox jumps over the lazy dog. And God said, Let there be light.' },
  { name: 'numbers', text: 'In 1611, 12 men finished it; 3.14159 and 1,000,000 and 2048 and 007.' },
  { name: 'contractions', text: "It's HERE, YOU'RE there, they'll go, she'd say, we've done, I'M ok" },
  { name: 'punctuation', text: '...!!!???---()[]{}<>"\'\'@#$%^&*_+=|\\/~`' },
  { name: 'newlines', text: 'one\ntwo\n\nthree\r\nfour \n five\t\tsix   \n' },
  { name: 'spaces', text: '   leading and trailing   ' },
  { name: 'unicode', text: 'café 안녕하세요 😀 naïve Ünïcödé 日本語 ١٢٣ ４５６' },
  { name: 'combining', text: 'e\u0301 cafe\u0301 A\u030A' },
  { name: 'specials', text: '<|bos|>Hello<|eos|> <|pad|><|im_start|>user\nhi<|im_end|>\n' },
  { name: 'partial specials', text: '<|bos <|im_end| <|eos|>> <|pad' },
  { name: 'long word', text: 'pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(3) },
  { name: 'empty', text: '' },
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ref = any;
interface Loaded { json: Record<string, any>; config: Record<string, any>; ours: Tokenizer; ref: Ref } // eslint-disable-line @typescript-eslint/no-explicit-any

async function load(dir: string): Promise<Loaded> {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  const ours = await loadTokenizer(dir, { cacheDir: false });
  const ref = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
  return { json, config, ours, ref };
}

const ids = (x: ArrayLike<number>) => Array.from(x);

/** The agreement checks, for a tokenizer folder (trained here, or the shipped default/model). */
function agreementTests(name: string, get: () => Loaded) {
  test(`${name}: ids agree with @lenml/tokenizers, with and without special tokens`, () => {
    const { ours, ref } = get();
    for (const c of TEXTS) {
      expect(ids(ours.encode(c.text, { addSpecialTokens: false })), c.name).toEqual(ids(ref.encode(c.text, { add_special_tokens: false })));
      expect(ids(ours.encode(c.text)), c.name).toEqual(ids(ref.encode(c.text)));
    }
  });

  test(`${name}: BOS is added in front, EOS is not`, () => {
    const { ours, ref } = get();
    const bos = ours.tokenToId('<|bos|>')!;
    expect(ours.bosId).toBe(bos);
    expect(ours.eosId).toBe(ours.tokenToId('<|eos|>'));
    expect(ours.padId).toBe(ours.tokenToId('<|pad|>'));
    expect(ours.addBos).toBe(true);
    expect(ours.addEos).toBe(false);
    const e = ids(ours.encode('Hello world'));
    expect(e[0]).toBe(bos);
    expect(e.slice(1)).toEqual(ids(ours.encode('Hello world', { addSpecialTokens: false })));
    expect(ids(ref.encode(''))).toEqual([bos]);
    expect(ids(ours.encode(''))).toEqual([bos]);
  });

  test(`${name}: the special tokens are single ids at the end of the vocabulary`, () => {
    const { ours, ref, json } = get();
    const n = Object.keys(json.model.vocab).length + SPECIAL_TOKENS.length;
    expect(ours.vocabSize).toBe(n);
    SPECIAL_TOKENS.forEach((t, i) => {
      expect(ours.tokenToId(t)).toBe(n - SPECIAL_TOKENS.length + i);
      expect(ids(ours.encode(t, { addSpecialTokens: false }))).toEqual([n - SPECIAL_TOKENS.length + i]);
      expect(ids(ref.encode(t, { add_special_tokens: false }))).toEqual([n - SPECIAL_TOKENS.length + i]);
    });
  });

  test(`${name}: the chat template renders and tokenizes alike`, () => {
    const { ours, ref } = get();
    for (const addGenerationPrompt of [false, true]) {
      const text = ours.applyChatTemplate(MESSAGES, { addGenerationPrompt });
      expect(text).toBe(ref.apply_chat_template(MESSAGES, { add_generation_prompt: addGenerationPrompt, tokenize: false }));
      expect(text.startsWith('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n')).toBe(true);
      expect(text.endsWith(addGenerationPrompt ? '<|im_end|>\n<|im_start|>assistant\n' : 'And in 1611?<|im_end|>\n')).toBe(true);
      const refIds = ids(ref.apply_chat_template(MESSAGES, { add_generation_prompt: addGenerationPrompt, tokenize: true, return_tensor: false }));
      expect(ids(ours.encode(text, { addSpecialTokens: false }))).toEqual(refIds);
      expect(ids(ours.encode(text))).toEqual(ids(ref.encode(text)));
      expect(refIds.filter((i) => i === ours.tokenToId('<|im_start|>')).length).toBe(MESSAGES.length + (addGenerationPrompt ? 1 : 0));
    }
    // no default system message
    expect(ours.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<|im_start|>user\nhi<|im_end|>\n');
  });

  test(`${name}: decode agrees with the reference and round-trips`, () => {
    const { ours, ref } = get();
    for (const c of TEXTS) {
      const text = c.text.normalize('NFC');
      const e = ids(ours.encode(text));
      expect(ours.decode(e), c.name).toBe(ref.decode(e));
      expect(ours.decode(e, { skipSpecialTokens: true }), c.name).toBe(ref.decode(e, { skip_special_tokens: true }));
      expect(ours.decode(ours.encode(text, { addSpecialTokens: false })), c.name).toBe(text);
    }
  });

  test(`${name}: every digit is one token, and no other token holds a digit`, () => {
    const { ours, ref, json } = get();
    for (let d = 0; d <= 9; d++) {
      expect(ids(ours.encode(String(d), { addSpecialTokens: false }))).toEqual([48 + d]);
      expect(ours.idToToken(48 + d)).toBe(String(d));
    }
    const withDigits = Object.entries(json.model.vocab as Record<string, number>).filter(([t]) => /[0-9]/.test(t));
    expect(withDigits.sort((a, b) => a[1] - b[1])).toEqual([...'0123456789'].map((d) => [d, d.charCodeAt(0)]));
    expect((json.model.merges as [string, string][]).filter(([a, b]) => /[0-9]/.test(a + b))).toEqual([]);
    const text = 'In 1611, 12 men and 2048 tokens';
    const e = ids(ours.encode(text, { addSpecialTokens: false }));
    expect(e).toEqual(ids(ref.encode(text, { add_special_tokens: false })));
    const toks = e.map((i) => ours.idToToken(i)!);
    expect(toks.filter((t) => /[0-9]/.test(t))).toEqual(['1', '6', '1', '1', '1', '2', '2', '0', '4', '8']);
  });

  test(`${name}: the file is laid out as a Qwen2-style byte-level BPE`, () => {
    const { json, config } = get();
    expect(json.normalizer).toEqual({ type: 'NFC' });
    expect(json.pre_tokenizer.type).toBe('Sequence');
    expect(json.pre_tokenizer.pretokenizers[0]).toEqual({ type: 'Split', pattern: { Regex: QWEN_RE }, behavior: 'Isolated', invert: false });
    expect(json.pre_tokenizer.pretokenizers[1]).toMatchObject({ type: 'ByteLevel', use_regex: false, add_prefix_space: false });
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.model.type).toBe('BPE');
    const { byteToChar } = byteLevelTables();
    const vocab = json.model.vocab as Record<string, number>;
    for (let b = 0; b < 256; b++) expect(vocab[byteToChar[b]]).toBe(b);
    expect(Object.values(vocab).sort((a, b) => a - b)).toEqual(Object.values(vocab).map((_, i) => i));
    expect(config).toMatchObject({
      add_bos_token: true, add_eos_token: false, bos_token: '<|bos|>', eos_token: '<|eos|>', pad_token: '<|pad|>',
      model_max_length: 512, clean_up_tokenization_spaces: false, chat_template: CHAT_TEMPLATE,
    });
  });
}

describe('a tokenizer trained on a small corpus', () => {
  const corpusFile = join(tmp, 'corpus.txt');
  let loaded: Loaded;
  beforeAll(async () => {
    writeFileSync(corpusFile, smallCorpus());
    const r = trainTokenizer({ corpus: corpusFile, vocabSize: 400, out: join(tmp, 'a') });
    expect(r.vocabSize).toBe(400);
    expect(r.merges).toBe(400 - 256 - SPECIAL_TOKENS.length);
    loaded = await load(join(tmp, 'a'));
  });

  agreementTests('small', () => loaded);

  test('the pre-tokenizer pieces are those of the reference pre-tokenizer', () => {
    const { byteToChar } = byteLevelTables();
    const enc = new TextEncoder();
    const bl = (s: string) => Array.from(enc.encode(s), (b) => byteToChar[b]).join('');
    for (const c of [...TEXTS, { name: 'corpus', text: smallCorpus() }]) {
      const text = c.text.normalize('NFC');
      expect(pretokenize(text).map(bl), c.name).toEqual(loaded.ref.pre_tokenizer.pre_tokenize(text));
    }
  });

  test('the incremental pair counts learn the same merges as recounting every pair each time', () => {
    const text = smallCorpus();
    const learned = learnBPE(text, { vocabSize: 400 });
    // naive BPE: recount all pairs of all pieces before every merge
    const enc = new TextEncoder();
    const words = pretokenize(text.normalize('NFC')).map((p) => Array.from(enc.encode(p)).map((b) => String.fromCharCode(b)));
    const naive: [string, string][] = [];
    const vocab = new Set(Array.from({ length: 256 }, (_, b) => String.fromCharCode(b)));
    const idOf = new Map(Array.from({ length: 256 }, (_, b) => [String.fromCharCode(b), b] as [string, number]));
    while (vocab.size < 400 - SPECIAL_TOKENS.length) {
      const counts = new Map<string, number>();
      for (const w of words) {
        for (let i = 0; i + 1 < w.length; i++) {
          if (/[0-9]/.test(w[i] + w[i + 1])) continue;
          const k = JSON.stringify([w[i], w[i + 1]]);
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      }
      let best: [string, string] | null = null, bestN = 0;
      for (const [k, n] of counts) {
        const [a, b] = JSON.parse(k) as [string, string];
        const better = n > bestN || (n === bestN && best !== null &&
          (idOf.get(a)! < idOf.get(best[0])! || (idOf.get(a) === idOf.get(best[0]) && idOf.get(b)! < idOf.get(best[1])!)));
        if (better) { best = [a, b]; bestN = n; }
      }
      if (!best || bestN < 2) break;
      const [a, b] = best;
      naive.push([a, b]);
      if (!vocab.has(a + b)) { idOf.set(a + b, vocab.size); vocab.add(a + b); }
      for (const w of words) {
        for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
      }
    }
    const str = (id: number) => String.fromCharCode(...learned.tokens[id]);
    expect(learned.merges.map(([a, b]) => [str(a), str(b)])).toEqual(naive);
  });

  test('training twice gives identical files', () => {
    trainTokenizer({ corpus: corpusFile, vocabSize: 400, out: join(tmp, 'b') });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      expect(readFileSync(join(tmp, 'b', f), 'utf8'), f).toBe(readFileSync(join(tmp, 'a', f), 'utf8'));
    }
  });

  test('a corpus that runs out of pairs gives a smaller vocabulary, specials still last', async () => {
    const f = join(tmp, 'tiny.txt');
    writeFileSync(f, 'abab abab 12 12\n');
    const r = trainTokenizer({ corpus: f, vocabSize: 400, out: join(tmp, 'tiny') });
    expect(r.vocabSize).toBeLessThan(400);
    const t = await load(join(tmp, 'tiny'));
    expect(t.ours.vocabSize).toBe(r.vocabSize);
    expect(t.ours.tokenToId('<|im_end|>')).toBe(r.vocabSize - 1);
    expect(ids(t.ours.encode('abab 12'))).toEqual(ids(t.ref.encode('abab 12')));
  });
});

const DEFAULT_DIR = 'default/model';
describe.runIf(existsSync(join(DEFAULT_DIR, 'tokenizer.json')))('the shipped default/model tokenizer', () => {
  let loaded: Loaded;
  beforeAll(async () => {
    loaded = await load(DEFAULT_DIR);
  });
  agreementTests('default/model', () => loaded);

  test('default/model: 2048 ids', () => {
    expect(loaded.ours.vocabSize).toBe(2048);
  });
});
