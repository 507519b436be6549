// zpd-wgpu train --backend wasm as a user runs it, beside the WebGPU backend: on the tiny llama
// fixture with LoRA dropout and the zpd curriculum (re-scorings included), the losses of a run on
// 1 and on 2 threads and of a rerun are bit-identical; the WebGPU run's losses agree within a
// stated tolerance; the adapter the wasm run wrote is loaded and scored by the WebGPU backend to
// the same NLL, and score/eval/generate --backend wasm agree with WebGPU on it; --backend auto
// and doctor-style measurement pick a backend and say why.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { score } from '../src/train/train.js';
import { measureBackends, resolveBackend } from '../src/wasm/select.js';
import { cli, cliEnv, gradedData, jsonl, root } from './helpers/cli.js';
import { describeGpu, testGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/check.js';

const LLAMA = join(root, 'test', 'fixtures', 'models', 'llama');
const data = gradedData(120, 30, 11);
const tmp = () => mkdtempSync(join(tmpdir(), 'zpd-wasm-run-'));
const losses = (dir: string) =>
  jsonl<{ type: string; loss: number }>(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).filter((m) => m.type === 'step').map((m) => m.loss);
const ARGS = ['--model', LLAMA, '--data', data.train, '--eval-data', data.eval, '--steps', '8', '--rescore-every', '4', '--batch-size', '4', '--seq-len', '40', '--lora-dropout', '0.1', '--lr', '3e-3', '--eval-every', '8'];

// The two backends sum in different orders (tiles, vector lanes, fused multiply-adds on
// relaxed-SIMD builds): f32 rounding of ~1e-7 per op, which 8 AdamW steps amplify — Adam's
// early updates are lr·sign(g) wherever a gradient is near zero. Measured on this fixture:
// |Δloss| ≤ 1e-5 over the run. The bound leaves a margin of ~30×.
const LOSS_TOL = { atol: 3e-4, rtol: 1e-4 };

describeGpu('wasm backend vs WebGPU', () => {
  it('train --backend wasm: bit-identical on 1 and 2 threads and on a rerun; the WebGPU run agrees; WebGPU scores its adapter to the same NLL', async () => {
    const [w1, w2, w3, g] = [tmp(), tmp(), tmp(), tmp()];
    const run = (env: Record<string, string>, out: string, ...extra: string[]) => cliEnv({ ...process.env, ...env }, 'train', ...ARGS, ...extra, '--out', out);
    const [r1, r2] = await Promise.all([run({ ZPD_WASM_THREADS: '1' }, w1, '--backend', 'wasm'), run({ ZPD_WASM_THREADS: '2' }, w2, '--backend', 'wasm')]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    const r3 = await run({ ZPD_WASM_THREADS: '2' }, w3, '--backend', 'wasm');
    expect(r3.code, r3.stderr).toBe(0);
    const rg = await run({}, g, '--backend', 'webgpu');
    expect(rg.code, rg.stderr).toBe(0);
    const [l1, l2, l3, lg] = [losses(w1), losses(w2), losses(w3), losses(g)];
    expect(l1.length).toBe(8);
    expect(l2).toEqual(l1);
    expect(l3).toEqual(l1);
    const worst = Math.max(...l1.map((x, i) => Math.abs(x - lg[i])));
    console.log(`wasm vs webgpu over 8 steps: largest |Δloss| ${worst.toExponential(2)} (losses ${l1[0].toFixed(4)} → ${l1[7].toFixed(4)})`);
    expectClose('wasm vs webgpu losses', l1, lg, LOSS_TOL);
    const run1 = JSON.parse(readFileSync(join(w1, 'run.json'), 'utf8'));
    expect(run1.backend).toBe('wasm');
    expect(run1.inputs.backendChoice).toBe('--backend wasm');

    // the wasm run's adapter, scored by each backend
    const gpu = (await testGpu())!;
    const onGpu = await score({ model: LLAMA, adapter: w1, data: data.eval, seqLen: 40, backend: 'webgpu' }, gpu);
    // the commands as a user runs them on the CPU: score, eval and generate --backend wasm
    const rs = await cli('score', '--model', LLAMA, '--adapter', w1, '--data', data.eval, '--seq-len', '40', '--backend', 'wasm');
    expect(rs.code, rs.stderr).toBe(0);
    const onWasm = jsonl<{ nll: number }>(rs.stdout);
    const re = await cli('eval', '--model', LLAMA, '--adapter', w1, '--data', data.eval, '--seq-len', '40', '--backend', 'wasm', '--json');
    expect(re.code, re.stderr).toBe(0);
    const tokens = onGpu.reduce((s, x) => s + x.tokens, 0);
    expectClose('eval --backend wasm loss vs the WebGPU scores', [JSON.parse(re.stdout).loss], [onGpu.reduce((s, x) => s + x.nll * x.tokens, 0) / tokens], { atol: 1e-5, rtol: 1e-5 });
    const gen = async (b: string) => {
      const r = await cli('generate', '--model', LLAMA, '--adapter', w1, '--prompt', 'Add: 12+7', '--max-new-tokens', '12', '--backend', b, '--json');
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).ids as number[];
    };
    const [idsWasm, idsGpu] = [await gen('wasm'), await gen('webgpu')];
    expect(idsWasm.length).toBeGreaterThan(0);
    expect(idsWasm).toEqual(idsGpu); // greedy: the same argmax on both backends at this size
    expect(onWasm.length).toBe(onGpu.length);
    expectClose('per-sample nll, wasm adapter scored on webgpu vs wasm', onGpu.map((s) => s.nll), onWasm.map((s) => s.nll), { atol: 1e-5, rtol: 1e-5 });
    const base = await score({ model: LLAMA, adapter: null, data: data.eval, seqLen: 40, backend: 'webgpu' }, gpu);
    const mean = (a: { nll: number }[]) => a.reduce((s, x) => s + x.nll, 0) / a.length;
    expect(mean(onGpu)).toBeLessThan(mean(base)); // the adapter learned something the GPU sees
  });

  it('--backend auto picks a backend and says why; both backends are measured on the same matmul', async () => {
    const gpu = (await testGpu())!;
    const pick = await resolveBackend('auto', gpu);
    expect(pick.reason).toMatch(/^auto: /);
    const m = await measureBackends(gpu, 256);
    expect(m.wasm).toBeGreaterThan(0);
    expect(m.webgpu).toBeGreaterThan(0);
    if (pick.measured) expect(pick.kind).toBe(pick.measured.wasm >= pick.measured.webgpu! ? 'wasm' : 'webgpu');
  });
});

it('train --backend wasm refuses --backend values it does not know, naming the choices', async () => {
  const r = await cli('train', '--backend', 'cuda', '--steps', '1');
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/webgpu, wasm, auto/);
});
