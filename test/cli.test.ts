// The zpd-wgpu command as a user runs it (the built CLI, via cli/zpd-wgpu.mjs): doctor,
// generate, and the errors a user sees. `npm test` builds dist/ before running vitest.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cli, cliEnv, root } from './helpers/cli.js';
import { describeGpu } from './helpers/gpu.js';

const LLAMA = join(root, 'test', 'fixtures', 'models', 'llama');

it('--help lists the commands; an unknown command exits 2 and says so', async () => {
  const h = await cli('--help');
  expect(h.code).toBe(0);
  expect(h.stdout).toMatch(/doctor/);
  expect(h.stdout).toMatch(/generate/);
  const u = await cli('frobnicate');
  expect(u.code).toBe(2);
  expect(u.stderr).toMatch(/unknown command 'frobnicate'/);
});

it('generate without --prompt, or with a --model that is not a folder, says what is wrong, exit 1', async () => {
  const r = await cli('generate', '--model', LLAMA);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/needs --prompt/);
  const m = await cli('generate', '--model', '/nonexistent/model', '--prompt', 'hi');
  expect(m.code).toBe(1);
  expect(m.stderr).toMatch(/--model \/nonexistent\/model: no such folder/);
});

// On Linux, Dawn reaches GPUs through the Vulkan loader: pointing it at no driver hides them all.
it.runIf(process.platform === 'linux')('doctor without an adapter exits 1 and says what to install', async () => {
  const r = await cliEnv({ ...process.env, VK_DRIVER_FILES: '/nonexistent.json', VK_ICD_FILENAMES: '/nonexistent.json' }, 'doctor');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no WebGPU adapter is available/);
  expect(r.stderr).toMatch(/HINT: .*ensure-webgpu\.sh/);
});

describeGpu('cli on the GPU', () => {
  it('doctor --json: one object naming the adapter, with a positive matmul GFLOP/s and a passing self-test', async () => {
    const r = await cli('doctor', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(typeof o.adapter.description).toBe('string');
    expect(o.adapter.description.length).toBeGreaterThan(0);
    expect(o.matmulGflops).toBeGreaterThan(0);
    expect(o.selfTest.ok).toBe(true);
    expect(o.matmulTiles.TM).toBeGreaterThan(0);
    expect(o.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(o.features)).toBe(true);
  });

  it('generate --json on a tiny checkpoint: greedy ids are reproducible and decode to the text', async () => {
    const args = ['generate', '--model', LLAMA, '--prompt', 'the cat', '--max-new-tokens', '6', '--json'];
    const a = JSON.parse((await cli(...args)).stdout), b = JSON.parse((await cli(...args)).stdout);
    expect(a.ids.length).toBeGreaterThan(0);
    expect(a.ids.length).toBeLessThanOrEqual(6);
    expect(b.ids).toEqual(a.ids);
    expect(typeof a.text).toBe('string');
  });
});
