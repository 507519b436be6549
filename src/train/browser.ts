// train() without a file system: the model folder as named byte sources (a URL read by range
// requests, the files of a picked folder, or bytes), the data as bytes, the run folder any
// RunFolder (OpfsRunFolder in a browser). It builds the same TrainEnv as Node's train()
// (src/train/train.ts: the same held-out split, records, hashes and backend) and runs the one
// training loop, runTraining. Where the browser has no WebGPU the run and generation go to the
// wasm backend (resolveBrowserBackend). src/worker/ runs it in a Web Worker.
import { FormatError, UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import { parseConfig, type ModelConfig } from '../io/config.js';
import { fetchBytes, httpSource, type HttpOptions } from '../io/http.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, readAdapter, type Adapter } from '../io/peft.js';
import { blobSource, bytesSource, openShards, SafetensorsFile, type ByteSource, type TensorStore } from '../io/safetensors.js';
import { generate, type GenerateOptions, type LlamaModel } from '../model/llama.js';
import { attachLora, modelFromStore, type LoadOptions } from '../model/load.js';
import { instructionPrompt } from '../data/read.js';
import type { DataRecord } from '../data/read.js';
import { jsonErrorPlace } from '../tokenizer/files.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { CHECKPOINT_DIR, sha256Hex } from './checkpoint.js';
import type { RunFolder } from './io.js';
import { runTraining, type TrainEnv, type TrainHooks, type TrainSummary } from './loop.js';
import { resolveTrainOptions, type TrainOptions } from './options.js';
import { backendProvenance, checkFits, recordsFromBytes, splitHeldOut, stopIdsOf, trainBackend, useRunTiles } from './setup.js';
import { createWasmBackend, wasmTrainBackend } from '../wasm/backend.js';
import { resolveBrowserBackend } from '../wasm/select.js';

/** A model folder without a file system: its files by name (config.json, tokenizer.json, *.safetensors, …). */
export interface ModelFiles {
  /** Where it came from, for messages and run.json: a URL, or the picked folder's name. */
  where: string;
  files: Map<string, ByteSource>;
}

/** A data file's bytes; `name` (its file name: .parquet or JSONL) names it in errors. */
export interface DataFile {
  name: string;
  bytes: Uint8Array;
}

const NOT_A_MODEL = 'a model folder holds config.json, model.safetensors (or model.safetensors.index.json and its shards) and tokenizer.json, as on the Hugging Face hub';
const MODEL_SMALL_FILES = /^(config\.json|generation_config\.json|tokenizer.*\.json|special_tokens_map\.json|model\.safetensors\.index\.json)$/;

/** A model folder on a web server (`base` ends at the folder: …/default/model/ or https://huggingface.co/ORG/NAME/resolve/main/). */
export async function modelFilesFromUrl(base: string, o: HttpOptions = {}): Promise<ModelFiles> {
  const dir = base.endsWith('/') ? base : `${base}/`;
  const files = new Map<string, ByteSource>();
  const small = async (name: string, optional: boolean) => {
    const b = await fetchBytes(`${dir}${name}`, { ...o, optional });
    if (b) files.set(name, bytesSource(b, `${dir}${name}`));
    return b;
  };
  const cfg = await small('config.json', true);
  if (!cfg) throw new UsageError(`${dir} is not a model folder: ${dir}config.json was not found`, NOT_A_MODEL);
  await small('tokenizer.json', false);
  await small('tokenizer_config.json', true);
  const index = await small('model.safetensors.index.json', true);
  const shards = index ? [...new Set(Object.values((JSON.parse(new TextDecoder().decode(index)) as { weight_map?: Record<string, string> }).weight_map ?? {}))] : ['model.safetensors'];
  for (const s of shards) files.set(s, await httpSource(`${dir}${s}`, o));
  return { where: dir, files };
}

/**
 * The files of a folder picked with <input type=file webkitdirectory> or dropped on the page:
 * those at the folder's top level (sub-folders such as onnx/ are ignored).
 */
export function modelFilesFromFiles(list: Iterable<File>, where?: string): ModelFiles {
  const files = new Map<string, ByteSource>();
  let folder: string | undefined;
  for (const f of list) {
    const rel = ((f as File & { webkitRelativePath?: string }).webkitRelativePath ?? '').split('/').filter(Boolean);
    if (rel.length > 2) continue; // deeper than the folder's own files
    folder ??= rel.length === 2 ? rel[0] : undefined;
    files.set(f.name, blobSource(f, f.name));
  }
  return { where: where ?? folder ?? 'the picked files', files };
}

/** A data file picked or dropped on the page. */
export async function dataFromFile(f: Blob & { name?: string }): Promise<DataFile> {
  return { name: f.name ?? 'data.jsonl', bytes: new Uint8Array(await f.arrayBuffer()) };
}

/** A data file on a web server (cached like the model's small files). */
export async function dataFromUrl(url: string, o: HttpOptions = {}): Promise<DataFile> {
  return { name: url, bytes: (await fetchBytes(url, o))! };
}

/** The parts of a model folder train and generate need: config, tokenizer, stop ids, the weights' store. */
export interface OpenedModel {
  where: string;
  cfg: ModelConfig;
  tok: Tokenizer;
  stopIds: number[];
  /** SHA-256 of config.json and tokenizer.json (run.json; a resume checks them) */
  hashes: { modelConfig: string; tokenizer: string };
  /** The weights, tensor by tensor (close() it after loading). */
  openStore(): Promise<TensorStore>;
  /** config.json and the tokenizer files (a full fine-tune writes them beside its weights). */
  smallFiles(): Promise<Record<string, Uint8Array>>;
  /** The model on `gpu`. */
  load(gpu: Gpu, opts?: LoadOptions): Promise<LlamaModel>;
}

/** `f` on the model's config and open tensor store (a wasm backend's source), the store closed after. */
async function withStore<T>(m: OpenedModel, f: (source: { cfg: ModelConfig; store: TensorStore }) => Promise<T>): Promise<T> {
  const store = await m.openStore();
  try {
    return await f({ cfg: m.cfg, store });
  } finally {
    await store.close();
  }
}

async function whole(src: ByteSource): Promise<Uint8Array> {
  return src.read(0, src.size);
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new FormatError(file, jsonErrorPlace(text, msg), `not valid JSON (${msg})`, 'the file may be truncated or damaged: download it again');
  }
}

