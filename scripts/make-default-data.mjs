#!/usr/bin/env node
// The project's default instruction data set: a seeded, graded-difficulty set with prerequisite
// structure, for LoRA-fine-tuning tiny (1–5 M parameter) Llama-family models with the
// zone-of-proximal-development curriculum, and for reporting exact-match accuracy per bucket and
// level.
//
//   node scripts/make-default-data.mjs [--seed N] [--out DIR] [--train N] [--eval N] [--reversed-sums]
//
// defaults: seed 1, out default/data, 6000 train and 600 eval records. Writes DIR/train.jsonl,
// DIR/eval.jsonl (Alpaca records {instruction, output, bucket, level}, one a line, "\n" line ends)
// and DIR/README.md. The same options give the same bytes. Only node:* modules, no Math.random.
//
// Buckets (levels):
//   addition  1..5  "Add: 47+85" → "132"; level = digits of each operand (both have exactly that many)
//   chain     1..5  "a=7, q=3, b=a, r=q. b=?" → "7"; level = chain length (lookups to the value);
//                   a distractor chain of the same length, with another value, is interleaved
//   string    2..6  "Reverse: a b c d" → "d c b a"; level = number of letters (random a–z, spaced so
//                   that every letter is its own token)
//   easy      0     "Repeat: table" → "table", "Repeat: 42" → "42"
//   noise     0     prompts made like the four above, with a random response that is never the right
//                   answer (train only)
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULTS = Object.freeze({ seed: 1, out: 'default/data', train: 6000, eval: 600, reversedSums: false });

/** Share of each bucket in train (noise included) and the levels it has. */
export const BUCKETS = Object.freeze([
  { bucket: 'addition', share: 0.30, levels: [1, 2, 3, 4, 5] },
  { bucket: 'chain', share: 0.25, levels: [1, 2, 3, 4, 5] },
  { bucket: 'string', share: 0.25, levels: [2, 3, 4, 5, 6] },
  { bucket: 'easy', share: 0.10, levels: [0] },
  { bucket: 'noise', share: 0.10, levels: [0] },
]);

// --- seeded generator: mulberry32 on a u32 state ---------------------------------------------

function mulberry32(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** uniform integer in [0, n) */
    int: (n) => Math.floor(next() * n),
    /** uniform element of a */
    pick: (a) => a[Math.floor(next() * a.length)],
    /** Fisher–Yates in place */
    shuffle(a) {
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [a[i], a[j]] = [a[j], a[i]];
      }
      return a;
    },
  };
}

