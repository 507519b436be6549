// The LoRA half of the PyTorch parity fixtures (test/fixtures/models/*/expected.safetensors), for
// either backend: the gradients of one backward, and the tensors after ten AdamW steps.
import type { SafetensorsFile } from '../../src/io/safetensors.js';
import { peftKey } from '../../src/io/peft.js';
import { LORA_MODULES, type LoraModule } from '../../src/lora.js';
import { expectClose } from './check.js';

type Expected = Pick<SafetensorsFile, 'readF64' | 'readF32'>;
/** A LoRA tensor of the model under test (its gradient, or its value), read back. */
type Read = (layer: number, module: LoraModule, which: 'A' | 'B') => Promise<Float32Array> | Float32Array;

/** Every LoRA gradient against the fixture's grad.<key>; returns the largest |ours − PyTorch| over them. */
export async function expectLoraGrads(name: string, layers: number, grad: Read, exp: Expected): Promise<number> {
  let gradError = 0;
  for (let l = 0; l < layers; l++) {
    for (const m of LORA_MODULES) {
      for (const which of ['A', 'B'] as const) {
        const key = peftKey(l, m, which);
        const want = await exp.readF64(`grad.${key}`);
        let scale = 0;
        for (const w of want) scale = Math.max(scale, Math.abs(w));
        const got = await grad(l, m, which);
        expectClose(`${name} grad ${key}`, got, want, { atol: 1e-4 * scale + 1e-7, rtol: 1e-3 });
        for (let i = 0; i < got.length; i++) gradError = Math.max(gradError, Math.abs(got[i] - want[i]));
      }
    }
  }
  return gradError;
}

/**
 * After the fixture's ten AdamW steps: the worst distance of a LoRA tensor to PyTorch's, relative
 * to how far it moved (‖ours − PyTorch‖ / ‖movement‖), and how many start gradients lie within
 * `gradError` of zero (where Adam's sign-like first step may go the wrong way).
 */
export async function loraDistanceAfterSteps(layers: number, value: Read, exp: Expected, gradError: number): Promise<{ worst: number; undecided: number }> {
  let worst = 0, undecided = 0;
  for (let l = 0; l < layers; l++) {
    for (const m of LORA_MODULES) {
      for (const which of ['A', 'B'] as const) {
        const key = peftKey(l, m, which);
        const got = await value(l, m, which), want = await exp.readF64(`adamw10.${key}`), init = await exp.readF32(key);
        for (const g of await exp.readF64(`grad.${key}`)) if (Math.abs(g) < gradError) undecided++;
        let err = 0, moved = 0;
        for (let i = 0; i < got.length; i++) (err += (got[i] - want[i]) ** 2), (moved += (want[i] - init[i]) ** 2);
        worst = Math.max(worst, Math.sqrt(err / moved));
      }
    }
  }
  return { worst, undecided };
}
