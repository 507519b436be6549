// The Llama-family model on the GPU (llama, mistral, qwen2, qwen3): weights, LoRA, forward,
// backward, one-submission training step, scoring pass and KV-cache generation.
//
// One layer, N = B·T tokens, C hidden, Hq/Hkv heads of D, I intermediate:
//   xn1 = rmsnorm(x)                                   x, xn1 (N, C)
//   q, k, v = lora(xn1)  (+ q/k/v bias on qwen2)       q (N, Hq·D); k, v (N, Hkv·D)
//   qr, kr = rope(qk_norm(q, k))  (qk_norm on qwen3)   in place when there is no qk_norm
//   att = attention(qr, kr, v)                         att (N, Hq·D), lse (B, Hq, T)
//   xm = x + lora_o(att)                               xm (N, C)
//   xn2 = rmsnorm(xm)
//   h = silu(lora_gate(xn2)) · lora_up(xn2)            g, up, h (N, I)
//   x' = xm + lora_down(h)
// then final rmsnorm and the fused LM head + per-token reduction. The backward runs the same
// list in reverse; the residual stream's gradient `dres` (N, C) is accumulated in place.
import type { Gpu } from '../gpu/gpu.js';
import { UsageError } from '../errors.js';
import { add } from '../kernels/elementwise.js';
import { embeddingBackward, embeddingForward } from '../kernels/embedding.js';
import { loraBackward, loraForward } from '../kernels/lora.js';
import { matmul } from '../kernels/matmul.js';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.js';
import { ropeForward } from '../kernels/rope.js';
import { swigluBackward, swigluForward } from '../kernels/swiglu.js';
import { attentionBackward, attentionForward } from '../kernels/attention.js';
import { lmHeadBackward, lmHeadForward, lmHeadForwardBackward } from '../kernels/lmhead.js';
import { SEGMENT_FLOATS, segmentMeans } from '../kernels/segment.js';
import { ropeInvFreq, type ModelConfig } from '../io/config.js';
import { LORA_MODULES, modelWeights, trainableTensors, type LoraModule, type LoraOptions } from '../lora.js';
import { makeRng } from '../rng.js';
import { sampleToken, type SamplingOptions } from './sample.js';

/** A trainable tensor: its gradient and AdamW moments live beside it. */
export interface Param {
  name: string; // Hugging Face / PEFT name
  shape: number[];
  n: number;
  buf: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  decay: boolean; // weight decay applies (not to norms and biases)
}

/** A weight as stored on the GPU; `param` when it is trained (full fine-tuning). */
export interface Weight {
  name: string;
  shape: number[];
  buf: GPUBuffer;
  f16: boolean;
  param?: Param;
}

export interface Linear {
  module: LoraModule;
  W: Weight; // (outF, inF)
  bias?: Weight; // (outF)
  inF: number;
  outF: number;
  A?: Param; // (r, inF)
  B?: Param; // (outF, r)
}

export interface Layer {
  inputNorm: Weight;
  postNorm: Weight;
  qNorm?: Weight; // (D), qwen3
  kNorm?: Weight;
  lin: Record<LoraModule, Linear>;
}

/** A batch as the batcher (src/tokenizer/batcher.ts) makes it, [B, T] flattened row-major;
 *  its sampleIds are the caller's business. */
export interface ModelBatch {
  B: number;
  T: number;
  ids: Int32Array; // (B·T) token ids (padding: any valid id, e.g. 0)
  targets: Int32Array; // (B·T) next-token id where the loss applies, −1 elsewhere
  segments: Int32Array; // (B·T) sample index within the batch, −1 = padding
  positions: Int32Array; // (B·T) position within its sample
}

/** Per-sample means over the sample's loss tokens, from one forward pass. */
export interface SampleStats {
  nll: number; // mean NLL (perplexity = exp(nll))
  entropy: number; // mean predictive entropy
  confidence: number; // mean max-probability
  accuracy: number; // share of loss tokens whose argmax is the target
  tokens: number;
}

/** What encodeTrainStep leaves on the GPU per micro-batch: (S × SEGMENT_FLOATS) f32 stats. */
export interface EncodedStats {
  buf: GPUBuffer;
  S: number;
}

/** A batch on the GPU: (B·T) i32 each, and the per-token gradient weight gscale (B·T) f32. */
type Inputs = Record<'ids' | 'targets' | 'segments' | 'positions' | 'gscale', GPUBuffer>;

