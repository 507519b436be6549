// The WebGPU training backend: the model's forward/backward (src/model/llama.ts) plus what the
// optimizer owns — the step count, the global grad norm and clipping, AdamW, and the read-back —
// in one command encoder and one queue submission per optimizer step. Only the grad norm and the
// per-sample stats come back; all encoding and the submit happen before the first await, so a
// caller may issue the next step before this one's promise resolves.
import { DeviceLostError, UsageError } from '../errors.js';
import type { Adapter } from '../io/peft.js';
import { adamw, adamwScalars } from '../kernels/adamw.js';
import { gradNorm } from '../kernels/gradnorm.js';
import { SEGMENT_FLOATS } from '../kernels/segment.js';
import { readSampleStats, type LlamaModel, type ModelBatch, type SampleStats } from '../model/llama.js';
import { currentAdapter } from '../model/load.js';
import { DEFAULT_ADAMW, stepLossTokens, type AdamwOptions, type OptimizerState, type StepResult, type TrainBackend } from './backend.js';

export class WebGpuBackend implements TrainBackend {
  readonly name = 'webgpu';
  /** AdamW's t: updates applied so far. */
  t = 0;
  /** Fault injection for tests: the n-th calls of step() (1-based) get a NaN in their first gradient. */
  nanSteps = new Set<number>();
  /** Fault injection for tests: at this call of step() the device is reported lost. */
  loseDeviceAt = 0;
  private calls = 0;

  /** Read-back buffers not in use (a step in flight holds its own): reused, so a step allocates nothing. */
  private staging: GPUBuffer[] = [];

  constructor(readonly model: LlamaModel) {}

  private stagingBuffer(bytes: number): GPUBuffer {
    const i = this.staging.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.staging.splice(i, 1)[0];
    return this.model.gpu.staging(bytes, 'step.readback');
  }

  async step(micro: ModelBatch[], opt: AdamwOptions = DEFAULT_ADAMW): Promise<StepResult> {
    const model = this.model, g = model.gpu;
    const params = model.params();
    const lossTokens = stepLossTokens(params.length, micro);
    const t = ++this.t;
    const poisoned = this.nanSteps.has(++this.calls);

    const enc = g.device.createCommandEncoder({ label: `train step ${t}` });
    for (const p of params) enc.clearBuffer(p.grad);
    const statsOut = model.encodeTrainStep(enc, micro, { step: t, lossTokens });
    if (poisoned) enc.copyBufferToBuffer(g.scratch('step.nan', 16), 0, params[0].grad, 0, 4);
    const clip = g.scratch('step.clip', 16); // [norm, scale, bad, 0]
    gradNorm(g, enc, { grads: params.map((p) => ({ buffer: p.grad, n: p.n })), out: clip, maxNorm: opt.maxGradNorm > 0 ? opt.maxGradNorm : Infinity });
    // AdamW's step-dependent scalars go in two small buffers written now (queue order puts the
    // write before this submission): the uniforms and bind groups stay the same every step
    const scalars = (decay: boolean) => {
      const buf = g.scratch(decay ? 'step.adamw.decay' : 'step.adamw', 16);
      g.write(buf, adamwScalars({ lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, weightDecay: decay ? opt.weightDecay : 0, step: t }));
      return buf;
    };
    const sc = { true: scalars(true), false: scalars(false) };
    for (const p of params) {
      adamw(g, enc, {
        param: p.buf, grad: p.grad, m: p.m, v: p.v, n: p.n, lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps,
        weightDecay: p.decay ? opt.weightDecay : 0, step: t, clip, scalars: sc[`${p.decay}`],
      });
    }
    // the scalars to read back, copied into one small buffer inside the same submission
    const totalS = statsOut.reduce((s, o) => s + o.S, 0);
    const readback = this.stagingBuffer((4 + totalS * SEGMENT_FLOATS) * 4);
    enc.copyBufferToBuffer(clip, 0, readback, 0, 16);
    let off = 16;
    for (const o of statsOut) {
      enc.copyBufferToBuffer(o.buf, 0, readback, off, o.S * SEGMENT_FLOATS * 4);
      off += o.S * SEGMENT_FLOATS * 4;
    }
    if (poisoned) g.write(g.scratch('step.nan', 16), Float32Array.of(NaN, NaN, NaN, NaN));
    g.finish(enc);
    if (this.calls === this.loseDeviceAt) g.fail(new DeviceLostError('unknown', 'injected by ZPD_WGPU_INJECT_LOST for a test'));
    const r = new Float32Array(await g.readStaging(readback, (4 + totalS * SEGMENT_FLOATS) * 4, true));
    this.staging.push(readback);
    let pos = 4, sum = 0;
    const samples = statsOut.map((o) => {
      const list = readSampleStats(r, o.S, pos);
      pos += o.S * SEGMENT_FLOATS;
      for (const st of list) sum += st.nll * st.tokens;
      return list;
    });
    const skipped = r[2] !== 0;
    // the GPU left everything as it was; so does the step count, unless a later step was issued
    if (skipped && this.t === t) this.t = t - 1;
    return { loss: sum / lossTokens, gradNorm: r[0], tokens: lossTokens, samples, skipped };
  }

  score(batch: ModelBatch): Promise<SampleStats[]> {
    return this.model.score(batch);
  }

  async saveState(): Promise<OptimizerState> {
    const g = this.model.gpu;
    const tensors = [];
    for (const p of this.model.params()) {
      tensors.push({ name: p.name, shape: [...p.shape], value: await g.readF32(p.buf, p.n), m: await g.readF32(p.m, p.n), v: await g.readF32(p.v, p.n) });
    }
    return { step: this.t, tensors };
  }

  async loadState(s: OptimizerState): Promise<void> {
    const params = this.model.params();
    if (s.tensors.length !== params.length) throw new UsageError(`optimizer state holds ${s.tensors.length} tensors but the model trains ${params.length}`);
    params.forEach((p, i) => {
      const t = s.tensors[i];
      if (t.name !== p.name || t.value.length !== p.n || t.m.length !== p.n || t.v.length !== p.n)
        throw new UsageError(`optimizer state tensor ${i} is '${t.name}' [${t.shape}], but the model's is '${p.name}' [${p.shape}]`);
    });
    const g = this.model.gpu;
    params.forEach((p, i) => {
      g.write(p.buf, s.tensors[i].value);
      g.write(p.m, s.tensors[i].m);
      g.write(p.v, s.tensors[i].v);
    });
    this.t = s.step;
    await g.sync();
  }

  adapter(baseModelNameOrPath: string | null = null): Promise<Adapter> {
    return currentAdapter(this.model, baseModelNameOrPath);
  }

  memory(): { live: number; peak: number } {
    return { ...this.model.gpu.memory };
  }

  dispose(): void {
    for (const b of this.staging) this.model.gpu.retire(b);
    this.staging = [];
    this.model.dispose();
  }
}
