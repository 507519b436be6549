// Node's built-in modules, loaded on first use. The only file in src/ that names them: the
// browser build (scripts/build.mjs) puts ./browser.ts in its place, so a browser bundle holds no
// reference to a Node built-in, and what needs a file system says so when called there.
export const isNode = true;
export const nodeFs = () => import('node:fs/promises');
export const nodeFsSync = () => import('node:fs');
export const nodePath = () => import('node:path');
export const nodeOs = () => import('node:os');
export const nodeUrl = () => import('node:url');
export const nodeCrypto = () => import('node:crypto');
/** Dawn's Node bindings (the `webgpu` package): WebGPU for Node. */
export const dawn = () => import('webgpu');
/** This process's id (temporary file names), in Node. */
export const pid = (): number => process.pid;
/** An environment variable, in Node. */
export const env = (name: string): string | undefined => process.env[name];

// What the wasm backend (src/wasm/) needs synchronously: V8's flags, the core count, worker threads.
const builtin = <T>(name: string): T | undefined => (process as { getBuiltinModule?: (n: string) => unknown }).getBuiltinModule?.(name) as T | undefined;
/** Switch a V8 flag on for this process (e.g. relaxed SIMD on Node 20). */
export const setV8Flags = (flags: string): void => builtin<typeof import('node:v8')>('node:v8')?.setFlagsFromString(flags);
/** The cores this process may use, or null when unknown. */
export const cpuCount = (): number | null => builtin<typeof import('node:os')>('node:os')?.availableParallelism?.() ?? null;
/** Node's worker_threads (a browser has Web Workers instead). */
export const workerThreads = () => builtin<typeof import('node:worker_threads')>('node:worker_threads');
/** The last line of a wasm worker's source (src/wasm/worker.ts): how it gets its data and says it is ready. */
export const WORKER_BOOT: string = "const wt = require('node:worker_threads'); start(wt.workerData, () => wt.parentPort.postMessage('ready'));";
