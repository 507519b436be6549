// Logits of the model in MODEL_DIR with and without the PEFT adapter in ADAPTER_DIR, on fixed
// token ids, from zpd-wgpu's built library (dist/node/index.js): what bench/peft_check.py
// compares with PeftModel.from_pretrained. Writes OUT_DIR/{ids.json, base.f32, adapted.f32}.
//   node bench/peft-logits.mjs MODEL_DIR ADAPTER_DIR OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getGpu, loadModel, loadModelAdapter } from '../dist/node/index.js';

const [modelDir, adapterDir, outDir] = process.argv.slice(2);
if (!outDir) throw new Error('usage: node bench/peft-logits.mjs MODEL_DIR ADAPTER_DIR OUT_DIR');
mkdirSync(outDir, { recursive: true });
const gpu = await getGpu();
const model = await loadModel(gpu, modelDir, { weights: 'f32' }); // as PyTorch float32 sees them
const B = 2, T = 48, V = model.cfg.vocabSize;
let s = 12345;
const ids = Int32Array.from({ length: B * T }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % V);
const batch = {
  B, T, ids, targets: new Int32Array(B * T).fill(-1),
  segments: Int32Array.from({ length: B * T }, (_, i) => Math.floor(i / T)),
  positions: Int32Array.from({ length: B * T }, (_, i) => i % T),
};
const base = await model.logits(batch);
await loadModelAdapter(model, adapterDir);
const adapted = await model.logits(batch);
writeFileSync(join(outDir, 'ids.json'), JSON.stringify({ B, T, V, ids: Array.from(ids) }));
writeFileSync(join(outDir, 'base.f32'), base);
writeFileSync(join(outDir, 'adapted.f32'), adapted);
console.log(`wrote ${B}×${T}×${V} logits (base and with the adapter) to ${outDir} (adapter ${gpu.info.description})`);
process.exit(0);
