// Batcher: prompt ids + response ids → the [B, T] Int32 batch the model consumes (assembly/batcher.ts
// does the work; the arrays are views into wasm memory, so the GPU upload reads them without a copy
// in JS). Views stay valid until the next pack() on the same Batcher.
import { UsageError } from '../errors.js';
import type { Tokenizer } from './tokenizer.js';
import { instantiateZpd, type ZpdExports } from './wasm.js';

/** The batch contract (what the model's forward/backward reads). */
export interface Batch {
  B: number;
  T: number;
  ids: Int32Array; // [B*T] token ids (padId in padding)
  targets: Int32Array; // [B*T] ids[t+1] when token t+1 is a response (loss) token of the same sample, -1 elsewhere
  segments: Int32Array; // [B*T] sample index within the batch, -1 = padding
  positions: Int32Array; // [B*T] position within the sample, restarting at 0 per sample
  sampleIds: number[]; // dataset index of each segment
}

export interface BatchSample {
  prompt: ArrayLike<number>;
  response: ArrayLike<number>;
  /** dataset index; default: the position in the array given to pack() */
  id?: number;
}

export interface BatcherOptions {
  B: number;
  T: number;
  /** id put before every sample, or null; default (forTokenizer): BOS when the tokenizer adds one */
  bos?: number | null;
  /** id put after every response (a loss token), or null; default (forTokenizer): EOS when the tokenizer adds one */
  eos?: number | null;
  /** id in padding positions (default 0; it is never a target) */
  padId?: number;
  /** true: several samples per row (segments keep them apart); false: one sample per row, padded */
  pack?: boolean;
  /** when a sample is longer than T: prompt tokens kept (from the head) at least; default floor(T/4) of the batch's T */
  minPromptTokens?: number;
}

export interface PackResult {
  batch: Batch;
  /** how many samples (from the first) went into the batch; the rest did not fit */
  placed: number;
}

export class Batcher {
  readonly opts: Required<Omit<BatcherOptions, 'bos' | 'eos'>> & { bos: number | null; eos: number | null };
  private constructor(private readonly w: ZpdExports, opts: BatcherOptions) {
    const { B, T } = opts;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 2) throw new UsageError(`batch shape must be B ≥ 1, T ≥ 2 integers (got B=${B}, T=${T})`);
    this.opts = {
      B, T, bos: opts.bos ?? null, eos: opts.eos ?? null, padId: opts.padId ?? 0, pack: opts.pack ?? true,
      minPromptTokens: opts.minPromptTokens ?? -1, // -1: floor(T/4) of each batch
    };
  }

  static async create(opts: BatcherOptions): Promise<Batcher> {
    return new Batcher(await instantiateZpd(), opts);
  }

  /** BOS/EOS/padding as the tokenizer's config says, unless opts say otherwise. */
  static async forTokenizer(tok: Tokenizer, opts: BatcherOptions): Promise<Batcher> {
    return Batcher.create({
      bos: tok.addBos ? tok.bosId : null,
      eos: tok.addEos ? tok.eosId : null,
      padId: tok.padId ?? tok.eosId ?? 0,
      ...opts,
    });
  }

  /**
   * Fill one batch from samples[0..]: returns the batch and how many samples it holds. `shape`
   * overrides the batcher's B and T for this batch (a length-bucketed batch).
   */
  pack(samples: BatchSample[], shape?: { B: number; T: number }): PackResult {
    const { bos, eos, padId, pack, minPromptTokens } = this.opts;
    const { B, T } = shape ?? this.opts;
    if (shape && (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 2)) throw new UsageError(`batch shape must be B ≥ 1, T ≥ 2 integers (got B=${B}, T=${T})`);
    const w = this.w;
    // only as many samples as can possibly fit: each takes ≥ 1 token of a row
    const n = Math.min(samples.length, pack ? B * T : B);
    let total = 0;
    for (let i = 0; i < n; i++) total += samples[i].prompt.length + samples[i].response.length;
    const base = w.bt_input(8 * n + 4 * total);
    const lens = new Int32Array(w.memory.buffer, base, 2 * n);
    const toks = new Int32Array(w.memory.buffer, base + 8 * n, total);
    let o = 0;
    for (let i = 0; i < n; i++) {
      const s = samples[i];
      lens[2 * i] = s.prompt.length;
      lens[2 * i + 1] = s.response.length;
      toks.set(s.prompt, o);
      o += s.prompt.length;
      toks.set(s.response, o);
      o += s.response.length;
    }
    const minPrompt = minPromptTokens >= 0 ? minPromptTokens : Math.floor(T / 4);
    const placed = w.bt_pack(B, T, bos ?? -1, eos ?? -1, padId, pack ? 1 : 0, minPrompt, n, base, base + 8 * n);
    const out = w.bt_out();
    const bt = B * T;
    const buf = w.memory.buffer;
    return {
      placed,
      batch: {
        B, T,
        ids: new Int32Array(buf, out, bt),
        targets: new Int32Array(buf, out + 4 * bt, bt),
        segments: new Int32Array(buf, out + 8 * bt, bt),
        positions: new Int32Array(buf, out + 12 * bt, bt),
        sampleIds: samples.slice(0, placed).map((s, i) => s.id ?? i),
      },
    };
  }
}

/**
 * Tokenize {prompt, response} text pairs (e.g. from readDataset) for pack(): prompt and response
 * are encoded separately without BOS/EOS (the batcher adds those), so the loss boundary is exact.
 * `firstId` is the dataset index of records[0].
 */
export function samplesFromRecords(tok: Tokenizer, records: { prompt: string; response: string }[], firstId = 0): BatchSample[] {
  return records.map((r, i) => ({
    prompt: tok.encode(r.prompt, { addSpecialTokens: false }),
    response: tok.encode(r.response, { addSpecialTokens: false }),
    id: firstId + i,
  }));
}

/**
 * Length bucketing for the scoring pass: sample indices sorted by length (longest first, ties by
 * index) and cut into groups of at most `perBatch`, so each batch wastes little padding.
 */
export function bucketByLength(lengths: ArrayLike<number>, perBatch: number): number[][] {
  if (!Number.isInteger(perBatch) || perBatch < 1) throw new UsageError(`perBatch must be a positive integer (got ${perBatch})`);
  const order = Array.from({ length: lengths.length }, (_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += perBatch) out.push(order.slice(i, i + perBatch));
  return out;
}