/** Check that `m` is a model folder and read its config and tokenizer. Errors say what is missing. */
export async function openModelFiles(m: ModelFiles): Promise<OpenedModel> {
  const name = (f: string) => `${m.where.replace(/\/$/, '')}/${f}`;
  const need = (f: string) => {
    const src = m.files.get(f);
    if (!src) {
      const other = [...m.files.keys()].filter((n) => /\.(bin|pt|pth|gguf|onnx|h5|msgpack)$/.test(n));
      throw new UsageError(
        `${m.where} is not a model folder zpd-wgpu can read: it has no ${f}${other.length ? ` (it has ${other.slice(0, 3).join(', ')}: only safetensors weights are read)` : ''}`,
        NOT_A_MODEL,
      );
    }
    return src;
  };
  const cfgBytes = await whole(need('config.json'));
  const cfg = parseConfig(new TextDecoder().decode(cfgBytes), name('config.json'));
  const tokBytes = await whole(need('tokenizer.json'));
  const tcSrc = m.files.get('tokenizer_config.json');
  const tok = await Tokenizer.fromJSON(parseJson(tokBytes, name('tokenizer.json')), tcSrc ? parseJson(await whole(tcSrc), name('tokenizer_config.json')) : {}, name('tokenizer.json'));
  const index = m.files.get('model.safetensors.index.json');
  if (!index) need('model.safetensors');
  const openStore = async (): Promise<TensorStore> => {
    if (index) return openShards(new TextDecoder().decode(await whole(index)), m.files, name('model.safetensors.index.json'));
    return SafetensorsFile.open(need('model.safetensors'));
  };
  return {
    where: m.where, cfg, tok, stopIds: stopIdsOf(cfg, tok), openStore,
    hashes: { modelConfig: await sha256Hex(cfgBytes), tokenizer: await sha256Hex(tokBytes) },
    async smallFiles() {
      const out: Record<string, Uint8Array> = {};
      for (const [f, src] of m.files) if (MODEL_SMALL_FILES.test(f) && f !== 'model.safetensors.index.json') out[f] = await whole(src);
      return out;
    },
    async load(gpu, opts = {}) {
      const store = await openStore();
      try {
        return await modelFromStore(gpu, cfg, store, opts);
      } finally {
        await store.close();
      }
    },
  };
}

