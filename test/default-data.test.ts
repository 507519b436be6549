// The default instruction data (default/data, made by scripts/make-default-data.mjs): seeded and
// byte-for-byte reproducible, correct answers checked by solvers written here independently of the
// generator, noise that is really noise, eval disjoint from train, and short enough for 64 tokens.
import { expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDefaultData, renderReadme, type DefaultRecord } from '../scripts/make-default-data.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = join(root, 'default', 'data');
const script = join(root, 'scripts', 'make-default-data.mjs');

const LEVELS: Record<string, number[]> = {
  addition: [1, 2, 3, 4, 5],
  chain: [1, 2, 3, 4, 5],
  string: [2, 3, 4, 5, 6],
  easy: [0],
  noise: [0],
};

// our own serialisation: one JSON object a line, "\n" after each
const jsonl = (records: DefaultRecord[]) => records.map((r) => JSON.stringify(r) + '\n').join('');

const data = makeDefaultData();

// --- independent solvers: what the right output for an instruction is, and its level ----------

interface Solved { kind: string; answer: string; level: number }

function solveAddition(instruction: string, reversed: boolean): Solved | null {
  const m = (reversed ? /^Add \(answer reversed\): (\d+)\+(\d+)$/ : /^Add: (\d+)\+(\d+)$/).exec(instruction);
  if (!m) return null;
  const [a, b] = [m[1], m[2]];
  // no leading zeros; both operands the same number of digits (that is the level)
  if ((a.length > 1 && a[0] === '0') || (b.length > 1 && b[0] === '0') || a.length !== b.length) throw new Error(`bad operands: ${instruction}`);
  const sum = (BigInt(a) + BigInt(b)).toString();
  return { kind: 'addition', answer: reversed ? sum.split('').reverse().join('') : sum, level: a.length };
}

function solveChain(instruction: string): Solved | null {
  const m = /^([a-z]=[a-z0-9](?:, [a-z]=[a-z0-9])*)\. ([a-z])=\?$/.exec(instruction);
  if (!m) return null;
  const defs = new Map<string, string>();
  for (const part of m[1].split(', ')) {
    const [name, value] = part.split('=');
    if (defs.has(name)) throw new Error(`${name} defined twice: ${instruction}`);
    defs.set(name, value);
  }
  // follow the asked variable to a digit; the number of variables visited is the chain length
  let at = m[2], hops = 0;
  for (;;) {
    const v = defs.get(at);
    if (v === undefined) throw new Error(`${at} undefined: ${instruction}`);
    hops++;
    if (hops > defs.size) throw new Error(`cycle: ${instruction}`);
    if (/^\d$/.test(v)) return { kind: 'chain', answer: v, level: hops };
    at = v;
  }
}

function solveString(instruction: string): Solved | null {
  const m = /^Reverse: ([a-z](?: [a-z])*)$/.exec(instruction);
  if (!m) return null;
  const letters = m[1].split(' ');
  return { kind: 'string', answer: [...letters].reverse().join(' '), level: letters.length };
}

function solveEasy(instruction: string): Solved | null {
  const m = /^Repeat: (\S+)$/.exec(instruction);
  return m ? { kind: 'easy', answer: m[1], level: 0 } : null;
}

function solve(instruction: string, reversed = false): Solved {
  const s = solveAddition(instruction, reversed) ?? solveChain(instruction) ?? solveString(instruction) ?? solveEasy(instruction);
  if (!s) throw new Error(`instruction of no known task: ${instruction}`);
  return s;
}

function countBy(records: DefaultRecord[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) m.set(`${r.bucket} ${r.level}`, (m.get(`${r.bucket} ${r.level}`) ?? 0) + 1);
  return m;
}

// --- tests ---------------------------------------------------------------------------------------

it('is deterministic: the same seed gives the same records, another seed others', () => {
  const again = makeDefaultData({ seed: 1, train: 6000, eval: 600 });
  expect(jsonl(again.train)).toBe(jsonl(data.train));
  expect(jsonl(again.eval)).toBe(jsonl(data.eval));
  const other = makeDefaultData({ seed: 2 });
  expect(other.train.length).toBe(data.train.length);
  const same = other.train.filter((r, i) => r.instruction === data.train[i].instruction).length;
  expect(same).toBeLessThan(data.train.length / 20);
  expect(jsonl(other.eval)).not.toBe(jsonl(data.eval));
});

it('the committed default/data files are what the generator makes for the defaults', () => {
  expect(readFileSync(join(dataDir, 'train.jsonl'), 'utf8')).toBe(jsonl(data.train));
  expect(readFileSync(join(dataDir, 'eval.jsonl'), 'utf8')).toBe(jsonl(data.eval));
  expect(readFileSync(join(dataDir, 'README.md'), 'utf8')).toBe(renderReadme(data));
});