/** An independent stream per (seed, part), so e.g. changing the train count leaves eval as it is. */
function stream(seed, part) {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(part + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return mulberry32((h ^ (h >>> 16)) >>> 0);
}
const PART = { eval: 1, train: 2, noise: 3, shuffleEval: 4, shuffleTrain: 5 };

// --- the tasks: each makes {instruction, output} for a level -----------------------------------

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

// short common words for the easy bucket (copying is what is asked, the words only give variety)
const WORDS = (
  'apple bag ball bed bird blue boat book box boy bread bus cake car cat chair cloud coat cup day ' +
  'desk dog door duck egg eye farm fish flag frog game gift girl goat green hand hat hill home horse ' +
  'house jam key kite lake lamp leaf lion map milk moon mouse nest night nose pen pig pink plant rain ' +
  'red ring road rock rose sand ship shoe sky snow sock star sun table tea tent tiger toy train tree ' +
  'van water wind window wolf yard zoo'
).split(' ');

/** number in [lo, hi] */
const between = (rng, lo, hi) => lo + rng.int(hi - lo + 1);

/** an operand with exactly `digits` digits (1 digit: 0..9) */
function operand(rng, digits) {
  return digits === 1 ? rng.int(10) : between(rng, 10 ** (digits - 1), 10 ** digits - 1);
}

const reverseDigits = (s) => [...s].reverse().join('');

function makeAddition(rng, level, opts) {
  const a = operand(rng, level), b = operand(rng, level);
  const sum = String(a + b);
  return opts.reversedSums
    ? { instruction: `Add (answer reversed): ${a}+${b}`, output: reverseDigits(sum), a, b }
    : { instruction: `Add: ${a}+${b}`, output: sum, a, b };
}

/**
 * A chain of `level` variables ending in the asked one (the first holds a digit, each later one
 * names the one before), and a distractor chain of the same length holding another digit. Each
 * chain is shown in its own order (a variable is defined before it is used); the two are
 * interleaved at random.
 */
function makeChain(rng, level) {
  const letters = rng.shuffle([...LETTERS]).slice(0, 2 * level);
  const value = rng.int(10);
  let other = rng.int(9);
  if (other >= value) other++;
  const chain = (vars, v) => vars.map((x, i) => `${x}=${i === 0 ? v : vars[i - 1]}`);
  const target = chain(letters.slice(0, level), value);
  const distractor = chain(letters.slice(level), other);
  const shown = [];
  let i = 0, j = 0;
  while (i < target.length || j < distractor.length) {
    // a uniform random interleaving: take from a chain with probability ∝ what it has left
    const left = target.length - i, right = distractor.length - j;
    if (rng.int(left + right) < left) shown.push(target[i++]);
    else shown.push(distractor[j++]);
  }
  return { instruction: `${shown.join(', ')}. ${letters[level - 1]}=?`, output: String(value), value };
}

function randomLetters(rng, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += LETTERS[rng.int(26)];
  return s;
}
const spaced = (s) => [...s].join(' ');

function makeString(rng, level) {
  const s = randomLetters(rng, level);
  return { instruction: `Reverse: ${spaced(s)}`, output: spaced(reverseDigits(s)), s };
}

function easyItem(rng) {
  // half words, half numbers of 1–3 digits
  if (rng.int(2) === 0) return rng.pick(WORDS);
  const digits = between(rng, 1, 3);
  return String(operand(rng, digits));
}

function makeEasy(rng) {
  const x = easyItem(rng);
  return { instruction: `Repeat: ${x}`, output: x, x };
}

function makeTask(rng, bucket, level, opts) {
  switch (bucket) {
    case 'addition': return makeAddition(rng, level, opts);
    case 'chain': return makeChain(rng, level);
    case 'string': return makeString(rng, level);
    case 'easy': return makeEasy(rng);
  }
  throw new Error(`no task for bucket ${bucket}`);
}

/** A noise record: a prompt made like one of the four tasks, and a random response that is not its answer. */
function makeNoise(rng, opts) {
  const clean = BUCKETS.filter((b) => b.bucket !== 'noise');
  const total = clean.reduce((s, b) => s + b.share, 0);
  let u = rng.next() * total, like = clean[clean.length - 1];
  for (const b of clean) {
    if (u < b.share) { like = b; break; }
    u -= b.share;
  }
  const level = rng.pick(like.levels);
  const t = makeTask(rng, like.bucket, level, opts);
  for (;;) {
    let output;
    if (like.bucket === 'addition') {
      // a number of the sum's length or one shorter/longer
      const digits = Math.max(1, t.output.length + rng.int(3) - 1);
      output = String(operand(rng, digits));
    } else if (like.bucket === 'chain') {
      output = String(rng.int(10));
    } else if (like.bucket === 'string') {
      output = spaced(randomLetters(rng, level));
    } else {
      output = easyItem(rng);
    }
    if (output !== t.output) return { instruction: t.instruction, output, like: like.bucket };
  }
}

// --- counts ------------------------------------------------------------------------------------

/** Splits n by weights, largest remainder first (ties: earlier entry). */
function apportion(n, weights) {
  const total = weights.reduce((s, w) => s + w, 0);
  const exact = weights.map((w) => (n * w) / total);
  const counts = exact.map((x) => Math.floor(x + 1e-9));
  const order = exact.map((x, i) => [x - counts[i], i]).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
  let left = n - counts.reduce((s, c) => s + c, 0);
  for (let k = 0; left > 0; k++, left--) counts[order[k % order.length][1]]++;
  return counts;
}

/** [{bucket, level, count}] for a split: train by the shares (noise included), eval by the same shares without noise. */
export function plan(n, split) {
  const buckets = split === 'eval' ? BUCKETS.filter((b) => b.bucket !== 'noise') : BUCKETS;
  const perBucket = apportion(n, buckets.map((b) => b.share));
  const out = [];
  buckets.forEach((b, i) => {
    const perLevel = apportion(perBucket[i], b.levels.map(() => 1));
    b.levels.forEach((level, k) => out.push({ bucket: b.bucket, level, count: perLevel[k] }));
  });
  return out;
}

// --- the generator -----------------------------------------------------------------------------

function checkCount(name, n) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number ≥ 0, got ${n}`);
}

/**
 * The default data set for a seed: {train, eval}, each a shuffled list of records
 * {instruction, output, bucket, level}. No eval instruction appears in train; noise records
 * (train only) have instructions that no other record has.
 */
export function makeDefaultData(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const { seed } = opts;
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  checkCount('train', opts.train);
  checkCount('eval', opts.eval);

  // eval first: distinct instructions per (bucket, level)
  const evalSet = new Set();
  const evalRecords = [];
  const rngEval = stream(seed, PART.eval);
  for (const { bucket, level, count } of plan(opts.eval, 'eval')) {
    let made = 0;
    for (let tries = 0; made < count; tries++) {
      if (tries > 1000 * (count + 10)) throw new Error(`cannot make ${count} distinct eval records for ${bucket} level ${level}`);
      const t = makeTask(rngEval, bucket, level, opts);
      if (evalSet.has(t.instruction)) continue;
      // single-digit sums: keep a≠b and never both a+b and b+a in eval, so train holds b+a for every a+b asked
      // (while there are unordered pairs a≠b left: 45 of them)
      if (bucket === 'addition' && level === 1 && made < 45) {
        if (t.a === t.b) continue;
        const swapped = opts.reversedSums ? `Add (answer reversed): ${t.b}+${t.a}` : `Add: ${t.b}+${t.a}`;
        if (evalSet.has(swapped)) continue;
      }
      evalSet.add(t.instruction);
      evalRecords.push({ instruction: t.instruction, output: t.output, bucket, level });
      made++;
    }
  }

  // train: never an eval instruction; distinct where the level has room for it (single-digit sums
  // have few instructions, so those repeat). Easy records are not made distinct: the word list is
  // small, and preferring new instructions would leave almost only numbers to copy.
  const trainSet = new Set();
  const trainRecords = [];
  const rngTrain = stream(seed, PART.train);
  const trainPlan = plan(opts.train, 'train');
  for (const { bucket, level, count } of trainPlan) {
    if (bucket === 'noise') continue;
    const distinct = bucket !== 'easy';
    for (let made = 0; made < count; made++) {
      let t, tries = 0;
      for (;;) {
        t = makeTask(rngTrain, bucket, level, opts);
        if (!evalSet.has(t.instruction) && (!distinct || !trainSet.has(t.instruction) || tries >= 64)) break;
        if (++tries > 100_000) throw new Error(`cannot make train records for ${bucket} level ${level} that are not in eval`);
      }
      trainSet.add(t.instruction);
      trainRecords.push({ instruction: t.instruction, output: t.output, bucket, level });
    }
  }

  // noise: instructions that no clean record (train or eval) has, each once
  const rngNoise = stream(seed, PART.noise);
  const noiseCount = trainPlan.filter((p) => p.bucket === 'noise').reduce((s, p) => s + p.count, 0);
  for (let made = 0, tries = 0; made < noiseCount; tries++) {
    if (tries > 1000 * (noiseCount + 10)) throw new Error('cannot make distinct noise records');
    const t = makeNoise(rngNoise, opts);
    if (evalSet.has(t.instruction) || trainSet.has(t.instruction)) continue;
    trainSet.add(t.instruction);
    trainRecords.push({ instruction: t.instruction, output: t.output, bucket: 'noise', level: 0 });
    made++;
  }

  stream(seed, PART.shuffleEval).shuffle(evalRecords);
  stream(seed, PART.shuffleTrain).shuffle(trainRecords);
  return { train: trainRecords, eval: evalRecords };
}

/** JSONL: one record a line, "\n" after each. */
export function toJsonl(records) {
  return records.map((r) => JSON.stringify(r) + '\n').join('');
}

/** Records per (bucket, level), in BUCKETS order. */
export function countByBucketLevel(records) {
  const counts = new Map();
  for (const r of records) {
    const key = `${r.bucket}\t${r.level}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const rows = [];
  for (const b of BUCKETS) {
    for (const level of b.levels) {
      const n = counts.get(`${b.bucket}\t${level}`);
      if (n) rows.push({ bucket: b.bucket, level, count: n });
    }
  }
  return rows;
}

