// float64 CPU reference for shaders/matmul.wgsl. Plain loops, obviously correct.
export interface MatmulRefArgs {
  a: ArrayLike<number>;
  bm: ArrayLike<number>;
  bias?: ArrayLike<number>;
  out?: ArrayLike<number>; // added when accumulate
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/** out[b] (batch, M, N) = alpha · op(a[b]) · op(bm[b]) (+ bias) (+ out[b]). */
export function matmulRef(x: MatmulRefArgs): Float64Array {
  const { M, N, K } = x;
  const batch = x.batch ?? 1;
  const alpha = x.alpha ?? 1;
  const res = new Float64Array(batch * M * N);
  for (let b = 0; b < batch; b++) {
    const ba = b * M * K, bb = b * K * N, bo = b * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = x.transA ? x.a[ba + k * M + m] : x.a[ba + m * K + k];
          const bv = x.transB ? x.bm[bb + n * K + k] : x.bm[bb + k * N + n];
          s += av * bv;
        }
        let v = alpha * s;
        if (x.bias) v += x.bias[n];
        if (x.out) v += x.out[bo + m * N + n];
        res[bo + m * N + n] = v;
      }
    }
  }
  return res;
}
