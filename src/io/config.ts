// config.json of a Hugging Face Llama-family model → a typed ModelConfig, and the tensors such a
// checkpoint must hold. Defaults are those of the transformers config classes where a key may be
// absent (num_key_value_heads = num_attention_heads, rms_norm_eps 1e-6, rope_theta 10000, …).
import { FormatError } from '../errors.js';
import type { TensorStore } from './safetensors.js';
import { nodeFs, nodePath } from '../platform/node.js';

export const MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/**
 * Upper bounds on config.json's sizes, far above any model a WebGPU device holds (the largest
 * vocabularies are ~260k, hidden sizes ~16k): a size beyond them is a broken file, refused before
 * anything is allocated.
 */
const SIZE_LIMITS: Record<string, number> = {
  hidden_size: 65536, intermediate_size: 1 << 20, num_hidden_layers: 1024, num_attention_heads: 1024,
  num_key_value_heads: 1024, head_dim: 4096, vocab_size: 1 << 24, max_position_embeddings: 1 << 24, sliding_window: 1 << 24,
};

/** Llama 3 frequency-dependent RoPE scaling (transformers' `_compute_llama3_parameters`). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
  modelType: ModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** config.head_dim, else hidden_size / num_attention_heads. */
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2 always; llama/qwen3 from attention_bias; o_proj gets one too when attention_bias is set on llama/qwen3). */
  attentionBias: boolean;
  /** o_proj bias: llama/qwen3 attention_bias also puts a bias on o_proj; qwen2 does not. */
  oProjBias: boolean;
  /** qwen3: RMSNorm over head_dim on q and k before RoPE. */
  qkNorm: boolean;
  maxPositionEmbeddings: number;
  /** Sliding-window attention width when the config enables it (mistral, qwen with use_sliding_window), else null. Not applied by the reference. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  torchDtype: string | null;
}

const DEFAULT_MAX_POS: Record<ModelType, number> = { llama: 2048, mistral: 131072, qwen2: 32768, qwen3: 32768 };

type Json = Record<string, unknown>;

/** Parse config.json text. `file` names it in errors. */
export function parseConfig(text: string, file = 'config.json'): ModelConfig {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, 'line 1', `not valid JSON (${(e as Error).message})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new FormatError(file, 'top level', 'expected a JSON object');
  return configFromJson(j as Json, file);
}

/** Read `<dir>/config.json` (Node). */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  const fs = await nodeFs();
  const { join } = await nodePath();
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new FormatError(file, 'file', 'cannot be read', 'point --model at a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)');
  }
  return parseConfig(text, file);
}

export function configFromJson(j: Json, file = 'config.json'): ModelConfig {
  const mt = j.model_type;
  if (typeof mt !== 'string' || !(MODEL_TYPES as readonly string[]).includes(mt)) {
    throw new FormatError(
      file,
      'model_type',
      `${mt === undefined ? 'missing' : JSON.stringify(mt)} is not supported; supported model types: ${MODEL_TYPES.join(', ')}`,
      'zpd-wgpu runs Llama-family decoders (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, SmolLM, TinyLlama)',
    );
  }
  const modelType = mt as ModelType;
  const int = (key: string, dflt?: number): number => {
    const v = j[key] ?? dflt;
    if (v === undefined) throw new FormatError(file, key, 'missing; expected a positive integer');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new FormatError(file, key, `expected a positive integer, found ${JSON.stringify(v)}`);
    const max = SIZE_LIMITS[key];
    if (max !== undefined && v > max) throw new FormatError(file, key, `${v} is absurd for a model zpd-wgpu can run (at most ${max})`, 'check the file: a size this large cannot fit any GPU buffer');
    return v;
  };
  const num = (key: string, dflt: number): number => {
    const v = j[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new FormatError(file, key, `expected a positive number, found ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = j[key] ?? dflt;
    if (typeof v !== 'boolean') throw new FormatError(file, key, `expected true or false, found ${JSON.stringify(v)}`);
    return v;
  };
  const tokenId = (key: string): number | number[] | null => {
    const v = j[key];
    if (v === undefined || v === null) return null;
    const ok = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
    if (ok(v) || (Array.isArray(v) && v.length > 0 && v.every(ok))) return v as number | number[];
    throw new FormatError(file, key, `expected a token id or a list of them, found ${JSON.stringify(v)}`);
  };

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) throw new FormatError(file, 'num_key_value_heads', `${numKvHeads} does not divide num_attention_heads ${numHeads}`);
  let headDim: number;
  if (j.head_dim !== undefined && j.head_dim !== null) headDim = int('head_dim');
  else if (hiddenSize % numHeads !== 0) throw new FormatError(file, 'head_dim', `missing, and hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
  else headDim = hiddenSize / numHeads;
  if (headDim % 2 !== 0) throw new FormatError(file, 'head_dim', `${headDim} is odd; rotary embeddings need an even head_dim`);

  const act = j.hidden_act ?? j.hidden_activation ?? 'silu';
  if (act !== 'silu') throw new FormatError(file, 'hidden_act', `${JSON.stringify(act)} is not supported; expected "silu" (SwiGLU)`);
  if (j.mlp_bias === true) throw new FormatError(file, 'mlp_bias', 'true is not supported; expected false (no MLP bias)');

  const bias = modelType === 'qwen2' ? true : modelType === 'mistral' ? false : bool('attention_bias', false);
  const oProjBias = (modelType === 'llama' || modelType === 'qwen3') && bias;

  let slidingWindow: number | null = null;
  if (typeof j.sliding_window === 'number' && (modelType === 'mistral' ? true : j.use_sliding_window === true)) slidingWindow = int('sliding_window');

  const torchDtype = j.torch_dtype ?? j.dtype ?? null;
  return {
    modelType,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ...rope(j, file, num),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias: bias,
    oProjBias,
    qkNorm: modelType === 'qwen3',
    maxPositionEmbeddings: int('max_position_embeddings', DEFAULT_MAX_POS[modelType]),
    slidingWindow,
    bosTokenId: tokenId('bos_token_id') as number | null,
    eosTokenId: tokenId('eos_token_id'),
    torchDtype: typeof torchDtype === 'string' ? torchDtype : null,
  };
}

/** rope_theta + rope_scaling (transformers 4), or one rope_parameters object (transformers 5). */
function rope(j: Json, file: string, num: (k: string, d: number) => number): { ropeTheta: number; ropeScaling: Llama3RopeScaling | null } {
  const rp = j.rope_parameters;
  if (rp && typeof rp === 'object' && !Array.isArray(rp)) {
    const theta = (rp as Json).rope_theta ?? j.rope_theta ?? 10000;
    if (typeof theta !== 'number' || !(theta > 0)) throw new FormatError(file, 'rope_parameters.rope_theta', `expected a positive number, found ${JSON.stringify(theta)}`);
    return { ropeTheta: theta, ropeScaling: parseRopeScaling(rp, file, 'rope_parameters') };
  }
  return { ropeTheta: num('rope_theta', 10000), ropeScaling: parseRopeScaling(j.rope_scaling, file) };
}

function parseRopeScaling(v: unknown, file: string, key = 'rope_scaling'): Llama3RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(file, key, `expected an object or null, found ${JSON.stringify(v)}`);
  const r = v as Json;
  const type = r.rope_type ?? r.type;
  if (type === 'default' || (type === undefined && key === 'rope_parameters')) return null;
  if (type !== 'llama3') {
    throw new FormatError(file, `${key}.rope_type`, `${JSON.stringify(type)} is not supported; supported: "llama3", "default" (or rope_scaling null)`);
  }
  const n = (k: string): number => {
    const x = r[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw new FormatError(file, `${key}.${k}`, `expected a positive number, found ${JSON.stringify(x)}`);
    return x;
  };
  const s: Llama3RopeScaling = {
    type: 'llama3',
    factor: n('factor'),
    lowFreqFactor: n('low_freq_factor'),
    highFreqFactor: n('high_freq_factor'),
    originalMaxPositionEmbeddings: n('original_max_position_embeddings'),
  };
  if (s.highFreqFactor <= s.lowFreqFactor) throw new FormatError(file, `${key}.high_freq_factor`, `${s.highFreqFactor} must exceed low_freq_factor ${s.lowFreqFactor}`);
  return s;
}

/** RoPE inverse frequencies [headDim/2], float64, as transformers computes them (incl. Llama 3 scaling). */
export function ropeInvFreq(cfg: ModelConfig): Float64Array {
  const d = cfg.headDim;
  const inv = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / cfg.ropeTheta ** ((2 * i) / d);
  const s = cfg.ropeScaling;
  if (!s) return inv;
  const lowWl = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWl = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < inv.length; i++) {
    const wl = (2 * Math.PI) / inv[i];
    if (wl > lowWl) inv[i] /= s.factor; // low frequencies: scaled fully
    else if (wl >= highWl) {
      // the band between: interpolate between scaled and unscaled
      const smooth = (s.originalMaxPositionEmbeddings / wl - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
    }
  }
  return inv;
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/** The Hugging Face tensor names and shapes a checkpoint of `cfg` holds. */
export function expectedTensors(cfg: ModelConfig): ExpectedTensor[] {
  const H = cfg.hiddenSize, I = cfg.intermediateSize, V = cfg.vocabSize, hd = cfg.headDim;
  const nq = cfg.numHeads * hd, nkv = cfg.numKvHeads * hd;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, H] }];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}self_attn.q_proj.weight`, shape: [nq, H] },
      { name: `${p}self_attn.k_proj.weight`, shape: [nkv, H] },
      { name: `${p}self_attn.v_proj.weight`, shape: [nkv, H] },
      { name: `${p}self_attn.o_proj.weight`, shape: [H, nq] },
    );
    if (cfg.attentionBias) {
      out.push(
        { name: `${p}self_attn.q_proj.bias`, shape: [nq] },
        { name: `${p}self_attn.k_proj.bias`, shape: [nkv] },
        { name: `${p}self_attn.v_proj.bias`, shape: [nkv] },
      );
    }
    if (cfg.oProjBias) out.push({ name: `${p}self_attn.o_proj.bias`, shape: [H] });
    if (cfg.qkNorm) out.push({ name: `${p}self_attn.q_norm.weight`, shape: [hd] }, { name: `${p}self_attn.k_norm.weight`, shape: [hd] });
    out.push(
      { name: `${p}mlp.gate_proj.weight`, shape: [I, H] },
      { name: `${p}mlp.up_proj.weight`, shape: [I, H] },
      { name: `${p}mlp.down_proj.weight`, shape: [H, I] },
      { name: `${p}input_layernorm.weight`, shape: [H] },
      { name: `${p}post_attention_layernorm.weight`, shape: [H] },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [H] });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, H] });
  return out;
}

