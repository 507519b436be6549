// The Llama-family model on the wasm backend: the same layers, activations, forward, backward,
// training-step and scoring pass as src/model/llama.ts (see its header for the dataflow), on
// pointers into one WasmKernels memory, with the ops of src/wasm/ops.ts. Frozen weights are f32.
// Activations are allocated once per batch shape (a few shapes kept, as the GPU path does);
// every buffer a step needs beyond them is a named scratch that reaches its size in the first
// step, so steady-state steps allocate nothing.
import { FormatError, UsageError } from '../errors.js';
import { checkTensors, loadConfig, ropeInvFreq, type ModelConfig } from '../io/config.js';
import { loadAdapter, loraFeatures, planLora, type Adapter } from '../io/peft.js';
import { openCheckpoint, type TensorStore } from '../io/safetensors.js';
import { LORA_MODULES, loraScale, modelWeights, trainableTensors, type LoraModule, type LoraOptions } from '../lora.js';
import { numSegments, readSampleStats, type LlamaModel, type ModelBatch, type SampleStats } from '../model/llama.js';
import { SEGMENT_FLOATS } from '../kernels/segment.js';
import { WASM_MAX_BYTES, type WasmKernels } from './kernels.js';
import * as op from './ops.js';

/** A trainable tensor: value, gradient and AdamW moments, (n) f32 each. */
export interface WParam {
  name: string;
  shape: number[];
  n: number;
  ptr: number;
  grad: number;
  m: number;
  v: number;
  decay: boolean;
}

export interface WWeight {
  name: string;
  shape: number[];
  ptr: number;
  param?: WParam;
}

export interface WLinear {
  module: LoraModule;
  W: WWeight;
  bias?: WWeight;
  inF: number;
  outF: number;
  A?: WParam;
  B?: WParam;
}

export interface WLayer {
  inputNorm: WWeight;
  postNorm: WWeight;
  qNorm?: WWeight;
  kNorm?: WWeight;
  lin: Record<LoraModule, WLinear>;
}

/** A KV cache in wasm memory: per layer (capacity, Hkv, D) f32 for k and v; seg (capacity) i32 zeros. */
export interface WasmKvCache {
  k: number[];
  v: number[];
  len: number;
  capacity: number;
  seg: number;
  dispose(): void;
}

type Inputs = Record<'ids' | 'targets' | 'segments' | 'positions' | 'gscale', number>;

interface Acts {
  x: number; xn1: number; rstd1: number; q: number; k: number; v: number; qr: number; kr: number; rstdq: number; rstdk: number;
  att: number; lse: number; xm: number; xn2: number; rstd2: number; g: number; up: number; h: number;
  u: Partial<Record<LoraModule, number>>;
  own: number[]; // what this set allocated (x alone when it shares the rest)
}

const STATS = 4;
const MAX_SHAPES = 4;
/** The LM head keeps a training step's logits (instead of recomputing them) up to this size. */
const KEEP_LOGITS_BYTES = 64 << 20;

export interface WasmLoadOptions {
  /** Full fine-tuning: every weight trainable, with gradients and AdamW moments. */
  full?: boolean;
}

/** Load a Hugging Face model folder into the wasm backend's memory. */
export async function loadWasmModel(k: WasmKernels, dir: string, o: WasmLoadOptions = {}): Promise<WasmModel> {
  const cfg = await loadConfig(dir);
  const store = await openCheckpoint(dir);
  try {
    return await wasmModelFromStore(k, cfg, store, o);
  } finally {
    await store.close();
  }
}

