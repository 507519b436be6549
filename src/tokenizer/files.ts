// Loading a tokenizer from disk (Node only: node:fs is imported lazily so the browser bundle
// never touches it). The compact form is cached with msgpackr, keyed by the tokenizer.json and
// tokenizer_config.json paths, sizes and modification times, so a second load reads one small
// binary file instead of parsing ~10 MB of JSON.
//   default cache dir: the user cache folder (src/io/cache.ts); `cacheDir: false` disables it
import { defaultCacheDir } from '../io/cache.js';
import { pack, unpack } from 'msgpackr';
import { FormatError, UsageError } from '../errors.js';
import { COMPACT_VERSION, compactFromJSON, type CompactTokenizer } from './compact.js';
import { Tokenizer } from './tokenizer.js';
import { nodeCrypto, nodeFs, nodePath, pid } from '../platform/node.js';

export interface LoadTokenizerOptions {
  /** where the compact form is cached; false: no cache */
  cacheDir?: string | false;
}

export interface LoadInfo {
  cached: boolean;
  ms: number;
  cacheFile: string | null;
}

/** Parse a JSON file, with a FormatError naming the file and the place when it is broken. */
export async function readJsonFile(file: string): Promise<unknown> {
  const { readFile } = await nodeFs();
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new FormatError(file, jsonErrorPlace(text, msg), `not valid JSON (${msg})`, 'the file may be truncated or damaged: download it again');
  }
}

/** "line N, column M" (or "near line N") of a JSON.parse error in text, from V8's message. */
export function jsonErrorPlace(text: string, msg: string): string {
  const lineOf = (pos: number) => {
    const before = text.slice(0, pos);
    return { line: before.split('\n').length, column: pos - before.lastIndexOf('\n') };
  };
  const pos = /position (\d+)/.exec(msg);
  if (pos) {
    if (Number(pos[1]) >= text.length) return `line ${lineOf(text.length).line} (end of file)`;
    const { line, column } = lineOf(Number(pos[1]));
    return `line ${line}, column ${column}`;
  }
  if (/Unexpected end of JSON input/.test(msg)) return `line ${lineOf(text.length).line} (end of file)`;
  // newer V8: `Unexpected token '}', ..."merges": [}" is not valid JSON` — find the excerpt
  const ex = /"(?:\.\.\.)?([\s\S]*?)(?:\.\.\.)?" is not valid JSON/.exec(msg);
  if (ex && ex[1]) {
    const at = text.indexOf(ex[1]);
    if (at >= 0) return `near line ${lineOf(at + Math.floor(ex[1].length / 2)).line}`;
  }
  return 'JSON';
}

/**
 * Load a tokenizer from a tokenizer.json or a model folder holding one (tokenizer_config.json
 * beside it is read when present: BOS/EOS, chat_template). `info`, when given, is filled in.
 */
export async function loadTokenizer(path: string, opts: LoadTokenizerOptions = {}, info?: LoadInfo): Promise<Tokenizer> {
  const t0 = performance.now();
  const fs = await nodeFs();
  const { join, dirname, resolve } = await nodePath();
  let file = resolve(path);
  const st = await fs.stat(file).catch(() => null);
  if (!st) throw new UsageError(`tokenizer not found: ${path} (give a tokenizer.json or a model folder)`);
  if (st.isDirectory()) file = join(file, 'tokenizer.json');
  const fst = await fs.stat(file).catch(() => null);
  if (!fst) throw new UsageError(`${file} not found: the model folder has no tokenizer.json`);
  const cfgFile = join(dirname(file), 'tokenizer_config.json');
  const cst = await fs.stat(cfgFile).catch(() => null);

  let cacheFile: string | null = null;
  const dir = opts.cacheDir === false ? null : (opts.cacheDir ?? (await defaultCacheDir()));
  if (dir !== null) {
    const { createHash } = await nodeCrypto();
    const key = createHash('sha256')
      .update(JSON.stringify([COMPACT_VERSION, file, fst.size, fst.mtimeMs, cst ? [cfgFile, cst.size, cst.mtimeMs] : null]))
      .digest('hex').slice(0, 32);
    cacheFile = join(dir, `tokenizer-${key}.msgpack`);
    const buf = await fs.readFile(cacheFile).catch(() => null);
    if (buf) {
      try {
        const compact = fromCacheForm(unpack(buf));
        if (compact) {
          const tok = await Tokenizer.fromCompact(compact);
          if (info) Object.assign(info, { cached: true, ms: performance.now() - t0, cacheFile });
          return tok;
        }
      } catch {
        // a damaged cache file is rebuilt below
      }
    }
  }
  const json = await readJsonFile(file);
  const config = cst ? await readJsonFile(cfgFile) : {};
  const compact = compactFromJSON(json, config, file);
  if (cacheFile) {
    try {
      await fs.mkdir(dirname(cacheFile), { recursive: true });
      const tmp = `${cacheFile}.${pid()}.tmp`;
      await fs.writeFile(tmp, pack(toCacheForm(compact)));
      await fs.rename(tmp, cacheFile); // never a torn cache file
    } catch {
      // an unwritable cache only costs speed
    }
  }
  const tok = await Tokenizer.fromCompact(compact);
  if (info) Object.assign(info, { cached: false, ms: performance.now() - t0, cacheFile });
  return tok;
}

// Typed arrays travel through msgpackr as plain bytes (it returns them as Uint8Array/Buffer), and
// are rebuilt (copied, for alignment) on the way back.
type CacheForm = Omit<CompactTokenizer, 'offs' | 'merges'> & { offs: Uint8Array; merges: Uint8Array };

function bytesOf(a: Uint32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function toCacheForm(c: CompactTokenizer): CacheForm {
  return { ...c, offs: bytesOf(c.offs), merges: bytesOf(c.merges) };
}

function fromCacheForm(x: unknown): CompactTokenizer | null {
  const c = x as CacheForm | null;
  if (!c || c.v !== COMPACT_VERSION || !ArrayBuffer.isView(c.offs) || !ArrayBuffer.isView(c.merges)) return null;
  const copy = (b: Uint8Array) => new Uint8Array(b).buffer; // (Buffer.slice would not copy)
  const offs = new Uint32Array(copy(c.offs));
  const merges = new Int32Array(copy(c.merges));
  if (offs.length !== c.n + 1 || merges.length % 3 !== 0 || c.kinds.length !== c.n) return null;
  return { ...c, offs, merges, bytes: new Uint8Array(c.bytes), kinds: new Uint8Array(c.kinds) };
}
