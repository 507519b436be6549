// zpd-wgpu bench: the cross-vendor benchmark. Every figure comes with a peer measured in the same
// run on the same machine (tfjs-webgpu on the same adapter, PyTorch, the unfused path), so ratios
// hold even where absolute figures are noisy. The parts live in bench/ and are bundled into
// dist/cli.js; the peers load only when installed.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../src/errors.js';
import { describeTiles } from '../src/kernels/matmul.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { attentionFigures } from '../bench/attention.js';
import type { BenchContext, Figures } from '../bench/common.js';
import { elementwiseFigures } from '../bench/kernels.js';
import { lmheadFigures } from '../bench/lmhead.js';
import { matmulFigures } from '../bench/matmul.js';
import { LARGE, QUICK, TINY } from '../bench/model.js';
import { stepFigures } from '../bench/step.js';
import { tokenizerFigures } from '../bench/tokenizer.js';
import { tunedGpu } from './gpu.js';
import { duration, Progress } from './progress.js';

export const summary = 'benchmark this WebGPU adapter against tfjs-webgpu and PyTorch (--json for one object)';

const PARTS: Record<string, (ctx: BenchContext, figs: Figures) => Promise<void>> = {
  matmul: matmulFigures,
  attention: attentionFigures,
  lmhead: lmheadFigures,
  elementwise: elementwiseFigures,
  step: (ctx, figs) => stepFigures(ctx, figs, ctx.quick ? QUICK : TINY),
  large: (ctx, figs) => stepFigures({ ...ctx, wasm: false }, figs, LARGE), // on the CPU a 335 M step takes minutes
  tokenizer: tokenizerFigures,
};

export const usage = `Usage: zpd-wgpu bench [--json] [--quick] [--only ${Object.keys(PARTS).join(',')}] [--large] [--torch cpu|cuda|off] [--no-wasm] [--save DIR]

Measures, on this machine's WebGPU adapter, each figure beside a peer run in the same process
(or, for PyTorch, right after it on the same machine), with the ratio ours / peer:
  matmul       f32 GFLOP/s over sizes, with the tiles autotuned for this adapter (the cache
               is used when present: the output says so) — vs tfjs-webgpu tf.matMul
  attention    causal GQA attention forward and backward GFLOP/s — vs the unfused
               matmul → softmax → matmul path
  lmhead       the fused LM head + per-token NLL/entropy/confidence — vs the same in tfjs-webgpu
  elementwise  RMSNorm and SwiGLU GB/s — vs the same composed from tfjs-webgpu ops
  step         the LoRA training step (tokens/s) of a stated tiny Llama config (hidden 256,
               4 layers, seq 128, batch 8, r 8, every token a target), its scoring pass, and
               its peak GPU memory against the analytical need — vs the same step in
               tfjs-webgpu (its autograd + Adam, same weights and LoRA initialisation: the first
               two losses are compared) and in PyTorch (eager); and the same step and
               scoring pass on the wasm backend (the CPU), with its ratios to the WebGPU
               backend on this adapter and to PyTorch on the CPU
  large        the same for a 335 M-parameter Llama shape (seq 512, batch 8, r 16): run by
               default only on adapters that are not software renderers
  tokenizer    encode MB/s — vs @lenml/tokenizers on the same tokenizer.json

  --json       print one object: {adapter: {vendor, architecture, description, backend,
               features, limits}, machine, matmulTiles, figures: {name: {what, value, unit,
               peer, peerValue, ratio, note}}}; progress goes to stderr
  --quick      a short smoke run (smaller sizes, the tiny model on a 2×64 batch)
  --only LIST  comma-separated parts from the list above
  --large      run the 335 M-parameter step on a software adapter too
  --torch DEV  where the PyTorch peer runs: cpu (default), cuda (float32 and bfloat16
               autocast), off. It needs python3 with torch ($ZPD_WGPU_PYTHON, python3, or
               /usr/bin/python3); the tfjs peers need @tensorflow/tfjs-core and
               @tensorflow/tfjs-backend-webgpu. A missing peer is reported with the reason.
  --no-wasm    leave the wasm backend out of the step part
  --save DIR   also write the JSON to DIR/<date>-<device>.json (e.g. bench/results; -2, -3, … for
               later runs of the same day, never overwriting one)`;