/** One layer's saved activations (see the header for the shapes). */
interface Acts {
  x: GPUBuffer; xn1: GPUBuffer; rstd1: GPUBuffer;
  q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; qr: GPUBuffer; kr: GPUBuffer; rstdq: GPUBuffer; rstdk: GPUBuffer;
  att: GPUBuffer; lse: GPUBuffer; xm: GPUBuffer; xn2: GPUBuffer; rstd2: GPUBuffer;
  g: GPUBuffer; up: GPUBuffer; h: GPUBuffer;
  u: Partial<Record<LoraModule, GPUBuffer>>; // (N, r) per adapted module
}

const STATS = 4; // per-token [nll, entropy, maxprob, correct] (src/kernels/lmhead.ts)
const MAX_SHAPES = 4; // activation sets kept (a length-bucketed curriculum makes many shapes)

export class LlamaModel {
  readonly layers: Layer[];
  private loraOpts: (LoraOptions & { scale: number }) | undefined;
  /** Activation recomputation: keep only each layer's input, recompute the rest in backward. */
  recompute = false;
  private invFreq: GPUBuffer;
  /** Dropout seed of the pass being encoded; 0 = no dropout (inference). */
  private dropoutStep = 0;
  private actsCache = new Map<string, Acts[]>(); // least recently used first
  private inputs = new Map<string, Inputs>();
  private disposed = false;

  constructor(
    readonly gpu: Gpu,
    readonly cfg: ModelConfig,
    readonly embed: Weight, // (V, C)
    layers: Layer[],
    readonly finalNorm: Weight, // (C)
    readonly lmHead: Weight, // (V, C): the embedding itself when tied
    /** Full fine-tuning: every weight is a Param. */
    readonly full = false,
  ) {
    this.layers = layers;
    this.invFreq = gpu.buffer(Float32Array.from(ropeInvFreq(cfg)), 'rope.inv_freq');
  }

  get lora(): (LoraOptions & { scale: number }) | undefined {
    return this.loraOpts;
  }
  /** Set the LoRA options (attachLora does this and fills each Linear's A, B). */
  setLora(o: (LoraOptions & { scale: number }) | undefined): void {
    this.loraOpts = o;
    this.releaseActivations(); // the saved u = x·Aᵀ buffers depend on r
  }

  /** Remove every LoRA tensor from the model and give its GPU memory back. */
  detachLora(): void {
    for (const l of this.layers) {
      for (const m of LORA_MODULES) {
        const lin = l.lin[m];
        for (const p of [lin.A, lin.B]) if (p) destroyParam(this.gpu, p);
        delete lin.A, delete lin.B;
      }
    }
  }

  /** Give back every GPU buffer the model holds (weights, LoRA, optimizer moments, activations). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseActivations();
    this.detachLora();
    const seen = new Set<GPUBuffer>();
    for (const w of modelWeights<Weight, Param>(this)) {
      if (seen.has(w.buf)) continue;
      seen.add(w.buf);
      if (w.param) destroyParam(this.gpu, w.param);
      else this.gpu.retire(w.buf);
    }
    this.gpu.retire(this.invFreq);
  }

  /** All trainable tensors, in a fixed order (the order of the optimizer and the grad norm). */
  params(): Param[] {
    return trainableTensors<Weight, Param>(this);
  }

  // ---- activations ------------------------------------------------------------------------

  private allocActs(N: number, B: number, T: number, shareFrom?: Acts): Acts {
    const { hiddenSize: C, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I } = this.cfg;
    const g = this.gpu;
    const f = (n: number, label: string) => g.buffer(n * 4, label);
    const own = { x: f(N * C, 'act.x') };
    if (shareFrom) return { ...shareFrom, ...own };
    const r = this.lora?.r ?? 0;
    const u: Acts['u'] = {};
    for (const m of LORA_MODULES) if (r) u[m] = f(N * r, `act.u.${m}`);
    const q = f(N * Hq * D, 'act.q'), k = f(N * Hkv * D, 'act.k');
    return {
      ...own,
      xn1: f(N * C, 'act.xn1'), rstd1: f(N, 'act.rstd1'),
      q, k, v: f(N * Hkv * D, 'act.v'),
      // with qk_norm, the normed+roped copies; otherwise rope works in place on q, k
      qr: this.cfg.qkNorm ? f(N * Hq * D, 'act.qr') : q,
      kr: this.cfg.qkNorm ? f(N * Hkv * D, 'act.kr') : k,
      rstdq: f(N * Hq, 'act.rstdq'), rstdk: f(N * Hkv, 'act.rstdk'),
      att: f(N * Hq * D, 'act.att'), lse: f(B * Hq * T, 'act.lse'),
      xm: f(N * C, 'act.xm'), xn2: f(N * C, 'act.xn2'), rstd2: f(N, 'act.rstd2'),
      g: f(N * I, 'act.g'), up: f(N * I, 'act.up'), h: f(N * I, 'act.h'),
      u,
    };
  }

