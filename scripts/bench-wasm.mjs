// bench-wasm.mjs — the wasm backend's LoRA step and scoring pass beside the WebGPU backend and
// PyTorch on the CPU, in one run, on the same config (bench/model.ts's TINY: hidden 256, 4
// layers, GQA 4/2, vocab 8192, seq 128, batch 8, r 8, every token a target), the same random
// weights, batch and LoRA initialisation for wasm and WebGPU (their losses should agree).
//
//   node scripts/bench-wasm.mjs [--threads 1,2] [--steps 3] [--no-gpu] [--no-torch] [--json]
//
// Bundles a small entry with esbuild (the project's asset loaders), then runs it. Figures are
// only comparable within one run: the machine's other load moves them all.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { assetsPlugin } from './assets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : argv[i + 1];
};
const entry = `
import { benchWasmStep } from ${JSON.stringify(join(root, 'src/wasm/bench.ts'))};
import { TINY, randomWeights, fullBatch, runOurs } from ${JSON.stringify(join(root, 'bench/model.ts'))};
import { findTorch, runTorch } from ${JSON.stringify(join(root, 'bench/torch.ts'))};
import { getGpu } from ${JSON.stringify(join(root, 'src/gpu/device.ts'))};
import { configFromJson } from ${JSON.stringify(join(root, 'src/io/config.ts'))};
import { initAdapter } from ${JSON.stringify(join(root, 'src/io/peft.ts'))};
import { DEFAULT_LORA } from ${JSON.stringify(join(root, 'src/lora.ts'))};
import { pseudoRandom } from ${JSON.stringify(join(root, 'bench/common.ts'))};
import { loadavg, cpus } from 'node:os';

const o = JSON.parse(process.argv[2]);
const spec = { ...TINY, steps: o.steps };
const cfg = configFromJson(spec.config);
const weights = randomWeights(cfg, 1), batch = fullBatch(spec.B, spec.T, cfg.vocabSize);
const N = spec.B * spec.T;
const say = (s) => process.stderr.write(s + '\\n');
// bench/model.ts's initialisation: PEFT's A, small random B (so the losses check the whole step)
const init = initAdapter(cfg, { ...DEFAULT_LORA, r: spec.r, alpha: spec.alpha }, 1);
init.weights.forEach((w, i) => w.b.set(pseudoRandom(w.b.length, 100 + i, 0.02)));
const rows = [];
const load = () => loadavg()[0].toFixed(1);
for (const threads of o.threads) {
  say('wasm, ' + threads + ' thread(s)');
  const r = await benchWasmStep(spec, weights, batch, { threads, adapter: init, say });
  rows.push({ backend: 'wasm', threads: r.threads, isa: r.isa, stepTokensPerSecond: r.stepTokensPerSecond, scoreTokensPerSecond: r.scoreTokensPerSecond, losses: r.losses, peakMiB: r.peak / 2 ** 20, phasesMs: r.phases, loadavg: load() });
}
if (o.gpu) {
  const gpu = await getGpu();
  say('webgpu (' + (gpu.info.description || gpu.info.device) + ')');
  const r = await runOurs(gpu, spec, weights, batch, say);
  rows.push({ backend: 'webgpu', adapter: gpu.info.description || gpu.info.device, stepTokensPerSecond: N * 1000 / r.stepMs, scoreTokensPerSecond: N * 1000 / r.scoreMs, losses: r.losses, loadavg: load() });
  gpu.destroy();
}
if (o.torch) {
  const t = await findTorch('cpu');
  if (!t.python) rows.push({ backend: 'torch-cpu', missing: t.why });
  else {
    say('pytorch cpu (' + t.python + ')');
    const r = await runTorch(t.python, spec, { device: 'cpu', dtype: 'float32', lr: 1e-3, maxGradNorm: 1 });
    rows.push({ backend: 'torch-cpu', threads: r.threads, torch: r.torch, stepTokensPerSecond: N * 1000 / r.stepMs, scoreTokensPerSecond: N * 1000 / r.scoreMs, losses: r.losses, loadavg: load() });
  }
}
console.log(JSON.stringify({ config: spec, tokensPerBatch: N, cpus: cpus().length, rows }));
`;
mkdirSync(join(root, '.cache'), { recursive: true }); // inside the checkout: the bundle's imports resolve from node_modules
const dir = mkdtempSync(join(root, '.cache', 'bench-wasm-'));
const src = join(dir, 'entry.ts'), out = join(dir, 'entry.mjs');
writeFileSync(src, entry);
await esbuild.build({
  entryPoints: [src], outfile: out, bundle: true, format: 'esm', platform: 'node', packages: 'external',
  plugins: [assetsPlugin], loader: { '.py': 'text' }, logLevel: 'warning', absWorkingDir: root, nodePaths: [join(root, 'node_modules')],
});
const cfg = {
  threads: String(opt('threads', '1,2')).split(',').map(Number), steps: Number(opt('steps', 3)),
  gpu: !argv.includes('--no-gpu'), torch: !argv.includes('--no-torch'),
};
process.argv[2] = JSON.stringify(cfg);
const captured = [];
const log = console.log;
console.log = (s) => captured.push(s);
await import(pathToFileURL(out).href);
console.log = log;
rmSync(dir, { recursive: true, force: true });
const res = JSON.parse(captured.pop());
if (argv.includes('--json')) console.log(JSON.stringify(res));
else {
  console.log(`LoRA step and scoring pass, ${res.tokensPerBatch} tokens per batch (B ${res.config.B} × T ${res.config.T}), r ${res.config.r}, ${res.cpus} CPUs`);
  const lavapipe = res.rows.find((r) => r.backend === 'webgpu')?.stepTokensPerSecond;
  const torch = res.rows.find((r) => r.backend === 'torch-cpu')?.stepTokensPerSecond;
  for (const r of res.rows) {
    if (r.missing) {
      console.log(`${r.backend.padEnd(10)} not run: ${r.missing}`);
      continue;
    }
    const name = `${r.backend}${r.threads ? ` ×${r.threads}` : ''}`.padEnd(12);
    const ratio = r.backend === 'wasm' ? `  (${lavapipe ? `${(r.stepTokensPerSecond / lavapipe).toFixed(1)}× webgpu` : ''}${torch ? `, ${(r.stepTokensPerSecond / torch).toFixed(2)}× torch` : ''})` : '';
    console.log(`${name} step ${r.stepTokensPerSecond.toFixed(0).padStart(6)} tok/s, score ${r.scoreTokensPerSecond.toFixed(0).padStart(6)} tok/s, losses ${r.losses.map((x) => x.toFixed(5)).join(' ')}, load ${r.loadavg}${ratio}`);
    if (r.phasesMs) console.log(`             ms per phase: ${JSON.stringify(r.phasesMs)}`);
  }
}
