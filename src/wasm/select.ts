// --backend webgpu | wasm | auto: which backend a run uses. auto takes a hardware GPU when there
// is one; on a software adapter (lavapipe, SwiftShader, WARP) or none it measures both on the
// same 512³ f32 matmul (the trainer's dominant op) and takes the faster — in practice the wasm
// backend, 5–10× the software GPU on the same cores. A browser (resolveBrowserBackend) falls back
// to wasm where WebGPU is missing, whatever the choice.
import { NoAdapterError } from '../errors.js';
import { getGpu } from '../gpu/device.js';
import type { AdapterSummary, Gpu } from '../gpu/gpu.js';
import { matmul as gpuMatmul } from '../kernels/matmul.js';
import { hasRelaxedSimd, WasmKernels } from './kernels.js';
import { matmul } from './ops.js';

export type BackendChoice = 'webgpu' | 'wasm' | 'auto';

export interface BackendPick {
  kind: 'webgpu' | 'wasm';
  /** The GPU when kind is webgpu. */
  gpu: Gpu | null;
  /** Why: what auto saw and measured. */
  reason: string;
  measured?: BackendSpeeds;
}

export interface BackendSpeeds {
  /** GFLOP/s of a size³ f32 matmul, best of a few runs; null where the backend is missing. */
  webgpu: number | null;
  wasm: number;
  size: number;
  wasmThreads: number;
  wasmIsa: string;
}