/** Build the model from an open tensor store; refuses one that cannot fit wasm32's 4 GiB. */
export async function wasmModelFromStore(k: WasmKernels, cfg: ModelConfig, store: TensorStore, o: WasmLoadOptions = {}): Promise<WasmModel> {
  checkTensors(store, cfg);
  const full = o.full ?? false;
  let floats = 0;
  for (const n of store.names()) floats += store.info(n)!.shape.reduce((a, b) => a * b, 1);
  const bytes = floats * 4 * (full ? 4 : 1);
  if (bytes > WASM_MAX_BYTES * 0.9)
    throw new UsageError(
      `this model's weights need ${(bytes / 2 ** 30).toFixed(2)} GiB as f32${full ? ' with gradients and AdamW moments' : ''}, but the wasm backend's memory (WebAssembly wasm32) holds at most 4 GiB`,
      'use --backend webgpu for this model',
    );
  const load = async (name: string, shape: number[], decay: boolean): Promise<WWeight> => {
    if (!store.info(name)) throw new FormatError('checkpoint', name, 'tensor missing');
    const data = await store.readF32(name);
    if (!full) return { name, shape, ptr: k.put(data, `tensor ${name}`) };
    const param = makeParam(k, name, shape, data, decay);
    return { name, shape, ptr: param.ptr, param };
  };
  const C = cfg.hiddenSize, D = cfg.headDim;
  const embed = await load('model.embed_tokens.weight', [cfg.vocabSize, C], true);
  const layers: WLayer[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    const lin = {} as Record<LoraModule, WLinear>;
    for (const m of LORA_MODULES) {
      const group = LORA_MODULES.indexOf(m) < 4 ? 'self_attn' : 'mlp';
      const { inFeatures: inF, outFeatures: outF } = loraFeatures(cfg, m);
      const W = await load(`${p}.${group}.${m}.weight`, [outF, inF], true);
      const hasBias = (cfg.attentionBias && ['q_proj', 'k_proj', 'v_proj'].includes(m)) || (cfg.oProjBias && m === 'o_proj');
      const bias = hasBias ? await load(`${p}.${group}.${m}.bias`, [outF], false) : undefined;
      lin[m] = { module: m, W, bias, inF, outF };
    }
    layers.push({
      inputNorm: await load(`${p}.input_layernorm.weight`, [C], false),
      postNorm: await load(`${p}.post_attention_layernorm.weight`, [C], false),
      qNorm: cfg.qkNorm ? await load(`${p}.self_attn.q_norm.weight`, [D], false) : undefined,
      kNorm: cfg.qkNorm ? await load(`${p}.self_attn.k_norm.weight`, [D], false) : undefined,
      lin,
    });
  }
  const finalNorm = await load('model.norm.weight', [C], false);
  const lmHead = cfg.tieWordEmbeddings ? embed : await load('lm_head.weight', [cfg.vocabSize, C], true);
  return new WasmModel(k, cfg, embed, layers, finalNorm, lmHead, full);
}

function makeParam(k: WasmKernels, name: string, shape: number[], data: Float32Array, decay: boolean): WParam {
  const n = data.length;
  const z = () => {
    const p = k.alloc(n * 4, `${name} (gradient, moments)`);
    k.zero(p, n * 4);
    return p;
  };
  return { name, shape, n, decay, ptr: k.put(data, `tensor ${name}`), grad: z(), m: z(), v: z() };
}

export class WasmModel {
  private loraOpts: (LoraOptions & { scale: number }) | undefined;
  recompute = false;
  private invFreq: number;
  private dropoutStep = 0;
  private actsCache = new Map<string, Acts[]>();
  private inputs = new Map<string, Inputs>();
  private disposed = false;

  constructor(
    readonly k: WasmKernels,
    readonly cfg: ModelConfig,
    readonly embed: WWeight,
    readonly layers: WLayer[],
    readonly finalNorm: WWeight,
    readonly lmHead: WWeight,
    readonly full = false,
  ) {
    this.invFreq = k.put(Float32Array.from(ropeInvFreq(cfg)), 'rope inv_freq');
  }

  get lora(): (LoraOptions & { scale: number }) | undefined {
    return this.loraOpts;
  }

