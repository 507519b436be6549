// Hugging Face folder → LlamaModel on the GPU, and LoRA adapters on and off it.
// Weights stream tensor by tensor from the checkpoint (src/io/safetensors.ts); each is checked
// against the config's expected shape first, with the tensor's name in every error.
import { FormatError, UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { bf16BitsToF16Bits, f32ToF16Bits } from '../io/dtype.js';
import { loadAdapter, loraFeatures, planLora, saveAdapter, type Adapter } from '../io/peft.js';
import { openCheckpoint, type TensorStore } from '../io/safetensors.js';
import { checkTensors, loadConfig, type ModelConfig } from '../io/config.js';
import { ATTENTION_MAX_HEAD_DIM } from '../kernels/attention.js';
import { LlamaModel, type Layer, type Linear, type Param, type Weight } from './llama.js';
import { LORA_MODULES, loraScale, type LoraModule, type LoraOptions } from '../lora.js';

export interface LoadOptions {
  /**
   * Storage of the frozen linear weights: 'f16' needs the adapter's shader-f16; 'auto' (default)
   * keeps f16/bf16 checkpoints in f16 where the adapter can, everything else in f32.
   */
  weights?: 'auto' | 'f16' | 'f32';
  /** Full fine-tuning: every weight is trainable (f32, with AdamW moments). For tiny models. */
  full?: boolean;
  /** Called after each tensor is uploaded (progress). */
  onTensor?: (name: string, done: number, total: number) => void;
}

/** Load a Hugging Face model folder (config.json + safetensors) onto `gpu`. */
export async function loadModel(gpu: Gpu, dir: string, opts: LoadOptions = {}): Promise<LlamaModel> {
  const cfg = await loadConfig(dir);
  const store = await openCheckpoint(dir);
  try {
    return await modelFromStore(gpu, cfg, store, opts);
  } finally {
    await store.close();
  }
}

function makeParam(gpu: Gpu, name: string, shape: number[], data: Float32Array, decay: boolean): Param {
  const n = data.length;
  return {
    name, shape, n, decay,
    buf: gpu.buffer(data, name),
    grad: gpu.buffer(n * 4, `${name}.grad`),
    m: gpu.buffer(n * 4, `${name}.m`),
    v: gpu.buffer(n * 4, `${name}.v`),
  };
}

/** Build the model from an open tensor store (a file, shards, or bytes in a browser). */
export async function modelFromStore(gpu: Gpu, cfg: ModelConfig, store: TensorStore, opts: LoadOptions = {}): Promise<LlamaModel> {
  if (cfg.headDim > ATTENTION_MAX_HEAD_DIM) throw new UsageError(`this model's head_dim is ${cfg.headDim}; zpd-wgpu's attention supports head_dim up to ${ATTENTION_MAX_HEAD_DIM}`);
  checkTensors(store, cfg);
  const full = opts.full ?? false;
  const mode = opts.weights ?? 'auto';
  if (mode === 'f16' && !gpu.hasF16) throw new UsageError("weights 'f16' needs the adapter feature shader-f16, which this GPU lacks; use 'f32'");
  const total = store.names().length;
  let done = 0;

  const load = async (name: string, shape: number[], kind: 'linear' | 'other'): Promise<Weight> => {
    const info = store.info(name);
    if (!info) throw new FormatError('checkpoint', name, 'tensor missing');
    const halfSrc = info.dtype === 'F16' || info.dtype === 'BF16';
    const f16 = !full && kind === 'linear' && (mode === 'f16' || (mode === 'auto' && halfSrc && gpu.hasF16));
    gpu.checkSize(shape.reduce((a, b) => a * b, 1) * (f16 ? 2 : 4), `tensor ${name} [${shape}]`);
    let w: Weight;
    if (f16) {
      let bits: Uint16Array;
      if (info.dtype === 'F16') bits = new Uint16Array((await store.readBytes(name)).buffer);
      else if (info.dtype === 'BF16') bits = bf16BitsToF16Bits(new Uint16Array((await store.readBytes(name)).buffer));
      else bits = f32ToF16Bits(await store.readF32(name));
      w = { name, shape, f16: true, buf: gpu.buffer(bits, name) };
    } else {
      const data = await store.readF32(name);
      if (full) {
        const param = makeParam(gpu, name, shape, data, shape.length > 1);
        w = { name, shape, f16: false, buf: param.buf, param };
      } else {
        w = { name, shape, f16: false, buf: gpu.buffer(data, name) };
      }
    }
    opts.onTensor?.(name, ++done, total);
    return w;
  };

  const C = cfg.hiddenSize, D = cfg.headDim;
  const embed = await load('model.embed_tokens.weight', [cfg.vocabSize, C], 'other');
  const layers: Layer[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    const lin = {} as Record<LoraModule, Linear>;
    for (const m of LORA_MODULES) {
      const group = LORA_MODULES.indexOf(m) < 4 ? 'self_attn' : 'mlp';
      const { inFeatures: inF, outFeatures: outF } = loraFeatures(cfg, m);
      const W = await load(`${p}.${group}.${m}.weight`, [outF, inF], 'linear');
      const hasBias = (cfg.attentionBias && ['q_proj', 'k_proj', 'v_proj'].includes(m)) || (cfg.oProjBias && m === 'o_proj');
      const bias = hasBias ? await load(`${p}.${group}.${m}.bias`, [outF], 'other') : undefined;
      lin[m] = { module: m, W, bias, inF, outF };
    }
    layers.push({
      inputNorm: await load(`${p}.input_layernorm.weight`, [C], 'other'),
      postNorm: await load(`${p}.post_attention_layernorm.weight`, [C], 'other'),
      qNorm: cfg.qkNorm ? await load(`${p}.self_attn.q_norm.weight`, [D], 'other') : undefined,
      kNorm: cfg.qkNorm ? await load(`${p}.self_attn.k_norm.weight`, [D], 'other') : undefined,
      lin,
    });
  }
  const finalNorm = await load('model.norm.weight', [C], 'other');
  const lmHead = cfg.tieWordEmbeddings ? embed : await load('lm_head.weight', [cfg.vocabSize, C], 'other');
  return new LlamaModel(gpu, cfg, embed, layers, finalNorm, lmHead, full);
}

/**
 * Attach LoRA to `model`: a fresh adapter (A Kaiming-uniform, B zeros, as PEFT initialises,
 * seeded) or the given one (e.g. loaded from disk, or a parity fixture).
 */
export function attachLora(model: LlamaModel, lora: Partial<LoraOptions> = {}, seed = 0, adapter?: Adapter): Adapter {
  const plan = planLora(model.cfg, model.layers, lora, seed, adapter);
  const o = plan.options;
  model.detachLora(); // the tensors of an earlier adapter give their memory back
  model.setLora({ ...o, scale: loraScale(o) });
  for (const { lin, w, name } of plan.pairs) {
    lin.A = makeParam(model.gpu, `${name}.lora_A`, [o.r, lin.inF], w.a, true);
    lin.B = makeParam(model.gpu, `${name}.lora_B`, [lin.outF, o.r], w.b, true);
  }
  return plan.adapter;
}

/** Read the model's LoRA tensors back from the GPU as an Adapter (PEFT layout). */
export async function currentAdapter(model: LlamaModel, baseModelNameOrPath: string | null = null): Promise<Adapter> {
  if (!model.lora) throw new UsageError('the model has no LoRA attached');
  const { scale: _s, ...lora } = model.lora;
  const weights: Adapter['weights'] = [];
  for (let layer = 0; layer < model.layers.length; layer++) {
    for (const module of LORA_MODULES) {
      const lin = model.layers[layer].lin[module];
      if (!lin.A || !lin.B) continue;
      weights.push({
        layer, module, inFeatures: lin.inF, outFeatures: lin.outF,
        a: await model.gpu.readF32(lin.A.buf, lin.A.n),
        b: await model.gpu.readF32(lin.B.buf, lin.B.n),
      });
    }
  }
  return { config: { ...lora, baseModelNameOrPath }, weights };
}

/** Write the model's adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors). */
export async function saveModelAdapter(model: LlamaModel, dir: string, baseModelNameOrPath: string | null = null): Promise<void> {
  await saveAdapter(dir, await currentAdapter(model, baseModelNameOrPath));
}

/** Load a PEFT adapter folder (ours or PEFT's) onto the model. */
export async function loadModelAdapter(model: LlamaModel, dir: string): Promise<Adapter> {
  const ad = await loadAdapter(dir, model.cfg);
  attachLora(model, {}, 0, ad);
  return ad;
}
