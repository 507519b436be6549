// float64 CPU reference for shaders/segment.wgsl.
//   stats (N, 4) [nll, entropy, max-probability, hit]; segments (N), -1 = ignore;
//   targets (N), -1 = not counted
//   out (S, 8) = [mean nll, mean entropy, mean max-probability, mean hit, token count, 0, 0, 0]
export function segmentMeansRef(x: {
  stats: ArrayLike<number>;
  segments: ArrayLike<number>;
  targets: ArrayLike<number>;
  N: number;
  S: number;
}): Float64Array {
  const out = new Float64Array(x.S * 8);
  for (let n = 0; n < x.N; n++) {
    const s = x.segments[n];
    if (s < 0 || s >= x.S || x.targets[n] < 0) continue;
    for (let k = 0; k < 4; k++) out[s * 8 + k] += x.stats[n * 4 + k];
    out[s * 8 + 4] += 1;
  }
  for (let s = 0; s < x.S; s++) {
    const c = out[s * 8 + 4];
    for (let k = 0; k < 4; k++) out[s * 8 + k] = c > 0 ? out[s * 8 + k] / c : 0;
  }
  return out;
}
