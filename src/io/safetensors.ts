// safetensors: read tensor by tensor from file offsets, write atomically.
//
// Layout (https://huggingface.co/docs/safetensors): u64 little-endian header length N, then N bytes
// of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, padded
// with spaces to a multiple of 8, then the data section; offsets are relative to its start.
// Readers only ever hold the header and the tensor asked for — never the whole file — so the same
// code serves a 15 GB checkpoint in Node (file handle) and in a browser (Blob.slice).
// Sharded checkpoints: model.safetensors.index.json {"weight_map": {tensor: shard file}}.
// Byte order: the data is little-endian, as is every host WebGPU runs on.
import { FormatError, UsageError } from '../errors.js';
import { bf16BitsToF16Bits, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from './dtype.js';
import { nodeFs, nodePath, pid } from '../platform/node.js';

export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

/** Bytes per element of each dtype this reader understands. */
export const DTYPE_BYTES: Record<Dtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

/** Where the bytes come from: a file in Node, a Blob or an ArrayBuffer in a browser. */
export interface ByteSource {
  /** A name for messages (the path, or the file's name). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset` (fewer only if the source is shorter than it said), in a new array the caller may keep. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte range in the source. */
  begin: number;
  end: number;
  /** The file (source name) that holds it. */
  file: string;
}

/** One tensor to write. Float data is converted to `dtype`; a Uint16Array for F16/BF16 is taken as raw bits. */
export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: Float64Array | Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | number[];
}

/** Something that holds named tensors: one safetensors file, or the shards of a checkpoint. */
export interface TensorStore {
  names(): string[];
  info(name: string): TensorInfo | undefined;
  /** The tensor's raw little-endian bytes (e.g. f16 for a direct GPU upload), in a fresh aligned buffer. */
  readBytes(name: string): Promise<Uint8Array>;
  /** Any float dtype as f32 (F64 rounded). */
  readF32(name: string): Promise<Float32Array>;
  /** Any float dtype as f64 (exact). */
  readF64(name: string): Promise<Float64Array>;
  /** I32 or I64 (within ±2^31) as Int32Array. */
  readI32(name: string): Promise<Int32Array>;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ byte sources

const CHUNK = 1 << 30; // Node reads at most 2 GB per call: large tensors are read in pieces

/** A file on disk (Node). Remember to close() it. */
export async function openFileSource(path: string): Promise<ByteSource> {
  const fs = await nodeFs();
  const fh = await fs.open(path, 'r');
  const size = (await fh.stat()).size;
  return {
    name: path,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, Math.min(CHUNK, length - done), offset + done);
        if (bytesRead === 0) return out.subarray(0, done);
        done += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
}

/** A Blob or File (browser, or Node's Blob). */
export function blobSource(blob: Blob, name = (blob as { name?: string }).name ?? 'blob'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** Bytes already in memory (tests, fetched files). */
export function bytesSource(bytes: Uint8Array | ArrayBuffer, name = 'buffer'): ByteSource {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: b.byteLength,
    async read(offset, length) {
      return b.slice(offset, offset + length);
    },
  };
}

// ------------------------------------------------------------------ one file

const MAX_HEADER = 100_000_000; // the format's own limit on the JSON header

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** One safetensors file: the parsed, validated header; tensors read on demand. */
export class SafetensorsFile implements TensorStore {
  private constructor(
    readonly source: ByteSource,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string> | null,
    /** Byte offset of the data section. */
    readonly dataStart: number,
  ) {}

