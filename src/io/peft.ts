// LoRA adapters in PEFT's format, so that `PeftModel.from_pretrained(base, dir)` loads what we
// train and we load what PEFT trained.
//
// A folder holds adapter_config.json and adapter_model.safetensors (metadata {"format": "pt"}).
// Keys, as PeftModel.save_pretrained writes them (the adapter name, e.g. ".default", is stripped
// on save and re-inserted by PEFT on load):
//   base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_A.weight   [r, in]
//   base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_B.weight   [out, r]
//   base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
// The reader also accepts keys that keep an adapter name (`lora_A.default.weight`) or lack the
// `base_model.model.` prefix. The math: y = W x + scaling · B (A x), scaling = alpha / r, or
// alpha / sqrt(r) with rsLoRA. PEFT's default init: A ~ kaiming_uniform_(a = sqrt(5)), i.e.
// U(-1/sqrt(in), 1/sqrt(in)) since fan_in = in; B = 0.
import { makeRng } from '../rng.js';
import { FormatError, UsageError } from '../errors.js';
import { DEFAULT_LORA, LORA_MODULES, type LoraModule, type LoraOptions } from '../lora.js';
import type { ModelConfig } from './config.js';
import { SafetensorsFile, serializeSafetensors, writeFileAtomic, type TensorStore } from './safetensors.js';
import { nodeFs, nodePath } from '../platform/node.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export interface AdapterConfig extends LoraOptions {
  baseModelNameOrPath: string | null;
}

/** One adapted linear layer: a [r, inFeatures], b [outFeatures, r], row-major. */
export interface LoraWeight {
  layer: number;
  module: LoraModule;
  inFeatures: number;
  outFeatures: number;
  a: Float32Array;
  b: Float32Array;
}

export interface Adapter {
  config: AdapterConfig;
  /** Sorted by layer, then in LORA_MODULES order. */
  weights: LoraWeight[];
}

const GROUP: Record<LoraModule, 'self_attn' | 'mlp'> = {
  q_proj: 'self_attn', k_proj: 'self_attn', v_proj: 'self_attn', o_proj: 'self_attn',
  gate_proj: 'mlp', up_proj: 'mlp', down_proj: 'mlp',
};

