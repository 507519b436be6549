// The training worker (dist/browser/worker.js): trainInBrowser, generation and the runs kept in
// OPFS, behind the messages of ./protocol.ts, so that a page stays responsive while the GPU
// trains — or the wasm backend, where the browser has no WebGPU. Start it with
// new Worker(url, {type: 'module'}) and talk to it with TrainerWorker.
import { DeviceLostError, ZpdError } from '../errors.js';
import { createGpu } from '../gpu/device.js';
import type { Gpu } from '../gpu/gpu.js';
import type { HttpOptions } from '../io/http.js';
import {
  dataFromFile, dataFromUrl, generateText, loadTuned, modelFilesFromFiles, modelFilesFromUrl, openModelFiles, runAdapterFiles, trainInBrowser,
  type DataFile, type OpenedModel, type TunedModel,
} from '../train/browser.js';
import { OpfsRunFolder } from '../train/opfs.js';
import { resolveBrowserBackend } from '../wasm/select.js';
import type { AdapterInfo, DataSpec, ErrorInfo, FromWorker, GenerateRequest, ModelSpec, RunInfo, ToWorker, TrainRequest } from './protocol.js';

// a dedicated worker's global scope (typed here: the project's TypeScript lib is the DOM's)
const scope = self as unknown as { postMessage(m: unknown, transfer: Transferable[]): void; addEventListener(type: 'message', f: (ev: MessageEvent) => void): void };
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

let gpu: Promise<Gpu> | null = null;
/** One device for the worker's life; a lost one is replaced on the next request (without WebGPU: a NoAdapterError each time, and the wasm backend runs). */
function device(): Promise<Gpu> {
  gpu ??= createGpu().catch((e) => {
    gpu = null;
    throw e;
  });
  return gpu;
}

let running: AbortController | null = null;
let tuned: { key: string; t: TunedModel } | null = null;
const opened = new Map<string, Promise<OpenedModel>>();

function specKey(m: ModelSpec): string {
  return m.kind === 'url' ? `url:${m.url}` : `files:${m.name ?? ''}:${m.files.map((f) => `${f.name}/${f.size}/${f.lastModified}`).join(',')}`;
}

async function openModel(m: ModelSpec, id: number): Promise<OpenedModel> {
  const key = specKey(m);
  let p = opened.get(key);
  if (!p) {
    const http: HttpOptions = { onBytes: (file, bytes, total, fromCache) => post({ type: 'bytes', id, file, bytes, total, fromCache }) };
    p = (async () => openModelFiles(m.kind === 'url' ? await modelFilesFromUrl(m.url, http) : modelFilesFromFiles(m.files, m.name)))();
    opened.set(key, p);
    p.catch(() => opened.delete(key));
  }
  return p;
}

async function data(d: DataSpec): Promise<DataFile> {
  if (d.kind === 'url') return dataFromUrl(d.url);
  if (d.kind === 'file') return dataFromFile(d.file);
  return { name: d.name, bytes: d.bytes };
}

async function train(id: number, req: TrainRequest) {
  if (running) throw new ZpdError('a run is already training in this worker', 'stop it first, or wait for it to end');
  const ac = new AbortController();
  running = ac;
  try {
    const model = await openModel(req.model, id);
    const folder = await OpfsRunFolder.open(req.run);
    const [trainData, evalData] = await Promise.all([data(req.data), req.evalData ? data(req.evalData) : null]);
    if (tuned) tuned.t.dispose(), (tuned = null); // the memory goes to training
    return await trainInBrowser(
      { model, data: trainData, evalData, embedded: req.embedded },
      req.options,
      {
        folder, gpu: device, signal: ac.signal, loseDeviceAt: req.loseDeviceAt,
        onTensor: (name, done, total) => post({ type: 'tensor', id, name, done, total }),
        onProgress: (event) => {
          post({ type: 'progress', id, event });
          if (event.type === 'start' && event.resumedAt > 0) {
            // the resumed run's earlier lines (the loop has cut what came after its checkpoint)
            folder.read('metrics.jsonl').then((b) => {
              const metrics = b ? new TextDecoder().decode(b).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
              post({ type: 'history', id, metrics: metrics.filter((m) => typeof m.step === 'number' && m.step <= event.resumedAt) });
            }, () => {});
          }
        },
      },
    );
  } catch (e) {
    if (e instanceof DeviceLostError && gpu) {
      const lost = gpu;
      gpu = null;
      lost.then((d) => d.destroy(), () => {});
    }
    throw e;
  } finally {
    running = null;
  }
}

