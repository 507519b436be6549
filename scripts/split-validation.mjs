// Sets a validation split aside from a training file, so that curriculum settings can be chosen
// without looking at the held-out set (docs/curriculum-results.md: the variants experiment).
// Usage: node scripts/split-validation.mjs --data FILE --out DIR [--n 300] [--seed 7] [--exclude-bucket noise]
// Writes DIR/train.jsonl (the rest, in order) and DIR/validation.jsonl (N records, in order),
// chosen by a seeded shuffle among the records whose bucket is not excluded.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({ options: { data: { type: 'string' }, out: { type: 'string' }, n: { type: 'string', default: '300' }, seed: { type: 'string', default: '7' }, 'exclude-bucket': { type: 'string', default: 'noise' } } });
if (!a.data || !a.out) {
  console.error('usage: node scripts/split-validation.mjs --data FILE --out DIR [--n 300] [--seed 7] [--exclude-bucket noise]');
  process.exit(2);
}
const lines = readFileSync(a.data, 'utf8').split('\n').filter(Boolean);
let s = Number(a.seed); // mulberry32
const rnd = () => {
  s = (s + 0x6d2b79f5) | 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const idx = lines.map((l, i) => [i, JSON.parse(l).bucket]).filter(([, b]) => b !== a['exclude-bucket']).map(([i]) => i);
for (let i = idx.length - 1; i > 0; i--) {
  const j = Math.floor(rnd() * (i + 1));
  [idx[i], idx[j]] = [idx[j], idx[i]];
}
const val = new Set(idx.slice(0, Number(a.n)));
mkdirSync(a.out, { recursive: true });
writeFileSync(join(a.out, 'train.jsonl'), lines.filter((_, i) => !val.has(i)).join('\n') + '\n');
writeFileSync(join(a.out, 'validation.jsonl'), lines.filter((_, i) => val.has(i)).join('\n') + '\n');
console.log(`${a.out}: ${lines.length - val.size} training and ${val.size} validation records`);