it('the command line writes the same bytes, and the README names that command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zpd-default-data-'));
  try {
    execFileSync(process.execPath, [script, '--seed', '1', '--out', dir, '--train', '6000', '--eval', '600'], { stdio: 'pipe' });
    for (const f of ['train.jsonl', 'eval.jsonl', 'README.md']) {
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(dataDir, f))), f).toBe(true);
    }
    expect(readFileSync(join(dataDir, 'README.md'), 'utf8')).toContain('node scripts/make-default-data.mjs --seed 1 --train 6000 --eval 600');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('records have the four fields with the right types and levels in range', () => {
  for (const [split, records] of [['train', data.train], ['eval', data.eval]] as const) {
    expect(records.length).toBe(split === 'train' ? 6000 : 600);
    for (const r of records) {
      const what = `${split}: ${JSON.stringify(r)}`;
      expect(Object.keys(r).sort(), what).toEqual(['bucket', 'instruction', 'level', 'output']);
      expect(typeof r.instruction, what).toBe('string');
      expect(typeof r.output, what).toBe('string');
      expect(typeof r.bucket, what).toBe('string');
      expect(Number.isInteger(r.level), what).toBe(true);
      expect(Object.keys(LEVELS), what).toContain(r.bucket);
      expect(LEVELS[r.bucket], what).toContain(r.level);
      // exactly checkable: non-empty, no surrounding or doubled whitespace, one line
      expect(r.output.length, what).toBeGreaterThan(0);
      expect(r.output, what).toBe(r.output.trim());
      expect(r.output, what).not.toMatch(/\s\s|\n/);
      expect(r.instruction, what).toBe(r.instruction.trim());
    }
  }
});

it('outputs are right for every non-noise record, and the level is what the instruction shows', () => {
  let checked = 0;
  for (const r of [...data.train, ...data.eval]) {
    if (r.bucket === 'noise') continue;
    const s = solve(r.instruction);
    const what = JSON.stringify(r);
    expect(s.kind, what).toBe(r.bucket);
    expect(r.output, what).toBe(s.answer);
    expect(s.level, what).toBe(r.level);
    if (r.bucket === 'chain') {
      // a distractor holding another digit: the answer is not the only digit in the prompt
      expect(new Set(r.instruction.match(/\d/g)).size, what).toBeGreaterThan(1);
    }
    checked++;
  }
  expect(checked).toBe(5400 + 600);
});

it('--reversed-sums writes sums least significant digit first, and changes nothing else', () => {
  const rev = makeDefaultData({ seed: 3, train: 600, eval: 200, reversedSums: true });
  const add = [...rev.train, ...rev.eval].filter((r) => r.bucket === 'addition');
  expect(add.length).toBeGreaterThan(100);
  for (const r of add) {
    const s = solveAddition(r.instruction, true);
    expect(s, r.instruction).not.toBeNull();
    expect(r.output, r.instruction).toBe(s!.answer);
    expect(s!.level).toBe(r.level);
  }
  expect(add.some((r) => r.output.length > 1 && r.output !== r.output.split('').reverse().join(''))).toBe(true);
  const plain = makeDefaultData({ seed: 3, train: 600, eval: 200 });
  const others = (d: typeof plain) => d.eval.filter((r) => r.bucket !== 'addition');
  expect(others(rev)).toEqual(others(plain));
});

it('noise looks like the other tasks, is mostly wrong, is about 10% of train and only in train', () => {
  const noise = data.train.filter((r) => r.bucket === 'noise');
  expect(noise.length / data.train.length).toBeGreaterThan(0.08);
  expect(noise.length / data.train.length).toBeLessThan(0.12);
  expect(data.eval.filter((r) => r.bucket === 'noise')).toHaveLength(0);
  const kinds = new Set<string>();
  let right = 0;
  for (const r of noise) {
    const s = solve(r.instruction);
    kinds.add(s.kind);
    if (r.output === s.answer) right++;
    expect(r.level).toBe(0);
  }
  expect(right / noise.length).toBeLessThan(0.1);
  expect([...kinds].sort()).toEqual(['addition', 'chain', 'easy', 'string']);
  // an unlearnable bucket: its instructions say nothing the clean records contradict
  const clean = new Set([...data.train, ...data.eval].filter((r) => r.bucket !== 'noise').map((r) => r.instruction));
  expect(noise.filter((r) => clean.has(r.instruction))).toHaveLength(0);
});

it('no eval instruction appears in train, eval instructions are distinct, and every (bucket, level) has ≥ 20 eval records', () => {
  const train = new Set(data.train.map((r) => r.instruction));
  expect(data.eval.filter((r) => train.has(r.instruction)).map((r) => r.instruction)).toEqual([]);
  expect(new Set(data.eval.map((r) => r.instruction)).size).toBe(data.eval.length);
  const counts = countBy(data.eval);
  for (const [bucket, levels] of Object.entries(LEVELS)) {
    if (bucket === 'noise') continue;
    for (const level of levels) expect(counts.get(`${bucket} ${level}`) ?? 0, `${bucket} ${level}`).toBeGreaterThanOrEqual(20);
  }
});

it('train has the documented mix: addition 30%, chain 25%, string 25%, easy 10%, noise 10%, levels uniform', () => {
  const shares: Record<string, number> = { addition: 0.3, chain: 0.25, string: 0.25, easy: 0.1, noise: 0.1 };
  const counts = countBy(data.train);
  for (const [bucket, levels] of Object.entries(LEVELS)) {
    const perLevel = levels.map((l) => counts.get(`${bucket} ${l}`) ?? 0);
    const total = perLevel.reduce((a, b) => a + b, 0);
    expect(Math.abs(total / data.train.length - shares[bucket]), bucket).toBeLessThan(0.02);
    for (const n of perLevel) expect(Math.abs(n - total / levels.length), bucket).toBeLessThanOrEqual(1);
  }
});

it('every record is short: prompt + output ≤ 150 characters', () => {
  for (const r of [...data.train, ...data.eval]) {
    // the trainer's prompt is the instruction and a blank line
    expect(`${r.instruction}\n\n`.length + r.output.length, r.instruction).toBeLessThanOrEqual(150);
  }
});
