// Records → tokenized samples → length-bucketed batches, and the two passes built on the
// backend's score(): per-sample scores of any set of samples (length-bucketed, forward only)
// and held-out evaluation (token-weighted loss, perplexity, token accuracy).
import type { DataRecord } from '../data/read.js';
import type { SampleScore } from '../curriculum/signals.js';
import type { ModelBatch } from '../model/llama.js';
import { Batcher } from '../tokenizer/batcher.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TrainBackend } from './backend.js';

/** A tokenized training or held-out sample. */
export interface Sample {
  /** index in its set (train or held-out) */
  id: number;
  prompt: Int32Array;
  /** the tokens to learn, ending with an end-of-sequence / end-of-turn token */
  response: Int32Array;
  /** tokens in a row: BOS + prompt + response */
  length: number;
  line: number;
  bucket?: string;
  level?: number;
}

/**
 * Tokenize records. Each response gets the tokenizer's EOS appended as a loss token unless it
 * already holds one of `stopIds` (a chat template's end-of-turn): a tuned model must learn to stop.
 */
export function toSamples(tok: Tokenizer, records: DataRecord[], stopIds: ReadonlySet<number>): Sample[] {
  const eos = tok.eosId ?? [...stopIds][0] ?? null;
  const bos = tok.addBos && tok.bosId !== null ? 1 : 0;
  return records.map((r, id) => {
    const prompt = Int32Array.from(tok.encode(r.prompt, { addSpecialTokens: false }));
    const resp = Array.from(tok.encode(r.response, { addSpecialTokens: false }));
    if (eos !== null && !resp.some((t) => stopIds.has(t))) resp.push(eos);
    const response = Int32Array.from(resp);
    return { id, prompt, response, length: bos + prompt.length + response.length, line: r.line, bucket: r.bucket, level: r.level };
  });
}

/** Row lengths batches are padded to: few shapes, little padding. */
const BUCKETS = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192];

/** The row length for samples of at most `maxLen` tokens, at most seqLen. */
export function rowLength(maxLen: number, seqLen: number): number {
  return Math.min(seqLen, BUCKETS.find((b) => b >= maxLen) ?? Math.ceil(maxLen / 1024) * 1024);
}

/** Batches of one sample per row, padded to the bucketed length of the longest. */
export class BatchMaker {
  private constructor(private batcher: Batcher, readonly seqLen: number) {}

  static async create(tok: Tokenizer, seqLen: number): Promise<BatchMaker> {
    // EOS is part of each sample's response already (toSamples)
    return new BatchMaker(await Batcher.forTokenizer(tok, { B: 1, T: seqLen, eos: null, pack: false }), seqLen);
  }

  /** A batch of `samples` (copies: it stays valid when the next batch is made). */
  make(samples: Sample[]): ModelBatch & { sampleIds: number[] } {
    const T = rowLength(Math.max(...samples.map((s) => s.length)), this.seqLen);
    const { batch } = this.batcher.pack(samples, { B: samples.length, T });
    return {
      B: batch.B, T: batch.T, sampleIds: samples.map((s) => s.id),
      ids: batch.ids.slice(), targets: batch.targets.slice(), segments: batch.segments.slice(), positions: batch.positions.slice(),
    };
  }
}

/** Rows per scoring batch: bigger than training's (no activations kept), about 4096 tokens. */
function scoreRows(T: number): number {
  return Math.max(1, Math.min(64, Math.floor(4096 / T)));
}

/**
 * Scores of `ids` (indices into `samples`), in that order: forward passes over length-sorted
 * batches, so little is padding. Deterministic: the batches depend only on the ids' lengths.
 */
export async function scoreSamples(backend: TrainBackend, maker: BatchMaker, samples: Sample[], ids: number[]): Promise<SampleScore[]> {
  const order = ids.map((_, k) => k).sort((a, b) => samples[ids[b]].length - samples[ids[a]].length || ids[a] - ids[b]);
  const out = new Array<SampleScore>(ids.length);
  for (let i = 0; i < order.length; ) {
    const rows = scoreRows(rowLength(samples[ids[order[i]]].length, maker.seqLen));
    const group = order.slice(i, i + rows);
    i += group.length;
    const stats = await backend.score(maker.make(group.map((k) => samples[ids[k]])));
    group.forEach((k, r) => (out[k] = stats[r]));
  }
  return out;
}

export interface EvalResult {
  /** token-weighted mean NLL over the samples' response tokens */
  loss: number;
  ppl: number;
  /** share of response tokens predicted exactly (argmax) */
  accuracy: number;
  tokens: number;
  samples: number;
}

/** Token-weighted loss, perplexity and accuracy of per-sample scores. */
export function aggregate(scores: SampleScore[]): EvalResult {
  let nll = 0, hit = 0, tokens = 0;
  for (const s of scores) (nll += s.nll * s.tokens), (hit += s.accuracy * s.tokens), (tokens += s.tokens);
  const loss = tokens ? nll / tokens : NaN;
  return { loss, ppl: Math.exp(loss), accuracy: tokens ? hit / tokens : NaN, tokens, samples: scores.length };
}

export async function evaluate(backend: TrainBackend, maker: BatchMaker, samples: Sample[], ids: number[]): Promise<EvalResult> {
  return aggregate(await scoreSamples(backend, maker, samples, ids));
}
