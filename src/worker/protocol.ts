// The messages between a page and the training worker (src/worker/worker.ts, built as
// dist/browser/worker.js). A page uses them through TrainerWorker (./client.ts).
import type { ProgressEvent, TrainSummary } from '../train/loop.js';
import type { TrainOptions } from '../train/options.js';

/** Where the model comes from: a folder URL (read by range requests, cached), or picked/dropped files. */
export type ModelSpec = { kind: 'url'; url: string } | { kind: 'files'; files: File[]; name?: string };
/** Where a data file comes from. */
export type DataSpec = { kind: 'url'; url: string } | { kind: 'file'; file: File } | { kind: 'bytes'; name: string; bytes: Uint8Array };

export interface TrainRequest {
  model: ModelSpec;
  data: DataSpec;
  evalData?: DataSpec | null;
  /** the embedded default model and data: the embedded run's defaults apply */
  embedded?: boolean;
  /** train's options (TRAIN_SPECS); model, data and out come from the fields above */
  options: Partial<TrainOptions>;
  /** the run's folder name in OPFS (under zpd-wgpu-runs/) */
  run: string;
  /** tests: report the device lost at this step of the session */
  loseDeviceAt?: number;
}

export interface GenerateRequest {
  model: ModelSpec;
  /** the OPFS run whose adapter is used (null: the base model) */
  run: string | null;
  prompt: string;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** where the model runs: webgpu (default; the wasm backend where the browser has no WebGPU), wasm, or auto */
  backend?: TrainOptions['backend'];
}

/** What the worker knows of a run kept in OPFS. */
export interface RunInfo {
  name: string;
  /** from run.json: done, early-stopped, interrupted; 'incomplete' when the run ended without a summary (a closed tab, a lost device) */
  status: TrainSummary['status'] | 'incomplete' | 'empty';
  /** steps done (the last step in metrics.jsonl) and the budget */
  step: number;
  steps: number | null;
  checkpoint: boolean;
  adapter: boolean;
  options: Partial<TrainOptions> | null;
  /** run.json's inputs: model and data (URLs or file names), whether it was the embedded default */
  inputs: { model?: string; data?: string; evalData?: string | null; embedded?: boolean } | null;
}

export interface ErrorInfo {
  name: string;
  message: string;
  hint?: string;
}

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  fallback: boolean;
  features: string[];
  limits: Record<string, number>;
}

export type ToWorker =
  | { type: 'train'; id: number; req: TrainRequest }
  | { type: 'stop' }
  | { type: 'generate'; id: number; req: GenerateRequest }
  | { type: 'adapter'; id: number; run: string }
  | { type: 'runs'; id: number }
  | { type: 'delete'; id: number; run: string }
  | { type: 'gpu'; id: number };

export type FromWorker =
  | { type: 'progress'; id: number; event: ProgressEvent }
  /** a resumed run's earlier metrics.jsonl lines (so the charts show the whole run) */
  | { type: 'history'; id: number; metrics: Record<string, unknown>[] }
  | { type: 'bytes'; id: number; file: string; bytes: number; total: number; fromCache: boolean }
  | { type: 'tensor'; id: number; name: string; done: number; total: number }
  | { type: 'text'; id: number; text: string }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: ErrorInfo };
