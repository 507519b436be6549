// The page's side of the training worker: promises and callbacks over ./protocol.ts's messages.
//   const trainer = new TrainerWorker(new Worker(new URL('zpd-wgpu/dist/browser/worker.js', import.meta.url), { type: 'module' }));
//   const summary = await trainer.train({ model: { kind: 'url', url }, data, options: { steps: 100 }, run: 'my-run' }, { onProgress });
//   trainer.stop();                          // the run ends after this step, with a checkpoint
//   await trainer.train({ ...same, options: { ...same.options, resume: true } });
//   const files = await trainer.adapter('my-run');   // adapter_config.json + adapter_model.safetensors as Blobs
import { ZpdError } from '../errors.js';
import type { ProgressEvent, TrainSummary } from '../train/loop.js';
import type { AdapterInfo, ErrorInfo, FromWorker, GenerateRequest, RunInfo, ToWorker, TrainRequest } from './protocol.js';

/** An error the worker reported, with its kind (name: DeviceLostError, LimitError, FormatError, …) and hint. */
export class WorkerError extends ZpdError {
  constructor(e: ErrorInfo) {
    super(e.message, e.hint);
    this.name = e.name;
  }
}

export interface TrainCallbacks {
  onProgress?: (e: ProgressEvent) => void;
  /** a resumed run's metrics.jsonl lines up to its checkpoint */
  onHistory?: (metrics: Record<string, unknown>[]) => void;
  /** model bytes arriving (network or cache) */
  onBytes?: (file: string, bytes: number, total: number, fromCache: boolean) => void;
  /** weights uploaded to the GPU */
  onTensor?: (name: string, done: number, total: number) => void;
}

/** A request without its id (the client numbers them). */
type Request = ToWorker extends infer M ? (M extends { id: number } ? Omit<M, 'id'> : never) : never;

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  cb: TrainCallbacks & { onText?: (t: string) => void };
}

export class TrainerWorker {
  private next = 1;
  private pending = new Map<number, Pending>();

  constructor(readonly worker: Worker) {
    worker.addEventListener('message', (ev: MessageEvent<FromWorker>) => this.receive(ev.data));
    worker.addEventListener('error', (ev) => this.failAll(new ZpdError(`the training worker failed to start: ${ev.message || 'see the console'}`, 'check that worker.js is served next to index.js with a JavaScript MIME type')));
  }

  private receive(m: FromWorker) {
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.type) {
      case 'progress': return p.cb.onProgress?.(m.event);
      case 'history': return p.cb.onHistory?.(m.metrics);
      case 'bytes': return p.cb.onBytes?.(m.file, m.bytes, m.total, m.fromCache);
      case 'tensor': return p.cb.onTensor?.(m.name, m.done, m.total);
      case 'text': return p.cb.onText?.(m.text);
      case 'result':
        this.pending.delete(m.id);
        return p.resolve(m.value);
      case 'error':
        this.pending.delete(m.id);
        return p.reject(new WorkerError(m.error));
    }
  }

  private failAll(e: Error) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private call<T>(msg: Request, cb: Pending['cb'] = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, cb });
      this.worker.postMessage({ ...msg, id });
    });
  }

  /** Train (or resume, with options.resume) in the worker; resolves with the run's summary. */
  train(req: TrainRequest, cb: TrainCallbacks = {}): Promise<TrainSummary> {
    return this.call({ type: 'train', req }, cb);
  }

  /** Stop the running run after its current step; its train() promise resolves with status 'interrupted'. */
  stop(): void {
    this.worker.postMessage({ type: 'stop' } satisfies ToWorker);
  }

  /** Text from the model with a run's adapter (greedy unless temperature is set); onText sees it grow. */
  generate(req: GenerateRequest, onText?: (textSoFar: string) => void): Promise<{ prompt: string; text: string; ids: number[]; tokensPerSecond: number; backend: 'webgpu' | 'wasm' }> {
    return this.call({ type: 'generate', req }, { onText });
  }

  /** The run's PEFT adapter as two files (the final one, else the last checkpoint's), or null. */
  async adapter(run: string): Promise<{ from: 'final' | 'checkpoint'; files: { name: string; blob: Blob }[] } | null> {
    const r = await this.call<{ from: 'final' | 'checkpoint'; files: { name: string; bytes: Uint8Array }[] } | null>({ type: 'adapter', run });
    return r && { from: r.from, files: r.files.map((f) => ({ name: f.name, blob: new Blob([f.bytes as Uint8Array<ArrayBuffer>], { type: f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }) })) };
  }

  /** The runs kept in this origin's OPFS. */
  runs(): Promise<RunInfo[]> {
    return this.call({ type: 'runs' });
  }

  deleteRun(run: string): Promise<void> {
    return this.call({ type: 'delete', run });
  }

  /** The worker's WebGPU adapter: vendor, architecture, features and the limits the device got. */
  gpu(): Promise<AdapterInfo> {
    return this.call({ type: 'gpu' });
  }

  terminate(): void {
    this.worker.terminate();
    this.failAll(new ZpdError('the training worker was terminated'));
  }
}