  /** Per-layer activations (+1 for the final hidden state), cached per shape and policy. */
  private acts(B: number, T: number, training: boolean): Acts[] {
    const shared = !training || this.recompute;
    const key = `${B}x${T}:${shared}`;
    let a = this.actsCache.get(key);
    if (a) {
      this.actsCache.delete(key); // most recently used goes last
    } else {
      if (this.disposed) throw new UsageError('this model has been disposed');
      const N = B * T;
      const first = this.allocActs(N, B, T);
      a = [first];
      // the last entry holds only the final hidden state: the rest of a set would never be read
      for (let l = 1; l <= this.layers.length; l++) a.push(this.allocActs(N, B, T, shared || l === this.layers.length ? first : undefined));
      if (this.actsCache.size >= MAX_SHAPES) {
        const [oldest, list] = this.actsCache.entries().next().value as [string, Acts[]];
        this.retireActs(list);
        this.actsCache.delete(oldest);
      }
    }
    this.actsCache.set(key, a);
    return a;
  }

  private retireActs(list: Acts[]): void {
    const seen = new Set<GPUBuffer>();
    for (const a of list) for (const b of [...Object.values(a), ...Object.values(a.u)]) if (b && 'destroy' in b) seen.add(b as GPUBuffer);
    for (const b of seen) this.gpu.retire(b);
  }

  /** zpd-wgpu has no sliding-window attention: refuse sequences longer than the window. */
  private checkWindow(T: number): void {
    const w = this.cfg.slidingWindow;
    if (w !== null && T > w)
      throw new UsageError(`a sequence of ${T} tokens exceeds this model's sliding_window of ${w}, which zpd-wgpu does not implement; use --seq-len ≤ ${w}`);
  }

  /** Free the cached activation and input buffers (they are made again on the next step). */
  releaseActivations(): void {
    for (const list of this.actsCache.values()) this.retireActs(list);
    this.actsCache.clear();
    for (const io of this.inputs.values()) for (const b of Object.values(io)) this.gpu.retire(b);
    this.inputs.clear();
  }

  /** Upload a batch into the buffers kept for micro-batch slot `slot`. */
  private upload(batch: ModelBatch, slot: number) {
    const N = batch.B * batch.T;
    this.checkWindow(batch.T);
    const key = `${slot}:${N}`;
    let b = this.inputs.get(key);
    if (b) {
      this.inputs.delete(key); // most recently used goes last
    } else {
      const i = (label: string) => this.gpu.buffer(N * 4, `input.${label}`);
      b = { ids: i('ids'), targets: i('targets'), segments: i('segments'), positions: i('positions'), gscale: i('gscale') };
      if (this.inputs.size >= 2 * MAX_SHAPES) {
        const [oldest, io] = this.inputs.entries().next().value as [string, Inputs];
        for (const x of Object.values(io)) this.gpu.retire(x);
        this.inputs.delete(oldest);
      }
    }
    this.inputs.set(key, b);
    for (const k of ['ids', 'targets', 'segments', 'positions'] as const) this.gpu.write(b[k], batch[k]);
    return b;
  }

  // ---- forward ----------------------------------------------------------------------------

  private linearForward(enc: GPUCommandEncoder, lin: Linear, x: GPUBuffer, y: GPUBuffer, u: GPUBuffer | undefined, N: number, seed: number) {
    const lo = this.lora;
    loraForward(this.gpu, enc, {
      x, W: lin.W.buf, bias: lin.bias?.buf, A: lin.A?.buf, B: lin.B?.buf, y, u: lin.A ? u : undefined,
      N, inF: lin.inF, outF: lin.outF, r: lo?.r ?? 0, scale: lo?.scale ?? 0,
      dropout: lin.A && this.dropoutStep ? (lo?.dropout ?? 0) : 0, seed, weightF16: lin.W.f16,
    });
  }

