// The training loop, top to bottom: score → choose the window → train → evaluate → checkpoint
// → repeat. It sees the model only through TrainBackend and files only through RunFolder, so
// the same loop runs in Node, in a Web Worker, and on any backend.
//
// Run folder (see docs/training.md):
//   adapter_config.json, adapter_model.safetensors   the PEFT adapter (full fine-tuning: a model folder)
//   metrics.jsonl     one object per step, per re-scoring and per evaluation
//   selections.jsonl  the dataset indices of every step and every re-scoring's window
//   run.json          every resolved option, the inputs' provenance and hashes, the summary
//   checkpoint/       everything an exact resume needs (src/train/checkpoint.ts)
import { DeviceLostError, UsageError, ZpdError } from '../errors.js';
import type { SampleScore } from '../curriculum/signals.js';
import { makeStrategy, sampleIndices, type Selection, type Strategy, type WindowReport } from '../curriculum/strategies.js';
import type { DataRecord } from '../data/read.js';
import type { ExactMatchResult } from './eval.js';
import { adapterConfigJson, adapterSafetensors, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type Adapter } from '../io/peft.js';
import { concatBytes, safetensorsBytes } from '../io/safetensors.js';
import type { LoraOptions } from '../lora.js';
import { deriveSeed, Rng } from '../rng.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { AdamwOptions, OptimizerState, StepResult, TrainBackend } from './backend.js';
import { CHECKPOINT_DIR, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { BatchMaker, evaluate, scoreSamples, toSamples, type EvalResult, type Sample } from './data.js';
import type { RunFolder } from './io.js';
import type { TrainOptions } from './options.js';

/** What the loop trains on and with: everything that is not a file of the run folder. */
export interface TrainEnv {
  tokenizer: Tokenizer;
  /** token ids that end a turn or a sequence (config.json's eos_token_id and the tokenizer's EOS) */
  stopIds: number[];
  train: DataRecord[];
  eval: DataRecord[];
  /** The model on its backend, LoRA attached (null: full fine-tuning). */
  createBackend(o: { lora: LoraOptions | null; seed: number; recompute: boolean; weights: TrainOptions['weights'] }): Promise<TrainBackend>;
  /** reducible: the reference model's nll of each training sample */
  referenceNll?(samples: Sample[], maker: BatchMaker): Promise<number[]>;
  /** The model folder's files a full fine-tune copies next to its weights (config.json, tokenizer files). */
  modelFiles?(): Promise<Record<string, Uint8Array>>;
  /** run.json's record of the inputs: paths, SHA-256 hashes, held-out split */
  provenance: Record<string, unknown>;
  /** name of the base model for adapter_config.json */
  baseModel: string | null;
  folder: RunFolder;
}

export type ProgressEvent =
  | { type: 'start'; steps: number; trainSamples: number; evalSamples: number; resumedAt: number; folder: string; backend: string }
  | { type: 'step'; step: number; steps: number; loss: number; lr: number; gradNorm: number; tokensPerSecond: number; etaSeconds: number; scoringShare: number; evalLoss: number | null; window: WindowInfo | null; peakBytes: number; skipped: boolean }
  | { type: 'rescore'; step: number; window: WindowInfo | null; pool: number; seconds: number }
  | { type: 'eval'; step: number; loss: number; ppl: number; accuracy: number; seconds: number }
  | { type: 'scoring'; step: number; pool: number }
  | { type: 'saving'; step: number }
  | { type: 'checkpoint'; step: number }
  | { type: 'exact-match'; when: 'before' | 'after'; result: ExactMatchResult }
  | { type: 'end'; summary: TrainSummary };

export interface WindowInfo {
  lo: number;
  hi: number;
  size: number;
  pool: number;
  target?: number;
}

export interface TrainHooks {
  onProgress?: (e: ProgressEvent) => void;
  /** aborting stops the run after the current step, with a checkpoint */
  signal?: AbortSignal;
  /**
   * Scores of every training sample under the starting model, shared by runs of the same model
   * and data (compare): LoRA starts with B = 0, so they do not depend on the seed. The first run
   * that scores the whole set fills it in; later runs use it, charged the time it took.
   */
  initialScores?: { scores?: SampleScore[]; seconds?: number };
}

export interface TrainSummary {
  status: 'done' | 'early-stopped' | 'interrupted';
  folder: string;
  steps: number;
  /** the step budget */
  budget: number;
  before: EvalResult | null;
  after: EvalResult | null;
  best: { step: number; loss: number } | null;
  skippedSteps: number;
  seconds: { total: number; train: number; scoring: number; eval: number };
  scoringShare: number;
  peakBytes: number;
  /** the adapter (or model) written: 'best' when early stopping kept the best evaluation's */
  output: 'final' | 'best';
  /** LoRA writes a PEFT adapter; full fine-tuning a model folder */
  artifact: 'adapter' | 'model';
  /** --exact-match: greedy generations of held-out records before and after (Node's train()) */
  exactMatch?: { before: Omit<ExactMatchResult, 'outputs'> | null; after: Omit<ExactMatchResult, 'outputs'> };
}

/** The run stopped itself: repeated NaN/Inf steps or a diverging loss. */
export class DivergenceError extends ZpdError {}

/** The loop's own counters, saved in every checkpoint. */
interface LoopState {
  step: number;
  best: number;
  bestStep: number;
  badEvals: number;
  skipped: number;
  consecutiveSkips: number;
  lossEma: number;
  startLoss: number;
  window: WindowInfo | null;
  evalLoss: number | null;
  before: EvalResult | null;
  seconds: { total: number; train: number; scoring: number; eval: number };
}

const LOGS = ['metrics.jsonl', 'selections.jsonl'];
const MAX_CONSECUTIVE_SKIPS = 5;
const DIVERGED = 3; // the loss's moving average at this multiple of its start: the run diverged

/** Warm-up steps: --warmup N, or that fraction of the steps when N < 1. */
export function warmupSteps(warmup: number, steps: number): number {
  return warmup < 1 ? Math.round(warmup * steps) : Math.round(warmup);
}

/** Learning rate of step t (1-based): linear warm-up, then cosine decay to lr·minLrRatio (or constant). */
export function learningRate(o: Pick<TrainOptions, 'lr' | 'warmup' | 'schedule' | 'minLrRatio'>, t: number, steps: number): number {
  const w = warmupSteps(o.warmup, steps);
  if (w > 0 && t <= w) return (o.lr * t) / w;
  if (o.schedule === 'constant') return o.lr;
  const p = Math.min(1, (t - w) / Math.max(1, steps - w));
  const min = o.lr * o.minLrRatio;
  return min + 0.5 * (o.lr - min) * (1 + Math.cos(Math.PI * p));
}

export async function runTraining(o: TrainOptions, env: TrainEnv, hooks: TrainHooks = {}): Promise<TrainSummary> {
  const folder = env.folder;
  let t0 = performance.now(); // wall time counts from here (moved back by scoring time taken from shared scores)

  // ---- data ---------------------------------------------------------------------------------
  const stop = new Set(env.stopIds);
  const trainSet = toSamples(env.tokenizer, env.train, stop);
  const evalSet = toSamples(env.tokenizer, env.eval, stop);
  if (trainSet.length === 0) throw new UsageError('there are no training samples');
  const maker = await BatchMaker.create(env.tokenizer, o.seqLen);
  const perStep = o.batchSize * o.gradAccum;
  const steps = o.epochs > 0 ? Math.max(1, Math.ceil((o.epochs * trainSet.length) / perStep)) : o.steps;
  const evalEvery = o.evalEvery > 0 ? o.evalEvery : Math.max(1, Math.round(steps / 10));
  const saveEvery = o.saveEvery > 0 ? o.saveEvery : evalEvery;
  const evalIds = sampleIndices(evalSet.length, Math.min(o.evalSamples, evalSet.length), new Rng(deriveSeed(o.seed, 2))).sort((a, b) => a - b);
  const adamw: Omit<AdamwOptions, 'lr'> = { beta1: o.beta1, beta2: o.beta2, eps: 1e-8, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm };
  // what changes the computation: a checkpoint is only resumed under the same settings
  const { out: _out, resume: _r, overwrite: _w, skipBad: _s, ...math } = o;
  const settings: Record<string, unknown> = { ...math, inputs: env.provenance.hashes ?? null };

  // ---- the run folder: fresh, or resumed --------------------------------------------------
  const hasRun = (await folder.exists('run.json')) || (await folder.exists(CHECKPOINT_DIR)) || (await folder.exists(`${CHECKPOINT_DIR}.old`));
  if (hasRun && !o.resume && !o.overwrite)
    throw new UsageError(`${folder.where} already holds a run: --resume continues it, --overwrite replaces it, or choose another --out`);
  if (!hasRun && o.resume) throw new UsageError(`--resume: ${folder.where} holds no run to continue (no run.json or checkpoint)`);
  if (o.overwrite && !o.resume) {
    for (const f of [...LOGS, 'run.json', CHECKPOINT_DIR, `${CHECKPOINT_DIR}.old`, `${CHECKPOINT_DIR}.tmp`, 'best', ADAPTER_CONFIG, ADAPTER_WEIGHTS, 'model.safetensors']) await folder.remove(f);
  }

  // ---- the model, the curriculum and their state ------------------------------------------
  const lora: LoraOptions | null = o.full ? null : { r: o.loraR, alpha: o.loraAlpha, dropout: o.loraDropout, targetModules: o.targetModules, useRslora: o.rslora };
  const backend = await env.createBackend({ lora, seed: o.seed, recompute: o.recompute, weights: o.weights });
  try {
    const rng = new Rng(deriveSeed(o.seed, 1));
    let reference: number[] | undefined;
    let st: LoopState = {
      step: 0, best: Infinity, bestStep: 0, badEvals: 0, skipped: 0, consecutiveSkips: 0, lossEma: NaN, startLoss: NaN,
      window: null, evalLoss: null, before: null, seconds: { total: 0, train: 0, scoring: 0, eval: 0 },
    };
    if (o.curriculum === 'reducible') {
      if (!env.referenceNll) throw new UsageError("the 'reducible' curriculum needs --reference DIR (a reference model)");
      const ts = performance.now();
      reference = await env.referenceNll(trainSet, maker);
      st.seconds.scoring += (performance.now() - ts) / 1000;
    }
    const strategy: Strategy = makeStrategy({
      strategy: o.curriculum, n: trainSet.length, perStep, steps, rescoreEvery: o.rescoreEvery, scorePool: o.scorePool,
      signal: o.zpdSignal, window: o.zpdWindow, band: o.zpdBand, replay: o.replay, c0: o.pacingC0, pacingSteps: o.pacingSteps,
      eta: 0.1, alpha: 5, beta: 0.5, reference,
    });

    const log = async (file: string, obj: unknown) => folder.append(file, JSON.stringify(obj) + '\n');
    const emit = (e: ProgressEvent) => hooks.onProgress?.(e);
    const peak = () => backend.memory().peak;

    const writeRunJson = async (summary: TrainSummary | null) => {
      await folder.writeAtomic('run.json', JSON.stringify({
        version: 1, options: o, resolved: { steps, perStep, evalEvery, saveEvery, evalIds: evalIds.length, trainSamples: trainSet.length, evalSamples: evalSet.length },
        inputs: env.provenance, backend: backend.name, summary,
      }, null, 2) + '\n');
    };

    let checkpointed = -1; // the step of the last checkpoint written by this process
    const checkpoint = async () => {
      checkpointed = st.step;
      const logs: Record<string, number> = {};
      for (const f of LOGS) logs[f] = (await folder.size(f)) ?? 0;
      const optimizer: OptimizerState = await backend.saveState();
      const extra = lora ? await adapterFiles(await backend.adapter(env.baseModel)) : {};
      emit({ type: 'saving', step: st.step });
      await saveCheckpoint(folder, { settings, step: st.step, optimizer, curriculum: strategy.state(), rng: rng.state, loop: { ...st }, logs }, extra);
      emit({ type: 'checkpoint', step: st.step });
    };

    let lastEval: { step: number; result: EvalResult } | null = null;
    const runEval = async (step: number): Promise<EvalResult | null> => {
      if (evalIds.length === 0) return null;
      const ts = performance.now();
      const r = await evaluate(backend, maker, evalSet, evalIds);
      const seconds = (performance.now() - ts) / 1000;
      lastEval = { step, result: r };
      st.seconds.eval += seconds;
      st.evalLoss = r.loss;
      await log('metrics.jsonl', { type: 'eval', step, loss: r.loss, ppl: r.ppl, accuracy: r.accuracy, tokens: r.tokens, samples: r.samples, seconds });
      emit({ type: 'eval', step, loss: r.loss, ppl: r.ppl, accuracy: r.accuracy, seconds });
      return r;
    };

    if (o.resume) {
      const ck = await loadCheckpoint(folder, settings);
      if (!ck) throw new UsageError(`--resume: ${folder.where} has no checkpoint yet (the run stopped before its first one); start afresh with --overwrite`);
      await backend.loadState(ck.optimizer);
      strategy.restore(ck.curriculum);
      rng.state = ck.rng;
      st = ck.loop as unknown as LoopState;
      for (const f of LOGS) {
        const n = (await folder.size(f)) ?? 0;
        if (n > ck.logs[f]) await folder.truncate(f, ck.logs[f]); // lines written after the checkpoint
      }
    }
    emit({ type: 'start', steps, trainSamples: trainSet.length, evalSamples: evalIds.length, resumedAt: st.step, folder: folder.where, backend: backend.name });
    if (!o.resume) {
      await writeRunJson(null);
      st.before = await runEval(0);
      st.best = st.before?.loss ?? Infinity;
    }

    // ---- the loop -------------------------------------------------------------------------
    const resumedAt = st.step, wallAtResume = st.seconds.total;
    let status: TrainSummary['status'] = 'done';
    try {
    for (let step = st.step + 1; step <= steps; step++) {
      if (hooks.signal?.aborted) {
        status = 'interrupted';
        if (st.step > 0 && checkpointed !== st.step) await checkpoint();
        break;
      }
      // 1. score and choose the window, when the curriculum asks for it
      const want = strategy.wantScores(step, rng);
      if (want) {
        const ts = performance.now();
        emit({ type: 'scoring', step, pool: want.length });
        const shared = step === 1 && lora !== null && want.length === trainSet.length && want.every((v, i) => v === i) ? hooks.initialScores : undefined;
        const scores = shared?.scores ?? (await scoreSamples(backend, maker, trainSet, want));
        const w = strategy.setScores(step, want, scores);
        const seconds = shared?.seconds ?? (performance.now() - ts) / 1000;
        if (shared && !shared.scores) (shared.scores = scores), (shared.seconds = seconds);
        else if (shared) t0 -= seconds * 1000; // the run is charged the shared scoring's time
        st.seconds.scoring += seconds;
        st.window = w ? { lo: w.lo, hi: w.hi, size: w.size, pool: w.pool, ...(w.target !== undefined ? { target: w.target } : {}) } : null;
        await log('metrics.jsonl', { type: 'rescore', step, pool: want.length, ...(st.window ?? {}), seconds });
        if (w) await log('selections.jsonl', windowLine(step, w));
        emit({ type: 'rescore', step, window: st.window, pool: want.length, seconds });
      }

      // 2. one optimizer step on the samples the curriculum chose
      const sel: Selection = strategy.next(step, rng);
      const ts = performance.now();
      const lr = learningRate(o, step, steps);
      const micro = chunks(sel.indices, o.batchSize).map((ids) => maker.make(ids.map((i) => trainSet[i])));
      const res: StepResult = await backend.step(micro, { ...adamw, lr });
      const seconds = (performance.now() - ts) / 1000;
      st.seconds.train += seconds;
      st.seconds.total = wallAtResume + (performance.now() - t0) / 1000;
      const inputTokens = sel.indices.reduce((s, i) => s + Math.min(trainSet[i].length, o.seqLen), 0);

      // 3. the watchdog: a NaN/Inf step was skipped on the GPU; repeated ones, or a runaway loss, stop the run
      const skipped = res.skipped || !Number.isFinite(res.loss);
      if (skipped) {
        st.skipped++;
        st.consecutiveSkips++;
      } else {
        st.consecutiveSkips = 0;
        st.lossEma = Number.isNaN(st.lossEma) ? res.loss : 0.9 * st.lossEma + 0.1 * res.loss;
        if (Number.isNaN(st.startLoss)) st.startLoss = res.loss;
        strategy.observe(step, sel.indices, res.samples.flat() as SampleScore[]);
      }
      await log('metrics.jsonl', {
        type: 'step', step, loss: res.loss, lr, gradNorm: res.gradNorm, tokens: res.tokens, inputTokens,
        tokensPerSecond: inputTokens / seconds, seconds, scoringSeconds: st.seconds.scoring, wallSeconds: st.seconds.total, ...(skipped ? { skipped: true } : {}),
      });
      await log('selections.jsonl', { step, indices: sel.indices, ...(sel.replay?.some(Boolean) ? { replay: sel.replay.flatMap((r, k) => (r ? [k] : [])) } : {}) });
      st.step = step;
      const done = step - resumedAt, left = steps - step;
      emit({
        type: 'step', step, steps, loss: res.loss, lr, gradNorm: res.gradNorm, tokensPerSecond: inputTokens / seconds,
        etaSeconds: ((st.seconds.total - wallAtResume) / done) * left, scoringShare: st.seconds.scoring / Math.max(1e-9, st.seconds.total),
        evalLoss: st.evalLoss, window: st.window, peakBytes: peak(), skipped,
      });
      if (st.consecutiveSkips >= MAX_CONSECUTIVE_SKIPS) await diverged(`${st.consecutiveSkips} steps in a row had a NaN/Inf loss or gradient (skipped, nothing updated)`);
      if (!skipped && step > warmupSteps(o.warmup, steps) + 10 && st.lossEma > DIVERGED * st.startLoss)
        await diverged(`the training loss (moving average ${st.lossEma.toFixed(3)}) is more than ${DIVERGED}× its start (${st.startLoss.toFixed(3)})`);

      // 4. evaluate (early stopping keeps the best adapter), 5. checkpoint
      let stopNow = false;
      if (step % evalEvery === 0 || step === steps) {
        const r = await runEval(step);
        if (r && o.patience > 0) {
          if (r.loss < st.best) {
            st.best = r.loss;
            st.bestStep = step;
            st.badEvals = 0;
            if (lora) for (const [name, data] of Object.entries(await adapterFiles(await backend.adapter(env.baseModel)))) await folder.writeAtomic(`best/${name}`, data);
          } else if (++st.badEvals >= o.patience) {
            stopNow = true;
            status = 'early-stopped';
          }
        } else if (r && r.loss < st.best) {
          st.best = r.loss;
          st.bestStep = step;
        }
      }
      if (step % saveEvery === 0 || stopNow || hooks.signal?.aborted) await checkpoint();
      if (stopNow) break;
      if (hooks.signal?.aborted && step < steps) {
        status = 'interrupted';
        break;
      }
    }
    } catch (e) {
      if (!(e instanceof DeviceLostError)) throw e;
      // the GPU's state is gone; what the host holds is the run folder, with its last checkpoint
      const ck = checkpointed >= 0 ? checkpointed : null;
      await writeRunJson(null).catch(() => {});
      throw new DeviceLostError(
        e.reason, `${e.detail} — during step ${st.step + 1}; ${ck !== null || (await folder.exists(CHECKPOINT_DIR)) ? `the last checkpoint${ck !== null ? ` (step ${ck})` : ''} is in ${folder.where}/${CHECKPOINT_DIR}: the same command with --resume continues from it` : 'no checkpoint had been written yet: start again'}`,
      );
    }

    // ---- the outputs: the adapter (or model) as it ends, or the best one early stopping kept ----
    if (status !== 'interrupted' && checkpointed !== st.step) await checkpoint();
    const le = lastEval as { step: number; result: EvalResult } | null;
    const after = status === 'interrupted' ? null : le && le.step === st.step ? le.result : await runEval(st.step);
    let output: TrainSummary['output'] = 'final';
    const best = lora && status === 'early-stopped' ? await folder.read(`best/${ADAPTER_WEIGHTS}`) : null;
    if (best) {
      await folder.writeAtomic(ADAPTER_WEIGHTS, best);
      await folder.writeAtomic(ADAPTER_CONFIG, (await folder.read(`best/${ADAPTER_CONFIG}`))!);
      output = 'best';
    } else if (lora) {
      for (const [name, data] of Object.entries(await adapterFiles(await backend.adapter(env.baseModel)))) await folder.writeAtomic(name, data);
    } else {
      await writeModel(folder, await backend.saveState(), env.modelFiles ? await env.modelFiles() : {});
    }
    st.seconds.total = wallAtResume + (performance.now() - t0) / 1000;
    const summary: TrainSummary = {
      status, folder: folder.where, steps: st.step, budget: steps, before: st.before, after,
      best: Number.isFinite(st.best) ? { step: st.bestStep, loss: st.best } : null, skippedSteps: st.skipped,
      seconds: { ...st.seconds }, scoringShare: st.seconds.scoring / Math.max(1e-9, st.seconds.total), peakBytes: peak(), output,
      artifact: lora ? 'adapter' : 'model',
    };
    await writeRunJson(summary);
    emit({ type: 'end', summary });
    return summary;

    async function diverged(why: string): Promise<never> {
      const ck = (await folder.exists(CHECKPOINT_DIR)) ? `the last good checkpoint is ${folder.where}/${CHECKPOINT_DIR}` : 'no checkpoint had been written yet';
      await writeRunJson(null);
      throw new DivergenceError(
        `training stopped at step ${st.step}: ${why}; ${ck}`,
        `try a lower --lr (now ${o.lr}), a longer --warmup (now ${warmupSteps(o.warmup, steps)} steps), or --max-grad-norm 1; then --resume from the checkpoint or start afresh with --overwrite`,
      );
    }
  } finally {
    backend.dispose();
  }
}

/** The selections.jsonl line of a re-scoring: the window's bounds and members. */
function windowLine(step: number, w: WindowReport) {
  return { rescore: step, lo: w.lo, hi: w.hi, size: w.size, pool: w.pool, ...(w.target !== undefined ? { target: w.target } : {}), members: w.members };
}

function chunks<T>(a: T[], k: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < a.length; i += k) out.push(a.slice(i, i + k));
  return out;
}

/** The PEFT adapter's two files. */
async function adapterFiles(ad: Adapter): Promise<Record<string, Uint8Array | string>> {
  return { [ADAPTER_WEIGHTS]: concatBytes(adapterSafetensors(ad)), [ADAPTER_CONFIG]: JSON.stringify(adapterConfigJson(ad.config), null, 2) + '\n' };
}


/** Full fine-tuning: the trained weights as model.safetensors, beside the base folder's config and tokenizer. */
async function writeModel(folder: RunFolder, state: OptimizerState, files: Record<string, Uint8Array>): Promise<void> {
  for (const [name, data] of Object.entries(files)) await folder.writeAtomic(name, data);
  await folder.writeAtomic('model.safetensors', safetensorsBytes(state.tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: t.value })), { format: 'pt' }));
}
