// Types for scripts/default-corpus.mjs (plain Node ESM), for the tests and other scripts.
export const BIBLE_BIN: string;
export const BIBLE_DATA: string;
/** every HELDOUT_EVERY-th verse (1-based) is held out */
export const HELDOUT_EVERY: number;
export const DEFAULT_OUT: string;
export function ensureBibleProgram(opts?: { log?: (...a: unknown[]) => void }): void;
export function readVerses(): string[];
export interface Corpus {
  dir: string;
  /** every verse, one per line */
  all: string;
  train: string;
  heldout: string;
  /** whether this call wrote any file (false: all reused) */
  built: boolean;
  verses: number;
  trainVerses: number;
  heldoutVerses: number;
  bytes: number;
  trainBytes: number;
  heldoutBytes: number;
}
export function ensureCorpus(opts?: { out?: string; log?: (...a: unknown[]) => void }): Promise<Corpus>;