  /** Dropout seed of module m of layer l in the pass of optimizer step `dropoutStep`. */
  private dropoutSeed(layer: number, m: number): number {
    return (Math.imul(this.dropoutStep + 1, 0x9e3779b1) ^ Math.imul(layer * 8 + m + 1, 0x85ebca6b)) >>> 0;
  }

  /** Layer l: a[l].x → a[l+1].x. `kv` given: generation with a KV cache. */
  private layerForward(enc: GPUCommandEncoder, l: number, a: Acts, next: GPUBuffer, io: Inputs, B: number, T: number, kv?: KvCache) {
    const g = this.gpu, c = this.cfg, L = this.layers[l];
    const N = B * T, C = c.hiddenSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
    const seed = (m: number) => this.dropoutSeed(l, m);
    rmsnormForward(g, enc, { inp: a.x, weight: L.inputNorm.buf, out: a.xn1, rstd: a.rstd1, N, C, eps: c.rmsNormEps });
    this.linearForward(enc, L.lin.q_proj, a.xn1, a.q, a.u.q_proj, N, seed(0));
    this.linearForward(enc, L.lin.k_proj, a.xn1, a.k, a.u.k_proj, N, seed(1));
    this.linearForward(enc, L.lin.v_proj, a.xn1, a.v, a.u.v_proj, N, seed(2));
    if (L.qNorm && L.kNorm) {
      rmsnormForward(g, enc, { inp: a.q, weight: L.qNorm.buf, out: a.qr, rstd: a.rstdq, N: N * Hq, C: D, eps: c.rmsNormEps });
      rmsnormForward(g, enc, { inp: a.k, weight: L.kNorm.buf, out: a.kr, rstd: a.rstdk, N: N * Hkv, C: D, eps: c.rmsNormEps });
    }
    ropeForward(g, enc, { x: a.qr, pos: io.positions, invFreq: this.invFreq, N, H: Hq, D });
    ropeForward(g, enc, { x: a.kr, pos: io.positions, invFreq: this.invFreq, N, H: Hkv, D });
    const scale = 1 / Math.sqrt(D);
    if (kv) {
      // B = 1: append this step's k, v rows to the cache, attend over everything cached
      const row = Hkv * D * 4;
      enc.copyBufferToBuffer(a.kr, 0, kv.k[l], kv.len * row, T * row);
      enc.copyBufferToBuffer(a.v, 0, kv.v[l], kv.len * row, T * row);
      attentionForward(g, enc, {
        q: a.qr, k: kv.k[l], v: kv.v[l], out: a.att, lse: a.lse, seg: kv.seg,
        B: 1, Tq: T, Tk: kv.len + T, Hq, Hkv, D, qOffset: kv.len, kvCapacity: kv.capacity, scale,
      });
    } else {
      // a.g is written only below (gate_proj): room for the unfused path's scores until then
      attentionForward(g, enc, { q: a.qr, k: a.kr, v: a.v, out: a.att, lse: a.lse, seg: io.segments, B, Tq: T, Tk: T, Hq, Hkv, D, scale, workspace: a.g });
    }
    const tmp = g.scratch('llama.tmpC', N * C * 4);
    this.linearForward(enc, L.lin.o_proj, a.att, tmp, a.u.o_proj, N, seed(3));
    add(g, enc, { a: a.x, b: tmp, out: a.xm, n: N * C });
    rmsnormForward(g, enc, { inp: a.xm, weight: L.postNorm.buf, out: a.xn2, rstd: a.rstd2, N, C, eps: c.rmsNormEps });
    this.linearForward(enc, L.lin.gate_proj, a.xn2, a.g, a.u.gate_proj, N, seed(4));
    this.linearForward(enc, L.lin.up_proj, a.xn2, a.up, a.u.up_proj, N, seed(5));
    swigluForward(g, enc, { gate: a.g, up: a.up, out: a.h, n: N * c.intermediateSize });
    this.linearForward(enc, L.lin.down_proj, a.h, tmp, a.u.down_proj, N, seed(6));
    add(g, enc, { a: a.xm, b: tmp, out: next, n: N * C });
  }

