// The wasm backend's runtime: the kernel module (assembly/kernels/ → build/kernels*.wasm), one
// WebAssembly.Memory that every thread shares, a first-fit allocator over it, and a pool of
// worker threads (worker_threads in Node, Web Workers in a browser) that each run their share of
// a kernel. `run(op, work, …args)` calls op(…args, tid, nt) on every thread at once and returns
// when all are done — each call is a barrier (a call with little work runs on this thread alone);
// the kernels split work so that no output element is summed by more than one thread, and each
// in the same order, so results do not depend on the thread count.
//
// Builds: kernels.wasm (SIMD, shared memory), kernels-relaxed.wasm (the same with
// f32x4.relaxed_madd, used when the engine validates it: Node ≥ 22, browsers, or Node 20 with
// --experimental-wasm-relaxed-simd, which hasRelaxedSimd() switches on), kernels-single.wasm (SIMD, unshared memory: a browser page
// without cross-origin isolation has no SharedArrayBuffer; one thread).
import sharedBytes from '../../build/kernels.wasm';
import relaxedBytes from '../../build/kernels-relaxed.wasm';
import singleBytes from '../../build/kernels-single.wasm';
import { UsageError } from '../errors.js';
import { cpuCount, env, setV8Flags, workerThreads } from '../platform/node.js';
import { WORKER_SOURCE } from './worker.js';

const PAGE = 65536;
/** Kernel calls with less work than this (about 20 µs) run on one thread. */
const SMALL_WORK = 1 << 16;
/** wasm32 addresses 4 GiB: 65536 pages of 64 KiB. */
export const WASM_MAX_BYTES = 65536 * PAGE;
const ALIGN = 64;

/** The kernels' exports (assembly/kernels/index.ts): pointers and sizes are numbers. */
type Fn = (...args: number[]) => number;
export interface KernelExports {
  heap_base(): number;
  mm_pack_a_floats(M: number, K: number): number;
  mm_pack_b_floats(N: number, K: number): number;
  sum_squares(g: number, n: number): number;
  [name: string]: Fn;
}

export interface WasmKernelOptions {
  /** Threads (the calling one included); default: ZPD_WASM_THREADS, else the logical CPUs, at most 8. */
  threads?: number;
  /** 'auto' (default): relaxed SIMD where the engine has it; 'simd': never. */
  simd?: 'auto' | 'simd';
  /** Calls with less work run on one thread (default 65536; 0: every call on every thread — tests). */
  smallWork?: number;
  /** false: the unshared-memory build on one thread, as a page without SharedArrayBuffer gets (tests). */
  shared?: boolean;
}

/** The ops that run split over threads (their last two parameters are tid, nt). */
export const THREADED_OPS = [
  'mm_pack', 'mm_compute', 'embedding_forward', 'embedding_backward', 'add', 'swiglu_forward', 'swiglu_backward', 'sum_rows',
  'rmsnorm_forward', 'rmsnorm_backward', 'rmsnorm_dweight', 'rope', 'attention_forward', 'attention_backward',
  'lora_dropout', 'lora_dropout_backward', 'lmhead_forward_chunk', 'lmhead_backward_chunk', 'adamw',
] as const;
export type ThreadedOp = (typeof THREADED_OPS)[number];

let compiled: Map<Uint8Array, Promise<WebAssembly.Module>> | undefined;
function compile(bytes: Uint8Array): Promise<WebAssembly.Module> {
  compiled ??= new Map();
  let m = compiled.get(bytes);
  if (!m) compiled.set(bytes, (m = WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>)));
  return m;
}

let relaxedChecked: boolean | undefined;
/**
 * Whether this engine can run the relaxed-simd build. Node 20 has relaxed SIMD behind
 * --experimental-wasm-relaxed-simd (on by default from Node 22): the flag is switched on here,
 * for this process, before the first kernel module compiles — unless ZPD_WASM_SIMD=simd.
 */
export function hasRelaxedSimd(): boolean {
  if (relaxedChecked !== undefined) return relaxedChecked;
  const valid = () => WebAssembly.validate(relaxedBytes as Uint8Array<ArrayBuffer>);
  if (env('ZPD_WASM_SIMD') === 'simd') return (relaxedChecked = false);
  if (!valid()) {
    setV8Flags('--experimental-wasm-relaxed-simd');
  }
  return (relaxedChecked = valid());
}

/** Shared memory and blocking waits on this thread: what more than one thread needs. */
function canShare(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean; document?: unknown };
  if (g.document !== undefined) return false; // a browser page's main thread may not Atomics.wait
  return g.crossOriginIsolated !== false;
}

