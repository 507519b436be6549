// train(), score() and evaluate() for Node: options with paths in, the training loop's
// environment out (the model folder and data files read here, the run folder on the file
// system, the model on the WebGPU backend). A browser builds the same TrainEnv from its own
// files and calls runTraining (src/train/loop.ts) directly.
import { UsageError } from '../errors.js';
import { getGpu } from '../gpu/device.js';
import type { Gpu } from '../gpu/gpu.js';
import { loadConfig, type ModelConfig } from '../io/config.js';
import { readDataset, type DataRecord } from '../data/read.js';
import type { LlamaModel } from '../model/llama.js';
import { loadModel, loadModelAdapter } from '../model/load.js';
import { deriveSeed, Rng } from '../rng.js';
import { loadTokenizer } from '../tokenizer/files.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { sha256Hex } from './checkpoint.js';
import { aggregate, BatchMaker, scoreSamples, toSamples, type EvalResult, type Sample } from './data.js';
import { NodeRunFolder, type RunFolder } from './io.js';
import { runTraining, type TrainEnv, type TrainHooks, type TrainSummary } from './loop.js';
import { resolveTrainOptions, type TrainOptions } from './options.js';
import { WebGpuBackend } from './step.js';
import { backendProvenance, checkFits, checkRecords, readOptions, splitHeldOut, stopIdsOf, trainBackend, useRunTiles, type RecordOptions } from './setup.js';
import { createWasmBackend, wasmTrainBackend } from '../wasm/backend.js';
import { isSoftwareAdapter, resolveBackend } from '../wasm/select.js';
import { sampleIndices } from '../curriculum/strategies.js';
import { exactMatch, type ExactMatchResult } from './eval.js';
import type { SampleScore } from '../curriculum/signals.js';
import { env as envVar, nodeFs, nodeFsSync, nodeOs, nodePath, nodeUrl } from '../platform/node.js';

/** A file or folder shipped with the package (default/model, default/data/…), found from this module. */
export async function embeddedPath(rel: string): Promise<string> {
  const { fileURLToPath } = await nodeUrl();
  const { existsSync } = await nodeFsSync();
  const { join, dirname } = await nodePath();
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    const p = join(dir, 'default', rel);
    if (existsSync(p)) return p;
  }
  throw new UsageError(`the embedded default (${rel}) is missing from this installation; give --model and --data, or reinstall zpd-wgpu`);
}

/** The model folder's tokenizer, with the stop ids (config eos_token_id ∪ the tokenizer's EOS). */
export async function modelTokenizer(dir: string): Promise<{ tok: Tokenizer; cfg: ModelConfig; stopIds: number[] }> {
  const { stat } = await nodeFs();
  if (!(await stat(dir).catch(() => null))?.isDirectory())
    throw new UsageError(`--model ${dir}: no such folder (give a Hugging Face model folder: config.json, *.safetensors, tokenizer.json)`);
  const cfg = await loadConfig(dir);
  const tok = await loadTokenizer(dir);
  return { tok, cfg, stopIds: stopIdsOf(cfg, tok) };
}

/** Records of a data file as train, score and eval read them (chat templates applied as asked). */
export async function readRecords(file: string, tok: Tokenizer, o: RecordOptions): Promise<{ records: DataRecord[]; skipped: number; problems: string[] }> {
  return checkRecords(await readDataset(file, readOptions(tok, o)), file);
}

/** A file's SHA-256, hex (run.json's input hashes). */
export async function fileHash(file: string): Promise<string> {
  const { readFile } = await nodeFs();
  return sha256Hex(new Uint8Array(await readFile(file)));
}