  /** Embedding and all layers; returns the final-normed hidden state (N, C) buffer. */
  private forward(enc: GPUCommandEncoder, acts: Acts[], io: Inputs, B: number, T: number, kv?: KvCache): { hidden: GPUBuffer; rstd: GPUBuffer } {
    const g = this.gpu, c = this.cfg, N = B * T;
    embeddingForward(g, enc, { ids: io.ids, weight: this.embed.buf, out: acts[0].x, N, C: c.hiddenSize, V: c.vocabSize });
    for (let l = 0; l < this.layers.length; l++) this.layerForward(enc, l, acts[l], acts[l + 1].x, io, B, T, kv);
    const last = acts[this.layers.length];
    const hidden = g.scratch('llama.hidden', N * c.hiddenSize * 4);
    const rstd = g.scratch('llama.rstdF', N * 4);
    rmsnormForward(g, enc, { inp: last.x, weight: this.finalNorm.buf, out: hidden, rstd, N, C: c.hiddenSize, eps: c.rmsNormEps });
    return { hidden, rstd };
  }

  // ---- backward ---------------------------------------------------------------------------

  private linearBackward(enc: GPUCommandEncoder, lin: Linear, x: GPUBuffer, u: GPUBuffer | undefined, dy: GPUBuffer, dx: GPUBuffer, accumulateDx: boolean, N: number, seed: number) {
    const lo = this.lora;
    loraBackward(this.gpu, enc, {
      x, W: lin.W.buf, A: lin.A?.buf, B: lin.B?.buf, u: lin.A ? u : undefined, dy, dx,
      dA: lin.A?.grad, dB: lin.B?.grad, dW: lin.W.param?.grad, db: lin.bias?.param?.grad,
      N, inF: lin.inF, outF: lin.outF, r: lo?.r ?? 0, scale: lo?.scale ?? 0,
      dropout: lin.A && this.dropoutStep ? (lo?.dropout ?? 0) : 0, seed, accumulateDx, accumulateGrads: true, weightF16: lin.W.f16,
    });
  }

  /** dres (N, C): in, the gradient w.r.t. layer l's output; out, w.r.t. its input. */
  private layerBackward(enc: GPUCommandEncoder, l: number, a: Acts, dres: GPUBuffer, io: Inputs, B: number, T: number) {
    const g = this.gpu, c = this.cfg, L = this.layers[l];
    const N = B * T, C = c.hiddenSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads, I = c.intermediateSize;
    const seed = (m: number) => this.dropoutSeed(l, m);
    const s = (name: string, n: number) => g.scratch(`llama.grad.${name}`, n * 4);
    // the MLP's gradients overwrite its activations g and up, which nothing reads after this
    const dh = s('dh', N * I), dg = a.g, dup = a.up, dxn = s('dxn', N * C);
    const datt = s('datt', N * Hq * D), dq = s('dq', N * Hq * D), dk = s('dk', N * Hkv * D), dv = s('dv', N * Hkv * D);
    // x' = xm + down(h)
    this.linearBackward(enc, L.lin.down_proj, a.h, a.u.down_proj, dres, dh, false, N, seed(6));
    swigluBackward(g, enc, { gate: a.g, up: a.up, dout: dh, dgate: dg, dup, n: N * I });
    this.linearBackward(enc, L.lin.gate_proj, a.xn2, a.u.gate_proj, dg, dxn, false, N, seed(4));
    this.linearBackward(enc, L.lin.up_proj, a.xn2, a.u.up_proj, dup, dxn, true, N, seed(5));
    rmsnormBackward(g, enc, {
      inp: a.xm, weight: L.postNorm.buf, rstd: a.rstd2, dout: dxn, dinp: dres, N, C,
      accumulate: true, dweight: L.postNorm.param?.grad, accumulateDweight: true,
    });
    // xm = x + o(att)
    this.linearBackward(enc, L.lin.o_proj, a.att, a.u.o_proj, dres, datt, false, N, seed(3));
    attentionBackward(g, enc, {
      q: a.qr, k: a.kr, v: a.v, out: a.att, lse: a.lse, dout: datt, seg: io.segments,
      dq, dk, dv, B, T, Hq, Hkv, D, scale: 1 / Math.sqrt(D),
      workspace: [a.g, a.up], // spent by now (the gate and up gradients above): room for the unfused path's scores
    });
    ropeForward(g, enc, { x: dq, pos: io.positions, invFreq: this.invFreq, N, H: Hq, D, inverse: true });
    ropeForward(g, enc, { x: dk, pos: io.positions, invFreq: this.invFreq, N, H: Hkv, D, inverse: true });
    let dqIn = dq, dkIn = dk;
    if (L.qNorm && L.kNorm) {
      dqIn = s('dqpre', N * Hq * D);
      dkIn = s('dkpre', N * Hkv * D);
      rmsnormBackward(g, enc, { inp: a.q, weight: L.qNorm.buf, rstd: a.rstdq, dout: dq, dinp: dqIn, N: N * Hq, C: D, dweight: L.qNorm.param?.grad, accumulateDweight: true });
      rmsnormBackward(g, enc, { inp: a.k, weight: L.kNorm.buf, rstd: a.rstdk, dout: dk, dinp: dkIn, N: N * Hkv, C: D, dweight: L.kNorm.param?.grad, accumulateDweight: true });
    }
    this.linearBackward(enc, L.lin.q_proj, a.xn1, a.u.q_proj, dqIn, dxn, false, N, seed(0));
    this.linearBackward(enc, L.lin.k_proj, a.xn1, a.u.k_proj, dkIn, dxn, true, N, seed(1));
    this.linearBackward(enc, L.lin.v_proj, a.xn1, a.u.v_proj, dv, dxn, true, N, seed(2));
    rmsnormBackward(g, enc, {
      inp: a.x, weight: L.inputNorm.buf, rstd: a.rstd1, dout: dxn, dinp: dres, N, C,
      accumulate: true, dweight: L.inputNorm.param?.grad, accumulateDweight: true,
    });
  }