  /** Attach LoRA: a fresh adapter (PEFT's init, seeded: the same tensors as the WebGPU path's) or the given one. */
  attachLora(lora: Partial<LoraOptions> = {}, seed = 0, adapter?: Adapter): Adapter {
    const plan = planLora(this.cfg, this.layers, lora, seed, adapter);
    const o = plan.options;
    this.detachLora();
    this.loraOpts = { ...o, scale: loraScale(o) };
    this.releaseActivations();
    for (const { lin, w, name } of plan.pairs) {
      lin.A = makeParam(this.k, `${name}.lora_A`, [o.r, lin.inF], w.a, true);
      lin.B = makeParam(this.k, `${name}.lora_B`, [lin.outF, o.r], w.b, true);
    }
    return plan.adapter;
  }

  /** Load a PEFT adapter folder (ours or PEFT's). */
  async loadAdapter(dir: string): Promise<Adapter> {
    const ad = await loadAdapter(dir, this.cfg);
    this.attachLora({}, 0, ad);
    return ad;
  }

  detachLora(): void {
    for (const l of this.layers) {
      for (const m of LORA_MODULES) {
        const lin = l.lin[m];
        for (const p of [lin.A, lin.B]) if (p) this.freeParam(p);
        delete lin.A, delete lin.B;
      }
    }
  }

  private freeParam(p: WParam): void {
    for (const x of [p.ptr, p.grad, p.m, p.v]) this.k.release(x);
  }

  /** The LoRA tensors as an Adapter (PEFT layout). */
  adapter(baseModelNameOrPath: string | null = null): Adapter {
    if (!this.lora) throw new UsageError('the model has no LoRA attached');
    const { scale: _s, ...lora } = this.lora;
    const weights: Adapter['weights'] = [];
    this.layers.forEach((l, layer) => {
      for (const module of LORA_MODULES) {
        const lin = l.lin[module];
        if (lin.A && lin.B) weights.push({ layer, module, inFeatures: lin.inF, outFeatures: lin.outF, a: this.k.readF32(lin.A.ptr, lin.A.n), b: this.k.readF32(lin.B.ptr, lin.B.n) });
      }
    });
    return { config: { ...lora, baseModelNameOrPath }, weights };
  }

  /** All trainable tensors, in the same order as the WebGPU model's (src/lora.ts trainableTensors). */
  params(): WParam[] {
    return trainableTensors<WWeight, WParam>(this);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseActivations();
    this.detachLora();
    const seen = new Set<number>();
    for (const w of modelWeights<WWeight, WParam>(this)) {
      if (seen.has(w.ptr)) continue;
      seen.add(w.ptr);
      if (w.param) this.freeParam(w.param);
      else this.k.release(w.ptr);
    }
    this.k.release(this.invFreq);
  }

  // ---- activations and inputs -------------------------------------------------------------

  private allocActs(N: number, B: number, T: number, shareFrom?: Acts): Acts {
    const { hiddenSize: C, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I } = this.cfg;
    const own: number[] = [];
    const f = (n: number) => {
      const p = this.k.alloc(Math.max(1, n) * 4, 'activations');
      own.push(p);
      return p;
    };
    const x = f(N * C);
    if (shareFrom) return { ...shareFrom, x, own };
    const r = this.lora?.r ?? 0;
    const u: Acts['u'] = {};
    for (const m of LORA_MODULES) if (r) u[m] = f(N * r);
    const q = f(N * Hq * D), k = f(N * Hkv * D);
    return {
      x, xn1: f(N * C), rstd1: f(N), q, k, v: f(N * Hkv * D),
      qr: this.cfg.qkNorm ? f(N * Hq * D) : q, kr: this.cfg.qkNorm ? f(N * Hkv * D) : k,
      rstdq: f(N * Hq), rstdk: f(N * Hkv), att: f(N * Hq * D), lse: f(B * Hq * T),
      xm: f(N * C), xn2: f(N * C), rstd2: f(N), g: f(N * I), up: f(N * I), h: f(N * I), u, own,
    };
  }

