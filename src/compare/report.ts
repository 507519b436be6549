// The compare report: report.md (tables, settings, machine, revision, and what the numbers mean
// in plain words), results.json (every run's curves and numbers) and three SVG charts.
import type { Gpu } from '../gpu/gpu.js';
import type { ArmSummary, CompareResult } from './compare.js';
import type { Interval } from './stats.js';
import { barChart, intervalChart, lineChart } from './svg.js';
import { nodeFs, nodeOs, nodePath } from '../platform/node.js';

export const CHARTS = { loss: 'loss-curves.svg', exactMatch: 'exact-match.svg', steps: 'steps-to-target.svg' };

export async function deviceSummary(gpu: Gpu | undefined): Promise<Record<string, unknown>> {
  const os = await nodeOs();
  const { embeddedPath } = await import('../train/train.js');
  let revision: string | null = null;
  try {
    const { readFile } = await nodeFs();
    const git = await embeddedPath('../.git');
    const head = (await readFile(`${git}/HEAD`, 'utf8')).trim();
    revision = head.startsWith('ref: ') ? (await readFile(`${git}/${head.slice(5)}`, 'utf8')).trim() : head;
  } catch {
    // not a git checkout
  }
  return {
    adapter: gpu?.info ?? null, cpu: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`, node: process.version, revision, date: new Date().toISOString(),
  };
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const ci = (i: Interval, d = 1) => (Number.isFinite(i.mean) ? `${f(i.mean, d)} [${f(i.lo, d)}, ${f(i.hi, d)}]` : '—');
const meanOf = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
};

/** What an interval of arm − random says, in words. */
function verdict(i: Interval, lowerIsBetter: boolean): 'better' | 'worse' | 'no difference shown' {
  if (!Number.isFinite(i.lo) || (i.lo <= 0 && i.hi >= 0)) return 'no difference shown';
  return (i.hi < 0) === lowerIsBetter ? 'better' : 'worse';
}

export function renderReport(r: CompareResult, command: string): string {
  const s = r.settings as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const rnd = r.arms.find((a) => a.arm === 'random')!;
  const rndSteps = meanOf(rnd.steps.map((x) => x ?? s.steps));
  const lines: string[] = [];
  lines.push(`# Curriculum comparison`, '');
  lines.push(`${r.arms.length} arms × ${s.seeds} seeds, ${s.steps} steps each, on ${s.model} with ${s.data} (held out: ${s.evalData}).`);
  lines.push(`Command: \`${command}\``, '');
  lines.push('## Result', '');
  lines.push(`The target of each seed is the random arm's final held-out loss (mean ${f(meanOf(Object.values(r.targets)), 4)}). Δ columns are arm − random, paired by seed, mean and paired-bootstrap 95% interval; a run that never reaches the target counts as the whole budget there (so its Δ is a lower bound), and the *reached* column says how many did.`, '');
  lines.push('| arm | reached | steps to target | Δ steps | Δ tokens | Δ seconds (training + scoring) | final held-out loss | Δ final loss | exact match | Δ exact match | scoring share | tokens trained |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const a of r.arms) {
    lines.push(`| ${a.arm} | ${a.reached}/${a.runs} | ${f(meanOf(a.steps), 0)} | ${ci(a.stepsDelta, 0)} | ${ci(a.tokensDelta, 0)} | ${ci(a.secondsDelta, 1)} | ${f(a.finalLoss, 4)} | ${ci(a.finalLossDelta, 4)} | ${f(100 * a.exactMatch)}% | ${ci({ ...a.exactMatchDelta, mean: 100 * a.exactMatchDelta.mean, lo: 100 * a.exactMatchDelta.lo, hi: 100 * a.exactMatchDelta.hi })} pp | ${f(100 * a.scoringShare)}% | ${f(a.tokensTrained, 0)} |`);
  }
  lines.push('', '### In plain words', '');
  for (const a of r.arms) {
    if (a.arm === 'random') continue;
    const st = verdict(a.stepsDelta, true), fl = verdict(a.finalLossDelta, true);
    const pct = (100 * a.stepsDelta.mean) / rndSteps;
    const steps = a.reached === 0
      ? `never reached random's final held-out loss within the ${s.steps}-step budget (0 of ${a.runs} runs)`
      : `reached the target in ${a.reached} of ${a.runs} runs${a.reached < a.runs ? ' (the others count as the whole budget)' : ''}; against random it took ${f(Math.abs(a.stepsDelta.mean), 0)} ${a.stepsDelta.mean <= 0 ? 'fewer' : 'more'} steps on average (${f(Math.abs(pct), 0)}% ${pct <= 0 ? 'fewer' : 'more'}; 95% interval ${f(a.stepsDelta.lo, 0)} to ${f(a.stepsDelta.hi, 0)}): **${st}**`;
    lines.push(`- **${a.arm}** ${steps}. Its final held-out loss was ${a.finalLossDelta.mean <= 0 ? 'lower' : 'higher'} by ${f(Math.abs(a.finalLossDelta.mean), 4)} (interval ${f(a.finalLossDelta.lo, 4)} to ${f(a.finalLossDelta.hi, 4)}): **${fl}**.`);
  }
  const zpd = r.arms.filter((a) => a.arm.startsWith('zpd'));
  if (zpd.length) {
    const best = zpd.reduce((x, y) => (x.stepsDelta.mean < y.stepsDelta.mean ? x : y));
    const pct = (-100 * best.stepsDelta.mean) / rndSteps;
    const claim = verdict(best.stepsDelta, true) === 'better' && pct >= 25 ? 'is supported here' : 'is not supported by this run';
    lines.push('', `The seed document's claim — ZPD reaches the target in 25–40% fewer steps than random — ${claim}: the best ZPD arm (${best.arm}) took ${f(pct, 0)}% ${pct >= 0 ? 'fewer' : 'more'} steps (interval of the difference ${f(best.stepsDelta.lo, 0)} to ${f(best.stepsDelta.hi, 0)} steps, ${best.reached}/${best.runs} runs reached the target).`);
    const rg = r.arms.find((a) => a.arm === 'random-growing');
    if (rg) lines.push(`The control random-growing (a random subset growing with competence pacing) ${verdict(rg.stepsDelta, true) === 'better' ? 'also beat' : 'did not beat'} random on steps to target; a curriculum effect must show against it too (Wu, Dyer and Neyshabur 2021).`);
  }
  if (r.groups.length) {
    lines.push('', '## Exact match by bucket and level', '', `Greedy generation of ${s.exactMatchSamples} held-out records after training (mean over seeds).`, '');
    lines.push(`| arm | ${r.groups.join(' | ')} |`, `|---|${r.groups.map(() => '---').join('|')}|`);
    for (const a of r.arms) lines.push(`| ${a.arm} | ${r.groups.map((g) => f(100 * groupRate(r, a.arm, g), 0) + '%').join(' | ')} |`);
  }
  lines.push('', '## Charts', '', `![held-out loss](${CHARTS.loss})`, '', `![steps to target](${CHARTS.steps})`, '');
  if (r.groups.length) lines.push(`![exact match](${CHARTS.exactMatch})`, '');
  lines.push('## Settings', '', '```json', JSON.stringify(s, null, 2), '```', '');
  const m = r.machine as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  lines.push('## Machine', '', m.adapter ? `- adapter: ${m.adapter.description || m.adapter.device} (${m.adapter.vendor}, ${m.adapter.backend}${m.adapter.fallback ? ', software' : ''})` : '- adapter: none (the wasm backend, on the CPU)');
  lines.push(`- CPU: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.platform}; Node ${m.node}`);
  lines.push(`- revision: ${m.revision ?? 'not a git checkout'}; ${m.date}`);
  lines.push(`- ${r.peakBytes === null ? 'no GPU memory' : `peak GPU memory: ${f(r.peakBytes / 2 ** 20, 0)} MiB`}; wall time ${f(r.seconds / 60)} minutes`, '');
  return lines.join('\n');
}

function groupRate(r: CompareResult, arm: string, g: string): number {
  const xs = r.runs.filter((x) => x.arm === arm).map((x) => x.exactMatch?.groups[g]?.rate).filter((x): x is number => x !== undefined);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** The three charts. */
export function renderCharts(r: CompareResult): Record<string, string> {
  const steps = [...new Set(r.runs.flatMap((x) => x.curve.map((p) => p.step)))].sort((a, b) => a - b);
  const series = r.arms.map((a) => {
    const rs = r.runs.filter((x) => x.arm === a.arm);
    return {
      name: a.arm,
      points: steps.map((st) => {
        const ys = rs.map((x) => x.curve.find((p) => p.step === st)?.loss).filter((y): y is number => y !== undefined);
        return { x: st, y: ys.reduce((p, q) => p + q, 0) / ys.length, lo: Math.min(...ys), hi: Math.max(...ys) };
      }).filter((p) => Number.isFinite(p.y)),
    };
  });
  const out: Record<string, string> = {
    [CHARTS.loss]: lineChart({ title: 'Held-out loss (mean over seeds; band: min–max)', xLabel: 'step', yLabel: 'held-out loss', series }),
    [CHARTS.steps]: intervalChart({
      title: "Steps to random's final held-out loss: arm − random (95% interval)", xLabel: 'Δ steps (negative: faster than random)', zero: 0,
      rows: r.arms.map((a: ArmSummary) => ({ name: a.arm, mean: a.stepsDelta.mean, lo: a.stepsDelta.lo, hi: a.stepsDelta.hi, note: `reached ${a.reached}/${a.runs}` })),
    }),
  };
  if (r.groups.length) {
    out[CHARTS.exactMatch] = barChart({
      title: 'Exact match by bucket:level (mean over seeds)', yLabel: 'exact match', groups: r.groups, yMax: 1,
      series: r.arms.map((a) => ({ name: a.arm, values: r.groups.map((g) => groupRate(r, a.arm, g)) })),
    });
  }
  return out;
}

/** Write report.md, results.json and the charts into `dir`. */
export async function writeReport(r: CompareResult, dir: string, command: string): Promise<string[]> {
  const { writeFileAtomic } = await import('../io/safetensors.js');
  const { join } = await nodePath();
  const files: Record<string, string> = { 'report.md': renderReport(r, command), 'results.json': JSON.stringify({ ...r, command }, null, 2) + '\n', ...renderCharts(r) };
  for (const [name, text] of Object.entries(files)) await writeFileAtomic(join(dir, name), [text]);
  return Object.keys(files).map((n) => join(dir, n));
}
