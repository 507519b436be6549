// float64 CPU reference for shaders/embedding.wgsl. ids (N), weight/dweight (V, C), out/dout (N, C).
// An id outside [0, V) gives a zero row and contributes no gradient.
type A = ArrayLike<number>;

export function embeddingForwardRef(ids: A, weight: A, N: number, C: number, V: number): Float64Array {
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (id < 0 || id >= V) continue;
    for (let c = 0; c < C; c++) out[n * C + c] = weight[id * C + c];
  }
  return out;
}

export function embeddingBackwardRef(ids: A, dout: A, N: number, C: number, V: number): Float64Array {
  const dweight = new Float64Array(V * C);
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (id < 0 || id >= V) continue;
    for (let c = 0; c < C; c++) dweight[id * C + c] += dout[n * C + c];
  }
  return dweight;
}