  private acts(B: number, T: number, training: boolean): Acts[] {
    const shared = !training || this.recompute;
    const key = `${B}x${T}:${shared}`;
    let a = this.actsCache.get(key);
    if (a) this.actsCache.delete(key);
    else {
      if (this.disposed) throw new UsageError('this model has been disposed');
      const N = B * T;
      const first = this.allocActs(N, B, T);
      a = [first];
      for (let l = 1; l <= this.layers.length; l++) a.push(this.allocActs(N, B, T, shared ? first : undefined));
      if (this.actsCache.size >= MAX_SHAPES) {
        const [oldest, list] = this.actsCache.entries().next().value as [string, Acts[]];
        for (const x of list) x.own.forEach((p) => this.k.release(p));
        this.actsCache.delete(oldest);
      }
    }
    this.actsCache.set(key, a);
    return a;
  }

  /** Free the cached activations and inputs (made again on the next pass). */
  releaseActivations(): void {
    for (const list of this.actsCache.values()) for (const x of list) x.own.forEach((p) => this.k.release(p));
    this.actsCache.clear();
    for (const io of this.inputs.values()) for (const p of Object.values(io)) this.k.release(p);
    this.inputs.clear();
  }

  private upload(batch: ModelBatch, slot: number): Inputs {
    const N = batch.B * batch.T;
    const w = this.cfg.slidingWindow;
    if (w !== null && batch.T > w)
      throw new UsageError(`a sequence of ${batch.T} tokens exceeds this model's sliding_window of ${w}, which zpd-wgpu does not implement; use --seq-len ≤ ${w}`);
    for (let i = 0; i < N; i++) {
      const id = batch.ids[i];
      if (!(id >= 0 && id < this.cfg.vocabSize)) throw new UsageError(`token id ${id} at position ${i} of the batch is outside the vocabulary (${this.cfg.vocabSize})`);
    }
    const key = `${slot}:${N}`;
    let b = this.inputs.get(key);
    if (b) this.inputs.delete(key);
    else {
      const i = () => this.k.alloc(N * 4, 'batch inputs');
      b = { ids: i(), targets: i(), segments: i(), positions: i(), gscale: i() };
      if (this.inputs.size >= 2 * MAX_SHAPES) {
        const [oldest, io] = this.inputs.entries().next().value as [string, Inputs];
        for (const p of Object.values(io)) this.k.release(p);
        this.inputs.delete(oldest);
      }
    }
    this.inputs.set(key, b);
    for (const name of ['ids', 'targets', 'segments', 'positions'] as const) this.k.write(b[name], batch[name]);
    return b;
  }

  // ---- forward ----------------------------------------------------------------------------

  /** Dropout seed of module m of layer l at optimizer step `dropoutStep`: src/model/llama.ts's formula, so masks match. */
  private dropoutSeed(layer: number, m: number): number {
    return (Math.imul(this.dropoutStep + 1, 0x9e3779b1) ^ Math.imul(layer * 8 + m + 1, 0x85ebca6b)) >>> 0;
  }

  private linearForward(lin: WLinear, x: number, y: number, u: number | undefined, N: number, seed: number): void {
    const lo = this.lora;
    op.loraForward(this.k, {
      x, W: lin.W.ptr, bias: lin.bias?.ptr, A: lin.A?.ptr, B: lin.B?.ptr, y, u: lin.A ? u : undefined,
      N, inF: lin.inF, outF: lin.outF, r: lo?.r ?? 0, scale: lo?.scale ?? 0, dropout: lin.A && this.dropoutStep ? (lo?.dropout ?? 0) : 0, seed,
    });
  }

