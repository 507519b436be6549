// Benchmarks: `npm run bench -- <name> [--json]` (no name: all). Each bench/<name>.ts exports
// `run(opts) → rows`; figures are measured against peers in the same process, on the same adapter.
import { parseArgs } from 'node:util';

export interface BenchRow {
  [column: string]: string | number;
}
export interface BenchOpts {
  json: boolean;
  quick: boolean;
}

const benches: Record<string, () => Promise<{ title: string; run(o: BenchOpts): Promise<BenchRow[]> }>> = {
  matmul: () => import('./matmul.js'),
  attention: () => import('./attention.js'),
  kernels: () => import('./kernels.js'),
  tokenizer: () => import('./tokenizer.js'),
  lmhead: () => import('./lmhead.js'),
  model: () => import('./model.js'),
};

export function printTable(title: string, rows: BenchRow[]): void {
  console.log(`\n## ${title}`);
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]);
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? '').length)));
  console.log(cols.map((c, i) => c.padStart(width[i])).join('  '));
  for (const r of rows) console.log(cols.map((c, i) => cell(r[c] ?? '').padStart(width[i])).join('  '));
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false } },
});
const names = positionals.length ? positionals : Object.keys(benches);
const all: Record<string, BenchRow[]> = {};
for (const name of names) {
  const load = benches[name];
  if (!load) {
    console.error(`bench: unknown benchmark '${name}'; known: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  const b = await load();
  const rows = await b.run({ json: values.json, quick: values.quick });
  all[name] = rows;
  if (!values.json) printTable(b.title, rows);
}
if (values.json) console.log(JSON.stringify(all));
process.exit(0);
