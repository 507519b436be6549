// float64 CPU reference for the LoRA linear (src/kernels/lora.ts, shaders/lora.wgsl):
//
//   xd = drop(x) = mask ⊙ x / (1 − p)       x, xd (N, in); mask from (seed, n·in + k)
//   u  = xd · Aᵀ                             A (r, in), u (N, r)
//   y  = x · Wᵀ (+ b) + s · u · Bᵀ           W (out, in), b (out), B (out, r), y (N, out)
//
// Backward of L = Σ dy ⊙ y, with g = dy · B (N, r):
//   dx = dy · W + s · mask ⊙ (g · A) / (1 − p)   (the mask applies to the LoRA path only)
//   dA = s · gᵀ · xd      dB = s · dyᵀ · u      dW = dyᵀ · x      db = Σ_n dy[n, :]
type A = ArrayLike<number>;

const imul = Math.imul;
/** Mirror of pcg() in shaders/lora.wgsl (u32 arithmetic). */
export function pcg(v: number): number {
  const state = (imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = imul(((state >>> (((state >>> 28) + 4) >>> 0)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The dropout keep-mask of n elements, exactly as the shader draws it (1 keep, 0 drop). */
export function dropoutMask(seed: number, n: number, p: number): Uint8Array {
  const k0 = pcg(seed);
  const k1 = pcg((k0 ^ 0x9e3779b9) >>> 0);
  const m = new Uint8Array(n);
  const pf = Math.fround(p);
  for (let i = 0; i < n; i++) {
    const h = pcg((pcg((i ^ k0) >>> 0) + k1) >>> 0);
    m[i] = (h >>> 8) / 16777216 >= pf ? 1 : 0;
  }
  return m;
}

export interface LoraRefArgs {
  x: A;
  W: A;
  bias?: A;
  A?: A;
  B?: A;
  N: number;
  inF: number;
  outF: number;
  r: number;
  scale: number;
  dropout?: number;
  seed?: number;
}

function dropped(a: LoraRefArgs): Float64Array {
  const n = a.N * a.inF, p = a.dropout ?? 0;
  const xd = Float64Array.from(a.x);
  if (p > 0) {
    const m = dropoutMask(a.seed ?? 0, n, p), inv = 1 / (1 - Math.fround(p));
    for (let i = 0; i < n; i++) xd[i] = m[i] ? xd[i] * Math.fround(inv) : 0;
  }
  return xd;
}

export function loraForwardRef(a: LoraRefArgs): { y: Float64Array; u: Float64Array; xd: Float64Array } {
  const { N, inF, outF, r } = a;
  const y = new Float64Array(N * outF), u = new Float64Array(N * r);
  const xd = dropped(a);
  for (let n = 0; n < N; n++) {
    if (a.A && a.B) {
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let k = 0; k < inF; k++) s += xd[n * inF + k] * a.A[j * inF + k];
        u[n * r + j] = s;
      }
    }
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += a.x[n * inF + k] * a.W[o * inF + k];
      if (a.bias) s += a.bias[o];
      if (a.A && a.B) {
        let l = 0;
        for (let j = 0; j < r; j++) l += u[n * r + j] * a.B[o * r + j];
        s += a.scale * l;
      }
      y[n * outF + o] = s;
    }
  }
  return { y, u, xd };
}

export function loraBackwardRef(a: LoraRefArgs, dy: A) {
  const { N, inF, outF, r, scale } = a;
  const { u, xd } = loraForwardRef(a);
  const dx = new Float64Array(N * inF), dW = new Float64Array(outF * inF), db = new Float64Array(outF);
  const dA = new Float64Array(r * inF), dB = new Float64Array(outF * r), g = new Float64Array(N * r);
  const p = a.dropout ?? 0;
  const mask = p > 0 ? dropoutMask(a.seed ?? 0, N * inF, p) : undefined;
  const inv = p > 0 ? Math.fround(1 / (1 - Math.fround(p))) : 1;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      const d = dy[n * outF + o];
      db[o] += d;
      for (let k = 0; k < inF; k++) {
        dx[n * inF + k] += d * a.W[o * inF + k];
        dW[o * inF + k] += d * a.x[n * inF + k];
      }
      if (a.A && a.B) {
        for (let j = 0; j < r; j++) {
          g[n * r + j] += d * a.B[o * r + j];
          dB[o * r + j] += scale * d * u[n * r + j];
        }
      }
    }
    if (a.A && a.B) {
      for (let j = 0; j < r; j++) {
        for (let k = 0; k < inF; k++) {
          const i = n * inF + k;
          dA[j * inF + k] += scale * g[n * r + j] * xd[i];
          if (!mask || mask[i]) dx[i] += scale * g[n * r + j] * a.A[j * inF + k] * inv;
        }
      }
    }
  }
  return { dx, dW, db, dA, dB };
}