  // ---- the training step's GPU work -------------------------------------------------------

  /**
   * Encode forward, masked loss (the batches' targets) and backward of `micro` micro-batches into
   * `enc`: every Param's gradient accumulates the gradient of the mean NLL over all `lossTokens`
   * loss tokens (the caller clears the gradients first and runs the optimizer after; see
   * src/train/step.ts). `step` seeds LoRA dropout (the optimizer step, ≥ 1). Per micro-batch, the
   * per-sample stats (S × SEGMENT_FLOATS) are left in a scratch buffer for the caller to copy.
   */
  encodeTrainStep(enc: GPUCommandEncoder, micro: ModelBatch[], o: { step: number; lossTokens: number }): EncodedStats[] {
    const g = this.gpu, c = this.cfg;
    this.dropoutStep = o.step;
    const statsOut: EncodedStats[] = [];
    micro.forEach((batch, i) => {
      const { B, T } = batch;
      const N = B * T;
      const io = this.upload(batch, i);
      // mean over all loss tokens of the step: every loss token weighs 1/lossTokens
      const gs = new Float32Array(N);
      for (let t = 0; t < N; t++) gs[t] = batch.targets[t] >= 0 ? 1 / o.lossTokens : 0;
      g.write(io.gscale, gs);
      const acts = this.acts(B, T, true);
      const { hidden, rstd } = this.forward(enc, acts, io, B, T);
      const stats = g.scratch('llama.stats', N * STATS * 4), lse = g.scratch('llama.lse', N * 4);
      const dhidden = g.scratch('llama.dhidden', N * c.hiddenSize * 4);
      const head = { hidden, weight: this.lmHead.buf, targets: io.targets, stats, lse, N, C: c.hiddenSize, V: c.vocabSize, weightF16: this.lmHead.f16 };
      // a frozen head: forward and dhidden in one pass over the vocabulary; a trained one (full
      // fine-tuning) needs the normalised probabilities for dweight, so it recomputes the logits
      // (its two (N, C) scratch buffers: the layers' tmpC, free until the backward, and dres, not yet written)
      const dres = g.scratch('llama.dres', N * c.hiddenSize * 4);
      if (!this.lmHead.param) lmHeadForwardBackward(g, enc, { ...head, gscale: io.gscale, dhidden, p: g.scratch('llama.tmpC', N * c.hiddenSize * 4), wt: dres });
      else {
        lmHeadForward(g, enc, head);
        lmHeadBackward(g, enc, { ...head, gscale: io.gscale, dhidden, dweight: this.lmHead.param.grad, accumulateDweight: true });
      }
      const S = numSegments(batch);
      const out = g.scratch(`llama.samples.${i}`, S * SEGMENT_FLOATS * 4);
      segmentMeans(g, enc, { stats, segments: io.segments, targets: io.targets, out, N, S });
      statsOut.push({ buf: out, S });
      // backward: (LM head above) → final norm → layers in reverse → embedding (full fine-tuning)
      const lastX = acts[this.layers.length].x;
      rmsnormBackward(g, enc, {
        inp: lastX, weight: this.finalNorm.buf, rstd, dout: dhidden, dinp: dres, N, C: c.hiddenSize,
        dweight: this.finalNorm.param?.grad, accumulateDweight: true,
      });
      for (let l = this.layers.length - 1; l >= 0; l--) {
        if (this.recompute) this.layerForward(enc, l, acts[l], acts[l + 1].x, io, B, T);
        this.layerBackward(enc, l, acts[l], dres, io, B, T);
      }
      if (this.embed.param) embeddingBackward(g, enc, { ids: io.ids, dout: dres, dweight: this.embed.param.grad, N, C: c.hiddenSize, V: c.vocabSize, accumulate: true });
    });
    this.dropoutStep = 0;
    return statsOut;
  }

