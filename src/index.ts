// zpd-wgpu public API. Node and browser builds share this entry; only src/gpu/device.ts
// knows which world it runs in.
export * from './errors.js';
export { createGpu, getGpu, type DeviceOptions } from './gpu/device.js';
export { Gpu } from './gpu/gpu.js';
export { matmul, setMatmulTiles, getMatmulTiles, autotuneMatmul, describeTiles, describeMatmul, matmulKernel, tileCandidates, DEFAULT_TILES, TILE_CANDIDATES, SUBGROUP_CANDIDATES, type MatmulArgs, type MatmulTiles, type AutotuneOptions } from './kernels/matmul.js';
export { withElementType, type ElementType } from './kernels/template.js';
export { add, axpy, scale, sumRows, type SumRowsArgs } from './kernels/elementwise.js';
export { embeddingForward, embeddingBackward, type EmbeddingForwardArgs, type EmbeddingBackwardArgs } from './kernels/embedding.js';
export { rmsnormForward, rmsnormBackward, type RmsnormForwardArgs, type RmsnormBackwardArgs } from './kernels/rmsnorm.js';
export { swigluForward, swigluBackward } from './kernels/swiglu.js';
export { ropeForward, type RopeArgs } from './kernels/rope.js';
export { attentionForward, attentionBackward, DEFAULT_ATTENTION_TILES, type AttentionForwardArgs, type AttentionBackwardArgs, type AttentionTiles } from './kernels/attention.js';
export { loraForward, loraBackward, loraDropout, type LoraForwardArgs, type LoraBackwardArgs } from './kernels/lora.js';
export { f32ToF16, f16ToF32, f32ToF16Bits, f16BitsToF32, bf16BitsToF32, bf16BitsToF16Bits, f32ToBf16Bits } from './io/dtype.js';
export { lmHeadForward, lmHeadBackward, DEFAULT_CHUNK as LMHEAD_DEFAULT_CHUNK, type LmHeadForwardArgs, type LmHeadBackwardArgs } from './kernels/lmhead.js';
export { segmentMeans, type SegmentMeansArgs } from './kernels/segment.js';
export { adamw, type AdamwArgs } from './kernels/adamw.js';
export { gradNorm, type GradNormArgs } from './kernels/gradnorm.js';
export { SafetensorsFile, ShardedTensors, openCheckpoint, readF16Bits, openShards, parseShardIndex, openFileSource, blobSource, bytesSource, writeSafetensors, serializeSafetensors, safetensorsBytes, writeFileAtomic, DTYPE_BYTES, type Dtype, type ByteSource, type TensorInfo, type TensorStore, type TensorToWrite } from './io/safetensors.js';
export { MODEL_TYPES, parseConfig, loadConfig, configFromJson, expectedTensors, checkTensors, ropeInvFreq, type ModelConfig, type ModelType, type Llama3RopeScaling, type ExpectedTensor } from './io/config.js';
export { saveAdapter, loadAdapter, readAdapter, adapterSafetensors, adapterConfigJson, parseAdapterConfig, parsePeftKey, peftKey, initLora, initAdapter, loraFeatures, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type Adapter, type AdapterConfig, type LoraWeight } from './io/peft.js';
export { Tokenizer, cleanUpSpaces, type EncodeOptions, type DecodeOptions, type ChatMessage, type ChatTemplateOptions } from './tokenizer/tokenizer.js';
export { compactFromJSON, type CompactTokenizer } from './tokenizer/compact.js';
export { loadTokenizer, readJsonFile, type LoadTokenizerOptions, type LoadInfo } from './tokenizer/files.js';
export { Batcher, bucketByLength, samplesFromRecords, type Batch, type BatchSample, type BatcherOptions, type PackResult } from './tokenizer/batcher.js';
export { readDataset, parseDataset, parseJsonl, rowsToRecords, recordToText, detectFormat, type DataFormat, type DataRecord, type ChatRenderer, type ReadDataOptions, type ReadDataResult } from './data/read.js';
export { LlamaModel, generate, numSegments, readSampleStats, type ModelBatch, type SampleStats, type EncodedStats, type GenerateOptions, type KvCache, type Param, type Weight, type Linear, type Layer } from './model/llama.js';
export { loadModel, modelFromStore, attachLora, currentAdapter, saveModelAdapter, loadModelAdapter, type LoadOptions } from './model/load.js';
export { mergeAndSave, mergeInto } from './model/merge.js';
export { LORA_MODULES, DEFAULT_LORA, loraScale, type LoraModule, type LoraOptions } from './lora.js';
export { sampleToken, argmax, type SamplingOptions } from './model/sample.js';
export { Rng, makeRng, deriveSeed } from './rng.js';
export { DEFAULT_ADAMW, type AdamwOptions, type StepResult, type TensorState, type OptimizerState, type TrainBackend } from './train/backend.js';
export { WebGpuBackend } from './train/step.js';
// the wasm backend: the CPU (SIMD, threads on a shared memory) where there is no GPU
export { WasmKernels, hasRelaxedSimd, WASM_MAX_BYTES, type WasmKernelOptions } from './wasm/kernels.js';
export { WasmModel, loadWasmModel, wasmModelFromStore, type WasmLoadOptions, type WasmKvCache } from './wasm/model.js';
export { WasmBackend, createWasmBackend, wasmTrainBackend } from './wasm/backend.js';
export { resolveBackend, resolveBrowserBackend, measureBackends, decide as decideBackend, isSoftwareAdapter, type BackendChoice, type BackendPick, type BackendSpeeds } from './wasm/select.js';
export { benchWasmStep, type WasmStepSpec, type WasmStepResult } from './wasm/bench.js';
// the trainer: options in, a PEFT adapter (or model), logs and checkpoints out
export { train, score, evaluateFile, openScorer, embeddedPath, type NodeTrainHooks, type ScoreOptions, type SampleReport } from './train/train.js';
export { runTraining, learningRate, DivergenceError, type TrainEnv, type TrainHooks, type TrainSummary, type ProgressEvent, type WindowInfo } from './train/loop.js';
export { TRAIN_DEFAULTS, TRAIN_SPECS, parseTrainArgs, resolveTrainOptions, trainHelp, type TrainOptions } from './train/options.js';
export { NodeRunFolder, MemoryRunFolder, type RunFolder } from './train/io.js';
// training in a browser: files without a file system, OPFS run folders, the Web Worker (dist/browser/worker.js)
export { OpfsRunFolder, OPFS_RUNS } from './train/opfs.js';
export { trainInBrowser, openModelFiles, modelFilesFromUrl, modelFilesFromFiles, dataFromFile, dataFromUrl, runAdapterFiles, loadTuned, generateText, type ModelFiles, type DataFile, type OpenedModel, type BrowserTrainInputs, type BrowserTrainHooks, type TunedModel } from './train/browser.js';
export { httpSource, fetchBytes, HTTP_CACHE, type HttpOptions } from './io/http.js';
export { TrainerWorker, WorkerError, type TrainCallbacks } from './worker/client.js';
export type { ModelSpec, DataSpec, TrainRequest, GenerateRequest, RunInfo, AdapterInfo, ErrorInfo, ToWorker, FromWorker } from './worker/protocol.js';
export { saveCheckpoint, loadCheckpoint, type CheckpointState } from './train/checkpoint.js';
export { toSamples, BatchMaker, scoreSamples, evaluate, aggregate, rowLength, type Sample, type EvalResult } from './train/data.js';
export { multipleChoice, exactMatch, mcPrompt, parseMc, isMcRecord, type McQuestion, type McResult, type ExactMatchResult } from './train/eval.js';
export { makeStrategy, poolSize, competence, STRATEGIES, ZPD_WINDOWS, CURRICULUM_DEFAULTS, type Strategy, type StrategyName, type CurriculumOptions, type Selection, type WindowReport, type ZpdWindow } from './curriculum/strategies.js';
export { difficulty, quantiles, SIGNALS, TrainingStats, type SampleScore, type Signal } from './curriculum/signals.js';