async function generateFor(id: number, req: GenerateRequest) {
  if (running) throw new ZpdError('the model is training', 'wait for the run to end, or stop it, then try the prompt');
  const key = `${specKey(req.model)}|${req.run ?? ''}|${req.backend ?? 'webgpu'}`;
  if (!tuned || tuned.key !== key) {
    if (tuned) tuned.t.dispose(), (tuned = null);
    const where = await resolveBrowserBackend(req.backend ?? 'webgpu', device);
    const model = await openModel(req.model, id);
    tuned = { key, t: await loadTuned(where.gpu, model, req.run ? await OpfsRunFolder.open(req.run) : null) };
  }
  return generateText(tuned.t, req.prompt, {
    maxNewTokens: req.maxNewTokens ?? 48, temperature: req.temperature ?? 0, topP: req.topP ?? 1, seed: req.seed ?? 0,
    onText: (text) => post({ type: 'text', id, text }),
  });
}

async function runInfo(name: string): Promise<RunInfo> {
  const f = await OpfsRunFolder.open(name);
  const json = await f.read('run.json');
  const run = json ? (JSON.parse(new TextDecoder().decode(json)) as { options?: RunInfo['options']; inputs?: RunInfo['inputs']; resolved?: { steps?: number }; summary?: { status: RunInfo['status'] } | null }) : null;
  const metrics = await f.read('metrics.jsonl');
  let step = 0;
  if (metrics) for (const l of new TextDecoder().decode(metrics).split('\n')) if (l.startsWith('{"type":"step"')) step = Math.max(step, (JSON.parse(l) as { step: number }).step);
  const checkpoint = (await f.exists('checkpoint/state.msgpack')) || (await f.exists('checkpoint.old/state.msgpack')) || (await f.exists('checkpoint.tmp/state.msgpack'));
  return {
    name, status: !run ? 'empty' : (run.summary?.status ?? 'incomplete'), step, steps: run?.resolved?.steps ?? null, checkpoint,
    adapter: (await runAdapterFiles(f)) !== null, options: run?.options ?? null, inputs: run?.inputs ?? null,
  };
}

async function adapterInfo(): Promise<AdapterInfo> {
  const g = await device();
  const limits: Record<string, number> = {};
  for (const k in g.limits) {
    const v = (g.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') limits[k] = v;
  }
  return { ...g.info, features: [...g.features].sort(), limits };
}

function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) return { name: e.name, message: e.message, ...(e instanceof ZpdError && e.hint ? { hint: e.hint } : {}) };
  return { name: 'Error', message: String(e) };
}

async function handle(m: ToWorker): Promise<void> {
  if (m.type === 'stop') {
    running?.abort();
    return;
  }
  try {
    let value: unknown, transfer: Transferable[] = [];
    switch (m.type) {
      case 'train':
        value = await train(m.id, m.req);
        break;
      case 'generate':
        value = await generateFor(m.id, m.req);
        break;
      case 'adapter': {
        const found = await runAdapterFiles(await OpfsRunFolder.open(m.run));
        value = found && { from: found.from, files: found.files.map((f) => ({ name: f.name, bytes: f.bytes })) };
        transfer = found ? found.files.map((f) => f.bytes.buffer as ArrayBuffer) : [];
        break;
      }
      case 'runs':
        value = await Promise.all((await OpfsRunFolder.list()).map(runInfo));
        break;
      case 'delete':
        if (running) throw new ZpdError('a run is training', 'stop it before deleting runs');
        await OpfsRunFolder.delete(m.run);
        break;
      case 'gpu':
        value = await adapterInfo();
        break;
    }
    post({ type: 'result', id: m.id, value }, transfer);
  } catch (e) {
    post({ type: 'error', id: m.id, error: errorInfo(e) });
  }
}

scope.addEventListener('message', (ev: MessageEvent<ToWorker>) => void handle(ev.data));
