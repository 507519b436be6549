// float64 CPU forward of a Llama-family model (llama, mistral, qwen2, qwen3), with optional LoRA:
// the second oracle beside test/fixtures/make_fixtures.py, written from the Hugging Face
// definitions, not from that script. Plain loops; slow; tiny models only.
//
//   x = embed[ids]                                              (N = B·T, H)
//   per layer:  h = rmsnorm(x) · w_in
//               q, k, v = h·Wqᵀ (+bq) (+s·(h·Aᵀ)·Bᵀ), …          (N, heads·D), (N, kvHeads·D)
//               qwen3: q, k = rmsnorm over D per head · w_qnorm / w_knorm
//               q, k = rope(q, k, pos)                          rotate-half, inv_freq from config
//               a = softmax(q·kᵀ/√D + mask)·v                   kv head = head / (heads/kvHeads)
//               x += a·Woᵀ (+LoRA)
//               h = rmsnorm(x) · w_post;  x += down(silu(gate(h)) · up(h))   (+LoRA on each)
//   logits = rmsnorm(x) · w_final · headᵀ                       head = lm_head or embed (tied)
//
// Masks. With an attention mask (B, T; 1 real, 0 pad), positions are 0..T-1 and query t attends
// to keys j ≤ t with mask[j] = 1 — Hugging Face's convention, so pad rows are defined too. With
// segment ids (B, T; ≥ 0 a packed sequence, < 0 pad), query t attends to keys j ≤ t of its own
// segment, positions restart at 0 in each segment, and a pad query attends to nothing (zeros).
import { ropeInvFreq, type ModelConfig } from '../io/config.js';
import { loraScale, type LoraModule } from '../lora.js';
import type { TensorStore } from '../io/safetensors.js';

export type Weights = Map<string, Float64Array>;

/** Every tensor the model needs, as float64 (any float dtype on disk). */
export async function loadWeightsF64(store: TensorStore, names: string[]): Promise<Weights> {
  const w: Weights = new Map();
  for (const n of names) w.set(n, await store.readF64(n));
  return w;
}

export interface RefLora {
  r: number;
  alpha: number;
  useRslora?: boolean;
  /** A [r, in] and B [out, r] of one adapted module, or undefined if it is not adapted. */
  get(layer: number, module: LoraModule): { a: ArrayLike<number>; b: ArrayLike<number> } | undefined;
}

export interface ModelForwardArgs {
  cfg: ModelConfig;
  weights: Weights;
  ids: ArrayLike<number>; // (B, T)
  B: number;
  T: number;
  attentionMask?: ArrayLike<number>; // (B, T), 1 = real token
  segmentIds?: ArrayLike<number>; // (B, T), < 0 = pad
  lora?: RefLora;
}

/**
 * Each token's position and segment (−1 = padding): with segment ids, positions restart per
 * segment; with an attention mask (Hugging Face padding), positions are 0..T−1.
 */
function positionsAndSegments(a: Pick<ModelForwardArgs, 'B' | 'T' | 'segmentIds' | 'attentionMask'>): { pos: Int32Array; seg: Int32Array } {
  const { B, T } = a;
  const pos = new Int32Array(B * T), seg = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let start = 0;
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      if (a.segmentIds) {
        seg[n] = a.segmentIds[n] < 0 ? -1 : a.segmentIds[n];
        if (t === 0 || seg[n] !== seg[n - 1]) start = t;
        pos[n] = seg[n] < 0 ? 0 : t - start;
      } else {
        seg[n] = a.attentionMask && !a.attentionMask[n] ? -1 : 0;
        pos[n] = t;
      }
    }
  }
  return { pos, seg };
}