/** The key PEFT's save_pretrained writes for one LoRA matrix. */
export function peftKey(layer: number, module: LoraModule, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${GROUP[module]}.${module}.lora_${which}.weight`;
}

/** [in, out] features of `module` in a model of `cfg`. */
export function loraFeatures(cfg: ModelConfig, module: LoraModule): { inFeatures: number; outFeatures: number } {
  const H = cfg.hiddenSize, I = cfg.intermediateSize;
  const nq = cfg.numHeads * cfg.headDim, nkv = cfg.numKvHeads * cfg.headDim;
  const io: Record<LoraModule, [number, number]> = {
    q_proj: [H, nq], k_proj: [H, nkv], v_proj: [H, nkv], o_proj: [nq, H],
    gate_proj: [H, I], up_proj: [H, I], down_proj: [I, H],
  };
  return { inFeatures: io[module][0], outFeatures: io[module][1] };
}

// ------------------------------------------------------------------ initialisation


/**
 * PEFT's default LoRA init, seeded: A [r, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (what
 * nn.init.kaiming_uniform_(a=sqrt(5)) gives: gain sqrt(2/(1+5)), bound gain·sqrt(3/fan_in)), B [out, r] = 0.
 * The values differ from torch's RNG; the distribution is the same.
 */
export function initLora(shapeA: [number, number], shapeB: [number, number], seed: number): { a: Float32Array; b: Float32Array } {
  const [r, inF] = shapeA;
  if (shapeB[1] !== r) throw new UsageError(`initLora: lora_A is [${shapeA}] but lora_B is [${shapeB}]; B must be [out, ${r}]`);
  const rand = makeRng(seed);
  const bound = 1 / Math.sqrt(inF);
  const a = new Float32Array(r * inF);
  for (let i = 0; i < a.length; i++) a[i] = (2 * rand() - 1) * bound;
  return { a, b: new Float32Array(shapeB[0] * shapeB[1]) };
}

/** A fresh adapter for `cfg`: every target module of every layer, each tensor seeded from (seed, layer, module). */
export function initAdapter(cfg: ModelConfig, lora: LoraOptions, seed: number, baseModelNameOrPath: string | null = null): Adapter {
  const weights: LoraWeight[] = [];
  for (let layer = 0; layer < cfg.numLayers; layer++) {
    for (const module of LORA_MODULES) {
      if (!lora.targetModules.includes(module)) continue;
      const { inFeatures, outFeatures } = loraFeatures(cfg, module);
      const s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(layer + 1, 0x85ebca6b) ^ Math.imul(LORA_MODULES.indexOf(module) + 1, 0xc2b2ae35)) >>> 0;
      const { a, b } = initLora([lora.r, inFeatures], [outFeatures, lora.r], s);
      weights.push({ layer, module, inFeatures, outFeatures, a, b });
    }
  }
  return { config: { ...lora, targetModules: [...lora.targetModules], baseModelNameOrPath }, weights };
}

/**
 * What attaching LoRA to a model means, on either backend (src/model/load.ts attachLora,
 * src/wasm/model.ts WasmModel.attachLora): the options (defaults < the adapter's config <
 * `lora`), checked; the adapter (the given one, or PEFT's initialisation, seeded); and each of its
 * tensors beside the linear layer it belongs to, shapes checked — all before the model changes.
 */
export function planLora<L extends { inF: number; outF: number }>(
  cfg: ModelConfig, layers: readonly { lin: Record<LoraModule, L> }[], lora: Partial<LoraOptions> = {}, seed = 0, adapter?: Adapter,
): { options: LoraOptions; adapter: Adapter; pairs: { lin: L; w: LoraWeight; name: string }[] } {
  const o: LoraOptions = { ...DEFAULT_LORA, ...(adapter?.config ?? {}), ...lora };
  for (const m of o.targetModules)
    if (!LORA_MODULES.includes(m)) throw new UsageError(`LoRA target module '${m}' is not one of ${LORA_MODULES.join(', ')}`);
  if (!(Number.isInteger(o.r) && o.r > 0)) throw new UsageError(`LoRA rank r must be a positive integer, got ${o.r}`);
  const ad = adapter ?? initAdapter(cfg, o, seed);
  const pairs = ad.weights.map((w) => {
    const lin = layers[w.layer]?.lin[w.module];
    if (!lin) throw new FormatError('adapter', `layer ${w.layer} ${w.module}`, `the model has ${layers.length} layers`);
    if (w.inFeatures !== lin.inF || w.outFeatures !== lin.outF)
      throw new FormatError('adapter', `layer ${w.layer} ${w.module}`, `shape [${w.outFeatures}, ${w.inFeatures}] does not match the model's [${lin.outF}, ${lin.inF}]`);
    return { lin, w, name: `layers.${w.layer}.${w.module}` };
  });
  return { options: o, adapter: ad, pairs };
}

// ------------------------------------------------------------------ writing

/** adapter_config.json as PEFT's LoraConfig writes it (the fields PEFT ≥ 0.9 knows). */
export function adapterConfigJson(c: AdapterConfig): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: {},
    revision: null,
    target_modules: LORA_MODULES.filter((m) => c.targetModules.includes(m)),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: c.useRslora,
  };
}

function checkWeight(w: LoraWeight, r: number): void {
  if (w.a.length !== r * w.inFeatures || w.b.length !== w.outFeatures * r) {
    throw new UsageError(`LoRA ${peftKey(w.layer, w.module, 'A')}: expected A [${r}, ${w.inFeatures}] and B [${w.outFeatures}, ${r}], got ${w.a.length} and ${w.b.length} elements`);
  }
}

/** The adapter_model.safetensors bytes (header + tensors), for Node or a browser download. */
export function adapterSafetensors(adapter: Adapter): Uint8Array[] {
  const r = adapter.config.r;
  const tensors = adapter.weights.flatMap((w) => {
    checkWeight(w, r);
    return [
      { name: peftKey(w.layer, w.module, 'A'), dtype: 'F32' as const, shape: [r, w.inFeatures], data: w.a },
      { name: peftKey(w.layer, w.module, 'B'), dtype: 'F32' as const, shape: [w.outFeatures, r], data: w.b },
    ];
  });
  return serializeSafetensors(tensors, { format: 'pt' });
}