  /** Read and validate the header. Every problem is a FormatError naming the file (and tensor). */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const file = source.name;
    const hint = 'the file is damaged or not a safetensors file: download or write it again';
    if (source.size < 8) {
      throw new FormatError(file, 'header length', `the file is ${source.size} bytes, shorter than the 8-byte header length it must start with`, hint);
    }
    const lenBytes = await source.read(0, 8);
    const n = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (n > MAX_HEADER) throw new FormatError(file, 'header length', `${n} bytes, more than the format's limit of ${MAX_HEADER}`, hint);
    if (8 + n > source.size) {
      throw new FormatError(file, 'header length', `the header claims ${n} bytes but the file has only ${source.size - 8} after the length (truncated?)`, hint);
    }
    const hbytes = await source.read(8, n);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hbytes));
    } catch (e) {
      throw new FormatError(file, 'header', `not valid UTF-8 JSON (${(e as Error).message})`, hint);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw new FormatError(file, 'header', `expected a JSON object, found ${Array.isArray(header) ? 'an array' : typeof header}`, hint);
    }
    const dataStart = 8 + n;
    const dataSize = source.size - dataStart;
    let metadata: Record<string, string> | null = null;
    const tensors = new Map<string, TensorInfo>();
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
          throw new FormatError(file, '__metadata__', 'expected an object of string values', hint);
        }
        metadata = v as Record<string, string>;
        continue;
      }
      const where = `tensor '${name}'`;
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null) throw new FormatError(file, where, `expected {dtype, shape, data_offsets}, found ${JSON.stringify(v)}`, hint);
      if (!isDtype(e.dtype)) {
        throw new FormatError(
          file,
          where,
          `unsupported dtype ${JSON.stringify(e.dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`,
          'convert the checkpoint to float32, float16 or bfloat16',
        );
      }
      if (!Array.isArray(e.shape) || !e.shape.every(isCount)) throw new FormatError(file, where, `shape must be a list of non-negative integers, found ${JSON.stringify(e.shape)}`, hint);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !isCount(off[0]) || !isCount(off[1]) || off[1] < off[0]) {
        throw new FormatError(file, where, `data_offsets must be [begin, end] with 0 ≤ begin ≤ end, found ${JSON.stringify(off)}`, hint);
      }
      const shape = e.shape as number[];
      const want = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.dtype];
      if (off[1] - off[0] !== want) {
        throw new FormatError(file, where, `shape [${shape}] of ${e.dtype} needs ${want} bytes but data_offsets [${off}] span ${off[1] - off[0]}`, hint);
      }
      if (off[1] > dataSize) {
        throw new FormatError(file, where, `data_offsets [${off}] run past the end of the data section (${dataSize} bytes): the file is truncated or the header is wrong`, hint);
      }
      tensors.set(name, { name, dtype: e.dtype, shape, begin: dataStart + off[0], end: dataStart + off[1], file });
    }
    // no two tensors may share bytes (holes are tolerated)
    const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].begin < sorted[i - 1].end) {
        throw new FormatError(file, `tensor '${sorted[i].name}'`, `its bytes overlap those of '${sorted[i - 1].name}'`, hint);
      }
    }
    return new SafetensorsFile(source, tensors, metadata, dataStart);
  }

  /** Open a file on disk (Node). */
  static async openPath(path: string): Promise<SafetensorsFile> {
    const src = await openFileSource(path);
    try {
      return await SafetensorsFile.open(src);
    } catch (e) {
      await src.close?.();
      throw e;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    return this.tensors.get(name);
  }

  private need(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError(this.source.name, `tensor '${name}'`, 'not in this file', `it has: ${this.names().slice(0, 8).join(', ')}${this.tensors.size > 8 ? ', …' : ''}`);
    return t;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.need(name);
    const b = await this.source.read(t.begin, t.end - t.begin);
    if (b.byteLength !== t.end - t.begin) {
      throw new FormatError(t.file, `tensor '${name}'`, `expected ${t.end - t.begin} bytes at offset ${t.begin}, could read only ${b.byteLength} (the file shrank?)`);
    }
    return b.byteOffset % 8 === 0 ? b : b.slice();
  }

  async readF32(name: string): Promise<Float32Array> {
    const t = this.need(name);
    return toFloat(t, await this.readBytes(name), 32) as Float32Array;
  }

  async readF64(name: string): Promise<Float64Array> {
    const t = this.need(name);
    return toFloat(t, await this.readBytes(name), 64) as Float64Array;
  }

  async readI32(name: string): Promise<Int32Array> {
    const t = this.need(name);
    const b = await this.readBytes(name);
    const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
    if (t.dtype === 'I32') return new Int32Array(b.buffer, b.byteOffset, n).slice();
    if (t.dtype === 'I64') {
      const src = new BigInt64Array(b.buffer, b.byteOffset, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        if (src[i] > 2147483647n || src[i] < -2147483648n) throw new FormatError(t.file, `tensor '${name}'`, `element ${i} = ${src[i]} does not fit in int32`);
        out[i] = Number(src[i]);
      }
      return out;
    }
    throw new FormatError(t.file, `tensor '${name}'`, `expected an integer tensor (I32, I64), found ${t.dtype}`);
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

function toFloat(t: TensorInfo, b: Uint8Array, bits: 32 | 64): Float32Array | Float64Array {
  const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
  let v: Float32Array | Float64Array;
  switch (t.dtype) {
    case 'F32':
      v = new Float32Array(b.buffer, b.byteOffset, n);
      break;
    case 'F64':
      v = new Float64Array(b.buffer, b.byteOffset, n);
      break;
    case 'F16':
      v = f16BitsToF32(new Uint16Array(b.buffer, b.byteOffset, n));
      break;
    case 'BF16':
      v = bf16BitsToF32(new Uint16Array(b.buffer, b.byteOffset, n));
      break;
    default:
      throw new FormatError(t.file, `tensor '${t.name}'`, `expected a float tensor (F64, F32, F16, BF16), found ${t.dtype}`);
  }
  // the bytes are the caller's own (ByteSource.read), so a view needs no copy
  if (bits === 32) return v instanceof Float32Array ? v : Float32Array.from(v);
  return v instanceof Float64Array ? v : Float64Array.from(v);
}

/**
 * A float tensor as f16 bits, for GPU storage of frozen weights: F16 as stored (no conversion),
 * BF16 and F32/F64 rounded to nearest even (values beyond ±65504 become ±inf: check first).
 */
export async function readF16Bits(store: TensorStore, name: string): Promise<Uint16Array> {
  const t = store.info(name);
  if (!t) return f32ToF16Bits(await store.readF32(name)); // the store's own "not found" error
  if (t.dtype === 'F16') {
    const b = await store.readBytes(name);
    return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  }
  if (t.dtype === 'BF16') {
    const b = await store.readBytes(name);
    return bf16BitsToF16Bits(new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));
  }
  return f32ToF16Bits(await store.readF32(name));
}

// ------------------------------------------------------------------ sharded checkpoints

/** Tensors spread over several files; each name lives in exactly one. */
export class ShardedTensors implements TensorStore {
  private readonly byName = new Map<string, SafetensorsFile>();
  constructor(readonly files: SafetensorsFile[], where = 'shards') {
    for (const f of files) {
      for (const n of f.names()) {
        const prev = this.byName.get(n);
        if (prev) throw new FormatError(f.source.name, `tensor '${n}'`, `also present in ${prev.source.name} (${where})`);
        this.byName.set(n, f);
      }
    }
  }
  names(): string[] {
    return [...this.byName.keys()];
  }
  info(name: string): TensorInfo | undefined {
    return this.byName.get(name)?.info(name);
  }
  private file(name: string): SafetensorsFile {
    const f = this.byName.get(name);
    if (!f) throw new FormatError(this.files.map((x) => x.source.name).join(', '), `tensor '${name}'`, 'not in any shard');
    return f;
  }
  readBytes(name: string) {
    return this.file(name).readBytes(name);
  }
  readF32(name: string) {
    return this.file(name).readF32(name);
  }
  readF64(name: string) {
    return this.file(name).readF64(name);
  }
  readI32(name: string) {
    return this.file(name).readI32(name);
  }
  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

/** The shard file of every tensor, from a model.safetensors.index.json text. */
export function parseShardIndex(text: string, file = 'model.safetensors.index.json'): Map<string, string> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, 'line 1', `not valid JSON (${(e as Error).message})`);
  }
  const wm = (j as { weight_map?: unknown })?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new FormatError(file, 'weight_map', 'missing or not an object of {tensor: shard file}');
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(wm)) {
    if (typeof v !== 'string' || v.includes('/') || v.includes('\\')) throw new FormatError(file, `weight_map['${k}']`, `expected a shard file name in the same folder, found ${JSON.stringify(v)}`);
    out.set(k, v);
  }
  return out;
}

