// Types for scripts/make-default-data.mjs (plain Node ESM), for the tests.
export interface DefaultRecord {
  instruction: string;
  output: string;
  bucket: 'addition' | 'chain' | 'string' | 'easy' | 'noise';
  level: number;
}
export interface DefaultDataOptions {
  seed?: number;
  train?: number;
  eval?: number;
  /** write sums least significant digit first (instruction "Add (answer reversed): a+b") */
  reversedSums?: boolean;
  /** output directory (writeDefaultData only) */
  out?: string;
}
export interface DefaultData {
  train: DefaultRecord[];
  eval: DefaultRecord[];
}
export interface BucketLevelCount {
  bucket: string;
  level: number;
  count: number;
}
export const DEFAULTS: Readonly<Required<DefaultDataOptions>>;
export const BUCKETS: ReadonlyArray<{ bucket: string; share: number; levels: number[] }>;
export function plan(n: number, split: 'train' | 'eval'): BucketLevelCount[];
export function makeDefaultData(options?: DefaultDataOptions): DefaultData;
export function toJsonl(records: DefaultRecord[]): string;
export function countByBucketLevel(records: DefaultRecord[]): BucketLevelCount[];
export function commandLine(options?: DefaultDataOptions): string;
export function renderReadme(data: DefaultData, options?: DefaultDataOptions): string;
export function writeDefaultData(options?: DefaultDataOptions): DefaultData;