  private layerForward(l: number, a: Acts, next: number, io: Inputs, B: number, T: number, kv?: WasmKvCache): void {
    const k = this.k, c = this.cfg, L = this.layers[l];
    const N = B * T, C = c.hiddenSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
    const seed = (m: number) => this.dropoutSeed(l, m);
    op.rmsnormForward(k, { inp: a.x, weight: L.inputNorm.ptr, out: a.xn1, rstd: a.rstd1, N, C, eps: c.rmsNormEps });
    this.linearForward(L.lin.q_proj, a.xn1, a.q, a.u.q_proj, N, seed(0));
    this.linearForward(L.lin.k_proj, a.xn1, a.k, a.u.k_proj, N, seed(1));
    this.linearForward(L.lin.v_proj, a.xn1, a.v, a.u.v_proj, N, seed(2));
    if (L.qNorm && L.kNorm) {
      op.rmsnormForward(k, { inp: a.q, weight: L.qNorm.ptr, out: a.qr, rstd: a.rstdq, N: N * Hq, C: D, eps: c.rmsNormEps });
      op.rmsnormForward(k, { inp: a.k, weight: L.kNorm.ptr, out: a.kr, rstd: a.rstdk, N: N * Hkv, C: D, eps: c.rmsNormEps });
    }
    op.ropeForward(k, { x: a.qr, pos: io.positions, invFreq: this.invFreq, N, H: Hq, D });
    op.ropeForward(k, { x: a.kr, pos: io.positions, invFreq: this.invFreq, N, H: Hkv, D });
    if (kv) {
      // B = 1: append this call's k, v rows to the cache, attend over everything cached
      const row = Hkv * D * 4, bytes = new Uint8Array(k.memory.buffer);
      bytes.copyWithin(kv.k[l] + kv.len * row, a.kr, a.kr + T * row);
      bytes.copyWithin(kv.v[l] + kv.len * row, a.v, a.v + T * row);
      op.attentionForward(k, {
        q: a.qr, k: kv.k[l], v: kv.v[l], out: a.att, lse: a.lse, seg: kv.seg,
        B: 1, Tq: T, Tk: kv.len + T, Hq, Hkv, D, qOffset: kv.len, kvCapacity: kv.capacity, scale: 1 / Math.sqrt(D),
      });
    } else {
      op.attentionForward(k, { q: a.qr, k: a.kr, v: a.v, out: a.att, lse: a.lse, seg: io.segments, B, Tq: T, Tk: T, Hq, Hkv, D, scale: 1 / Math.sqrt(D) });
    }
    const tmp = k.scratch('llama.tmpC', N * C * 4);
    this.linearForward(L.lin.o_proj, a.att, tmp, a.u.o_proj, N, seed(3));
    op.add(k, { a: a.x, b: tmp, out: a.xm, n: N * C });
    op.rmsnormForward(k, { inp: a.xm, weight: L.postNorm.ptr, out: a.xn2, rstd: a.rstd2, N, C, eps: c.rmsNormEps });
    this.linearForward(L.lin.gate_proj, a.xn2, a.g, a.u.gate_proj, N, seed(4));
    this.linearForward(L.lin.up_proj, a.xn2, a.up, a.u.up_proj, N, seed(5));
    op.swigluForward(k, { gate: a.g, up: a.up, out: a.h, n: N * c.intermediateSize });
    this.linearForward(L.lin.down_proj, a.h, tmp, a.u.down_proj, N, seed(6));
    op.add(k, { a: a.xm, b: tmp, out: next, n: N * C });
  }

  /** Embedding and all layers; the final-normed hidden state (N, C) and its rstd. */
  private forward(acts: Acts[], io: Inputs, B: number, T: number): { hidden: number; rstd: number } {
    const k = this.k, c = this.cfg, N = B * T;
    op.embeddingForward(k, { ids: io.ids, weight: this.embed.ptr, out: acts[0].x, N, C: c.hiddenSize, V: c.vocabSize });
    for (let l = 0; l < this.layers.length; l++) this.layerForward(l, acts[l], acts[l + 1].x, io, B, T);
    const hidden = k.scratch('llama.hidden', N * c.hiddenSize * 4), rstd = k.scratch('llama.rstdF', N * 4);
    op.rmsnormForward(k, { inp: acts[this.layers.length].x, weight: this.finalNorm.ptr, out: hidden, rstd, N, C: c.hiddenSize, eps: c.rmsNormEps });
    return { hidden, rstd };
  }

