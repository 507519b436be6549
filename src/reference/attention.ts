// float64 CPU reference for shaders/attention.wgsl: causal grouped-query attention with segment
// masks, written as the textbook softmax (no online rescaling, no lse trick in the backward).
//   q, out, dout, dq (B, Tq, Hq, D)   k, v (B, kvCapacity, Hkv, D)   dk, dv (B, T, Hkv, D)
//   seg (B, kvCapacity)   lse (B, Hq, Tq)
// Query i attends key j iff j ≤ qOffset + i and seg[b, j] = seg[b, qOffset + i] ≥ 0; a query
// that attends nothing has out = 0, lse = 0 and zero gradients.

export interface AttentionRefArgs {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  seg: ArrayLike<number>;
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  qOffset?: number;
  kvCapacity?: number;
  scale?: number;
}

// The softmax row of query (b, h, i): the attended keys and their probabilities.
function probs(x: AttentionRefArgs, b: number, h: number, i: number): { keys: number[]; p: number[]; lse: number } {
  const { Tq, Tk, Hq, Hkv, D } = x;
  const cap = x.kvCapacity ?? Tk, off = x.qOffset ?? Tk - Tq, scale = x.scale ?? 1 / Math.sqrt(D);
  const hk = Math.floor(h / (Hq / Hkv));
  const qpos = off + i;
  const sq = x.seg[b * cap + qpos];
  const keys: number[] = [], s: number[] = [];
  if (sq < 0) return { keys, p: [], lse: 0 };
  const qo = ((b * Tq + i) * Hq + h) * D;
  for (let j = 0; j <= qpos; j++) {
    if (x.seg[b * cap + j] !== sq) continue;
    const ko = ((b * cap + j) * Hkv + hk) * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += x.q[qo + d] * x.k[ko + d];
    keys.push(j);
    s.push(dot * scale);
  }
  const m = Math.max(...s);
  let sum = 0;
  for (const v of s) sum += Math.exp(v - m);
  return { keys, p: s.map((v) => Math.exp(v - m) / sum), lse: m + Math.log(sum) };
}

/** out (B, Tq, Hq, D) and lse (B, Hq, Tq). */
export function attentionRef(x: AttentionRefArgs): { out: Float64Array; lse: Float64Array } {
  const { B, Tq, Tk, Hq, Hkv, D } = x;
  const cap = x.kvCapacity ?? Tk;
  const out = new Float64Array(B * Tq * Hq * D), lse = new Float64Array(B * Hq * Tq);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++)
      for (let i = 0; i < Tq; i++) {
        const r = probs(x, b, h, i);
        lse[(b * Hq + h) * Tq + i] = r.lse;
        const oo = ((b * Tq + i) * Hq + h) * D;
        const hk = Math.floor(h / (Hq / Hkv));
        r.keys.forEach((j, n) => {
          const vo = ((b * cap + j) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) out[oo + d] += r.p[n] * x.v[vo + d];
        });
      }
  return { out, lse };
}

/** Gradients of Σ dout·out for training shapes (Tq = Tk = T, qOffset 0): dq, dk, dv. */
export function attentionBackwardRef(
  x: Omit<AttentionRefArgs, 'Tq' | 'Tk' | 'qOffset' | 'kvCapacity'> & { T: number; dout: ArrayLike<number> },
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, Hq, Hkv, D } = x;
  const scale = x.scale ?? 1 / Math.sqrt(D);
  const a: AttentionRefArgs = { ...x, Tq: T, Tk: T, qOffset: 0, kvCapacity: T };
  const dq = new Float64Array(B * T * Hq * D), dk = new Float64Array(B * T * Hkv * D), dv = new Float64Array(B * T * Hkv * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < T; i++) {
        const { keys, p } = probs(a, b, h, i);
        const qo = ((b * T + i) * Hq + h) * D;
        // dp_j = dout·v_j; ds_j = p_j (dp_j − Σ_j' p_j' dp_j')
        const dp = keys.map((j) => {
          const vo = ((b * T + j) * Hkv + hk) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += x.dout[qo + d] * x.v[vo + d];
          return s;
        });
        let pdp = 0;
        keys.forEach((_, n) => (pdp += p[n] * dp[n]));
        keys.forEach((j, n) => {
          const ko = ((b * T + j) * Hkv + hk) * D;
          const ds = p[n] * (dp[n] - pdp);
          for (let d = 0; d < D; d++) {
            dq[qo + d] += ds * x.k[ko + d] * scale;
            dk[ko + d] += ds * x.q[qo + d] * scale;
            dv[ko + d] += p[n] * x.dout[qo + d];
          }
        });
      }
    }
  return { dq, dk, dv };
}
