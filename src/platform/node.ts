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