  // ---- backward ---------------------------------------------------------------------------

  private linearBackward(lin: WLinear, x: number, u: number | undefined, dy: number, dx: number, accumulateDx: boolean, N: number, seed: number): void {
    const lo = this.lora;
    op.loraBackward(this.k, {
      x, W: lin.W.ptr, A: lin.A?.ptr, B: lin.B?.ptr, u: lin.A ? u : undefined, dy, dx,
      dA: lin.A?.grad, dB: lin.B?.grad, dW: lin.W.param?.grad, db: lin.bias?.param?.grad,
      N, inF: lin.inF, outF: lin.outF, r: lo?.r ?? 0, scale: lo?.scale ?? 0,
      dropout: lin.A && this.dropoutStep ? (lo?.dropout ?? 0) : 0, seed, accumulateDx, accumulateGrads: true,
    });
  }

  private layerBackward(l: number, a: Acts, dres: number, io: Inputs, B: number, T: number): void {
    const k = this.k, c = this.cfg, L = this.layers[l];
    const N = B * T, C = c.hiddenSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads, I = c.intermediateSize;
    const seed = (m: number) => this.dropoutSeed(l, m);
    const s = (name: string, n: number) => k.scratch(`llama.grad.${name}`, n * 4);
    const dh = s('dh', N * I), dg = s('dg', N * I), dup = s('dup', N * I), dxn = s('dxn', N * C);
    const datt = s('datt', N * Hq * D), dq = s('dq', N * Hq * D), dk = s('dk', N * Hkv * D), dv = s('dv', N * Hkv * D);
    this.linearBackward(L.lin.down_proj, a.h, a.u.down_proj, dres, dh, false, N, seed(6));
    op.swigluBackward(k, { gate: a.g, up: a.up, dout: dh, dgate: dg, dup, n: N * I });
    this.linearBackward(L.lin.gate_proj, a.xn2, a.u.gate_proj, dg, dxn, false, N, seed(4));
    this.linearBackward(L.lin.up_proj, a.xn2, a.u.up_proj, dup, dxn, true, N, seed(5));
    op.rmsnormBackward(k, { inp: a.xm, weight: L.postNorm.ptr, rstd: a.rstd2, dout: dxn, dinp: dres, N, C, accumulate: true, dweight: L.postNorm.param?.grad, accumulateDweight: true });
    this.linearBackward(L.lin.o_proj, a.att, a.u.o_proj, dres, datt, false, N, seed(3));
    op.attentionBackward(k, { q: a.qr, k: a.kr, v: a.v, out: a.att, lse: a.lse, dout: datt, seg: io.segments, dq, dk, dv, B, T, Hq, Hkv, D, scale: 1 / Math.sqrt(D) });
    op.ropeForward(k, { x: dq, pos: io.positions, invFreq: this.invFreq, N, H: Hq, D, inverse: true });
    op.ropeForward(k, { x: dk, pos: io.positions, invFreq: this.invFreq, N, H: Hkv, D, inverse: true });
    let dqIn = dq, dkIn = dk;
    if (L.qNorm && L.kNorm) {
      dqIn = s('dqpre', N * Hq * D);
      dkIn = s('dkpre', N * Hkv * D);
      op.rmsnormBackward(k, { inp: a.q, weight: L.qNorm.ptr, rstd: a.rstdq, dout: dq, dinp: dqIn, N: N * Hq, C: D, dweight: L.qNorm.param?.grad, accumulateDweight: true });
      op.rmsnormBackward(k, { inp: a.k, weight: L.kNorm.ptr, rstd: a.rstdk, dout: dk, dinp: dkIn, N: N * Hkv, C: D, dweight: L.kNorm.param?.grad, accumulateDweight: true });
    }
    this.linearBackward(L.lin.q_proj, a.xn1, a.u.q_proj, dqIn, dxn, false, N, seed(0));
    this.linearBackward(L.lin.k_proj, a.xn1, a.u.k_proj, dkIn, dxn, true, N, seed(1));
    this.linearBackward(L.lin.v_proj, a.xn1, a.u.v_proj, dv, dxn, true, N, seed(2));
    op.rmsnormBackward(k, { inp: a.x, weight: L.inputNorm.ptr, rstd: a.rstd1, dout: dxn, dinp: dres, N, C, accumulate: true, dweight: L.inputNorm.param?.grad, accumulateDweight: true });
  }