/** The command that makes this data (the output directory left out: it does not change the bytes). */
export function commandLine(options = {}) {
  const o = { ...DEFAULTS, ...options };
  return `node scripts/make-default-data.mjs --seed ${o.seed} --train ${o.train} --eval ${o.eval}${o.reversedSums ? ' --reversed-sums' : ''}`;
}

function maxLength(records) {
  return records.reduce((m, r) => Math.max(m, r.instruction.length + 2 + r.output.length), 0);
}

/** DIR/README.md for the data made with `options`. */
export function renderReadme(data, options = {}) {
  const o = { ...DEFAULTS, ...options };
  const tr = countByBucketLevel(data.train), ev = countByBucketLevel(data.eval);
  const evalCount = (b, l) => ev.find((r) => r.bucket === b && r.level === l)?.count ?? 0;
  const bucketTotal = (rows, b) => rows.filter((r) => r.bucket === b).reduce((s, r) => s + r.count, 0);
  const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)}%` : '–');
  const lines = [];
  const add = (...l) => lines.push(...l);
  add(
    '# Default instruction data',
    '',
    'Generated by `scripts/make-default-data.mjs`; do not edit by hand. Regenerate (same bytes) with:',
    '',
    '```sh',
    `${commandLine(o)} --out default/data`,
    '```',
    '',
    `Seed ${o.seed}: ${data.train.length} train records (\`train.jsonl\`) and ${data.eval.length} eval records (\`eval.jsonl\`).`,
    'Each line is an Alpaca record `{"instruction", "output", "bucket", "level"}`; the trainer renders the',
    'prompt as `instruction + "\\n\\n"` and learns `output`. Outputs are short and checked by exact match',
    '(greedy generation), reported per bucket and level. Both splits are shuffled; no eval instruction',
    'appears in train. The eval split has the same buckets as train except `noise`.',
    `The longest record (instruction + "\\n\\n" + output) has ${Math.max(maxLength(data.train), maxLength(data.eval))} characters.`,
    '',
    '## Buckets',
    '',
    '| bucket | levels | example instruction → output | what the level means |',
    '|---|---|---|---|',
    `| addition | 1–5 | \`${o.reversedSums ? 'Add (answer reversed): 47+85` → `231' : 'Add: 47+85` → `132'}\` | digits of each operand (both have exactly that many; level 1 is 0–9) |`,
    '| chain | 1–5 | `a=7, q=3, b=a, r=q. b=?` → `7` | chain length: lookups from the asked variable to its digit |',
    '| string | 2–6 | `Reverse: a b c d` → `d c b a` | number of letters |',
    '| easy | 0 | `Repeat: table` → `table` | – (trivially easy) |',
    `| noise | 0 | \`${o.reversedSums ? 'Add (answer reversed): 31+58' : 'Add: 31+58'}\` → \`470\` | – (random response; train only) |`,
    '',
    '- **addition**: both operands have `level` digits. The sum is written in normal order (most significant',
    ...(o.reversedSums
    ? ['  digit first) unless asked otherwise; this data was made with `--reversed-sums`, so the instruction reads',
      '  `Add (answer reversed): a+b` and the output is the sum\'s digits least significant first (each output',
      '  digit then needs only the carries already written).']
    : ['  digit first). `--reversed-sums` writes them least significant first instead (instruction',
      '  `Add (answer reversed): a+b`), so that each output digit needs only the carries already written.']),
    '  Each digit needs the carries of the digits below it, so a level builds on the ones below it.',
    '  Level 1 has only 100 instructions: eval takes pairs a≠b and never both a+b and b+a, so train holds',
    '  b+a for every a+b in eval; train repeats the rest.',
    '- **chain**: a chain of `level` variables, the first holding a digit and each later one naming the one',
    '  before; the question asks for the last. A distractor chain of the same length, holding another digit,',
    '  is interleaved with it, so the answer cannot be read off the only digit shown. Each chain is shown in',
    '  dependency order (a variable is defined before it is used); the interleaving of the two is uniformly',
    '  random. Letters: 2×level distinct letters a–z, at random.',
    '- **string**: reverse `level` random letters a–z (repeats allowed). Letters are separated by spaces, in the',
    '  prompt and the output, so each letter is its own token whatever the tokenizer merges.',
    '- **easy**: copy a common short word (half) or a number of 1–3 digits (half); train repeats words. A good',
  '  curriculum should not spend steps here.',
    '- **noise**: instructions made like the four buckets above (in their shares, levels uniform), with a random',
    '  response of the same kind (a number, a digit, letters, a word) that is never the right answer. Unlearnable',
    '  by design; no noise instruction appears anywhere else in either split.',
    '',
    '## Shares',
    '',
    `Train: ${BUCKETS.map((b) => `${b.bucket} ${Math.round(b.share * 100)}%`).join(', ')}; levels uniform within a bucket.`,
    'Eval: the same shares without noise (renormalised), levels uniform within a bucket, instructions distinct.',
    '',
    '## Counts',
    '',
    '| bucket | level | train | eval |',
    '|---|---|---|---|',
  );
  for (const r of tr) add(`| ${r.bucket} | ${r.level} | ${r.count} | ${evalCount(r.bucket, r.level)} |`);
  add(
    `| **all** | | **${data.train.length}** | **${data.eval.length}** |`,
    '',
    '| bucket | train | share of train | eval | share of eval |',
    '|---|---|---|---|---|',
  );
  for (const b of BUCKETS) {
    const t = bucketTotal(tr, b.bucket), e = bucketTotal(ev, b.bucket);
    add(`| ${b.bucket} | ${t} | ${pct(t, data.train.length)} | ${e} | ${pct(e, data.eval.length)} |`);
  }
  add('');
  return lines.join('\n');
}