  // ---- scoring pass -----------------------------------------------------------------------

  /** Encode a forward-only pass (no dropout) and the per-sample stats of `batch` into `out` (S × SEGMENT_FLOATS). */
  encodeScore(enc: GPUCommandEncoder, batch: ModelBatch, out: GPUBuffer): number {
    const g = this.gpu, c = this.cfg, { B, T } = batch, N = B * T;
    const io = this.upload(batch, 0);
    const acts = this.acts(B, T, false);
    const S = numSegments(batch);
    const { hidden } = this.forward(enc, acts, io, B, T);
    const stats = g.scratch('llama.stats', N * STATS * 4), lse = g.scratch('llama.lse', N * 4);
    lmHeadForward(g, enc, { hidden, weight: this.lmHead.buf, targets: io.targets, stats, lse, N, C: c.hiddenSize, V: c.vocabSize, weightF16: this.lmHead.f16 });
    segmentMeans(g, enc, { stats, segments: io.segments, targets: io.targets, out, N, S });
    return S;
  }

  /** Forward only; per-sample stats for each segment of `batch`. */
  async score(batch: ModelBatch): Promise<SampleStats[]> {
    const g = this.gpu;
    const S = numSegments(batch);
    const readback = g.staging(S * SEGMENT_FLOATS * 4, 'score.readback');
    const out = g.scratch('llama.score', S * SEGMENT_FLOATS * 4);
    const enc = g.device.createCommandEncoder({ label: 'score' });
    this.encodeScore(enc, batch, out);
    enc.copyBufferToBuffer(out, 0, readback, 0, S * SEGMENT_FLOATS * 4);
    g.finish(enc);
    return readSampleStats(new Float32Array(await g.readStaging(readback)), S);
  }

  /** Logits (B·T, V) for a batch — for parity tests and small evaluations; allocates N×V. */
  async logits(batch: ModelBatch): Promise<Float32Array> {
    const g = this.gpu, c = this.cfg, { B, T } = batch, N = B * T;
    const io = this.upload(batch, 0);
    const acts = this.acts(B, T, false);
    const out = g.buffer(N * c.vocabSize * 4, 'logits');
    const enc = g.device.createCommandEncoder({ label: 'logits' });
    const { hidden } = this.forward(enc, acts, io, B, T);
    matmul(g, enc, { a: hidden, bm: this.lmHead.buf, out, M: N, N: c.vocabSize, K: c.hiddenSize, transB: true, bmF16: this.lmHead.f16 });
    g.finish(enc);
    const r = await g.readF32(out);
    out.destroy();
    return r;
  }

  // ---- generation -------------------------------------------------------------------------

  /** A KV cache for one sequence of up to `capacity` tokens. */
  newKvCache(capacity: number): KvCache {
    const c = this.cfg, row = c.numKvHeads * c.headDim;
    const f = (label: string) => this.layers.map((_, l) => this.gpu.buffer(capacity * row * 4, `kv.${label}.${l}`));
    const kv: KvCache = {
      k: f('k'), v: f('v'), len: 0, capacity, seg: this.gpu.buffer(new Int32Array(capacity), 'kv.seg'),
      dispose: () => [...kv.k, ...kv.v, kv.seg].forEach((b) => this.gpu.retire(b)),
    };
    return kv;
  }