  // ---- training step, scoring, logits -----------------------------------------------------

  /**
   * Forward, masked loss and backward of every micro-batch: every Param's gradient accumulates
   * the gradient of the mean NLL over all `lossTokens` (the caller zeroes the gradients first and
   * runs the optimizer after; src/wasm/backend.ts). `step` seeds LoRA dropout. Returns the
   * per-sample stats (S × SEGMENT_FLOATS floats) of each micro-batch.
   */
  trainStep(micro: ModelBatch[], o: { step: number; lossTokens: number }): Float32Array[] {
    const k = this.k, c = this.cfg, C = c.hiddenSize, V = c.vocabSize;
    this.dropoutStep = o.step;
    try {
      return micro.map((batch, i) => {
        const { B, T } = batch, N = B * T;
        const io = this.upload(batch, i);
        const gs = k.f32(io.gscale, N);
        for (let t = 0; t < N; t++) gs[t] = batch.targets[t] >= 0 ? 1 / o.lossTokens : 0;
        const acts = this.acts(B, T, true);
        const { hidden, rstd } = this.forward(acts, io, B, T);
        const stats = k.scratch('llama.stats', N * STATS * 4), lse = k.scratch('llama.lse', N * 4);
        const keep = N * V * 4 <= KEEP_LOGITS_BYTES ? k.scratch('lmhead.keep', N * V * 4) : undefined;
        op.lmHeadForward(k, { hidden, weight: this.lmHead.ptr, targets: io.targets, stats, lse, N, C, V, keep });
        const S = numSegments(batch);
        const out = k.scratch('llama.samples', Math.max(1, S) * SEGMENT_FLOATS * 4);
        op.segmentMeans(k, { stats, segments: io.segments, targets: io.targets, out, N, S });
        const samples = k.readF32(out, S * SEGMENT_FLOATS);
        const dhidden = k.scratch('llama.dhidden', N * C * 4);
        op.lmHeadBackward(k, {
          hidden, weight: this.lmHead.ptr, targets: io.targets, lse, gscale: io.gscale, dhidden, kept: keep,
          dweight: this.lmHead.param?.grad, accumulateDweight: true, N, C, V,
        });
        const dres = k.scratch('llama.dres', N * C * 4);
        op.rmsnormBackward(k, { inp: acts[this.layers.length].x, weight: this.finalNorm.ptr, rstd, dout: dhidden, dinp: dres, N, C, dweight: this.finalNorm.param?.grad, accumulateDweight: true });
        for (let l = this.layers.length - 1; l >= 0; l--) {
          if (this.recompute) this.layerForward(l, acts[l], acts[l + 1].x, io, B, T);
          this.layerBackward(l, acts[l], dres, io, B, T);
        }
        if (this.embed.param) op.embeddingBackward(k, { ids: io.ids, dout: dres, dweight: this.embed.param.grad, N, C, V, accumulate: true });
        return samples;
      });
    } finally {
      this.dropoutStep = 0;
    }
  }

  /** Forward only (no dropout): per-sample stats of each segment of `batch`. */
  score(batch: ModelBatch): SampleStats[] {
    const k = this.k, c = this.cfg, { B, T } = batch, N = B * T;
    const io = this.upload(batch, 0);
    const acts = this.acts(B, T, false);
    const { hidden } = this.forward(acts, io, B, T);
    const stats = k.scratch('llama.stats', N * STATS * 4), lse = k.scratch('llama.lse', N * 4);
    op.lmHeadForward(k, { hidden, weight: this.lmHead.ptr, targets: io.targets, stats, lse, N, C: c.hiddenSize, V: c.vocabSize });
    const S = numSegments(batch);
    const out = k.scratch('llama.score', Math.max(1, S) * SEGMENT_FLOATS * 4);
    op.segmentMeans(k, { stats, segments: io.segments, targets: io.targets, out, N, S });
    return readSampleStats(k.readF32(out, S * SEGMENT_FLOATS), S);
  }