/** Makes the data and writes DIR/train.jsonl, DIR/eval.jsonl and DIR/README.md. */
export function writeDefaultData(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const data = makeDefaultData(o);
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'train.jsonl'), toJsonl(data.train));
  writeFileSync(join(o.out, 'eval.jsonl'), toJsonl(data.eval));
  writeFileSync(join(o.out, 'README.md'), renderReadme(data, o));
  return data;
}

// --- command line ------------------------------------------------------------------------------

const USAGE = 'usage: node scripts/make-default-data.mjs [--seed N] [--out DIR] [--train N] [--eval N] [--reversed-sums]';

function parseArgs(argv) {
  const o = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const int = () => {
      const v = value();
      if (!/^-?\d+$/.test(v)) throw new Error(`${a} needs an integer, got ${v}\n${USAGE}`);
      return Number(v);
    };
    if (a === '--seed') o.seed = int();
    else if (a === '--out') o.out = value();
    else if (a === '--train') o.train = int();
    else if (a === '--eval') o.eval = int();
    else if (a === '--reversed-sums') o.reversedSums = true;
    else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return o;
}

function isMain() {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(resolve(process.argv[1]));
  } catch {
    return false;
  }
}

if (isMain()) {
  try {
    const o = parseArgs(process.argv.slice(2));
    const data = writeDefaultData(o);
    console.log(`wrote ${data.train.length} train and ${data.eval.length} eval records to ${o.out} (seed ${o.seed})`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
