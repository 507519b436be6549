// The wasm training backend: src/wasm/model.ts's forward/backward plus what the optimizer owns
// — the step count, the global grad norm and clipping, AdamW — behind the TrainBackend interface
// of src/train/backend.ts, so src/train/loop.ts and the curriculum run on it unchanged. The same
// semantics as the WebGPU backend (src/train/step.ts): a NaN/Inf gradient skips the update and
// leaves the step count; dropout masks come from the step count (identical masks on both).
import { UsageError } from '../errors.js';
import type { Adapter } from '../io/peft.js';
import type { LoraOptions } from '../lora.js';
import { readSampleStats, type ModelBatch, type SampleStats } from '../model/llama.js';
import { SEGMENT_FLOATS } from '../kernels/segment.js';
import { DEFAULT_ADAMW, stepLossTokens, type AdamwOptions, type OptimizerState, type StepResult, type TrainBackend } from '../train/backend.js';
import { WasmKernels, type WasmKernelOptions } from './kernels.js';
import { loadWasmModel, wasmModelFromStore, type WasmModel } from './model.js';
import type { ModelConfig } from '../io/config.js';
import type { TensorStore } from '../io/safetensors.js';
import { adamw, gradNorm } from './ops.js';

export class WasmBackend implements TrainBackend {
  readonly name = 'wasm';
  /** AdamW's t: updates applied so far. */
  t = 0;
  /** Fault injection for tests: the n-th calls of step() (1-based) get a NaN in their first gradient. */
  nanSteps = new Set<number>();
  private calls = 0;

  constructor(readonly model: WasmModel) {}

  async step(micro: ModelBatch[], opt: AdamwOptions = DEFAULT_ADAMW): Promise<StepResult> {
    const model = this.model, k = model.k;
    const params = model.params();
    const lossTokens = stepLossTokens(params.length, micro);
    const t = this.t + 1;
    for (const p of params) k.zero(p.grad, p.n * 4);
    const stats = model.trainStep(micro, { step: t, lossTokens });
    if (this.nanSteps.has(++this.calls)) k.f32(params[0].grad, 1)[0] = NaN;
    const [norm, scale, bad] = gradNorm(k, params.map((p) => ({ ptr: p.grad, n: p.n })), opt.maxGradNorm > 0 ? opt.maxGradNorm : Infinity);
    if (!bad) {
      for (const p of params)
        adamw(k, { param: p.ptr, grad: p.grad, m: p.m, v: p.v, n: p.n, lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: p.decay ? opt.weightDecay : 0, step: t, clip: scale });
      this.t = t;
    }
    let sum = 0;
    const samples = stats.map((r) => {
      const list = readSampleStats(r, r.length / SEGMENT_FLOATS);
      for (const st of list) sum += st.nll * st.tokens;
      return list;
    });
    return { loss: sum / lossTokens, gradNorm: norm, tokens: lossTokens, samples, skipped: bad !== 0 };
  }

  async score(batch: ModelBatch): Promise<SampleStats[]> {
    return this.model.score(batch);
  }

  async saveState(): Promise<OptimizerState> {
    const k = this.model.k;
    return {
      step: this.t,
      tensors: this.model.params().map((p) => ({ name: p.name, shape: [...p.shape], value: k.readF32(p.ptr, p.n), m: k.readF32(p.m, p.n), v: k.readF32(p.v, p.n) })),
    };
  }

  async loadState(s: OptimizerState): Promise<void> {
    const params = this.model.params(), k = this.model.k;
    if (s.tensors.length !== params.length) throw new UsageError(`optimizer state holds ${s.tensors.length} tensors but the model trains ${params.length}`);
    params.forEach((p, i) => {
      const t = s.tensors[i];
      if (t.name !== p.name || t.value.length !== p.n || t.m.length !== p.n || t.v.length !== p.n)
        throw new UsageError(`optimizer state tensor ${i} is '${t.name}' [${t.shape}], but the model's is '${p.name}' [${p.shape}]`);
    });
    params.forEach((p, i) => {
      k.write(p.ptr, s.tensors[i].value);
      k.write(p.m, s.tensors[i].m);
      k.write(p.v, s.tensors[i].v);
    });
    this.t = s.step;
  }

  async adapter(baseModelNameOrPath: string | null = null): Promise<Adapter> {
    return this.model.adapter(baseModelNameOrPath);
  }

  memory(): { live: number; peak: number } {
    return { ...this.model.k.usage };
  }

  /** Disposes the model and the kernels (their memory and threads) it runs on. */
  dispose(): void {
    this.model.dispose();
    this.model.k.dispose();
  }
}

/** A model (a folder, or a config and an open tensor store — a browser's files) on a fresh wasm backend (its own memory and threads). */
export async function createWasmBackend(source: string | { cfg: ModelConfig; store: TensorStore }, o: WasmKernelOptions & { full?: boolean } = {}): Promise<WasmBackend> {
  const k = await WasmKernels.create(o);
  try {
    const model = typeof source === 'string' ? await loadWasmModel(k, source, { full: o.full }) : await wasmModelFromStore(k, source.cfg, source.store, { full: o.full });
    return new WasmBackend(model);
  } catch (e) {
    k.dispose();
    throw e;
  }
}

/**
 * TrainEnv.createBackend on the wasm backend (src/train/train.ts; a browser without WebGPU passes
 * its config and tensor store): the model loaded, LoRA attached (or every weight trainable), the
 * activation policy and the test-only NaN injection set.
 */
export async function wasmTrainBackend(
  source: string | { cfg: ModelConfig; store: TensorStore }, b: { lora: LoraOptions | null; seed: number; recompute: boolean },
  nanSteps: Set<number> = new Set(), o: WasmKernelOptions = {},
): Promise<WasmBackend> {
  const backend = await createWasmBackend(source, { ...o, full: b.lora === null });
  if (b.lora) backend.model.attachLora(b.lora, b.seed);
  backend.model.recompute = b.recompute;
  backend.nanSteps = nanSteps;
  return backend;
}
