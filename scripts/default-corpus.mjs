#!/usr/bin/env node
// The default model's corpus: the King James Bible (public domain), from Debian's bible-kjv
// package. Its `bible` program reads /usr/lib/bible.data (package bible-kjv-text); with -f
// (pretty-printing off) it writes one verse per line as "Ge1:1 In the beginning God created…",
// and the range Gen1:1-Rev22:21 is the whole text (31,102 verses, about 4.4 MB).
//
//   node scripts/default-corpus.mjs [--out DIR]      (DIR default .cache/corpus, git-ignored)
//
// writes, under DIR/corpus/ (files that already exist are reused, not rebuilt):
//   kjv.txt      every verse, in order, one per line, as "1:1 In the beginning God created…": the
//                book's abbreviation dropped, chapter:verse kept (the only digits in the text, so the
//                model learns what digits are and that they count up)
//   train.txt    the verses not held out
//   heldout.txt  every 50th verse (verses 50, 100, 150, … counting from 1), for evaluation
// and prints the sizes. Other scripts: `import { ensureCorpus } from './default-corpus.mjs'`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIBLE_BIN = '/usr/bin/bible';
export const BIBLE_DATA = '/usr/lib/bible.data';
/** every HELDOUT_EVERY-th verse (1-based: 50, 100, …) goes to heldout.txt */
export const HELDOUT_EVERY = 50;
export const DEFAULT_OUT = '.cache/corpus';

// "Ge1:1 ", "1Sm3:4 ", "SSol2:1 ", "Phmn1:25 ": book abbreviation, chapter:verse, one space
const REF = /^[1-3]?[A-Za-z]+([0-9]+:[0-9]+) /;

function installHint() {
  return 'install it with: apt-get install -y --no-install-recommends bible-kjv  (Debian/Ubuntu; the package bible-kjv-text holds the text)';
}

/** Make sure /usr/bin/bible is there: install bible-kjv when we are root on Debian/Ubuntu. */
export function ensureBibleProgram({ log = console.log } = {}) {
  if (existsSync(BIBLE_BIN) && existsSync(BIBLE_DATA)) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = existsSync('/usr/bin/apt-get');
  if (!isRoot || !hasApt) {
    throw new Error(`${BIBLE_BIN} (or ${BIBLE_DATA}) is missing; ${installHint()}${isRoot ? '' : ', as root'}`);
  }
  log('installing bible-kjv with apt-get …');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'bible-kjv'], { env, stdio: 'inherit' });
  if (r.status !== 0) {
    // a fresh machine may have no package lists yet
    spawnSync('apt-get', ['update'], { env, stdio: 'inherit' });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'bible-kjv'], { env, stdio: 'inherit' });
  }
  if (r.status !== 0 || !existsSync(BIBLE_BIN)) throw new Error(`apt-get install bible-kjv failed; ${installHint()}`);
}

/** Every verse of the KJV as "chapter:verse text", in order. */
export function readVerses() {
  ensureBibleProgram();
  // -f: pretty-printing off (one verse per line, reference first); stdin closed so it never waits
  const r = spawnSync(BIBLE_BIN, ['-f', 'Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${BIBLE_BIN} exited with ${r.status}: ${r.stderr}`);
  const verses = [];
  for (const line of r.stdout.split('\n')) {
    if (line.trim() === '') continue;
    if (!REF.test(line)) throw new Error(`unexpected line from ${BIBLE_BIN}: ${JSON.stringify(line.slice(0, 80))}`);
    verses.push(line.replace(REF, '$1 ').replace(/\s+/g, ' ').trim());
  }
  if (verses.length < 31000) throw new Error(`${BIBLE_BIN} gave only ${verses.length} verses (expected 31,102)`);
  return verses;
}

function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * Build (or reuse) DIR/corpus/{kjv,train,heldout}.txt. Returns their paths and counts.
 * @param {{ out?: string, log?: (...a: unknown[]) => void }} [opts]
 */
export async function ensureCorpus({ out = DEFAULT_OUT, log = () => {} } = {}) {
  const dir = join(resolve(out), 'corpus');
  const all = join(dir, 'kjv.txt'), train = join(dir, 'train.txt'), heldout = join(dir, 'heldout.txt');
  let built = false;
  if (!existsSync(all)) {
    const verses = readVerses();
    mkdirSync(dir, { recursive: true });
    writeAtomic(all, verses.join('\n') + '\n');
    built = true;
  }
  if (built || !existsSync(train) || !existsSync(heldout)) {
    const verses = readFileSync(all, 'utf8').split('\n').filter((l) => l !== '');
    const tr = [], ho = [];
    verses.forEach((v, i) => ((i + 1) % HELDOUT_EVERY === 0 ? ho : tr).push(v));
    writeAtomic(train, tr.join('\n') + '\n');
    writeAtomic(heldout, ho.join('\n') + '\n');
    built = true;
  }
  const count = (f) => readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').length;
  const info = {
    dir, all, train, heldout, built,
    verses: count(all), trainVerses: count(train), heldoutVerses: count(heldout),
    bytes: statSync(all).size, trainBytes: statSync(train).size, heldoutBytes: statSync(heldout).size,
  };
  log(`${built ? 'wrote' : 'reusing'} ${dir}`);
  return info;
}

function parseArgs(argv) {
  const o = { out: DEFAULT_OUT };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') o.out = argv[++i];
    else if (a.startsWith('--out=')) o.out = a.slice(6);
    else if (a === '-h' || a === '--help') o.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.out) throw new Error('--out needs a folder');
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const o = parseArgs(process.argv.slice(2));
    if (o.help) {
      console.log('usage: node scripts/default-corpus.mjs [--out DIR]   (default .cache/corpus)');
      process.exit(0);
    }
    const c = await ensureCorpus({ out: o.out, log: console.log });
    const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
    console.log(`kjv.txt      ${c.verses} verses, ${c.bytes} bytes (${kb(c.bytes)})  ${c.all}`);
    console.log(`train.txt    ${c.trainVerses} verses, ${c.trainBytes} bytes (${kb(c.trainBytes)})  ${c.train}`);
    console.log(`heldout.txt  ${c.heldoutVerses} verses, ${c.heldoutBytes} bytes (${kb(c.heldoutBytes)})  ${c.heldout}  (every ${HELDOUT_EVERY}th verse)`);
  } catch (e) {
    console.error(`default-corpus: ${e.message}`);
    process.exit(1);
  }
}
