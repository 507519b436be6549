// Types for scripts/train-tokenizer.mjs (plain Node ESM), for the tests.
export const QWEN_RE: string;
export const SPECIAL_TOKENS: readonly string[];
export const DEFAULT_VOCAB_SIZE: number;
export const DEFAULT_OUT: string;
export const MODEL_MAX_LENGTH: number;
export const CHAT_TEMPLATE: string;
export function byteLevelTables(): { byteToChar: string[]; charToByte: Map<string, number> };
export function qwenRegExp(): RegExp;
export function pretokenize(text: string): string[];
export interface LearnOptions {
  vocabSize?: number;
  minFrequency?: number;
  specialTokens?: string[];
}
export interface Learned {
  /** bytes of each non-special token: the 256 bytes, then the merged tokens */
  tokens: Uint8Array[];
  /** (left id, right id) in rank order */
  merges: [number, number][];
  pieces: number;
  distinctPieces: number;
}
export function learnBPE(text: string, opts?: LearnOptions): Learned;
export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  vocab: [string, number][];
  config: Record<string, unknown>;
}
export function buildTokenizerFiles(learned: Pick<Learned, 'tokens' | 'merges'>, opts?: { specialTokens?: string[]; modelMaxLength?: number }): TokenizerFiles;
export function tokenizerJSONText(files: Pick<TokenizerFiles, 'tokenizer' | 'vocab'>): string;
export interface TrainOptions {
  corpus: string;
  vocabSize?: number;
  out?: string;
  minFrequency?: number;
  log?: (...a: unknown[]) => void;
}
export interface TrainResult {
  tokenizerFile: string;
  configFile: string;
  vocabSize: number;
  merges: number;
  ms: number;
  pieces: number;
  distinctPieces: number;
  corpusBytes: number;
}
export function trainTokenizer(opts: TrainOptions): TrainResult;