/** Write adapter_config.json and adapter_model.safetensors into `dir` (created if absent), each atomically (Node). */
export async function saveAdapter(dir: string, adapter: Adapter): Promise<void> {
  const fs = await nodeFs();
  const { join } = await nodePath();
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, ADAPTER_WEIGHTS), adapterSafetensors(adapter));
  await writeFileAtomic(join(dir, ADAPTER_CONFIG), [JSON.stringify(adapterConfigJson(adapter.config), null, 2) + '\n']);
}

// ------------------------------------------------------------------ reading

/** adapter_config.json text → AdapterConfig. Refuses what would change the math and is not supported. */
export function parseAdapterConfig(text: string, file = ADAPTER_CONFIG): AdapterConfig {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, 'line 1', `not valid JSON (${(e as Error).message})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new FormatError(file, 'top level', 'expected a JSON object');
  if (j.peft_type !== 'LORA') throw new FormatError(file, 'peft_type', `${JSON.stringify(j.peft_type)}; only "LORA" adapters are supported`);
  const r = j.r ?? 8; // PEFT's defaults
  const alpha = j.lora_alpha ?? 8;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0) throw new FormatError(file, 'r', `expected a positive integer, found ${JSON.stringify(r)}`);
  if (typeof alpha !== 'number' || !(alpha > 0)) throw new FormatError(file, 'lora_alpha', `expected a positive number, found ${JSON.stringify(alpha)}`);
  const dropout = j.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout >= 1) throw new FormatError(file, 'lora_dropout', `expected a number in [0, 1), found ${JSON.stringify(dropout)}`);
  if ((j.bias ?? 'none') !== 'none') throw new FormatError(file, 'bias', `${JSON.stringify(j.bias)}; only "none" is supported`);
  if (j.use_dora === true) throw new FormatError(file, 'use_dora', 'DoRA adapters are not supported');
  if (j.fan_in_fan_out === true) throw new FormatError(file, 'fan_in_fan_out', 'true (GPT-2 Conv1D layout) is not supported by Llama-family models');
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    const v = j[k];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) throw new FormatError(file, k, 'per-module ranks or alphas are not supported; expected {}');
  }
  if (Array.isArray(j.modules_to_save) && j.modules_to_save.length > 0) throw new FormatError(file, 'modules_to_save', `${JSON.stringify(j.modules_to_save)}: fully trained extra modules are not supported`);
  const tm = j.target_modules;
  let targetModules: LoraModule[];
  if (typeof tm === 'string') targetModules = tm === 'all-linear' ? [...LORA_MODULES] : LORA_MODULES.filter((m) => new RegExp(tm).test(`model.layers.0.${GROUP[m]}.${m}`));
  else if (Array.isArray(tm)) {
    targetModules = [];
    for (const m of tm) {
      const base = typeof m === 'string' ? m.split('.').pop()! : '';
      if (!(LORA_MODULES as readonly string[]).includes(base)) throw new FormatError(file, 'target_modules', `${JSON.stringify(m)} is not one of ${LORA_MODULES.join(', ')}`);
      if (!targetModules.includes(base as LoraModule)) targetModules.push(base as LoraModule);
    }
  } else throw new FormatError(file, 'target_modules', `expected a list of module names, found ${JSON.stringify(tm)}`);
  return {
    r,
    alpha,
    dropout,
    targetModules: LORA_MODULES.filter((m) => targetModules.includes(m)),
    useRslora: j.use_rslora === true,
    baseModelNameOrPath: typeof j.base_model_name_or_path === 'string' ? j.base_model_name_or_path : null,
  };
}

const KEY = /^(?:base_model\.model\.)?(?:model\.)?layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(?:\.([^.]+))?\.weight$/;

/** Parse a PEFT key: layer, module, A or B, and the adapter name segment if one was kept. */
export function parsePeftKey(key: string): { layer: number; module: LoraModule; which: 'A' | 'B'; adapterName: string | null } | null {
  const m = KEY.exec(key);
  if (!m || !(LORA_MODULES as readonly string[]).includes(m[3]) || GROUP[m[3] as LoraModule] !== m[2]) return null;
  return { layer: Number(m[1]), module: m[3] as LoraModule, which: m[4] as 'A' | 'B', adapterName: m[5] ?? null };
}

/**
 * Read an adapter from its config and its weights. Every tensor must be a LoRA matrix of a known
 * module, A and B must come in pairs with consistent shapes, and the rank must be config.r.
 * With `model`, the features are checked against the model's config too.
 */
export async function readAdapter(configText: string, store: TensorStore, opts: { configFile?: string; weightsFile?: string; model?: ModelConfig } = {}): Promise<Adapter> {
  const config = parseAdapterConfig(configText, opts.configFile);
  const file = opts.weightsFile ?? ADAPTER_WEIGHTS;
  const pairs = new Map<string, { layer: number; module: LoraModule; A?: string; B?: string }>();
  let adapterName: string | null | undefined;
  for (const name of store.names()) {
    const k = parsePeftKey(name);
    if (!k) throw new FormatError(file, `tensor '${name}'`, 'not a LoRA matrix of a Llama-family module (expected …layers.{i}.self_attn|mlp.{q,k,v,o,gate,up,down}_proj.lora_A|lora_B.weight)');
    if (adapterName !== undefined && k.adapterName !== adapterName) throw new FormatError(file, `tensor '${name}'`, `adapter name '${k.adapterName}' differs from '${adapterName}' of the others; expected one adapter per file`);
    adapterName = k.adapterName;
    const id = `${k.layer}.${k.module}`;
    const p = pairs.get(id) ?? { layer: k.layer, module: k.module };
    p[k.which] = name;
    pairs.set(id, p);
  }
  const weights: LoraWeight[] = [];
  for (const p of pairs.values()) {
    if (!p.A || !p.B) throw new FormatError(file, `tensor '${p.A ?? p.B}'`, `has no matching lora_${p.A ? 'B' : 'A'}`);
    const ia = store.info(p.A)!, ib = store.info(p.B)!;
    if (ia.shape.length !== 2 || ia.shape[0] !== config.r) throw new FormatError(file, `tensor '${p.A}'`, `shape [${ia.shape}], expected [r = ${config.r}, in]`);
    if (ib.shape.length !== 2 || ib.shape[1] !== config.r) throw new FormatError(file, `tensor '${p.B}'`, `shape [${ib.shape}], expected [out, r = ${config.r}]`);
    if (!config.targetModules.includes(p.module)) throw new FormatError(file, `tensor '${p.A}'`, `module ${p.module} is not in target_modules [${config.targetModules}]`);
    const inFeatures = ia.shape[1], outFeatures = ib.shape[0];
    if (opts.model) {
      if (p.layer >= opts.model.numLayers) throw new FormatError(file, `tensor '${p.A}'`, `layer ${p.layer}, but the model has ${opts.model.numLayers} layers`);
      const f = loraFeatures(opts.model, p.module);
      if (f.inFeatures !== inFeatures || f.outFeatures !== outFeatures) {
        throw new FormatError(file, `tensor '${p.A}'`, `adapts a [${outFeatures} × ${inFeatures}] layer but the model's ${p.module} is [${f.outFeatures} × ${f.inFeatures}]`, 'this adapter was trained for a different base model');
      }
    }
    weights.push({ layer: p.layer, module: p.module, inFeatures, outFeatures, a: await store.readF32(p.A), b: await store.readF32(p.B) });
  }
  weights.sort((x, y) => x.layer - y.layer || LORA_MODULES.indexOf(x.module) - LORA_MODULES.indexOf(y.module));
  return { config, weights };
}

/** Load `dir`/adapter_config.json + adapter_model.safetensors (Node). */
export async function loadAdapter(dir: string, model?: ModelConfig): Promise<Adapter> {
  const fs = await nodeFs();
  const { join } = await nodePath();
  const cfgFile = join(dir, ADAPTER_CONFIG);
  let text: string;
  try {
    text = await fs.readFile(cfgFile, 'utf8');
  } catch {
    throw new FormatError(cfgFile, 'file', 'cannot be read', 'an adapter folder holds adapter_config.json and adapter_model.safetensors (adapter_model.bin is not supported: convert it to safetensors)');
  }
  const wFile = join(dir, ADAPTER_WEIGHTS);
  const st = await SafetensorsFile.openPath(wFile).catch((e) => {
    if (e instanceof FormatError) throw e;
    throw new FormatError(wFile, 'file', 'cannot be read', 'adapter_model.bin is not supported: convert it to safetensors');
  });
  try {
    return await readAdapter(text, st, { configFile: cfgFile, weightsFile: wFile, model });
  } finally {
    await st.close();
  }
}
