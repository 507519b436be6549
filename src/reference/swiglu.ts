// float64 CPU reference for shaders/swiglu.wgsl: out = silu(gate) · up, silu(g) = g·σ(g).
type A = ArrayLike<number>;
const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

export function swigluForwardRef(gate: A, up: A): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

export function swigluBackwardRef(gate: A, up: A, dout: A): { dgate: Float64Array; dup: Float64Array } {
  const n = gate.length;
  const dgate = new Float64Array(n), dup = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = sigmoid(gate[i]);
    dup[i] = dout[i] * gate[i] * s;
    dgate[i] = dout[i] * up[i] * s * (1 + gate[i] * (1 - s));
  }
  return { dgate, dup };
}
