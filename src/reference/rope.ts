// float64 CPU reference for shaders/rope.wgsl (rotate-half RoPE). The angle is pos · inv_freq
// rounded to f32, as Hugging Face computes it in float32; cos and sin of it in float64.

/** out (N, H, D) = RoPE(x) (or the inverse rotation). x (N, H, D), pos (N), invFreq (D/2). */
export function ropeRef(
  x: ArrayLike<number>, pos: ArrayLike<number>, invFreq: ArrayLike<number>,
  N: number, H: number, D: number, inverse = false,
): Float64Array {
  const half = D / 2;
  const out = new Float64Array(N * H * D);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(pos[n] * invFreq[i]);
      const c = Math.cos(a), s = inverse ? -Math.sin(a) : Math.sin(a);
      for (let h = 0; h < H; h++) {
        const o = (n * H + h) * D + i;
        const x1 = x[o], x2 = x[o + half];
        out[o] = x1 * c - x2 * s;
        out[o + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}
