// The training step in its steady state: after the first steps of a shape, a step creates no
// buffer, no pipeline and no bind group (everything it binds is cached: activations, scratch,
// uniforms, bind groups, the read-back buffer), and encodes its hundreds of dispatches in one
// compute pass — with the losses of the same steps run on a fresh device, bit for bit.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.js';
import { createGpu } from '../src/gpu/device.js';
import { attachLora, loadModel } from '../src/model/load.js';
import type { ModelBatch } from '../src/model/llama.js';
import { WebGpuBackend } from '../src/train/step.js';
import { describeGpu } from './helpers/gpu.js';

const DIR = join(import.meta.dirname, 'fixtures', 'models', 'llama');
const OPT = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

function batch(V: number): ModelBatch {
  const B = 2, T = 16, N = B * T;
  const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919 + 13) % V);
  // two samples in row 0, one (with padding) in row 1; loss on the second half of each sample
  const segments = Int32Array.from({ length: N }, (_, i) => (i < 8 ? 0 : i < T ? 1 : i < T + 12 ? 2 : -1));
  const positions = Int32Array.from({ length: N }, (_, i) => (i < 8 ? i : i < T ? i - 8 : i - T));
  const targets = Int32Array.from({ length: N }, (_, i) => (segments[i] >= 0 && positions[i] >= 3 && i + 1 < N && segments[i + 1] === segments[i] ? ids[i + 1] : -1));
  return { B, T, ids, targets, segments, positions };
}

/** Per step: what the device created and how many passes and dispatches it encoded. */
async function steps(gpu: Gpu, n: number) {
  const model = await loadModel(gpu, DIR, { weights: 'f32' });
  attachLora(model, { r: 4, alpha: 8 }, 3);
  const step = new WebGpuBackend(model);
  const b = batch(model.cfg.vocabSize);
  const dev = gpu.device;
  const create = dev.createCommandEncoder.bind(dev);
  const out: { losses: number[]; created: (typeof gpu.created)[]; passes: number[]; dispatches: number[] } = { losses: [], created: [], passes: [], dispatches: [] };
  let passes = 0, dispatches = 0;
  dev.createCommandEncoder = (d?: GPUCommandEncoderDescriptor) => {
    const enc = create(d);
    const begin = enc.beginComputePass.bind(enc);
    enc.beginComputePass = (pd?: GPUComputePassDescriptor) => {
      passes++;
      const pass = begin(pd);
      const dispatch = pass.dispatchWorkgroups.bind(pass);
      pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => (dispatches++, dispatch(x, y, z));
      return pass;
    };
    return enc;
  };
  try {
    for (let i = 0; i < n; i++) {
      const before = { ...gpu.created };
      passes = dispatches = 0;
      out.losses.push((await step.step([b], OPT)).loss);
      out.created.push({ buffers: gpu.created.buffers - before.buffers, bindGroups: gpu.created.bindGroups - before.bindGroups, pipelines: gpu.created.pipelines - before.pipelines });
      out.passes.push(passes);
      out.dispatches.push(dispatches);
    }
  } finally {
    dev.createCommandEncoder = create;
    step.dispose();
  }
  return out;
}

describeGpu('the steady-state training step', (gpu) => {
  it('creates no buffer, pipeline or bind group after its first step, and encodes one compute pass', async () => {
    const r = await steps(gpu, 4);
    expect(r.created[0].pipelines + r.created[0].bindGroups + r.created[0].buffers).toBeGreaterThan(0); // the counts count
    for (let i = 1; i < 4; i++) expect(r.created[i], `step ${i + 1}`).toEqual({ buffers: 0, bindGroups: 0, pipelines: 0 });
    for (let i = 0; i < 4; i++) {
      expect(r.dispatches[i]).toBeGreaterThan(100);
      expect(r.passes[i], `step ${i + 1}: ${r.dispatches[i]} dispatches`).toBe(1);
    }
    // the same steps on a fresh device (nothing cached): the same losses, bit for bit
    const fresh = await createGpu();
    try {
      expect((await steps(fresh, 4)).losses).toEqual(r.losses);
    } finally {
      fresh.destroy();
    }
  });
});
