// What Node's train() (./train.ts) and the browser's trainInBrowser (./browser.ts) both do to set
// a run up: stop ids, records from a data file, the held-out split, a resumed run's matmul tiles,
// the backend and what run.json records of it. Platform-neutral: nothing here reads files.
import { UsageError } from '../errors.js';
import type { Gpu } from '../gpu/gpu.js';
import type { ModelConfig } from '../io/config.js';
import { getMatmulTiles, setMatmulTiles, type MatmulTiles } from '../kernels/matmul.js';
import { parseDataset, type DataFormat, type DataRecord, type ReadDataOptions } from '../data/read.js';
import type { LlamaModel } from '../model/llama.js';
import { attachLora, type LoadOptions } from '../model/load.js';
import { deriveSeed, Rng } from '../rng.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { sampleIndices } from '../curriculum/strategies.js';
import type { RunFolder } from './io.js';
import type { TrainEnv } from './loop.js';
import type { TrainOptions } from './options.js';
import { WebGpuBackend } from './step.js';
import { checkTrainingMemory, trainingMemory } from '../model/memory.js';
import { wasmRunInfo, type BackendPick } from '../wasm/select.js';

/** The ids that end a turn: config.json's eos_token_id ∪ the tokenizer's EOS. */
export function stopIdsOf(cfg: ModelConfig, tok: Tokenizer): number[] {
  const eos = cfg.eosTokenId === null ? [] : Array.isArray(cfg.eosTokenId) ? cfg.eosTokenId : [cfg.eosTokenId];
  return [...new Set([...eos, ...(tok.eosId === null ? [] : [tok.eosId])])];
}

export type RecordOptions = { format: TrainOptions['format']; chatTemplate: TrainOptions['chatTemplate']; skipBad: boolean };

/** Records of a data file's bytes (a browser's File or download), as train() reads a file's; `file` names it. */
export async function recordsFromBytes(bytes: Uint8Array, file: string, tok: Tokenizer, o: RecordOptions): Promise<{ records: DataRecord[]; skipped: number; problems: string[] }> {
  return checkRecords(await parseDataset(bytes, file, readOptions(tok, o)), file);
}

export function readOptions(tok: Tokenizer, o: RecordOptions): ReadDataOptions {
  const useChat = o.chatTemplate === 'on' || (o.chatTemplate === 'auto' && tok.chatTemplate !== null);
  if (o.chatTemplate === 'on' && tok.chatTemplate === null) throw new UsageError('--chat-template on: the tokenizer has no chat_template (tokenizer_config.json)');
  return { format: o.format as DataFormat | 'auto', skipBad: o.skipBad, chat: useChat ? (m, g) => tok.applyChatTemplate(m, { addGenerationPrompt: g }) : undefined };
}

export function checkRecords<R extends { records: unknown[]; skipped: number }>(r: R, file: string): R {
  if (r.records.length === 0) throw new UsageError(`${file}: no records${r.skipped ? ` (${r.skipped} bad lines skipped)` : ''}`);
  return r;
}

/** Without held-out data: a seeded --eval-split of the training records (their lines go into run.json). */
export function splitHeldOut(records: DataRecord[], o: Pick<TrainOptions, 'evalSplit' | 'seed'>): { train: DataRecord[]; eval: DataRecord[]; heldOut: number[] } {
  const n = records.length;
  const k = n < 2 ? 0 : Math.max(1, Math.round(o.evalSplit * n));
  const held = new Set(sampleIndices(n, k, new Rng(deriveSeed(o.seed, 3))));
  const evalRecords = records.filter((_, i) => held.has(i));
  return { train: records.filter((_, i) => !held.has(i)), eval: evalRecords, heldOut: evalRecords.map((r) => r.line) };
}

/** A resumed run computes with the matmul tiles it started with (they decide summation orders: bit-exact resume). */
export async function useRunTiles(folder: RunFolder, gpu: Gpu): Promise<void> {
  const prev = await folder.read('run.json');
  const tiles = prev ? (JSON.parse(new TextDecoder().decode(prev))?.inputs?.matmulTiles as MatmulTiles | undefined) : undefined;
  if (tiles) setMatmulTiles(gpu, tiles);
}

/** run.json's record of the backend a run chose (inputs): the GPU's tiles and adapter, or the wasm build; and why. */
export function backendProvenance(where: Pick<BackendPick, 'gpu' | 'reason'>): Record<string, unknown> {
  const gpu = where.gpu;
  return { ...(gpu ? { matmulTiles: getMatmulTiles(gpu), adapter: gpu.info } : { wasm: wasmRunInfo() }), backendChoice: where.reason };
}

/** TrainEnv.createBackend's work once the model can be loaded: LoRA attached (or every weight trainable), faults injected. */
export async function trainBackend(
  load: (o: LoadOptions) => Promise<LlamaModel>, b: Parameters<TrainEnv['createBackend']>[0], faults: { nanSteps?: Set<number>; loseDeviceAt?: number } = {},
): Promise<WebGpuBackend> {
  const model = await load({ full: b.lora === null, weights: b.lora === null ? 'f32' : b.weights });
  if (b.lora) attachLora(model, b.lora, b.seed);
  model.recompute = b.recompute;
  const backend = new WebGpuBackend(model);
  backend.nanSteps = faults.nanSteps ?? new Set();
  backend.loseDeviceAt = faults.loseDeviceAt ?? 0;
  return backend;
}

/**
 * Refuse, before loading anything, a run whose buffers exceed the adapter's limits — or whose
 * total exceeds `systemBytes`, the memory of a software adapter (which is the system's; null for
 * a real GPU, whose memory WebGPU does not tell).
 */
export function checkFits(cfg: ModelConfig, o: TrainOptions, gpu: Gpu, systemBytes: number | null): void {
  const plan = trainingMemory(cfg, {
    batch: o.batchSize, seqLen: o.seqLen, loraR: o.loraR, modules: o.targetModules, full: o.full, recompute: o.recompute,
    f16: !o.full && (o.weights === 'f16' || (o.weights === 'auto' && gpu.hasF16)),
  });
  checkTrainingMemory(plan, gpu.limits, systemBytes, `system memory (${gpu.info.description || gpu.info.device || 'the adapter'} is a software adapter)`);
}