  /**
   * Run `ids` through the model on top of `kv` (appending to it) and return the logits of the
   * last position (V floats).
   */
  async decode(kv: KvCache, ids: Int32Array): Promise<Float32Array> {
    const g = this.gpu, c = this.cfg, T = ids.length, C = c.hiddenSize;
    if (kv.len + T > kv.capacity) throw new UsageError(`generation: ${kv.len + T} tokens exceed the KV cache of ${kv.capacity}`);
    this.checkWindow(kv.len + T);
    const positions = Int32Array.from({ length: T }, (_, i) => kv.len + i);
    const io = this.upload({ B: 1, T, ids, targets: new Int32Array(T).fill(-1), segments: new Int32Array(T), positions }, 0);
    const acts = this.acts(1, T, false);
    const enc = g.device.createCommandEncoder({ label: 'decode' });
    const N = T;
    embeddingForward(g, enc, { ids: io.ids, weight: this.embed.buf, out: acts[0].x, N, C, V: c.vocabSize });
    for (let l = 0; l < this.layers.length; l++) this.layerForward(enc, l, acts[l], acts[l + 1].x, io, 1, T, kv);
    const lastRow = g.scratch('decode.last', C * 4), hidden = g.scratch('decode.hidden', C * 4), rstd = g.scratch('decode.rstd', 16);
    enc.copyBufferToBuffer(acts[this.layers.length].x, (T - 1) * C * 4, lastRow, 0, C * 4);
    rmsnormForward(g, enc, { inp: lastRow, weight: this.finalNorm.buf, out: hidden, rstd, N: 1, C, eps: c.rmsNormEps });
    const logits = g.scratch('decode.logits', c.vocabSize * 4);
    matmul(g, enc, { a: hidden, bm: this.lmHead.buf, out: logits, M: 1, N: c.vocabSize, K: C, transB: true, bmF16: this.lmHead.f16 });
    g.finish(enc);
    kv.len += T;
    return g.readF32(logits, c.vocabSize);
  }
}

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens?: number; // default 64
  /** Stop when one of these ids is produced (default: config.json's eos_token_id). */
  stop?: number[];
  /** Called with each new token id as it is chosen (streaming). */
  onToken?: (id: number) => void;
}

/**
 * Generate after `prompt` (token ids) with a KV cache: greedy when temperature is 0 (default),
 * else temperature + top-p sampling from a seeded generator. Returns the new ids (without the
 * stop token).
 */
export async function generate(model: LlamaModel, prompt: ArrayLike<number>, o: GenerateOptions = {}): Promise<number[]> {
  if (prompt.length === 0) throw new UsageError('generate: the prompt has no tokens');
  const maxNew = o.maxNewTokens ?? 64;
  const eos = model.cfg.eosTokenId;
  const stop = new Set(o.stop ?? (eos === null ? [] : Array.isArray(eos) ? eos : [eos]));
  const sampling: SamplingOptions = { temperature: o.temperature ?? 0, topP: o.topP ?? 1, seed: o.seed ?? 0 };
  const rand = makeRng(sampling.seed);
  const kv = model.newKvCache(prompt.length + maxNew);
  try {
    let logits = await model.decode(kv, Int32Array.from(prompt));
    const out: number[] = [];
    while (out.length < maxNew) {
      const id = sampleToken(logits, sampling, rand);
      if (stop.has(id)) break;
      out.push(id);
      o.onToken?.(id);
      if (out.length === maxNew) break;
      logits = await model.decode(kv, Int32Array.of(id));
    }
    return out;
  } finally {
    kv.dispose();
  }
}

export interface KvCache {
  k: GPUBuffer[]; // per layer (capacity, Hkv, D)
  v: GPUBuffer[];
  len: number;
  capacity: number;
  seg: GPUBuffer; // (capacity) i32 zeros: one sample
  /** Give the cache's GPU memory back. */
  dispose(): void;
}

/** The per-sample stats of a read-back (S × SEGMENT_FLOATS floats, from `offset`). */
export function readSampleStats(r: Float32Array, S: number, offset = 0): SampleStats[] {
  return Array.from({ length: S }, (_, s) => {
    const o = offset + s * SEGMENT_FLOATS;
    return { nll: r[o], entropy: r[o + 1], confidence: r[o + 2], accuracy: r[o + 3], tokens: r[o + 4] };
  });
}

function destroyParam(gpu: Gpu, p: Param): void {
  for (const b of [p.buf, p.grad, p.m, p.v]) gpu.retire(b);
}

/** Segments are numbered 0..S-1 within a batch; S = max + 1. */
export function numSegments(b: ModelBatch): number {
  let m = -1;
  for (const s of b.segments) if (s > m) m = s;
  return m + 1;
}