/**
 * Check a checkpoint against its config. A missing tensor, a wrong shape or a non-float dtype is
 * a FormatError naming the tensor (and its file). Tensors the model does not use (e.g.
 * `rotary_emb.inv_freq` of old exports, or an `lm_head.weight` kept beside tied embeddings) are
 * not errors: their names are returned so the caller can log them; they are never loaded.
 */
export function checkTensors(store: Pick<TensorStore, 'names' | 'info'>, cfg: ModelConfig, where = 'checkpoint'): { unused: string[] } {
  const want = expectedTensors(cfg);
  const wanted = new Set(want.map((t) => t.name));
  for (const t of want) {
    const info = store.info(t.name);
    if (!info) {
      throw new FormatError(where, `tensor '${t.name}'`, `missing; config.json (${cfg.modelType}, ${cfg.numLayers} layers) needs it with shape [${t.shape}]`, 'the weights do not match config.json: use the config.json that came with them');
    }
    if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i])) {
      throw new FormatError(info.file, `tensor '${t.name}'`, `shape [${info.shape}], but config.json implies [${t.shape}]`, 'the weights do not match config.json: use the config.json that came with them');
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) throw new FormatError(info.file, `tensor '${t.name}'`, `dtype ${info.dtype}; expected F32, F16 or BF16`);
  }
  return { unused: store.names().filter((n) => !wanted.has(n)) };
}
