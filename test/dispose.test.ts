// GPU memory comes back: models, their LoRA tensors, optimizer moments, activations, KV caches.
// Gpu.memory counts the bytes of every buffer the device creates until it is destroyed.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { generate, type ModelBatch } from '../src/model/llama.js';
import { attachLora, loadModel } from '../src/model/load.js';
import { WebGpuBackend } from '../src/train/step.js';
import { describeGpu } from './helpers/gpu.js';

const DIR = join(import.meta.dirname, 'fixtures', 'models', 'qwen2');

function batch(T: number): ModelBatch {
  const ids = Int32Array.from({ length: 2 * T }, (_, i) => (i * 7) % 200);
  const targets = Int32Array.from({ length: 2 * T }, (_, i) => (i % T < T - 1 && i % T > 2 ? ids[i + 1] : -1));
  const segments = Int32Array.from({ length: 2 * T }, (_, i) => Math.floor(i / T));
  const positions = Int32Array.from({ length: 2 * T }, (_, i) => i % T);
  return { B: 2, T, ids, targets, segments, positions };
}

describeGpu('GPU memory', (gpu) => {
  it('ten models trained (several shapes), scored, generated from and disposed leave no live buffers behind', async () => {
    await gpu.releaseCaches();
    const start = gpu.memory.live;
    const afterEach: number[] = [];
    for (let i = 0; i < 10; i++) {
      const model = await loadModel(gpu, DIR, { weights: 'f32' });
      attachLora(model, { r: 2, alpha: 4 }, i);
      attachLora(model, { r: 4, alpha: 8, dropout: 0.1 }, i); // replaces the first adapter
      const backend = new WebGpuBackend(model);
      // more shapes than the activation cache keeps: the oldest are given back
      for (const T of [8, 12, 16, 20, 24, 28]) await backend.step([batch(T)], { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
      await backend.score(batch(10));
      await generate(model, [1, 2, 3], { maxNewTokens: 3, stop: [] });
      backend.dispose();
      gpu.submit(() => {}); // retired buffers go with the next submission's completion
      await gpu.sync();
      await gpu.sync();
      afterEach.push(gpu.memory.live);
    }
    // nothing but the shared caches (scratch, uniforms) stays, and they do not grow
    expect(afterEach[9]).toBe(afterEach[1]);
    await gpu.releaseCaches();
    expect(gpu.memory.live).toBe(start);
  });
});
