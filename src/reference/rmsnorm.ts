// float64 CPU reference for shaders/rmsnorm.wgsl. inp (N, C), weight (C), rstd (N).
type A = ArrayLike<number>;

export function rmsnormForwardRef(inp: A, weight: A, N: number, C: number, eps: number): { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(N * C), rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[n * C + c] = weight[c] * inp[n * C + c] * r;
  }
  return { out, rstd };
}

/** dinp (N, C) and dweight (C) of L = Σ dout·out, by the closed form (checked by finite differences). */
export function rmsnormBackwardRef(inp: A, weight: A, dout: A, N: number, C: number, eps: number): { dinp: Float64Array; dweight: Float64Array } {
  const { rstd } = rmsnormForwardRef(inp, weight, N, C, eps);
  const dinp = new Float64Array(N * C), dweight = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += weight[c] * dout[n * C + c] * inp[n * C + c];
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dinp[i] = r * weight[c] * dout[i] - (inp[i] * r * r * r * dot) / C;
      dweight[c] += dout[i] * inp[i] * r;
    }
  }
  return { dinp, dweight };
}