/** lavapipe, SwiftShader, WARP: CPUs pretending to be GPUs. */
export function isSoftware(gpu: Gpu): boolean {
  const i = gpu.info;
  return i.fallback || /llvmpipe|lavapipe|swiftshader|warp|software/i.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`);
}

/** A file-name-safe name of the adapter, e.g. 'llvmpipe-mesa-25-0-7' or 'nvidia-h200'. */
export function deviceSlug(gpu: Gpu): string {
  const i = gpu.info;
  const name = /llvmpipe/i.test(i.description) ? `llvmpipe-${cpus().length}cores` : i.description || i.device || `${i.vendor}-${i.architecture}`;
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'unknown';
}

function cell(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '—';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      large: { type: 'boolean', default: false },
      torch: { type: 'string', default: 'cpu' },
      save: { type: 'string' },
      'no-wasm': { type: 'boolean', default: false },
    },
  });
  const torch = values.torch as BenchContext['torch'];
  if (!['cpu', 'cuda', 'off'].includes(torch)) throw new UsageError(`bench: --torch must be cpu, cuda or off, got '${values.torch}'`);
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of only ?? []) if (!PARTS[p]) throw new UsageError(`bench: --only ${p}: not a part; the parts are ${Object.keys(PARTS).join(', ')}`);

  const progress = new Progress(5_000);
  const t0 = performance.now();
  const say = (line: string) => progress.update(`bench ${duration((performance.now() - t0) / 1000)}: ${line}`, true);
  say('opening the GPU, matmul tiles');
  const { gpu, tiles, tilesFile, tilesFrom } = await tunedGpu();
  const software = isSoftware(gpu);
  const tileLine = `matmul tiles ${describeTiles(tiles)}: ${tilesFrom === 'cache' ? `from the autotuner's cache (${tilesFile})` : tilesFrom === 'timed' ? `autotuned now${tilesFile ? `, cached in ${tilesFile}` : ' (not cached: --no-cache)'}` : 'autotuned earlier in this process'}`;
  progress.log(`bench: adapter ${gpu.info.description || gpu.info.device} (${gpu.info.vendor}, ${gpu.info.architecture}, ${gpu.info.backend})${software ? ', a software renderer' : ''}`);
  progress.log(`bench: ${tileLine}`);

  const parts = only ?? Object.keys(PARTS).filter((p) => p !== 'large' || ((!software || values.large) && !values.quick));
  if (values.large && !parts.includes('large')) parts.push('large');
  const figs: Figures = {};
  const ctx: BenchContext = { gpu, quick: values.quick, large: values.large, torch, wasm: !values['no-wasm'], progress: say, log: (l) => progress.log(l) };
  for (const p of parts) {
    const before = new Set(Object.keys(figs));
    await PARTS[p](ctx, figs);
    for (const [k, f] of Object.entries(figs)) {
      if (before.has(k)) continue;
      progress.log(`bench: ${k.padEnd(34)} ${cell(f.value).padStart(8)} ${f.unit}${f.ratio !== null ? `   ${cell(f.ratio)}× ${f.peer}` : f.peer ? `   (${f.peer}: ${f.note ?? 'no figure'})` : ''}`);
    }
  }
  progress.done();

  const limits: Record<string, number> = {};
  for (const k in gpu.limits) {
    const v = (gpu.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') limits[k] = v;
  }
  const report = {
    date: new Date().toISOString(),
    quick: values.quick,
    adapter: { ...gpu.info, software, features: [...gpu.features].sort(), limits },
    device: deviceSlug(gpu),
    machine: { platform: process.platform, arch: process.arch, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', node: process.version, loadAverage: Number(loadavg()[0].toFixed(2)) },
    matmulTiles: { ...tiles, from: tilesFrom, cacheFile: tilesFile },
    seconds: Math.round((performance.now() - t0) / 1000),
    figures: figs,
  };
  if (values.save) {
    mkdirSync(values.save, { recursive: true });
    // a second run on the same day and device gets -2, -3, …: a file may carry notes added by hand
    const stem = join(values.save, `${report.date.slice(0, 10)}-${report.device}${values.quick ? '-quick' : ''}`);
    let file = `${stem}.json`;
    for (let i = 2; existsSync(file); i++) file = `${stem}-${i}.json`;
    writeFileSync(file, JSON.stringify(report, null, 2) + '\n', { flag: 'wx' });
    progress.log(`bench: wrote ${file}`);
  }
  if (values.json) {
    console.log(JSON.stringify(report));
  } else {
    console.log(`adapter   ${gpu.info.description || gpu.info.device} (${gpu.info.vendor}, ${gpu.info.backend})${software ? ' — software renderer' : ''}`);
    console.log(`machine   ${report.machine.cpus} CPUs (${report.machine.cpuModel}), load average ${report.machine.loadAverage}`);
    console.log(tileLine);
    console.log('');
    const rows = Object.entries(figs).map(([k, f]) => [k, cell(f.value), f.unit, f.peer ?? '', cell(f.peerValue), f.ratio === null ? '—' : `${cell(f.ratio)}×`]);
    const head = ['figure', 'ours', 'unit', 'peer', 'peer value', 'ours/peer'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((c, i) => (i === 1 || i >= 4 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ');
    console.log(line(head));
    for (const r of rows) console.log(line(r));
    console.log('');
    for (const [k, f] of Object.entries(figs)) console.log(`${k}: ${f.what}${f.note ? ` — ${f.note}` : ''}`);
  }
  gpu.destroy();
  return 0;
}
