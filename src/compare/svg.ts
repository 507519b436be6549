// Plain SVG charts for the compare report: self-contained files a browser or a Markdown viewer
// renders as they are (no script, no external font or stylesheet).

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

const W = 760, H = 420, M = { left: 70, right: 190, top: 44, bottom: 56 };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) => (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function frame(title: string, xLabel: string, yLabel: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${M.left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>
<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 14}" text-anchor="middle">${esc(xLabel)}</text>
<text transform="translate(18 ${M.top + (H - M.top - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
${body}
</svg>
`;
}

function axes(x0: number, x1: number, y0: number, y1: number, xt: number[], yt: number[], sx: (v: number) => number, sy: (v: number) => number, xtLabels?: string[]): string {
  let s = `<g stroke="#999" stroke-width="1"><line x1="${M.left}" y1="${sy(y0)}" x2="${W - M.right}" y2="${sy(y0)}"/><line x1="${M.left}" y1="${sy(y0)}" x2="${M.left}" y2="${sy(y1)}"/></g>\n`;
  for (const v of yt) s += `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(v)}" y2="${sy(v)}" stroke="#eee"/><text x="${M.left - 6}" y="${sy(v) + 4}" text-anchor="end">${fmt(v)}</text>\n`;
  xt.forEach((v, i) => (s += `<text x="${sx(v)}" y="${sy(y0) + 16}" text-anchor="middle">${esc(xtLabels?.[i] ?? fmt(v))}</text>\n`));
  void x0, x1;
  return s;
}

function legend(names: string[]): string {
  return names.map((n, i) => `<rect x="${W - M.right + 14}" y="${M.top + 4 + i * 20}" width="14" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${W - M.right + 34}" y="${M.top + 13 + i * 20}">${esc(n)}</text>`).join('\n');
}

export interface Series {
  name: string;
  points: { x: number; y: number; lo?: number; hi?: number }[];
}

/** Lines (the mean) with shaded bands (lo..hi, e.g. the seeds' range), one per series. */
export function lineChart(o: { title: string; xLabel: string; yLabel: string; series: Series[] }): string {
  const pts = o.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p.x), ys = pts.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]).filter(Number.isFinite);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const pad = (y1 - y0) * 0.05 || 0.5;
  (y0 -= pad), (y1 += pad);
  const sx = (v: number) => M.left + ((v - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const sy = (v: number) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  let body = axes(x0, x1, y0, y1, ticks(x0, x1), ticks(y0, y1), sx, sy);
  o.series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length];
    const band = s.points.filter((p) => p.lo !== undefined && p.hi !== undefined);
    if (band.length > 1) {
      const up = band.map((p) => `${sx(p.x).toFixed(1)},${sy(p.hi!).toFixed(1)}`), down = band.map((p) => `${sx(p.x).toFixed(1)},${sy(p.lo!).toFixed(1)}`).reverse();
      body += `<polygon points="${[...up, ...down].join(' ')}" fill="${c}" fill-opacity="0.15" stroke="none"/>\n`;
    }
    body += `<polyline points="${s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>\n`;
  });
  return frame(o.title, o.xLabel, o.yLabel, body + legend(o.series.map((s) => s.name)));
}

/** Grouped bars: one group per label, one bar per series. */
export function barChart(o: { title: string; yLabel: string; groups: string[]; series: { name: string; values: number[] }[]; yMax?: number }): string {
  const yMax = o.yMax ?? Math.max(1e-9, ...o.series.flatMap((s) => s.values.filter(Number.isFinite)));
  const gw = (W - M.left - M.right) / Math.max(1, o.groups.length), bw = (gw * 0.8) / Math.max(1, o.series.length);
  const sy = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
  const gx = (g: number) => M.left + g * gw + gw * 0.1;
  let body = axes(0, 1, 0, yMax, o.groups.map((_, g) => g), ticks(0, yMax), (g) => gx(g) + gw * 0.4, sy, o.groups);
  o.series.forEach((s, i) => {
    s.values.forEach((v, g) => {
      if (!Number.isFinite(v)) return;
      body += `<rect x="${(gx(g) + i * bw).toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(sy(0) - sy(v)).toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${esc(`${s.name} ${o.groups[g]}: ${fmt(v)}`)}</title></rect>\n`;
    });
  });
  return frame(o.title, '', o.yLabel, body + legend(o.series.map((s) => s.name)));
}

/** Horizontal intervals: a dot at the mean, a bar from lo to hi, and a note per row. */
export function intervalChart(o: { title: string; xLabel: string; rows: { name: string; mean: number; lo: number; hi: number; note?: string }[]; zero?: number }): string {
  const vals = o.rows.flatMap((r) => [r.lo, r.hi, r.mean]).filter(Number.isFinite).concat(o.zero ?? 0);
  let x0 = Math.min(...vals), x1 = Math.max(...vals);
  const pad = (x1 - x0) * 0.08 || 1;
  (x0 -= pad), (x1 += pad);
  const L = 150;
  const sx = (v: number) => L + ((v - x0) / (x1 - x0)) * (W - L - M.right);
  const rowH = Math.min(40, (H - M.top - M.bottom) / Math.max(1, o.rows.length));
  let body = '';
  for (const v of ticks(x0, x1)) body += `<line x1="${sx(v)}" x2="${sx(v)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#eee"/><text x="${sx(v)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(v)}</text>\n`;
  if (o.zero !== undefined) body += `<line x1="${sx(o.zero)}" x2="${sx(o.zero)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#555" stroke-dasharray="4 3"/>\n`;
  o.rows.forEach((r, i) => {
    const y = M.top + (i + 0.5) * rowH, c = PALETTE[i % PALETTE.length];
    body += `<text x="${L - 8}" y="${y + 4}" text-anchor="end">${esc(r.name)}</text>\n`;
    if (Number.isFinite(r.lo) && Number.isFinite(r.hi)) body += `<line x1="${sx(r.lo)}" x2="${sx(r.hi)}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="3"/>\n`;
    if (Number.isFinite(r.mean)) body += `<circle cx="${sx(r.mean)}" cy="${y}" r="5" fill="${c}"/>\n`;
    if (r.note) body += `<text x="${W - M.right + 10}" y="${y + 4}">${esc(r.note)}</text>\n`;
  });
  return frame(o.title, o.xLabel, '', body);
}
