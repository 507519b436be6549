// The browser build's stand-in for ./node.ts (scripts/build.mjs swaps them): what needs Node's
// file system, paths or OS says so instead of failing somewhere deep inside.
import { UsageError } from '../errors.js';
import type * as node from './node.js';

function unavailable(what: string): never {
  throw new UsageError(`${what} is not available in a browser: load models, tokenizers and data from bytes (modelFromStore, Tokenizer.fromJSON, parseJsonl) and keep runs in a RunFolder of your own`);
}

export const isNode = false;
export const nodeFs: typeof node.nodeFs = async () => unavailable('the file system');
export const nodeFsSync: typeof node.nodeFsSync = async () => unavailable('the file system');
export const nodePath: typeof node.nodePath = async () => unavailable('file paths');
export const nodeOs: typeof node.nodeOs = async () => unavailable('the OS module');
export const nodeUrl: typeof node.nodeUrl = async () => unavailable('file URLs');
export const nodeCrypto: typeof node.nodeCrypto = async () => unavailable("Node's crypto");
export const dawn: typeof node.dawn = async () => unavailable("Dawn's Node bindings (a browser has navigator.gpu)");
export const pid = (): number => 0;
export const env = (_name: string): string | undefined => undefined;
export const setV8Flags: typeof node.setV8Flags = () => {};
export const cpuCount: typeof node.cpuCount = () => (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? null;
export const workerThreads: typeof node.workerThreads = () => undefined;
export const WORKER_BOOT: typeof node.WORKER_BOOT = 'self.onmessage = (e) => start(e.data, () => self.postMessage(\'ready\'));';