export interface BrowserTrainInputs {
  model: ModelFiles | OpenedModel;
  data: DataFile;
  /** Held-out data; without it a seeded evalSplit of `data` is held out (as train() does). */
  evalData?: DataFile | null;
  /** The embedded default model and data: the embedded run's defaults apply (as train() without model and data). */
  embedded?: boolean;
}

export interface BrowserTrainHooks extends TrainHooks {
  /** The run folder (OpfsRunFolder.open(name) in a browser, or a MemoryRunFolder). */
  folder: RunFolder;
  /**
   * The GPU, or how to get one (default getGpu). options.backend decides as resolveBrowserBackend
   * does: 'webgpu' (the default) runs on it, or on the wasm backend where there is no WebGPU (no
   * navigator.gpu, or no adapter); 'wasm' never asks for it.
   */
  gpu?: Gpu | (() => Promise<Gpu>);
  /** Each weight uploaded to the GPU. */
  onTensor?: (name: string, done: number, total: number) => void;
  /** Fault injection for tests: the backend reports the device lost at this step of this session (1-based). */
  loseDeviceAt?: number;
}

/**
 * Fine-tune a model given as files (train()'s options, without the paths: model, data and out
 * come from `inputs` and `hooks.folder`). Progress, stop (hooks.signal) and resume
 * (options.resume, from the folder's checkpoint) work as in train().
 */
export async function trainInBrowser(inputs: BrowserTrainInputs, options: Partial<TrainOptions>, hooks: BrowserTrainHooks): Promise<TrainSummary> {
  const model = 'files' in inputs.model ? await openModelFiles(inputs.model) : inputs.model;
  const embedded = inputs.embedded ?? false;
  const o = resolveTrainOptions({
    ...options, out: null,
    model: embedded ? null : model.where, data: embedded ? null : inputs.data.name, evalData: embedded ? null : (inputs.evalData?.name ?? null),
  });
  if (o.curriculum === 'reducible') throw new UsageError("the 'reducible' curriculum needs a reference model, which the browser trainer does not load yet: choose another curriculum, or run it in Node (zpd-wgpu train --reference DIR)");
  const { tok } = model;
  const read = (f: DataFile) => recordsFromBytes(f.bytes, f.name, tok, o);
  const trainRead = await read(inputs.data);
  let trainRecords = trainRead.records, evalRecords: DataRecord[], heldOut: number[] | null = null;
  if (inputs.evalData) evalRecords = (await read(inputs.evalData)).records;
  else ({ train: trainRecords, eval: evalRecords, heldOut } = splitHeldOut(trainRecords, o));
  const where = await resolveBrowserBackend(o.backend, hooks.gpu);
  const gpu = where.gpu; // null: the wasm backend, whose load refuses what wasm32's 4 GiB cannot hold
  // the adapter's limits only: a software adapter's memory is the system's, which a page cannot
  // read (navigator.deviceMemory stops at 8 GiB)
  if (gpu) checkFits(model.cfg, o, gpu, null);
  const folder = hooks.folder;
  if (o.resume && gpu) await useRunTiles(folder, gpu);
  const hashes = {
    data: await sha256Hex(inputs.data.bytes),
    evalData: inputs.evalData ? await sha256Hex(inputs.evalData.bytes) : null,
    ...model.hashes,
  };
  const env: TrainEnv = {
    tokenizer: tok, stopIds: model.stopIds, train: trainRecords, eval: evalRecords, folder, baseModel: embedded ? 'zpd-wgpu/default' : model.where,
    provenance: {
      model: model.where, data: inputs.data.name, evalData: inputs.evalData?.name ?? null, heldOutLines: heldOut, skippedLines: trainRead.skipped,
      hashes, ...backendProvenance(where), revision: null, embedded,
    },
    createBackend: (b) => gpu
      ? trainBackend((lo) => model.load(gpu, { ...lo, onTensor: hooks.onTensor }), b, { loseDeviceAt: hooks.loseDeviceAt })
      : withStore(model, (source) => wasmTrainBackend(source, b)),
    modelFiles: () => model.smallFiles(),
  };
  return runTraining(o, env, hooks);
}

