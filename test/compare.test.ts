// zpd-wgpu compare --quick as a user runs it: on the embedded default, and on a graded task
// family the shipped set does not contain, passed with --data alone. Every file of the report
// is written; the SVG charts are decoded and drawn by headless Chromium.
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { dumpDom, findChromium } from './helpers/chromium.js';
import { cli } from './helpers/cli.js';
import { describeGpu } from './helpers/gpu.js';

const required = process.env.ZPD_REQUIRE_GPU === '1';

/** A task family not in the default set: the largest of `level` digits, e.g. "Max: 3 9 2" → "9". */
function maxFamily(n: number, seed: number): string {
  const rng = new Rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const level = 2 + (i % 5);
    const digits = Array.from({ length: level }, () => rng.int(10));
    lines.push(JSON.stringify({ instruction: `Max: ${digits.join(' ')}`, output: String(Math.max(...digits)), bucket: 'max', level }));
  }
  return lines.join('\n') + '\n';
}

/** Open each SVG as an image in Chromium: it must decode with its declared size. */
function checkSvgsRender(dir: string, files: string[]): void {
  if (!findChromium()) {
    if (required) throw new Error('no chromium: install it with `bash scripts/ensure-webgpu.sh --browser`');
    console.warn('SVG rendering not checked: no chromium (ZPD_REQUIRE_GPU=1 fails instead)');
    return;
  }
  const page = join(dir, 'charts.html');
  writeFileSync(page, `<!doctype html><body>${files.map((f) => `<img src="${f}">`).join('')}<script>
    window.onload = () => { document.body.dataset.sizes = [...document.images].map((i) => i.complete ? i.naturalWidth + 'x' + i.naturalHeight : 'broken').join(','); };
  </script></body>`);
  const dom = dumpDom(`file://${page}`)!;
  const sizes = /data-sizes="([^"]*)"/.exec(dom)?.[1];
  expect(sizes, dom.slice(0, 500)).toBe(files.map(() => '760x420').join(','));
}

function checkReport(dir: string, arms: string[]): void {
  for (const f of ['report.md', 'results.json', 'loss-curves.svg', 'steps-to-target.svg', 'exact-match.svg']) expect(existsSync(join(dir, f)), f).toBe(true);
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  expect(md).toMatch(/\| arm \| reached \| steps to target \| Δ steps \|/);
  for (const a of arms) expect(md).toMatch(new RegExp(`^\\| ${a} \\| \\d+/2 \\|.*\\[.*\\]`, 'm')); // a row per arm, with an interval
  expect(md).toMatch(/### In plain words/);
  expect(md).toMatch(/## Machine/);
  const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
  expect(results.runs.length).toBe(arms.length * 2);
  for (const r of results.runs) expect(r.curve.length).toBeGreaterThanOrEqual(3);
  checkSvgsRender(dir, ['loss-curves.svg', 'steps-to-target.svg', 'exact-match.svg']);
}

const ARMS = ['random', 'easy2hard', 'hard2easy', 'zpd', 'random-growing'];

describeGpu('zpd-wgpu compare --quick', () => {
  let first = ''; // the first test's --out, gathered with more seeds by the last one
  it('on the embedded default: report.md with a row and an interval per arm, results.json, SVG charts that render', async () => {
    const out = mkdtempSync(join(tmpdir(), 'zpd-compare-'));
    const r = await cli('compare', '--quick', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    checkReport(out, ARMS);
    first = out;
  }, 900_000);

  it('on a task family the shipped set does not contain, given with --data alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zpd-compare-data-'));
    const data = join(dir, 'max.jsonl');
    writeFileSync(data, maxFamily(400, 3));
    const out = join(dir, 'report');
    const r = await cli('compare', '--quick', '--data', data, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    checkReport(out, ARMS);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/max:2 \| max:3/);
    expect(existsSync(join(out, 'heldout.jsonl'))).toBe(true); // the seeded split, kept beside the report
  }, 900_000);

  it('split over processes with --first-seed, gathered with --resume: every run reused, the same numbers as where they were made', async () => {
    expect(first, 'the first test ran').not.toBe('');
    const shard = mkdtempSync(join(tmpdir(), 'zpd-compare-shard-'));
    const arms = 'random,zpd';
    const a = await cli('compare', '--quick', '--arms', arms, '--first-seed', '3', '--seeds', '2', '--out', shard);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/random seed 3: final held-out loss/);
    const all = mkdtempSync(join(tmpdir(), 'zpd-compare-all-'));
    for (const [dir, seeds] of [[first, [1, 2]], [shard, [3, 4]]] as const)
      for (const s of seeds) for (const arm of arms.split(',')) cpSync(join(dir, 'runs', `${arm}-seed${s}`), join(all, 'runs', `${arm}-seed${s}`), { recursive: true });
    const b = await cli('compare', '--quick', '--arms', arms, '--seeds', '4', '--resume', '--out', all);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr.match(/: reusing /g)?.length, b.stderr).toBe(8);
    type Run = { arm: string; seed: number; finalLoss: number; exactMatch: unknown; curve: unknown };
    const runsOf = (dir: string): Run[] => JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).runs;
    const numbers = (r: Run) => JSON.stringify([r.finalLoss, r.exactMatch, r.curve]);
    const gathered = new Map(runsOf(all).map((r) => [`${r.arm} ${r.seed}`, numbers(r)]));
    const made = [...runsOf(first), ...runsOf(shard)].filter((r) => arms.split(',').includes(r.arm));
    expect(made.length).toBe(8);
    for (const r of made) expect(gathered.get(`${r.arm} ${r.seed}`), `${r.arm} ${r.seed}`).toBe(numbers(r));
  }, 900_000);
});
