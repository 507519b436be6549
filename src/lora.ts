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