/** The adapter a run folder holds: the final one, else its last checkpoint's (a stopped run). */
export async function runAdapterFiles(folder: RunFolder): Promise<{ from: 'final' | 'checkpoint'; files: { name: string; bytes: Uint8Array }[] } | null> {
  for (const [from, dir] of [['final', ''], ['checkpoint', `${CHECKPOINT_DIR}/`]] as const) {
    const cfg = await folder.read(`${dir}${ADAPTER_CONFIG}`), w = await folder.read(`${dir}${ADAPTER_WEIGHTS}`);
    if (cfg && w) return { from, files: [{ name: ADAPTER_CONFIG, bytes: cfg }, { name: ADAPTER_WEIGHTS, bytes: w }] };
  }
  return null;
}

/** A model with a run's adapter on it, ready to generate as the run's prompts were written. */
export interface TunedModel {
  /** the model (on the wasm backend: its generator, which generate() takes like a GPU model) */
  model: LlamaModel;
  opened: OpenedModel;
  /** how prompts are written: as the run's training records were (chat template or instruction) */
  template: 'chat' | 'instruction' | 'raw';
  adapter: 'final' | 'checkpoint' | null;
  backend: 'webgpu' | 'wasm';
  /** Frees the model (on wasm: its memory and threads too). */
  dispose(): void;
}

/**
 * Load `opened` with the adapter of the run in `folder` (none: the base model, raw prompts) on
 * `gpu`, or on the wasm backend when `gpu` is null: `loadTuned((await resolveBrowserBackend('webgpu')).gpu, …)`
 * runs on WebGPU where the browser has it and on wasm where it does not.
 */
export async function loadTuned(gpu: Gpu | null, opened: OpenedModel, folder: RunFolder | null): Promise<TunedModel> {
  const found = folder ? await runAdapterFiles(folder) : null;
  let ad: Adapter | undefined;
  if (found) {
    const [cfgFile, wFile] = found.files;
    ad = await readAdapter(new TextDecoder().decode(cfgFile.bytes), await SafetensorsFile.open(bytesSource(wFile.bytes, `${folder!.where}/${wFile.name}`)), { model: opened.cfg, configFile: `${folder!.where}/${cfgFile.name}` });
  }
  let on: Pick<TunedModel, 'model' | 'backend' | 'dispose'>;
  if (gpu) {
    const model = await opened.load(gpu);
    if (ad) attachLora(model, {}, 0, ad);
    on = { model, backend: 'webgpu', dispose: () => model.dispose() };
  } else {
    const w = await withStore(opened, (source) => createWasmBackend(source));
    if (ad) w.model.attachLora({}, 0, ad);
    on = { model: w.model.asGenerator(), backend: 'wasm', dispose: () => w.dispose() };
  }
  if (!found) return { ...on, opened, template: 'raw', adapter: null };
  const run = await folder!.read('run.json');
  const mode = run ? (JSON.parse(new TextDecoder().decode(run)) as { options?: TrainOptions }).options?.chatTemplate : undefined;
  const template = mode === 'on' || (mode === 'auto' && opened.tok.chatTemplate !== null) ? 'chat' : 'instruction';
  return { ...on, opened, template, adapter: found.from };
}

/** Text after `prompt`, written as the run's training prompts were. */
export async function generateText(t: TunedModel, prompt: string, o: Omit<GenerateOptions, 'stop'> & { onText?: (textSoFar: string) => void } = {}): Promise<{ prompt: string; text: string; ids: number[]; tokensPerSecond: number; backend: TunedModel['backend'] }> {
  const tok = t.opened.tok;
  const text = t.template === 'raw' ? prompt : instructionPrompt(prompt, t.template === 'chat' ? (m, g) => tok.applyChatTemplate(m, { addGenerationPrompt: g }) : undefined);
  const ids: number[] = [];
  const t0 = performance.now();
  const out = await generate(t.model, tok.encode(text), {
    ...o, stop: t.opened.stopIds,
    onToken: (id) => {
      ids.push(id);
      o.onToken?.(id);
      o.onText?.(tok.decode(ids, { skipSpecialTokens: true }));
    },
  });
  return { prompt: text, text: tok.decode(out, { skipSpecialTokens: true }), ids: out, tokensPerSecond: out.length / ((performance.now() - t0) / 1000), backend: t.backend };
}