/**
 * Open shards given as byte sources named by their file names (browser: Files from a folder
 * picker). Every tensor the index names must be in the shard it names.
 */
export async function openShards(indexText: string, sources: Map<string, ByteSource>, indexName = 'model.safetensors.index.json'): Promise<ShardedTensors> {
  const map = parseShardIndex(indexText, indexName);
  const files: SafetensorsFile[] = [];
  try {
    for (const shard of new Set(map.values())) {
      const src = sources.get(shard);
      if (!src) throw new FormatError(indexName, `weight_map → '${shard}'`, 'the shard is missing', 'download every shard the index lists');
      files.push(await SafetensorsFile.open(src));
    }
    const store = new ShardedTensors(files, indexName);
    for (const [name, shard] of map) {
      const info = store.info(name);
      if (!info) throw new FormatError(indexName, `tensor '${name}'`, `listed in shard '${shard}' but not in it`);
      if (!info.file.endsWith(shard)) throw new FormatError(indexName, `tensor '${name}'`, `listed in '${shard}' but found in '${info.file}'`);
    }
    return store;
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
}

/** A model folder (Node): model.safetensors.index.json and its shards, else model.safetensors. */
export async function openCheckpoint(dir: string): Promise<TensorStore> {
  const fs = await nodeFs();
  const { join } = await nodePath();
  const indexPath = join(dir, 'model.safetensors.index.json');
  let indexText: string | null = null;
  try {
    indexText = await fs.readFile(indexPath, 'utf8');
  } catch {
    /* not sharded */
  }
  if (indexText === null) {
    const single = join(dir, 'model.safetensors');
    try {
      await fs.access(single);
    } catch {
      throw new FormatError(dir, 'model.safetensors', 'neither model.safetensors nor model.safetensors.index.json is in this folder', 'point --model at a Hugging Face model folder with safetensors weights');
    }
    return SafetensorsFile.openPath(single);
  }
  const sources = new Map<string, ByteSource>();
  try {
    for (const shard of new Set(parseShardIndex(indexText, indexPath).values())) {
      try {
        sources.set(shard, await openFileSource(join(dir, shard)));
      } catch {
        throw new FormatError(indexPath, `weight_map → '${shard}'`, 'the shard file is missing', 'download every shard the index lists');
      }
    }
    return await openShards(indexText, sources, indexPath);
  } catch (e) {
    await Promise.all([...sources.values()].map((s) => s.close?.()));
    throw e;
  }
}

// ------------------------------------------------------------------ writing

function tensorBytes(t: TensorToWrite): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new UsageError(`tensor '${t.name}': shape [${t.shape}] has ${n} elements but the data has ${t.data.length}`);
  let arr: ArrayBufferView;
  const d = t.data;
  switch (t.dtype) {
    case 'F64':
      arr = d instanceof Float64Array ? d : Float64Array.from(d as ArrayLike<number>);
      break;
    case 'F32':
      arr = d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
      break;
    case 'F16':
      arr = d instanceof Uint16Array ? d : f32ToF16Bits(d as ArrayLike<number>);
      break;
    case 'BF16':
      arr = d instanceof Uint16Array ? d : f32ToBf16Bits(d as ArrayLike<number>);
      break;
    case 'I32':
      arr = d instanceof Int32Array ? d : Int32Array.from(d as ArrayLike<number>);
      break;
    case 'I64':
      arr = d instanceof BigInt64Array ? d : BigInt64Array.from(Array.from(d as ArrayLike<number>, (v) => BigInt(v)));
      break;
    default:
      throw new UsageError(`tensor '${t.name}': cannot write dtype ${String(t.dtype)}`);
  }
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

/** The header bytes (length + JSON padded with spaces to 8) and each tensor's bytes, in order. */
export function serializeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const seen = new Set<string>();
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    if (seen.has(t.name) || t.name === '__metadata__') throw new UsageError(`tensor name '${t.name}' is used twice or reserved`);
    seen.add(t.name);
    const b = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.byteLength] };
    blobs.push(b);
    off += b.byteLength;
  }
  let json = JSON.stringify(header);
  let hb = new TextEncoder().encode(json);
  const pad = (8 - (hb.byteLength % 8)) % 8;
  if (pad) hb = new TextEncoder().encode(json + ' '.repeat(pad));
  const head = new Uint8Array(8 + hb.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  head.set(hb, 8);
  return [head, ...blobs];
}

/** One contiguous safetensors image (browser downloads, tests). */
export function safetensorsBytes(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  return concatBytes(serializeSafetensors(tensors, metadata));
}

/** The parts, back to back in one array. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * Write `parts` to `path` through a temporary file in the same folder and a rename, so that a
 * crash leaves either the old file or the new one, never a torn one (Node).
 */
export async function writeFileAtomic(path: string, parts: (Uint8Array | string)[]): Promise<void> {
  const fs = await nodeFs();
  const tmp = `${path}.tmp-${pid()}-${Math.random().toString(36).slice(2, 8)}`;
  const fh = await fs.open(tmp, 'w');
  try {
    for (const p of parts) await fh.write(typeof p === 'string' ? new TextEncoder().encode(p) : p);
    await fh.sync();
    await fh.close();
    await fs.rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Write a safetensors file atomically (Node). */
export async function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