/** A software rasteriser standing in for a GPU. */
export function isSoftwareAdapter(i: AdapterSummary): boolean {
  return i.fallback || /llvmpipe|lavapipe|swiftshader|warp|software/i.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`);
}

const pseudo = (n: number, seed: number) => {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) a[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  return a;
};

/** GFLOP/s of the wasm backend's matmul (x·Wᵀ, size³) on fresh kernels (or `k`). */
export async function wasmMatmulGflops(size = 512, reps = 3, k?: WasmKernels): Promise<{ gflops: number; threads: number; isa: string }> {
  const kk = k ?? (await WasmKernels.create());
  try {
    const a = kk.put(pseudo(size * size, 1)), b = kk.put(pseudo(size * size, 2)), c = kk.alloc(size * size * 4);
    let best = Infinity;
    for (let r = 0; r <= reps; r++) {
      const t0 = performance.now();
      matmul(kk, { a, bm: b, out: c, M: size, N: size, K: size, transB: true });
      if (r > 0) best = Math.min(best, performance.now() - t0); // r = 0 warms up
    }
    [a, b, c].forEach((p) => kk.release(p));
    return { gflops: (2 * size ** 3) / (best * 1e6), threads: kk.threads, isa: kk.isa };
  } finally {
    if (!k) kk.dispose();
  }
}

/** GFLOP/s of the WebGPU matmul (x·Wᵀ, size³). */
export async function gpuMatmulGflops(gpu: Gpu, size = 512, reps = 3): Promise<number> {
  const x = gpu.buffer(pseudo(size * size, 3)), w = gpu.buffer(pseudo(size * size, 4)), y = gpu.buffer(size * size * 4);
  const enc = (e: GPUCommandEncoder) => gpuMatmul(gpu, e, { a: x, bm: w, out: y, M: size, N: size, K: size, transB: true });
  await gpu.time(enc);
  let best = Infinity;
  for (let r = 0; r < reps; r++) best = Math.min(best, (await gpu.time(enc)).ms);
  [x, w, y].forEach((b) => gpu.retire(b));
  return (2 * size ** 3) / (best * 1e6);
}

/** Both backends' matmul speed (doctor reports it; auto decides by it). */
export async function measureBackends(gpu: Gpu | null, size = 512): Promise<BackendSpeeds> {
  const w = await wasmMatmulGflops(size);
  return { webgpu: gpu ? await gpuMatmulGflops(gpu, size) : null, wasm: w.gflops, size, wasmThreads: w.threads, wasmIsa: w.isa };
}

/** auto's rule: a hardware GPU; else the faster of the two on the measured matmul (wasm without a GPU). */
export function decide(info: AdapterSummary | null, m?: BackendSpeeds): { kind: 'webgpu' | 'wasm'; reason: string } {
  if (!info) return { kind: 'wasm', reason: 'auto: no WebGPU adapter' };
  const name = info.description || info.device || info.vendor;
  if (!isSoftwareAdapter(info)) return { kind: 'webgpu', reason: `auto: a hardware GPU (${name})` };
  if (!m || m.webgpu === null) return { kind: 'wasm', reason: `auto: the adapter is a software one (${name})` };
  const kind = m.wasm >= m.webgpu ? 'wasm' : 'webgpu';
  return { kind, reason: `auto: the adapter is a software one (${name}); matmul ${m.size}³ wasm ${m.wasm.toFixed(1)} GFLOP/s vs webgpu ${m.webgpu.toFixed(1)}` };
}

/** Which backend `choice` means here. `gpu`: a GPU the caller already holds (never destroyed here). */
export async function resolveBackend(choice: BackendChoice, gpu?: Gpu): Promise<BackendPick> {
  if (choice === 'wasm') return { kind: 'wasm', gpu: null, reason: '--backend wasm' };
  if (choice === 'webgpu') return { kind: 'webgpu', gpu: gpu ?? (await getGpu()), reason: '--backend webgpu' };
  let g: Gpu | null = gpu ?? null;
  let why = '';
  if (!g) {
    try {
      g = await getGpu();
    } catch (e) {
      why = ` (${(e as Error).message})`;
    }
  }
  if (!g) return { kind: 'wasm', gpu: null, reason: `auto: no WebGPU adapter${why}` };
  const measured = isSoftwareAdapter(g.info) ? await measureBackends(g) : undefined;
  const d = decide(g.info, measured);
  if (d.kind === 'wasm' && !gpu) g.destroy();
  return { ...d, gpu: d.kind === 'webgpu' ? g : null, measured };
}

/**
 * resolveBackend for a browser, where a page cannot install a driver: 'webgpu' (the default) falls
 * back to the wasm backend when WebGPU is missing entirely — no navigator.gpu, or
 * requestAdapter() gives null (the NoAdapterError of createGpu) — and the reason says so; 'wasm'
 * means what it means in Node, and 'auto' too except that a software adapter is not timed: it
 * gives wasm (Chromium's SwiftShader ran the 512³ matmul at 0.3 GFLOP/s against the wasm
 * backend's 9 on one thread, and timing it took 4 s). `gpu`: the GPU, or how to get one (default
 * getGpu; a device it gives is never destroyed here, so a worker can keep its own).
 */
export async function resolveBrowserBackend(choice: BackendChoice, gpu: Gpu | (() => Promise<Gpu>) = getGpu): Promise<BackendPick> {
  if (choice === 'wasm') return resolveBackend('wasm');
  let g: Gpu;
  try {
    g = typeof gpu === 'function' ? await gpu() : gpu;
  } catch (e) {
    if (!(e instanceof NoAdapterError)) throw e;
    const why = e.message;
    return { kind: 'wasm', gpu: null, reason: choice === 'auto' ? `${decide(null).reason} (${why})` : `webgpu unavailable in this browser (${why}): the wasm backend` };
  }
  if (choice === 'webgpu') return resolveBackend('webgpu', g);
  const d = decide(g.info);
  return { kind: d.kind, gpu: d.kind === 'webgpu' ? g : null, reason: d.kind === 'wasm' ? `${d.reason}, not timed in a browser: the wasm backend` : d.reason };
}

/** What run.json records of a wasm run: the build that ran decides the rounding (bit-exact resume). */
export function wasmRunInfo(): { isa: 'relaxed-simd' | 'simd'; sharedMemory: boolean } {
  const shared = typeof SharedArrayBuffer !== 'undefined';
  return { isa: shared && hasRelaxedSimd() ? 'relaxed-simd' : 'simd', sharedMemory: shared };
}
