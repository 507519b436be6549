// The GPU every GPU test uses. Without an adapter, GPU tests are skipped locally, but when
// ZPD_REQUIRE_GPU=1 (set by .ci/run) they FAIL: CI must run every GPU test.
import { describe } from 'vitest';
import { getGpu } from '../../src/gpu/device.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { WebGpuBackend } from '../../src/train/step.js';

let probe: Promise<Gpu | null> | undefined;

/** The shared test Gpu, or null when there is none and ZPD_REQUIRE_GPU is unset. */
export function testGpu(): Promise<Gpu | null> {
  probe ??= getGpu().catch((e: unknown) => {
    if (process.env.ZPD_REQUIRE_GPU === '1') throw e;
    console.warn(`no WebGPU adapter, GPU tests skipped (set ZPD_REQUIRE_GPU=1 to fail instead): ${String(e)}`);
    return null;
  });
  return probe;
}

const gpu = await testGpu();

/** `describe` for tests that need the GPU; the callback receives it. */
export function describeGpu(name: string, fn: (gpu: Gpu) => void): void {
  describe.skipIf(gpu === null)(name, () => fn(gpu as Gpu));
}

const backends = new WeakMap<LlamaModel, WebGpuBackend>();
/** The training backend of `model` (one per model, so its optimizer step count carries on). */
export function stepOf(model: LlamaModel): WebGpuBackend {
  let b = backends.get(model);
  if (!b) backends.set(model, (b = new WebGpuBackend(model)));
  return b;
}
