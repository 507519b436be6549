// `zpd-wgpu bench` as a user runs it (the built CLI): --quick --json prints one object naming the
// adapter, with every figure positive and finite, peers measured in the same run (tfjs-webgpu is
// a devDependency here, so its figures must be there, and its LoRA step must compute what ours
// does), and a second run takes the matmul tiles from the autotuner's cache.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { promisify } from 'node:util';
import { cli, cliEnv, root } from './helpers/cli.js';
import type { Figure } from '../bench/common.js';
import { describeGpu } from './helpers/gpu.js';


const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

it('bench --only with an unknown part, or a bad --torch, says what the parts are (exit 1)', async () => {
  const r = await cli('bench', '--only', 'matmul,frobnicate');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/--only frobnicate: not a part; the parts are matmul, attention, lmhead, elementwise, step, large, tokenizer/);
  const t = await cli('bench', '--torch', 'tpu');
  expect(t.code).toBe(1);
  expect(t.stderr).toMatch(/--torch must be cpu, cuda or off/);
});

it('BENCHMARKS.md is what scripts/benchmarks-md.mjs makes of bench/results/*.json, a table per device', async () => {
  const r = await promisify(execFile)(process.execPath, [join(root, 'scripts', 'benchmarks-md.mjs'), '--check'], { cwd: root }).then(() => 0, (e: { code: number; stderr: string }) => e.stderr);
  expect(r, 'run npm run benchmarks-md').toBe(0);
  const md = readFileSync(join(root, 'BENCHMARKS.md'), 'utf8');
  const runs = readdirSync(join(root, 'bench', 'results')).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(root, 'bench', 'results', f), 'utf8')));
  expect(runs.length).toBeGreaterThan(0);
  for (const run of runs.filter((x) => !x.quick)) {
    expect(md).toContain(`### ${run.device}`);
    const section = run.adapter.software ? md.slice(md.indexOf('## Software renderers')) : md.slice(md.indexOf('## Real GPUs'), md.indexOf('## Software renderers'));
    expect(section, `${run.device} under ${run.adapter.software ? 'software' : 'real GPUs'}`).toContain(`### ${run.device}`);
  }
});

describeGpu('zpd-wgpu bench', () => {
  it('--quick --json: the adapter, and every figure positive and finite with its peer and ratio; the cache serves the second run', async () => {
    const env = { ...process.env, ZPD_WGPU_CACHE: mkdtempSync(join(tmpdir(), 'zpd-bench-cache-')) };
    const t0 = performance.now();
    const r = await cliEnv(env, 'bench', '--quick', '--json');
    const seconds = (performance.now() - t0) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/bench: matmul tiles .*autotuned now, cached in/); // progress and the tile source on stderr
    const j = JSON.parse(r.stdout);
    for (const k of ['vendor', 'architecture', 'description', 'backend']) expect(typeof j.adapter[k]).toBe('string');
    expect(Array.isArray(j.adapter.features)).toBe(true);
    expect(positive(j.adapter.limits.maxStorageBufferBindingSize)).toBe(true);
    expect(j.matmulTiles.from).toBe('timed');
    const figs = j.figures as Record<string, Figure>;
    for (const k of ['matmul.nt.256', 'matmul.nt.512', 'matmul.nn.256', 'attention.fwd.T128', 'attention.bwd.T128', 'lmhead.fwd.N64.V32000',
      'elementwise.rmsnorm', 'elementwise.swiglu', 'step.tiny-quick', 'score.tiny-quick', 'memory.tiny-quick', 'step.tiny-quick.pytorch-cpu', 'step.tiny-quick.wasm', 'score.tiny-quick.wasm',
      'step.tiny-quick.wasm.pytorch-cpu', 'tokenizer.encode'])
      expect(Object.keys(figs)).toContain(k);
    for (const [k, f] of Object.entries(figs)) {
      expect(positive(f.value), `${k}.value ${f.value}`).toBe(true);
      expect(typeof f.unit).toBe('string');
      expect(typeof f.what).toBe('string');
      if (f.peerValue === null) expect(f.ratio, k).toBeNull();
      else {
        expect(positive(f.peerValue), `${k}.peerValue`).toBe(true);
        expect(f.ratio!).toBeCloseTo(f.value / f.peerValue, 6);
      }
    }
    // the peers installed here ran, on the same adapter
    for (const k of ['matmul.nt.512', 'lmhead.fwd.N64.V32000', 'elementwise.swiglu', 'step.tiny-quick', 'score.tiny-quick', 'attention.bwd.T128', 'tokenizer.encode',
      'step.tiny-quick.wasm', 'score.tiny-quick.wasm'])
      expect(positive(figs[k].peerValue), `${k}: ${figs[k].note}`).toBe(true);
    // tfjs-webgpu trained the same model from the same start: the same first two losses
    expect(figs['step.tiny-quick'].check!.maxAbsDiff).toBeLessThan(1e-3);
    // and so did the wasm backend (its ratio is to the WebGPU backend on this adapter)
    expect(figs['step.tiny-quick.wasm'].check!.maxAbsDiff).toBeLessThan(1e-3);
    expect(figs['step.tiny-quick.wasm'].peerValue).toBe(figs['step.tiny-quick'].value);
    expect(figs['tokenizer.encode'].note).toBe('identical ids');
    // memory: a ratio to the analytical need, at least 1 (the need is a lower bound)
    expect(figs['memory.tiny-quick'].value).toBeGreaterThanOrEqual(1);
    console.log(`bench --quick took ${seconds.toFixed(0)} s`);

    const again = await cliEnv(env, 'bench', '--quick', '--json', '--only', 'tokenizer');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/bench: matmul tiles .*from the autotuner's cache/);
    expect(JSON.parse(again.stdout).matmulTiles.from).toBe('cache');
  }, 240_000);
});
