// float64 CPU references for shaders/adamw.wgsl and shaders/gradnorm.wgsl, written from the
// documented algorithms of torch.optim.AdamW (amsgrad = maximize = false) and
// torch.nn.utils.clip_grad_norm_.

export interface AdamwRefState {
  param: Float64Array;
  m: Float64Array; // exp_avg
  v: Float64Array; // exp_avg_sq
}

export interface AdamwRefHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One AdamW step t (1-based) in place on `s`, with gradient `grad` · clipScale. */
export function adamwRef(s: AdamwRefState, grad: ArrayLike<number>, h: AdamwRefHyper, step: number, clipScale = 1): void {
  const bc1 = 1 - h.beta1 ** step;
  const bc2 = 1 - h.beta2 ** step;
  for (let i = 0; i < s.param.length; i++) {
    const g = grad[i] * clipScale;
    s.param[i] *= 1 - h.lr * h.weightDecay;
    s.m[i] = h.beta1 * s.m[i] + (1 - h.beta1) * g;
    s.v[i] = h.beta2 * s.v[i] + (1 - h.beta2) * g * g;
    const mhat = s.m[i] / bc1;
    const vhat = s.v[i] / bc2;
    s.param[i] -= (h.lr * mhat) / (Math.sqrt(vhat) + h.eps);
  }
}

/**
 * [norm, scale, bad]: the global L2 norm of all `grads`, min(1, maxNorm / (norm + 1e-6)), and 1
 * when the sum of squares is not finite in float32 (a NaN/Inf gradient, or an overflow), else 0.
 */
export function gradNormRef(grads: ArrayLike<number>[], maxNorm: number): [number, number, number] {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  const norm = Math.sqrt(s);
  return [norm, Math.min(1, maxNorm / (norm + 1e-6)), Number.isFinite(Math.fround(s)) ? 0 : 1];
}