function defaultThreads(): number {
  const e = Number(env('ZPD_WASM_THREADS') ?? '');
  if (Number.isInteger(e) && e >= 1) return e;
  const n = cpuCount() ?? 1;
  return Math.max(1, Math.min(8, n));
}

interface Block {
  ptr: number;
  size: number;
}

export class WasmKernels {
  readonly exports: KernelExports;
  readonly threads: number;
  /** 'relaxed-simd' or 'simd': which build runs. */
  readonly isa: 'relaxed-simd' | 'simd';
  readonly shared: boolean;
  /** Bytes allocated now and at most so far. */
  readonly usage = { live: 0, peak: 0 };
  private free: Block[] = []; // sorted by ptr, coalesced
  private sizes = new Map<number, number>();
  private top: number;
  private scratches = new Map<string, Block>();
  private pool: Pool | null;
  private fns: Fn[];
  private disposed = false;
  private smallWork = SMALL_WORK;

  private constructor(readonly memory: WebAssembly.Memory, inst: WebAssembly.Instance, isa: 'relaxed-simd' | 'simd', shared: boolean, pool: Pool | null) {
    this.exports = inst.exports as unknown as KernelExports;
    this.isa = isa;
    this.shared = shared;
    this.pool = pool;
    this.threads = pool ? pool.nt : 1;
    this.top = Math.ceil(this.exports.heap_base() / ALIGN) * ALIGN;
    this.fns = THREADED_OPS.map((n) => this.exports[n]);
  }

