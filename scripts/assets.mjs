// One definition of how non-code assets load, shared by the esbuild build and vitest:
// *.wgsl → the file's text; *.wasm → a Uint8Array of its bytes. Both are inlined into the
// bundle so that the browser build needs no file access.
import { readFileSync } from 'node:fs';

export function assetModule(path) {
  if (path.endsWith('.wgsl')) return `export default ${JSON.stringify(readFileSync(path, 'utf8'))};`;
  if (path.endsWith('.wasm')) {
    const b64 = readFileSync(path).toString('base64');
    return `const s = ${JSON.stringify(b64)};\n` +
      `const bytes = typeof Buffer !== 'undefined' ? new Uint8Array(Buffer.from(s, 'base64'))\n` +
      `  : Uint8Array.from(atob(s), (c) => c.charCodeAt(0));\nexport default bytes;`;
  }
  return null;
}

/** esbuild plugin */
export const assetsPlugin = {
  name: 'zpd-assets',
  setup(build) {
    build.onLoad({ filter: /\.(wgsl|wasm)$/ }, (args) => ({ contents: assetModule(args.path), loader: 'js' }));
  },
};

/** vite/vitest plugin */
export const viteAssets = {
  name: 'zpd-assets',
  enforce: 'pre',
  load(id) {
    const path = id.split('?')[0];
    return assetModule(path) ?? undefined;
  },
};
