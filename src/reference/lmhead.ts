// float64 CPU reference for shaders/lmhead.wgsl: the LM head and its per-token reduction, with the
// whole logits row at once (no chunks). Plain loops, obviously correct.
//   hidden (N, C); weight (V, C); targets (N), -1 = no loss; gscale (N)
//   stats (N, 4) = [nll, entropy, max-probability, argmax == target]; lse (N)
//   dhidden (N, C); dweight (V, C)

export interface LmHeadRefArgs {
  hidden: ArrayLike<number>;
  weight: ArrayLike<number>;
  targets: ArrayLike<number>;
  N: number;
  C: number;
  V: number;
  /** Only these tokens (default: all); the others' outputs are left 0. */
  rows?: number[];
}

const hasTarget = (t: number, V: number) => t >= 0 && t < V;

function logitsRow(x: LmHeadRefArgs, n: number): Float64Array {
  const z = new Float64Array(x.V);
  for (let v = 0; v < x.V; v++) {
    let s = 0;
    for (let c = 0; c < x.C; c++) s += x.hidden[n * x.C + c] * x.weight[v * x.C + c];
    z[v] = s;
  }
  return z;
}

/** Softmax of one row, stably: p, lse and the first argmax. */
function softmax(z: Float64Array): { p: Float64Array; lse: number; arg: number } {
  let m = -Infinity, arg = 0;
  for (let v = 0; v < z.length; v++) if (z[v] > m) { m = z[v]; arg = v; }
  let s = 0;
  for (let v = 0; v < z.length; v++) s += Math.exp(z[v] - m);
  const lse = m + Math.log(s);
  const p = new Float64Array(z.length);
  for (let v = 0; v < z.length; v++) p[v] = Math.exp(z[v] - lse);
  return { p, lse, arg };
}

export function lmHeadForwardRef(x: LmHeadRefArgs): { stats: Float64Array; lse: Float64Array } {
  const stats = new Float64Array(x.N * 4), lse = new Float64Array(x.N);
  for (const n of x.rows ?? [...Array(x.N).keys()]) {
    const z = logitsRow(x, n);
    const sm = softmax(z);
    let H = 0;
    for (let v = 0; v < x.V; v++) if (sm.p[v] > 0) H -= sm.p[v] * (z[v] - sm.lse); // −Σ p log p
    const t = x.targets[n];
    stats[n * 4 + 0] = hasTarget(t, x.V) ? sm.lse - z[t] : 0;
    stats[n * 4 + 1] = H;
    stats[n * 4 + 2] = sm.p[sm.arg];
    stats[n * 4 + 3] = hasTarget(t, x.V) && sm.arg === t ? 1 : 0;
    lse[n] = sm.lse;
  }
  return { stats, lse };
}

/** Gradients of L = Σ_n gscale[n] · nll[n] with respect to hidden and weight. */
export function lmHeadBackwardRef(x: LmHeadRefArgs & { gscale: ArrayLike<number> }): { dhidden: Float64Array; dweight: Float64Array } {
  const { N, C, V } = x;
  const dhidden = new Float64Array(N * C), dweight = new Float64Array(V * C);
  for (const n of x.rows ?? [...Array(N).keys()]) {
    const t = x.targets[n];
    if (!hasTarget(t, V)) continue;
    const { p } = softmax(logitsRow(x, n));
    for (let v = 0; v < V; v++) {
      const d = x.gscale[n] * (p[v] - (v === t ? 1 : 0));
      for (let c = 0; c < C; c++) {
        dhidden[n * C + c] += d * x.weight[v * C + c];
        dweight[v * C + c] += d * x.hidden[n * C + c];
      }
    }
  }
  return { dhidden, dweight };
}
