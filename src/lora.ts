// LoRA configuration: which modules, rank, alpha, dropout, rsLoRA — the fields of PEFT's
// adapter_config.json that change the math.

export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: LoraModule[];
  useRslora: boolean;
}

export const DEFAULT_LORA: LoraOptions = {
  r: 8,
  alpha: 16,
  dropout: 0,
  targetModules: [...LORA_MODULES],
  useRslora: false,
};

/** s = alpha / r, or alpha / sqrt(r) with rsLoRA (PEFT's `scaling`). */
export function loraScale(o: Pick<LoraOptions, 'r' | 'alpha' | 'useRslora'>): number {
  return o.useRslora ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
}

/**
 * A model's tensors as both backends hold them (src/model/llama.ts on the GPU, src/wasm/model.ts
 * in wasm memory): W a weight, with its trainable tensor `param` under full fine-tuning; P a
 * trainable tensor (LoRA's A and B, or a weight's param).
 */
export interface ModelTensors<W extends { param?: P }, P> {
  readonly full: boolean;
  readonly embed: W;
  readonly finalNorm: W;
  readonly lmHead: W; // the embedding itself when tied
  readonly layers: readonly { inputNorm: W; postNorm: W; qNorm?: W; kNorm?: W; lin: Record<LoraModule, { W: W; bias?: W; A?: P; B?: P }> }[];
}

/** Every weight of `m` in a fixed order; a tied LM head is the embedding again (free each once). */
export function modelWeights<W extends { param?: P }, P>(m: ModelTensors<W, P>): W[] {
  const out: (W | undefined)[] = [m.embed];
  for (const l of m.layers) {
    out.push(l.inputNorm, l.postNorm, l.qNorm, l.kNorm);
    for (const mod of LORA_MODULES) out.push(l.lin[mod].W, l.lin[mod].bias);
  }
  out.push(m.finalNorm, m.lmHead);
  return out.filter((w): w is W => w !== undefined);
}

/**
 * The trainable tensors of `m` in the optimizer's and the grad norm's fixed order — the same on
 * both backends, so checkpoints and optimizer states move between them: per layer its norms
 * (full fine-tuning), then per module LoRA's A, B and the weight and bias (full); the embedding
 * first and the final norm and LM head last (full; a tied head once).
 */
export function trainableTensors<W extends { param?: P }, P>(m: ModelTensors<W, P>): P[] {
  const out: P[] = [];
  const w = (x?: W) => m.full && x?.param && !out.includes(x.param) && out.push(x.param);
  w(m.embed);
  for (const l of m.layers) {
    [l.inputNorm, l.postNorm, l.qNorm, l.kNorm].forEach(w);
    for (const mod of LORA_MODULES) {
      const lin = l.lin[mod];
      if (lin.A && lin.B) out.push(lin.A, lin.B);
      [lin.W, lin.bias].forEach(w);
    }
  }
  [m.finalNorm, m.lmHead].forEach(w);
  return out;
}