  static async create(o: WasmKernelOptions = {}): Promise<WasmKernels> {
    const shared = o.shared !== false && canShare();
    const relaxed = shared && (o.simd ?? 'auto') === 'auto' && hasRelaxedSimd();
    const bytes = !shared ? singleBytes : relaxed ? relaxedBytes : sharedBytes;
    const mod = await compile(bytes);
    const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, shared } as WebAssembly.MemoryDescriptor);
    const inst = await WebAssembly.instantiate(mod, { env: { memory, abort: abortHandler } });
    const want = shared ? Math.max(1, Math.floor(o.threads ?? defaultThreads())) : 1;
    const pool = want > 1 ? await Pool.start(mod, memory, want) : null;
    const k = new WasmKernels(memory, inst, relaxed ? 'relaxed-simd' : 'simd', shared, pool);
    k.smallWork = o.smallWork ?? SMALL_WORK;
    return k;
  }

  // ---- memory ----------------------------------------------------------------------------

  /** `bytes` of wasm memory (64-byte aligned, contents undefined). */
  alloc(bytes: number, what = 'a tensor'): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let ptr = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.size < size) continue;
      ptr = b.ptr;
      if (b.size === size) this.free.splice(i, 1);
      else (b.ptr += size), (b.size -= size);
      break;
    }
    if (ptr < 0) {
      const end = this.top + size;
      if (end > WASM_MAX_BYTES)
        throw new UsageError(
          `the wasm backend needs ${(end / 2 ** 30).toFixed(2)} GiB of memory (at ${what}), but WebAssembly (wasm32) addresses at most 4 GiB`,
          'use --backend webgpu, a smaller model, or a smaller --batch-size / --seq-len',
        );
      const have = this.memory.buffer.byteLength;
      if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
      ptr = this.top;
      this.top = end;
    }
    this.sizes.set(ptr, size);
    this.usage.live += size;
    this.usage.peak = Math.max(this.usage.peak, this.usage.live);
    return ptr;
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    this.usage.live -= size;
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < ptr) i++;
    this.free.splice(i, 0, { ptr, size });
    // coalesce with the neighbours
    if (i + 1 < this.free.length && this.free[i].ptr + this.free[i].size === this.free[i + 1].ptr) {
      this.free[i].size += this.free[i + 1].size;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].size === this.free[i].ptr) {
      this.free[i - 1].size += this.free[i].size;
      this.free.splice(i, 1);
    }
  }

  /** A named scratch buffer of at least `bytes`, kept and reused (grown when a larger one is asked for). */
  scratch(name: string, bytes: number): number {
    const s = this.scratches.get(name);
    if (s && s.size >= bytes) return s.ptr;
    if (s) this.release(s.ptr);
    const size = Math.max(bytes, s ? s.size * 1.25 : 0);
    const ptr = this.alloc(size, `scratch ${name}`);
    this.scratches.set(name, { ptr, size });
    return ptr;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }
  /** Allocate and fill. */
  put(data: Float32Array | Int32Array, what?: string): number {
    const p = this.alloc(data.byteLength, what);
    new Uint8Array(this.memory.buffer, p, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return p;
  }
  write(ptr: number, data: Float32Array | Int32Array): void {
    new Uint8Array(this.memory.buffer, ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  zero(ptr: number, bytes: number): void {
    new Uint8Array(this.memory.buffer, ptr, bytes).fill(0);
  }
  /** A copy of n floats at ptr. */
  readF32(ptr: number, n: number): Float32Array {
    return this.f32(ptr, n).slice();
  }

  // ---- calls -----------------------------------------------------------------------------

  /**
   * op(…args, tid, nt) on every thread; returns when all are done. `work` (multiply-adds or
   * elements, roughly) below `smallWork` runs on this thread alone: waking the others would cost
   * more than it saves, and the result is the same either way.
   */
  run(op: ThreadedOp, work: number, ...args: number[]): void {
    if (this.disposed) throw new UsageError('the wasm kernels have been disposed');
    const idx = THREADED_OPS.indexOf(op);
    if (!this.pool || work < this.smallWork) {
      this.fns[idx](...args, 0, 1);
      return;
    }
    this.pool.run(idx, args, () => this.fns[idx](...args, 0, this.pool!.nt));
  }

  /** Scratch for per-thread buffers: `floats` per thread. */
  perThread(name: string, floats: number): number {
    return this.scratch(name, this.threads * Math.ceil(floats / 16) * 64);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool?.stop();
  }
}

function abortHandler(_msg: number, _file: number, line: number, col: number): never {
  throw new Error(`kernels.wasm aborted at ${line}:${col}`);
}

// ---- the thread pool --------------------------------------------------------------------
// A control block in its own SharedArrayBuffer: [0] sequence number, [1] op index (−1: stop),
// [2] argument count, [3] threads done, [4] a thread failed; arguments as f64 from byte 64.
const CTRL_WORDS = 16, MAX_ARGS = 32, SPIN = 20000;

type WorkerLike = { terminate(): unknown; unref?(): void };

class Pool {
  private ctrl: Int32Array;
  private args: Float64Array;

  private constructor(readonly nt: number, private sab: SharedArrayBuffer, private workers: WorkerLike[]) {
    this.ctrl = new Int32Array(sab, 0, CTRL_WORDS);
    this.args = new Float64Array(sab, CTRL_WORDS * 4, MAX_ARGS);
  }

  static async start(mod: WebAssembly.Module, memory: WebAssembly.Memory, nt: number): Promise<Pool | null> {
    const sab = new SharedArrayBuffer(CTRL_WORDS * 4 + MAX_ARGS * 8);
    const data = (tid: number) => ({ module: mod, memory, ctrl: sab, names: [...THREADED_OPS], tid, nt, spin: SPIN });
    const workers: WorkerLike[] = [];
    const ready: Promise<void>[] = [];
    const wt = workerThreads();
    for (let tid = 1; tid < nt; tid++) {
      if (wt) {
        const w = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: data(tid) });
        ready.push(new Promise((res, rej) => {
          w.once('message', () => {
            w.unref?.(); // a parked worker does not keep the process alive
            res();
          });
          w.once('error', rej);
        }));
        workers.push(w);
      } else if (typeof Worker !== 'undefined') {
        const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
        const w = new Worker(url);
        ready.push(new Promise((res, rej) => {
          w.onmessage = () => res();
          w.onerror = (e) => rej(new Error(`a wasm worker failed to start: ${e.message}`));
        }));
        w.postMessage(data(tid));
        workers.push(w);
      } else {
        return null;
      }
    }
    await Promise.all(ready);
    return new Pool(nt, sab, workers);
  }

  run(op: number, args: number[], own: () => void): void {
    if (args.length > MAX_ARGS) throw new Error(`wasm pool: ${args.length} arguments exceed ${MAX_ARGS}`);
    const c = this.ctrl;
    this.args.set(args);
    c[1] = op;
    c[2] = args.length;
    Atomics.store(c, 3, 0);
    Atomics.add(c, 0, 1);
    Atomics.notify(c, 0);
    own();
    const want = this.nt - 1;
    let d: number, spins = 0;
    while ((d = Atomics.load(c, 3)) < want) {
      if (++spins > SPIN) Atomics.wait(c, 3, d, 1000);
    }
    if (Atomics.load(c, 4)) {
      c[4] = 0;
      throw new Error('a wasm worker thread failed (see its error above)');
    }
  }

  stop(): void {
    const c = this.ctrl;
    c[1] = -1;
    Atomics.add(c, 0, 1);
    Atomics.notify(c, 0);
    for (const w of this.workers) w.terminate();
    void this.sab;
  }
}
