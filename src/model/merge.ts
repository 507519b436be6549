// Merge a LoRA adapter into its base model and save a plain Hugging Face checkpoint:
// W' = W + s · B·A for every adapted linear layer, every other tensor copied as it is.
// Runs on the CPU, one tensor at a time; the result is written atomically as model.safetensors
// in the base's dtype (f16/bf16 weights are merged in f32 and rounded back).
import { UsageError } from '../errors.js';
import type { Adapter } from '../io/peft.js';
import { openCheckpoint, writeSafetensors, type Dtype, type TensorStore, type TensorToWrite } from '../io/safetensors.js';
import { loadConfig } from '../io/config.js';
import { LORA_MODULES, loraScale } from '../lora.js';
import { nodeFs, nodePath } from '../platform/node.js';

/** The files of a model folder, besides the weights, that a merged checkpoint keeps. */
const KEEP = /^(config\.json|generation_config\.json|tokenizer.*\.json|special_tokens_map\.json|.*\.model|vocab\.json|merges\.txt)$/;

/** W (out, in) += s · B (out, r) · A (r, in), in place. */
export function mergeInto(W: Float32Array, A: Float32Array, B: Float32Array, out: number, inF: number, r: number, s: number): void {
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < r; k++) {
      const b = s * B[o * r + k];
      if (b === 0) continue;
      const row = o * inF, arow = k * inF;
      for (let i = 0; i < inF; i++) W[row + i] += b * A[arow + i];
    }
  }
}

/** A tensor's data in a form writeSafetensors writes back unchanged. */
async function readAsStored(store: TensorStore, name: string, dtype: Dtype): Promise<TensorToWrite['data']> {
  if (dtype === 'F16' || dtype === 'BF16') return new Uint16Array((await store.readBytes(name)).buffer);
  if (dtype === 'I32' || dtype === 'I64') return store.readI32(name);
  if (dtype === 'F64') return store.readF64(name);
  return store.readF32(name);
}

/** Merge `adapter` into the model in `baseDir`, writing a complete model folder to `outDir`. */
export async function mergeAndSave(baseDir: string, adapter: Adapter, outDir: string): Promise<void> {
  if (baseDir === outDir) throw new UsageError('merge: the output folder must differ from the base model folder');
  const { copyFile, mkdir, readdir } = await nodeFs();
  const { join } = await nodePath();
  await loadConfig(baseDir); // refuse a folder that is not a supported model before writing anything
  const store = await openCheckpoint(baseDir);
  const s = loraScale(adapter.config);
  const byName = new Map<string, Adapter["weights"][number]>(adapter.weights.map((w) => {
    const group = LORA_MODULES.indexOf(w.module) < 4 ? 'self_attn' : 'mlp';
    return [`model.layers.${w.layer}.${group}.${w.module}.weight`, w];
  }));
  try {
    const tensors: TensorToWrite[] = [];
    for (const name of store.names()) {
      const info = store.info(name)!;
      const lw = byName.get(name);
      if (!lw) {
        tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await readAsStored(store, name, info.dtype) });
        continue;
      }
      const W = await store.readF32(name);
      if (info.shape[0] !== lw.outFeatures || info.shape[1] !== lw.inFeatures)
        throw new UsageError(`merge: ${name} is [${info.shape}] but the adapter's layer ${lw.layer} ${lw.module} is [${lw.outFeatures}, ${lw.inFeatures}]`);
      mergeInto(W, lw.a, lw.b, lw.outFeatures, lw.inFeatures, adapter.config.r, s);
      tensors.push({ name, dtype: info.dtype, shape: info.shape, data: W });
      byName.delete(name);
    }
    if (byName.size) throw new UsageError(`merge: the base model has no ${[...byName.keys()][0]} (adapter made for another model?)`);
    await mkdir(outDir, { recursive: true });
    await writeSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
    for (const f of await readdir(baseDir)) if (KEEP.test(f)) await copyFile(join(baseDir, f), join(outDir, f));
  } finally {
    await store.close();
  }
}