function need(w: Weights, name: string): Float64Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference model: weight '${name}' was not loaded`);
  return t;
}

/** y (N, out) = x (N, in) · Wᵀ (+ b) (+ s · (x · Aᵀ) · Bᵀ). */
function linear(x: Float64Array, N: number, inF: number, W: Float64Array, outF: number, bias?: Float64Array, lo?: { a: ArrayLike<number>; b: ArrayLike<number> }, r = 0, s = 0): Float64Array {
  const y = new Float64Array(N * outF);
  const u = new Float64Array(r);
  for (let n = 0; n < N; n++) {
    const xo = n * inF;
    if (lo) {
      for (let k = 0; k < r; k++) {
        let acc = 0;
        for (let i = 0; i < inF; i++) acc += lo.a[k * inF + i] * x[xo + i];
        u[k] = acc;
      }
    }
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      const wo = o * inF;
      for (let i = 0; i < inF; i++) acc += x[xo + i] * W[wo + i];
      if (bias) acc += bias[o];
      if (lo) {
        let l = 0;
        for (let k = 0; k < r; k++) l += lo.b[o * r + k] * u[k];
        acc += s * l;
      }
      y[n * outF + o] = acc;
    }
  }
  return y;
}

/** RMSNorm over the last dim C of rows (M, C): w · x / sqrt(mean(x²) + eps). */
function rmsnorm(x: Float64Array, M: number, C: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(M * C);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[m * C + c] * x[m * C + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) y[m * C + c] = w[c] * (x[m * C + c] * r);
  }
  return y;
}

/** In place: rotate-half RoPE of x (N, heads, D) at positions pos (N). */
function rope(x: Float64Array, N: number, heads: number, D: number, pos: Int32Array, inv: Float64Array): void {
  const h = D / 2;
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < h; i++) {
      const ang = pos[n] * inv[i];
      const c = Math.cos(ang), s = Math.sin(ang);
      for (let hd = 0; hd < heads; hd++) {
        const o = (n * heads + hd) * D;
        const x1 = x[o + i], x2 = x[o + i + h];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + h] = x2 * c + x1 * s;
      }
    }
  }
}

/** logits (B, T, V), float64. */
export function modelForwardRef(a: ModelForwardArgs): Float64Array {
  const { cfg, weights: W, ids, B, T } = a;
  const H = cfg.hiddenSize, I = cfg.intermediateSize, V = cfg.vocabSize, D = cfg.headDim;
  const nh = cfg.numHeads, nkv = cfg.numKvHeads, grp = nh / nkv, N = B * T;
  const eps = cfg.rmsNormEps;
  const s = a.lora ? loraScale({ r: a.lora.r, alpha: a.lora.alpha, useRslora: a.lora.useRslora ?? false }) : 0;
  const r = a.lora?.r ?? 0;

  const { pos, seg } = positionsAndSegments(a);
  const allowed = (b: number, tq: number, tk: number): boolean => {
    if (tk > tq) return false;
    const sk = seg[b * T + tk];
    if (sk < 0) return false;
    return a.segmentIds ? sk === seg[b * T + tq] : true;
  };
  const inv = ropeInvFreq(cfg);

  const emb = need(W, 'model.embed_tokens.weight');
  let x: Float64Array = new Float64Array(N * H);
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new Error(`reference model: token id ${id} at ${n} is outside the vocabulary (${V})`);
    for (let c = 0; c < H; c++) x[n * H + c] = emb[id * H + c];
  }

  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const lo = (m: LoraModule) => a.lora?.get(l, m);
    const bias = (m: string) => (cfg.attentionBias ? need(W, `${p}self_attn.${m}.bias`) : undefined);

    const h = rmsnorm(x, N, H, need(W, `${p}input_layernorm.weight`), eps);
    const q = linear(h, N, H, need(W, `${p}self_attn.q_proj.weight`), nh * D, bias('q_proj'), lo('q_proj'), r, s);
    const k = linear(h, N, H, need(W, `${p}self_attn.k_proj.weight`), nkv * D, bias('k_proj'), lo('k_proj'), r, s);
    const v = linear(h, N, H, need(W, `${p}self_attn.v_proj.weight`), nkv * D, bias('v_proj'), lo('v_proj'), r, s);
    let qq = q, kk = k;
    if (cfg.qkNorm) {
      qq = rmsnorm(q, N * nh, D, need(W, `${p}self_attn.q_norm.weight`), eps);
      kk = rmsnorm(k, N * nkv, D, need(W, `${p}self_attn.k_norm.weight`), eps);
    }
    rope(qq, N, nh, D, pos, inv);
    rope(kk, N, nkv, D, pos, inv);

    // attention: out (N, nh·D)
    const att = new Float64Array(N * nh * D);
    const sc = new Float64Array(T);
    const scale = 1 / Math.sqrt(D);
    for (let b = 0; b < B; b++) {
      for (let hd = 0; hd < nh; hd++) {
        const kh = Math.floor(hd / grp);
        for (let tq = 0; tq < T; tq++) {
          const qo = ((b * T + tq) * nh + hd) * D;
          let mx = -Infinity;
          for (let tk = 0; tk < T; tk++) {
            if (!allowed(b, tq, tk)) {
              sc[tk] = -Infinity;
              continue;
            }
            const ko = ((b * T + tk) * nkv + kh) * D;
            let d = 0;
            for (let i = 0; i < D; i++) d += qq[qo + i] * kk[ko + i];
            sc[tk] = d * scale;
            mx = Math.max(mx, sc[tk]);
          }
          if (mx === -Infinity) continue; // a pad query with segment ids: attends to nothing
          let z = 0;
          for (let tk = 0; tk < T; tk++) {
            sc[tk] = sc[tk] === -Infinity ? 0 : Math.exp(sc[tk] - mx);
            z += sc[tk];
          }
          for (let tk = 0; tk < T; tk++) {
            if (sc[tk] === 0) continue;
            const pk = sc[tk] / z;
            const vo = ((b * T + tk) * nkv + kh) * D;
            for (let i = 0; i < D; i++) att[qo + i] += pk * v[vo + i];
          }
        }
      }
    }
    const o = linear(att, N, nh * D, need(W, `${p}self_attn.o_proj.weight`), H, cfg.oProjBias ? need(W, `${p}self_attn.o_proj.bias`) : undefined, lo('o_proj'), r, s);
    for (let i = 0; i < x.length; i++) x[i] += o[i];

    const h2 = rmsnorm(x, N, H, need(W, `${p}post_attention_layernorm.weight`), eps);
    const g = linear(h2, N, H, need(W, `${p}mlp.gate_proj.weight`), I, undefined, lo('gate_proj'), r, s);
    const u = linear(h2, N, H, need(W, `${p}mlp.up_proj.weight`), I, undefined, lo('up_proj'), r, s);
    for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    const d = linear(g, N, I, need(W, `${p}mlp.down_proj.weight`), H, undefined, lo('down_proj'), r, s);
    for (let i = 0; i < x.length; i++) x[i] += d[i];
  }

  x = rmsnorm(x, N, H, need(W, 'model.norm.weight'), eps);
  const head = cfg.tieWordEmbeddings ? emb : need(W, 'lm_head.weight');
  return linear(x, N, H, head, V);
}

export interface TokenStats {
  /** nll[b,t] = −log p(ids[b,t+1] | ≤ t) where valid[b,t]; else 0. (B, T) */
  nll: Float64Array;
  /** 1 where nll is defined: t < T−1 and the next token is real (mask[b,t+1] = 1). */
  valid: Uint8Array;
  /** −Σ p log p of the prediction at (b,t), natural log; 0 at pad positions. (B, T) */
  entropy: Float64Array;
  /** max_v p at (b,t); 0 at pad positions. (B, T) */
  maxProb: Float64Array;
}

/** Per-token NLL of the next token, predictive entropy and confidence, from logits (B, T, V). */
export function tokenStatsRef(logits: ArrayLike<number>, ids: ArrayLike<number>, B: number, T: number, V: number, mask?: ArrayLike<number>): TokenStats {
  const nll = new Float64Array(B * T), entropy = new Float64Array(B * T), maxProb = new Float64Array(B * T);
  const valid = new Uint8Array(B * T);
  const real = (n: number) => !mask || mask[n] !== 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      if (!real(n)) continue;
      const o = n * V;
      let mx = -Infinity;
      for (let j = 0; j < V; j++) mx = Math.max(mx, logits[o + j]);
      let z = 0;
      for (let j = 0; j < V; j++) z += Math.exp(logits[o + j] - mx);
      const lse = mx + Math.log(z);
      let h = 0;
      for (let j = 0; j < V; j++) {
        const lp = logits[o + j] - lse;
        h -= Math.exp(lp) * lp;
      }
      entropy[n] = h;
      maxProb[n] = Math.exp(mx - lse);
      if (t < T - 1 && real(n + 1)) {
        nll[n] = lse - logits[o + ids[n + 1]];
        valid[n] = 1;
      }
    }
  }
  return { nll, valid, entropy, maxProb };
}

/**
 * The training loss: mean over all (b, j) with lossMask[b,j] = 1 (j ≥ 1; mask aligned with ids,
 * on the target tokens) of −log p(ids[b,j] | < j) — Hugging Face's labels = −100 convention.
 */
export function maskedLossRef(logits: ArrayLike<number>, ids: ArrayLike<number>, lossMask: ArrayLike<number>, B: number, T: number, V: number): number {
  let sum = 0, count = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 1; j < T; j++) {
      if (!lossMask[b * T + j]) continue;
      const o = (b * T + j - 1) * V;
      let mx = -Infinity;
      for (let v = 0; v < V; v++) mx = Math.max(mx, logits[o + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[o + v] - mx);
      sum += mx + Math.log(z) - logits[o + ids[b * T + j]];
      count++;
    }
  }
  return count ? sum / count : 0;
}

// ------------------------------------------------------------------ backward (LoRA gradients)

/** dx (N, in) of y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ given dy (N, out); adds dA (r, in), dB (out, r) into `grad` when adapted. */
function linearBackward(
  x: Float64Array, dy: Float64Array, N: number, inF: number, outF: number, W: Float64Array,
  lo: { a: ArrayLike<number>; b: ArrayLike<number> } | undefined, r: number, s: number,
  grad: { dA: Float64Array; dB: Float64Array } | undefined,
): Float64Array {
  const dx = new Float64Array(N * inF);
  const u = new Float64Array(r), gr = new Float64Array(r);
  for (let n = 0; n < N; n++) {
    const xo = n * inF, yo = n * outF;
    for (let o = 0; o < outF; o++) {
      const d = dy[yo + o];
      if (d === 0) continue;
      for (let i = 0; i < inF; i++) dx[xo + i] += d * W[o * inF + i];
    }
    if (!lo) continue;
    for (let k = 0; k < r; k++) {
      let acc = 0, g = 0;
      for (let i = 0; i < inF; i++) acc += lo.a[k * inF + i] * x[xo + i];
      for (let o = 0; o < outF; o++) g += dy[yo + o] * lo.b[o * r + k];
      u[k] = acc;
      gr[k] = g; // (dy · B)[n, k]
    }
    for (let k = 0; k < r; k++) for (let i = 0; i < inF; i++) dx[xo + i] += s * gr[k] * lo.a[k * inF + i];
    if (grad) {
      for (let k = 0; k < r; k++) for (let i = 0; i < inF; i++) grad.dA[k * inF + i] += s * gr[k] * x[xo + i];
      for (let o = 0; o < outF; o++) for (let k = 0; k < r; k++) grad.dB[o * r + k] += s * dy[yo + o] * u[k];
    }
  }
  return dx;
}

/** dx of y = w · x / sqrt(mean(x²) + eps) over rows (M, C). */
function rmsnormBackward(x: Float64Array, dy: Float64Array, M: number, C: number, w: Float64Array, eps: number): Float64Array {
  const dx = new Float64Array(M * C);
  for (let m = 0; m < M; m++) {
    let ss = 0, dot = 0;
    for (let c = 0; c < C; c++) {
      ss += x[m * C + c] * x[m * C + c];
      dot += w[c] * dy[m * C + c] * x[m * C + c];
    }
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) dx[m * C + c] = r * w[c] * dy[m * C + c] - (x[m * C + c] * r * r * r * dot) / C;
  }
  return dx;
}

export interface LossGradResult {
  loss: number;
  /** d loss / d A and d loss / d B of every adapted module, keyed `${layer}.${module}.A|B`. */
  grads: Map<string, Float64Array>;
}

/**
 * The masked loss (maskedLossRef) and its gradient with respect to every LoRA matrix, by a
 * hand-written backward through the whole model: the reference for a training step.
 */
export function modelLossGradRef(a: ModelForwardArgs & { lossMask: ArrayLike<number> }): LossGradResult {
  const { cfg, weights: W, ids, B, T } = a;
  const H = cfg.hiddenSize, I = cfg.intermediateSize, V = cfg.vocabSize, D = cfg.headDim;
  const nh = cfg.numHeads, nkv = cfg.numKvHeads, grp = nh / nkv, N = B * T, eps = cfg.rmsNormEps;
  const lora = a.lora;
  if (!lora) throw new Error('modelLossGradRef: no LoRA to differentiate');
  const s = loraScale({ r: lora.r, alpha: lora.alpha, useRslora: lora.useRslora ?? false });
  const r = lora.r;

  const { pos, seg } = positionsAndSegments(a);
  const allowed = (b: number, tq: number, tk: number) => tk <= tq && seg[b * T + tk] >= 0 && (!a.segmentIds || seg[b * T + tk] === seg[b * T + tq]);
  const inv = ropeInvFreq(cfg);
  const negInv = inv.map((f) => -f); // rotating by −angle undoes RoPE: its own backward
  const scale = 1 / Math.sqrt(D);

  const emb = need(W, 'model.embed_tokens.weight');
  let x: Float64Array = new Float64Array(N * H);
  for (let n = 0; n < N; n++) for (let c = 0; c < H; c++) x[n * H + c] = emb[ids[n] * H + c];

  interface Cache {
    xIn: Float64Array; h1: Float64Array; qLin: Float64Array; kLin: Float64Array; v: Float64Array;
    qr: Float64Array; kr: Float64Array; P: Float64Array; att: Float64Array;
    xMid: Float64Array; h2: Float64Array; g: Float64Array; u: Float64Array; act: Float64Array;
  }
  const caches: Cache[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const lo = (m: LoraModule) => lora.get(l, m);
    const bias = (m: string) => (cfg.attentionBias ? need(W, `${p}self_attn.${m}.bias`) : undefined);
    const xIn = x;
    const h1 = rmsnorm(xIn, N, H, need(W, `${p}input_layernorm.weight`), eps);
    const qLin = linear(h1, N, H, need(W, `${p}self_attn.q_proj.weight`), nh * D, bias('q_proj'), lo('q_proj'), r, s);
    const kLin = linear(h1, N, H, need(W, `${p}self_attn.k_proj.weight`), nkv * D, bias('k_proj'), lo('k_proj'), r, s);
    const v = linear(h1, N, H, need(W, `${p}self_attn.v_proj.weight`), nkv * D, bias('v_proj'), lo('v_proj'), r, s);
    const qr = cfg.qkNorm ? rmsnorm(qLin, N * nh, D, need(W, `${p}self_attn.q_norm.weight`), eps) : Float64Array.from(qLin);
    const kr = cfg.qkNorm ? rmsnorm(kLin, N * nkv, D, need(W, `${p}self_attn.k_norm.weight`), eps) : Float64Array.from(kLin);
    rope(qr, N, nh, D, pos, inv);
    rope(kr, N, nkv, D, pos, inv);
    const P = new Float64Array(B * nh * T * T); // (B, nh, Tq, Tk)
    const att = new Float64Array(N * nh * D);
    for (let b = 0; b < B; b++) {
      for (let hd = 0; hd < nh; hd++) {
        const kh = Math.floor(hd / grp);
        for (let tq = 0; tq < T; tq++) {
          const po = ((b * nh + hd) * T + tq) * T, qo = ((b * T + tq) * nh + hd) * D;
          let mx = -Infinity;
          for (let tk = 0; tk < T; tk++) {
            if (!allowed(b, tq, tk)) continue;
            const ko = ((b * T + tk) * nkv + kh) * D;
            let d = 0;
            for (let i = 0; i < D; i++) d += qr[qo + i] * kr[ko + i];
            P[po + tk] = d * scale;
            mx = Math.max(mx, P[po + tk]);
          }
          if (mx === -Infinity) continue;
          let z = 0;
          for (let tk = 0; tk < T; tk++) {
            P[po + tk] = allowed(b, tq, tk) ? Math.exp(P[po + tk] - mx) : 0;
            z += P[po + tk];
          }
          for (let tk = 0; tk < T; tk++) {
            P[po + tk] /= z;
            const vo = ((b * T + tk) * nkv + kh) * D;
            for (let i = 0; i < D; i++) att[qo + i] += P[po + tk] * v[vo + i];
          }
        }
      }
    }
    const o = linear(att, N, nh * D, need(W, `${p}self_attn.o_proj.weight`), H, cfg.oProjBias ? need(W, `${p}self_attn.o_proj.bias`) : undefined, lo('o_proj'), r, s);
    const xMid = new Float64Array(N * H);
    for (let i = 0; i < xMid.length; i++) xMid[i] = xIn[i] + o[i];
    const h2 = rmsnorm(xMid, N, H, need(W, `${p}post_attention_layernorm.weight`), eps);
    const g = linear(h2, N, H, need(W, `${p}mlp.gate_proj.weight`), I, undefined, lo('gate_proj'), r, s);
    const u = linear(h2, N, H, need(W, `${p}mlp.up_proj.weight`), I, undefined, lo('up_proj'), r, s);
    const act = new Float64Array(N * I);
    for (let i = 0; i < act.length; i++) act[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    const d = linear(act, N, I, need(W, `${p}mlp.down_proj.weight`), H, undefined, lo('down_proj'), r, s);
    x = new Float64Array(N * H);
    for (let i = 0; i < x.length; i++) x[i] = xMid[i] + d[i];
    caches.push({ xIn, h1, qLin, kLin, v, qr, kr, P, att, xMid, h2, g, u, act });
  }
  const wF = need(W, 'model.norm.weight');
  const xf = rmsnorm(x, N, H, wF, eps);
  const head = cfg.tieWordEmbeddings ? emb : need(W, 'lm_head.weight');
  const logits = linear(xf, N, H, head, V);

  // loss and d loss / d logits: (softmax − onehot(target)) / count at each loss position
  let count = 0;
  for (let b = 0; b < B; b++) for (let j = 1; j < T; j++) if (a.lossMask[b * T + j]) count++;
  const dlogits = new Float64Array(N * V);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 1; j < T; j++) {
      if (!a.lossMask[b * T + j]) continue;
      const o = (b * T + j - 1) * V, tgt = ids[b * T + j];
      let mx = -Infinity;
      for (let k = 0; k < V; k++) mx = Math.max(mx, logits[o + k]);
      let z = 0;
      for (let k = 0; k < V; k++) z += Math.exp(logits[o + k] - mx);
      const lse = mx + Math.log(z);
      loss += lse - logits[o + tgt];
      for (let k = 0; k < V; k++) dlogits[o + k] = Math.exp(logits[o + k] - lse) / count;
      dlogits[o + tgt] -= 1 / count;
    }
  }
  loss = count ? loss / count : 0;

  const grads = new Map<string, Float64Array>();
  const gradFor = (l: number, m: LoraModule, inF: number, outF: number) => {
    if (!lora.get(l, m)) return undefined;
    const dA = new Float64Array(r * inF), dB = new Float64Array(outF * r);
    grads.set(`${l}.${m}.A`, dA);
    grads.set(`${l}.${m}.B`, dB);
    return { dA, dB };
  };

  let dx = rmsnormBackward(x, linearBackward(xf, dlogits, N, H, V, head, undefined, 0, 0, undefined), N, H, wF, eps);
  for (let l = cfg.numLayers - 1; l >= 0; l--) {
    const p = `model.layers.${l}.`;
    const c = caches[l];
    const lo = (m: LoraModule) => lora.get(l, m);
    // MLP: x = xMid + down(silu(g)·u)
    const dact = linearBackward(c.act, dx, N, I, H, need(W, `${p}mlp.down_proj.weight`), lo('down_proj'), r, s, gradFor(l, 'down_proj', I, H));
    const dg = new Float64Array(N * I), du = new Float64Array(N * I);
    for (let i = 0; i < dg.length; i++) {
      const sg = 1 / (1 + Math.exp(-c.g[i]));
      du[i] = dact[i] * c.g[i] * sg;
      dg[i] = dact[i] * c.u[i] * sg * (1 + c.g[i] * (1 - sg));
    }
    const dh2 = linearBackward(c.h2, dg, N, H, I, need(W, `${p}mlp.gate_proj.weight`), lo('gate_proj'), r, s, gradFor(l, 'gate_proj', H, I));
    const dh2u = linearBackward(c.h2, du, N, H, I, need(W, `${p}mlp.up_proj.weight`), lo('up_proj'), r, s, gradFor(l, 'up_proj', H, I));
    for (let i = 0; i < dh2.length; i++) dh2[i] += dh2u[i];
    const dxMid = rmsnormBackward(c.xMid, dh2, N, H, need(W, `${p}post_attention_layernorm.weight`), eps);
    for (let i = 0; i < dxMid.length; i++) dxMid[i] += dx[i];

    // attention: xMid = xIn + o_proj(att)
    const datt = linearBackward(c.att, dxMid, N, nh * D, H, need(W, `${p}self_attn.o_proj.weight`), lo('o_proj'), r, s, gradFor(l, 'o_proj', nh * D, H));
    const dqr = new Float64Array(N * nh * D), dkr = new Float64Array(N * nkv * D), dv = new Float64Array(N * nkv * D);
    const dP = new Float64Array(T);
    for (let b = 0; b < B; b++) {
      for (let hd = 0; hd < nh; hd++) {
        const kh = Math.floor(hd / grp);
        for (let tq = 0; tq < T; tq++) {
          const po = ((b * nh + hd) * T + tq) * T, qo = ((b * T + tq) * nh + hd) * D;
          let sum = 0;
          for (let tk = 0; tk < T; tk++) {
            dP[tk] = 0;
            if (c.P[po + tk] === 0) continue;
            const vo = ((b * T + tk) * nkv + kh) * D;
            let d = 0;
            for (let i = 0; i < D; i++) {
              d += datt[qo + i] * c.v[vo + i];
              dv[vo + i] += c.P[po + tk] * datt[qo + i];
            }
            dP[tk] = d;
            sum += c.P[po + tk] * d;
          }
          for (let tk = 0; tk < T; tk++) {
            if (c.P[po + tk] === 0) continue;
            const dS = c.P[po + tk] * (dP[tk] - sum) * scale;
            const ko = ((b * T + tk) * nkv + kh) * D;
            for (let i = 0; i < D; i++) {
              dqr[qo + i] += dS * c.kr[ko + i];
              dkr[ko + i] += dS * c.qr[qo + i];
            }
          }
        }
      }
    }
    rope(dqr, N, nh, D, pos, negInv);
    rope(dkr, N, nkv, D, pos, negInv);
    const dq = cfg.qkNorm ? rmsnormBackward(c.qLin, dqr, N * nh, D, need(W, `${p}self_attn.q_norm.weight`), eps) : dqr;
    const dk = cfg.qkNorm ? rmsnormBackward(c.kLin, dkr, N * nkv, D, need(W, `${p}self_attn.k_norm.weight`), eps) : dkr;
    const dh1 = linearBackward(c.h1, dq, N, H, nh * D, need(W, `${p}self_attn.q_proj.weight`), lo('q_proj'), r, s, gradFor(l, 'q_proj', H, nh * D));
    const dh1k = linearBackward(c.h1, dk, N, H, nkv * D, need(W, `${p}self_attn.k_proj.weight`), lo('k_proj'), r, s, gradFor(l, 'k_proj', H, nkv * D));
    const dh1v = linearBackward(c.h1, dv, N, H, nkv * D, need(W, `${p}self_attn.v_proj.weight`), lo('v_proj'), r, s, gradFor(l, 'v_proj', H, nkv * D));
    for (let i = 0; i < dh1.length; i++) dh1[i] += dh1k[i] + dh1v[i];
    dx = rmsnormBackward(c.xIn, dh1, N, H, need(W, `${p}input_layernorm.weight`), eps);
    for (let i = 0; i < dx.length; i++) dx[i] += dxMid[i];
  }
  return { loss, grads };
}