  // ---- generation (src/model/llama.ts's generate() drives these) -------------------------

  /** A KV cache for one sequence of up to `capacity` tokens. */
  newKvCache(capacity: number): WasmKvCache {
    const c = this.cfg, bytes = capacity * c.numKvHeads * c.headDim * 4;
    const f = () => this.layers.map(() => this.k.alloc(bytes, 'the KV cache'));
    const kv: WasmKvCache = {
      k: f(), v: f(), len: 0, capacity, seg: this.k.put(new Int32Array(capacity), 'the KV cache'),
      dispose: () => [...kv.k, ...kv.v, kv.seg].forEach((p) => this.k.release(p)),
    };
    return kv;
  }

  /** Run `ids` through the model on top of `kv` (appending to it); the logits of the last position (V floats). */
  async decode(kv: WasmKvCache, ids: Int32Array): Promise<Float32Array> {
    const k = this.k, c = this.cfg, T = ids.length, C = c.hiddenSize;
    if (kv.len + T > kv.capacity) throw new UsageError(`generation: ${kv.len + T} tokens exceed the KV cache of ${kv.capacity}`);
    const w = c.slidingWindow;
    if (w !== null && kv.len + T > w) throw new UsageError(`a sequence of ${kv.len + T} tokens exceeds this model's sliding_window of ${w}, which zpd-wgpu does not implement`);
    const positions = Int32Array.from({ length: T }, (_, i) => kv.len + i);
    const io = this.upload({ B: 1, T, ids, targets: new Int32Array(T).fill(-1), segments: new Int32Array(T), positions }, 0);
    const acts = this.acts(1, T, false);
    op.embeddingForward(k, { ids: io.ids, weight: this.embed.ptr, out: acts[0].x, N: T, C, V: c.vocabSize });
    for (let l = 0; l < this.layers.length; l++) this.layerForward(l, acts[l], acts[l + 1].x, io, 1, T, kv);
    const hidden = k.scratch('decode.hidden', C * 4), rstd = k.scratch('decode.rstd', 4), logits = k.scratch('decode.logits', c.vocabSize * 4);
    op.rmsnormForward(k, { inp: acts[this.layers.length].x + (T - 1) * C * 4, weight: this.finalNorm.ptr, out: hidden, rstd, N: 1, C, eps: c.rmsNormEps });
    op.matmul(k, { a: hidden, bm: this.lmHead.ptr, out: logits, M: 1, N: c.vocabSize, K: C, transB: true });
    kv.len += T;
    return k.readF32(logits, c.vocabSize);
  }

  /**
   * This model where src/model/llama.ts's generate() and exactMatch() take a LlamaModel: they use
   * only `cfg`, `newKvCache` and `decode` (and the cache's len, capacity, dispose), which this
   * class provides with the same meaning.
   */
  asGenerator(): LlamaModel {
    return this as unknown as LlamaModel;
  }

  /** Logits (B·T, V) of a batch (parity tests, small evaluations). */
  logits(batch: ModelBatch): Float32Array {
    const k = this.k, c = this.cfg, { B, T } = batch, N = B * T;
    const io = this.upload(batch, 0);
    const acts = this.acts(B, T, false);
    const { hidden } = this.forward(acts, io, B, T);
    const out = k.alloc(N * c.vocabSize * 4, 'logits');
    try {
      op.matmul(k, { a: hidden, bm: this.lmHead.ptr, out, M: N, N: c.vocabSize, K: c.hiddenSize, transB: true });
      return k.readF32(out, N * c.vocabSize);
    } finally {
      k.release(out);
    }
  }
}