/** The git revision of the checkout this module runs from, when it is one. */
async function revision(): Promise<string | null> {
  try {
    const { readFile } = await nodeFs();
    const git = await embeddedPath('../.git').catch(() => null);
    if (!git) return null;
    const head = (await readFile(`${git}/HEAD`, 'utf8')).trim();
    if (!head.startsWith('ref: ')) return head;
    return (await readFile(`${git}/${head.slice(5)}`, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** A fresh run folder name: ./zpd-runs/<date>-<time>. */
export function defaultRunDir(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `zpd-runs/${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * Fault injection for tests: ZPD_WGPU_INJECT_NAN="3,7-9" puts a NaN into the gradient of those
 * steps, ZPD_WGPU_INJECT_LOST=5 reports the device lost at that step (counted from the start of
 * this process's run).
 */
function faultSteps(): Set<number> {
  const spec = envVar('ZPD_WGPU_INJECT_NAN') ?? '';
  const out = new Set<number>();
  for (const part of spec.split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

export interface NodeTrainHooks extends TrainHooks {
  gpu?: Gpu;
  folder?: RunFolder;
}

/**
 * Fine-tune a model with the options of `zpd-wgpu train` (paths, numbers; defaults in
 * TRAIN_DEFAULTS): LoRA (or full fine-tuning) driven by the chosen curriculum, writing the
 * adapter, logs and checkpoints into `options.out`. Abort `hooks.signal` to stop with a checkpoint.
 */
export async function train(options: Partial<TrainOptions>, hooks: NodeTrainHooks = {}): Promise<TrainSummary> {
  const o = resolveTrainOptions(options);
  const embedded = o.model === null;
  const modelDir = o.model ?? (await embeddedPath('model'));
  const dataFile = o.data ?? (await embeddedPath('data/train.jsonl'));
  const evalFile = o.evalData ?? (o.data === null ? await embeddedPath('data/eval.jsonl') : null);
  const { tok, cfg, stopIds } = await modelTokenizer(modelDir);
  const read = (f: string) => readRecords(f, tok, o);
  const trainRead = await read(dataFile);
  let trainRecords = trainRead.records, evalRecords: DataRecord[], heldOut: number[] | null = null;
  if (evalFile) evalRecords = (await read(evalFile)).records;
  else ({ train: trainRecords, eval: evalRecords, heldOut } = splitHeldOut(trainRecords, o));
  const where = await resolveBackend(o.backend, hooks.gpu); // --backend: the GPU, or null for wasm
  const gpu = where.gpu;
  if (gpu) checkFits(cfg, o, gpu, isSoftwareAdapter(gpu.info) ? (await nodeOs()).totalmem() : null);
  const folder = hooks.folder ?? (await NodeRunFolder.open(o.out ?? defaultRunDir()));
  if (o.resume && gpu) await useRunTiles(folder, gpu);
  const hashes = {
    data: await fileHash(dataFile),
    evalData: evalFile ? await fileHash(evalFile) : null,
    modelConfig: await fileHash(`${modelDir}/config.json`),
    tokenizer: await fileHash(`${modelDir}/tokenizer.json`),
  };
  const env: TrainEnv = {
    tokenizer: tok, stopIds, train: trainRecords, eval: evalRecords, folder, baseModel: embedded ? 'zpd-wgpu/default' : modelDir,
    provenance: {
      model: modelDir, data: dataFile, evalData: evalFile, heldOutLines: heldOut, skippedLines: trainRead.skipped,
      hashes, ...backendProvenance(where), revision: await revision(),
    },
    createBackend: (b) => gpu
      ? trainBackend((lo) => loadModel(gpu, modelDir, lo), b, { nanSteps: faultSteps(), loseDeviceAt: Number(envVar('ZPD_WGPU_INJECT_LOST') ?? 0) })
      : wasmTrainBackend(modelDir, b, faultSteps()),
    async referenceNll(samples: Sample[], maker: BatchMaker) {
      if (!o.reference) throw new UsageError("the 'reducible' curriculum needs --reference DIR");
      const ref = gpu ? new WebGpuBackend(await loadModel(gpu, o.reference, { weights: o.weights })) : await createWasmBackend(o.reference);
      try {
        return (await scoreSamples(ref, maker, samples, samples.map((s) => s.id))).map((s) => s.nll);
      } finally {
        ref.dispose();
      }
    },
    async modelFiles() {
      const { readFile, readdir } = await nodeFs();
      const out: Record<string, Uint8Array> = {};
      for (const f of await readdir(modelDir)) {
        if (/^(config\.json|generation_config\.json|tokenizer.*\.json|special_tokens_map\.json)$/.test(f)) out[f] = new Uint8Array(await readFile(`${modelDir}/${f}`));
      }
      return out;
    },
  };
  // exact match before and after, on a fixed subset of the held-out records
  const emRecords = sampleIndices(evalRecords.length, Math.min(o.exactMatch, evalRecords.length), new Rng(deriveSeed(o.seed, 5)))
    .sort((a, b) => a - b).map((i) => evalRecords[i]).filter((r) => r.prompt);
  const em = async (model: string, adapter: string | null) => {
    const s = await openScorer({ model, adapter, weights: o.weights, backend: where.kind }, gpu ?? undefined);
    try {
      return await exactMatch(s.model, s.tok, emRecords, s.stopIds, { seqLen: o.seqLen });
    } finally {
      s.backend.dispose();
    }
  };
  const before = emRecords.length && !o.resume ? await em(modelDir, null) : null;
  if (before) hooks.onProgress?.({ type: 'exact-match', when: 'before', result: before });
  const summary = await runTraining(o, env, hooks);
  if (emRecords.length && summary.status !== 'interrupted') {
    const after = await em(o.full ? folder.where : modelDir, o.full ? null : folder.where);
    summary.exactMatch = { before: before && strip(before), after: strip(after) };
    hooks.onProgress?.({ type: 'exact-match', when: 'after', result: after });
    const run = JSON.parse(new TextDecoder().decode((await folder.read('run.json'))!));
    await folder.writeAtomic('run.json', JSON.stringify({ ...run, summary }, null, 2) + '\n');
  }
  return summary;
}

/** An exact-match result without the per-record outputs (for summaries). */
function strip(r: ExactMatchResult): Omit<ExactMatchResult, 'outputs'> {
  const { outputs: _o, ...rest } = r;
  return rest;
}

export interface ScoreOptions {
  model: string | null;
  adapter: string | null;
  data: string;
  format: TrainOptions['format'];
  chatTemplate: TrainOptions['chatTemplate'];
  skipBad: boolean;
  seqLen: number;
  weights: TrainOptions['weights'];
  /** Where the model runs (default webgpu). */
  backend?: TrainOptions['backend'];
}

export const SCORE_DEFAULTS: Omit<ScoreOptions, 'data'> = { model: null, adapter: null, format: 'auto', chatTemplate: 'auto', skipBad: false, seqLen: 512, weights: 'auto' };

export interface SampleReport extends SampleScore {
  index: number;
  line: number;
  ppl: number;
  bucket?: string;
  level?: number;
}

/** A model (and adapter) on the GPU — or on the wasm backend — with its tokenizer, as score and eval use it. */
export async function openScorer(o: Pick<ScoreOptions, 'model' | 'adapter' | 'weights' | 'backend'>, gpu?: Gpu) {
  const modelDir = o.model ?? (await embeddedPath('model'));
  const { tok, stopIds } = await modelTokenizer(modelDir);
  const where = o.backend && o.backend !== 'webgpu' ? await resolveBackend(o.backend, gpu) : null;
  if (where?.kind === 'wasm') {
    const w = await createWasmBackend(modelDir);
    if (o.adapter) await w.model.loadAdapter(o.adapter);
    return { tok, stopIds, model: w.model.asGenerator(), backend: w, modelDir };
  }
  gpu ??= where?.gpu ?? undefined;
  const g = gpu ?? (await getGpu());
  const model: LlamaModel = await loadModel(g, modelDir, { weights: o.weights });
  if (o.adapter) await loadModelAdapter(model, o.adapter);
  return { tok, stopIds, model, backend: new WebGpuBackend(model), modelDir };
}

/** Per-sample scores of a data file under a model (and adapter): zpd-wgpu score. */
export async function score(options: Partial<ScoreOptions> & { data: string }, gpu?: Gpu): Promise<SampleReport[]> {
  const o = { ...SCORE_DEFAULTS, ...options };
  const s = await openScorer(o, gpu);
  try {
    const { records } = await readRecords(o.data, s.tok, o);
    const samples = toSamples(s.tok, records, new Set(s.stopIds));
    const maker = await BatchMaker.create(s.tok, o.seqLen);
    const scores = await scoreSamples(s.backend, maker, samples, samples.map((x) => x.id));
    return scores.map((sc, i) => ({
      index: i, line: samples[i].line, nll: sc.nll, ppl: Math.exp(sc.nll), confidence: sc.confidence, entropy: sc.entropy,
      accuracy: sc.accuracy, tokens: sc.tokens,
      ...(samples[i].bucket !== undefined ? { bucket: samples[i].bucket } : {}), ...(samples[i].level !== undefined ? { level: samples[i].level } : {}),
    }));
  } finally {
    s.backend.dispose();
  }
}

/** Held-out loss, perplexity and token accuracy of a data file: zpd-wgpu eval (without --exact-match). */
export async function evaluateFile(options: Partial<ScoreOptions> & { data: string }, gpu?: Gpu): Promise<EvalResult> {
  return aggregate(await score(options, gpu));
}
