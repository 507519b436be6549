// Timing of the wasm backend's LoRA training step and scoring pass, for `zpd-wgpu bench` and
// scripts/bench-wasm.mjs: the same inputs the WebGPU measurement takes (a config.json object,
// named f32 weights, one batch, the LoRA initialisation), the same result shape.
import { configFromJson, type ModelConfig } from '../io/config.js';
import { initAdapter, type Adapter } from '../io/peft.js';
import { bytesSource, safetensorsBytes, SafetensorsFile } from '../io/safetensors.js';
import { DEFAULT_LORA } from '../lora.js';
import type { ModelBatch } from '../model/llama.js';
import { DEFAULT_ADAMW, type AdamwOptions } from '../train/backend.js';
import { WasmBackend } from './backend.js';
import { WasmKernels, type WasmKernelOptions } from './kernels.js';
import { wasmModelFromStore } from './model.js';

export interface WasmStepSpec {
  /** config.json's fields */
  config: Record<string, unknown>;
  r: number;
  alpha: number;
  /** timed steps and scoring passes (after one warm-up each) */
  steps: number;
}

export interface WasmStepResult {
  stepMs: number;
  scoreMs: number;
  /** tokens per second of the step and of the scoring pass (B·T tokens per batch) */
  stepTokensPerSecond: number;
  scoreTokensPerSecond: number;
  /** the warm-up step's and the first timed step's losses (a peer with the same inputs should agree) */
  losses: number[];
  /** bytes of wasm memory at most */
  peak: number;
  threads: number;
  isa: 'relaxed-simd' | 'simd';
  /** ms of the step spent in each part (one extra step, timed by phase); mmGflops: the matmuls' GFLOP/s */
  phases: Record<string, number>;
}

/** A prepared wasm model for timing: one optimizer step (its loss) or one scoring pass per call. */
export interface WasmStepRunner {
  step(): Promise<number>;
  score(): void;
  kernels: WasmKernels;
  backend: WasmBackend;
  dispose(): void;
}

/**
 * `spec`'s model on a fresh wasm backend from named f32 weights, LoRA attached from `adapter`
 * (default PEFT's initialisation, seed 1, so a WebGPU or PyTorch peer can start from the same).
 */
export async function wasmStepRunner(
  spec: Pick<WasmStepSpec, 'config' | 'r' | 'alpha'>, weights: { name: string; shape: number[]; data: Float32Array }[], batch: ModelBatch,
  o: WasmKernelOptions & { adapter?: Adapter; opt?: AdamwOptions } = {},
): Promise<WasmStepRunner> {
  const cfg: ModelConfig = configFromJson(spec.config);
  const k = await WasmKernels.create(o);
  const store = await SafetensorsFile.open(bytesSource(safetensorsBytes(weights.map((w) => ({ ...w, dtype: 'F32' as const }))), 'random.safetensors'));
  let backend: WasmBackend;
  try {
    backend = new WasmBackend(await wasmModelFromStore(k, cfg, store, {}));
  } catch (e) {
    k.dispose();
    throw e;
  }
  backend.model.attachLora({}, 1, o.adapter ?? initAdapter(cfg, { ...DEFAULT_LORA, r: spec.r, alpha: spec.alpha }, 1));
  const opt = o.opt ?? { ...DEFAULT_ADAMW, lr: 1e-3 };
  return {
    kernels: k, backend,
    step: async () => (await backend.step([batch], opt)).loss,
    score: () => void backend.model.score(batch),
    dispose: () => backend.dispose(),
  };
}

/** Time the LoRA step and the scoring pass of `spec` on a fresh wasm backend (see wasmStepRunner). */
export async function benchWasmStep(
  spec: WasmStepSpec, weights: { name: string; shape: number[]; data: Float32Array }[], batch: ModelBatch,
  o: WasmKernelOptions & { adapter?: Adapter; opt?: AdamwOptions; say?: (s: string) => void } = {},
): Promise<WasmStepResult> {
  const r = await wasmStepRunner(spec, weights, batch, o);
  const k = r.kernels;
  try {
    const N = batch.B * batch.T;
    o.say?.('zpd-wgpu: wasm LoRA step, warm-up');
    const losses = [await r.step()];
    let t0 = performance.now();
    for (let s = 0; s < spec.steps; s++) {
      o.say?.(`zpd-wgpu: wasm LoRA step ${s + 1}/${spec.steps}`);
      const loss = await r.step();
      if (s === 0) losses.push(loss);
    }
    const stepMs = (performance.now() - t0) / spec.steps;
    o.say?.('zpd-wgpu: wasm scoring pass');
    r.score();
    t0 = performance.now();
    for (let s = 0; s < spec.steps; s++) r.score();
    const scoreMs = (performance.now() - t0) / spec.steps;
    const phases = profileStep(k, r.step);
    return {
      stepMs, scoreMs, stepTokensPerSecond: (N * 1000) / stepMs, scoreTokensPerSecond: (N * 1000) / scoreMs,
      losses, peak: k.usage.peak, threads: k.threads, isa: k.isa, phases: await phases,
    };
  } finally {
    r.dispose();
  }
}

/** Milliseconds per kernel family over one call of `f` (wraps WasmKernels.run while it runs). */
async function profileStep(k: WasmKernels, f: () => Promise<unknown>): Promise<Record<string, number>> {
  const run = k.run.bind(k);
  const ms: Record<string, number> = {};
  let macs = 0;
  k.run = (op, work, ...args) => {
    const t0 = performance.now();
    run(op, work, ...args);
    const name = op.startsWith('mm_') ? op : op.replace(/_(forward|backward|chunk|dweight)+$/, '');
    ms[name] = (ms[name] ?? 0) + performance.now() - t0;
    if (op === 'mm_compute') macs += work; // M·N·K
  };
  try {
    const t0 = performance.now();
    await f();
    ms.total = performance.now() - t0;
  } finally {
    k.run = run;
  }
  ms.mmGflops = (2 * macs) / (ms.mm_compute * 1e6); // the micro-kernel's rate over the step's matmuls
  for (const key of Object.keys(ms)) ms[key] = Math.round(ms[key] * 10) / 10;
  return ms;
}
