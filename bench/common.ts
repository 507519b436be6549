// What every part of `zpd-wgpu bench` shares: the figure record, GPU and tfjs timing, and the
// peers loaded only when they are installed (a dynamic import of a name esbuild does not follow,
// so dist/cli.js never bundles them and the command works from the published package).
import type { Gpu } from '../src/gpu/gpu.js';

/** One measured figure, and the same measurement of a peer in the same run on the same machine. */
export interface Figure {
  /** what was measured, in words (shape, config) */
  what: string;
  value: number;
  unit: string;
  /** the peer's name, or null when there is none (or it could not run: see note) */
  peer: string | null;
  peerValue: number | null;
  /** value / peerValue for rates (higher is better), so > 1 means zpd-wgpu is ahead */
  ratio: number | null;
  /** why a peer is missing, which clock measured, a cross-check */
  note?: string;
  /** that ours and the peer computed the same thing: the largest difference of a result */
  check?: { what: string; maxAbsDiff: number };
}

export type Figures = Record<string, Figure>;

/** Where the parts report progress (stderr) and record figures. */
export interface BenchContext {
  gpu: Gpu;
  quick: boolean;
  /** run the 100–500M-parameter step as well (default: only on a non-software adapter) */
  large: boolean;
  progress(line: string): void;
  log(line: string): void;
  /** the peer PyTorch runs on: 'cpu', 'cuda', or 'off' */
  torch: 'cpu' | 'cuda' | 'off';
  /** time the wasm backend (the CPU) beside the adapter in the step part */
  wasm: boolean;
}

export function figure(what: string, value: number, unit: string, peer: string | null, peerValue: number | null, note?: string): Figure {
  const ok = peerValue !== null && Number.isFinite(peerValue) && peerValue > 0;
  const f: Figure = { what, value, unit, peer, peerValue: ok ? peerValue : null, ratio: ok ? value / peerValue! : null };
  if (note) f.note = note;
  return f;
}

/** One timed run, in milliseconds. */
export type Timer = () => Promise<number>;

/** `fn`'s GPU work: timestamps where the adapter has timestamp-query (see clockOf), else wall time. */
export const gpuTimer = (gpu: Gpu, fn: (enc: GPUCommandEncoder) => void): Timer => async () => (await gpu.time(fn)).ms;

/** Which clock gpuTimer reads on this adapter. */
export const clockOf = (gpu: Gpu): string => (gpu.features.has('timestamp-query') ? 'GPU timestamps' : 'wall clock');

/**
 * Best of `reps` runs of each timer after one warm-up run each (compiles), the timers taking
 * turns run by run: on a busy machine a burst of load then slows one run of every side instead
 * of all of one side's. A null timer gives NaN.
 */
export async function bestOf(timers: (Timer | null)[], reps: number): Promise<number[]> {
  const best = timers.map(() => Infinity);
  for (const t of timers) await t?.();
  for (let r = 0; r < reps; r++) for (const [i, t] of timers.entries()) if (t) best[i] = Math.min(best[i], await t());
  return best.map((b, i) => (timers[i] ? b : NaN));
}

/** n seeded pseudo-random values in [−scale/2, scale/2). */
export function pseudoRandom(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return a;
}

// ---- peers that load only when installed -------------------------------------------------

/** import() of a package by a name the bundler leaves alone; null and the reason when absent. */
export async function optionalImport<T>(name: string): Promise<{ mod: T | null; why: string }> {
  try {
    return { mod: (await import(/* @vite-ignore */ name)) as T, why: '' };
  } catch (e) {
    const code = (e as { code?: string }).code, msg = (e as Error).message;
    // not installed: the package itself is missing (not some file it imports)
    const absent = (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && msg.includes(`'${name.split('/').slice(0, name.startsWith('@') ? 2 : 1).join('/')}'`);
    const why = absent ? `${name} is not installed (npm install ${name})` : `${name} failed to load: ${msg}`;
    return { mod: null, why };
  }
}

export type Tf = typeof import('@tensorflow/tfjs-core');
let tfPromise: Promise<{ tf: Tf | null; why: string }> | undefined;

/** tfjs-core with the WebGPU backend on our navigator.gpu (the same adapter), or why not. */
export function loadTfjs(gpu: Gpu): Promise<{ tf: Tf | null; why: string }> {
  tfPromise ??= (async () => {
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator?.gpu) Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: gpu.navigatorGpu }, configurable: true });
    const core = await optionalImport<Tf>('@tensorflow/tfjs-core');
    if (!core.mod) return { tf: null, why: core.why };
    const backend = await optionalImport('@tensorflow/tfjs-backend-webgpu');
    if (!backend.mod) return { tf: null, why: backend.why };
    // the CommonJS build exports its namespace as `default` under an ES import
    const tf = ((core.mod as unknown as { default?: Tf }).default?.setBackend ? (core.mod as unknown as { default: Tf }).default : core.mod) as Tf;
    try {
      if (!(await tf.setBackend('webgpu'))) return { tf: null, why: 'tfjs-backend-webgpu did not initialise on this adapter' };
      await tf.ready();
    } catch (e) {
      return { tf: null, why: `tfjs-backend-webgpu failed: ${(e as Error).message}` };
    }
    const grads = await registerTfGradients(tf);
    return { tf, why: grads };
  })();
  return tfPromise;
}

// Node resolves tfjs-core's ESM files only with their extensions, which its sources leave out.
const EXTENSION_HOOK = `export async function resolve(s, c, next) {
  try { return await next(s, c); } catch (e) {
    if ((e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'ERR_UNSUPPORTED_DIR_IMPORT') && s.startsWith('.') && c.parentURL?.includes('/@tensorflow/')) return next(s + '.js', c);
    throw e;
  }
}`;

/**
 * tfjs-core's Node build has no gradient functions (the @tensorflow/tfjs bundle registers them);
 * they ship as its ESM dist/register_all_gradients.js, loaded here into the shared registry.
 * Returns '' when tf.grad works, else why not (training figures then have no tfjs peer).
 */
async function registerTfGradients(tf: Tf): Promise<string> {
  if (tf.getGradient('RealDiv')) return '';
  const mod = (await import('node:module')) as { register?: (url: string) => void };
  if (typeof mod.register !== 'function') return `tfjs-core's gradients need Node ≥ 20.6 (module.register)`;
  mod.register('data:text/javascript,' + encodeURIComponent(EXTENSION_HOOK));
  const r = await optionalImport('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  return tf.getGradient('RealDiv') ? '' : `tfjs-core's gradient functions did not load (${r.why || 'not registered'})`;
}

/** A tfjs computation's kernel time (tf.time: GPU timestamps where it has them, else wall time). */
export const tfTimer = (tf: Tf, fn: () => import('@tensorflow/tfjs-core').Tensor): Timer => async () => {
  const t = await tf.time(() => {
    fn().dispose();
  });
  return typeof t.kernelMs === 'number' ? t.kernelMs : t.wallMs;
};
