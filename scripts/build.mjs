// build.mjs — the whole build, with no tool beyond esbuild and asc:
//   assembly/index.ts      → build/zpd.wasm            (AssemblyScript, release)
//   assembly/kernels/      → build/kernels*.wasm       (the wasm backend's SIMD kernels)
//   src/index.ts           → dist/node/index.js         (the library for Node)
//                          → dist/browser/index.js      (the library for browsers)
//   src/worker/worker.ts   → dist/browser/worker.js     (the training Web Worker)
//   web/demo.ts            → dist/web/demo.js           (the demo page web/index.html; npm run demo)
//   cli/main.ts            → dist/cli.js                (the zpd-wgpu command)
//   src/**/*.ts            → dist/types/**/*.d.ts       (declarations, tsconfig.types.json)
// Shaders (*.wgsl) and the wasm are inlined as strings/bytes (scripts/assets.mjs), so the
// browser build needs no file access. Usage: node scripts/build.mjs [--wasm-only]
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { assetsPlugin } from './assets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wasmOnly = process.argv.includes('--wasm-only');

if (existsSync(join(root, 'assembly/index.ts'))) {
  mkdirSync(join(root, 'build'), { recursive: true });
  execFileSync(process.execPath, [join(root, 'node_modules/assemblyscript/bin/asc.js'), 'assembly/index.ts', '--target', 'release'], {
    cwd: root,
    stdio: 'inherit',
  });
}
// The wasm backend's kernels (assembly/kernels/, src/wasm/): SIMD on an imported memory — shared
// for threads, its relaxed-simd twin, and an unshared one for pages without SharedArrayBuffer.
if (existsSync(join(root, 'assembly/kernels/index.ts'))) {
  const asc = join(root, 'node_modules/assemblyscript/bin/asc.js');
  const base = ['assembly/kernels/index.ts', '-O3', '--runtime', 'stub', '--noAssert', '--importMemory', '--initialMemory', '16', '--maximumMemory', '65536', '--enable', 'simd'];
  const shared = ['--sharedMemory', '--enable', 'threads'];
  for (const [out, extra] of [['kernels.wasm', shared], ['kernels-relaxed.wasm', [...shared, '--enable', 'relaxed-simd']], ['kernels-single.wasm', []]]) {
    execFileSync(process.execPath, [asc, ...base, ...extra, '-o', `build/${out}`], { cwd: root, stdio: 'inherit' });
  }
}
if (wasmOnly) process.exit(0);

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
  plugins: [assetsPlugin],
  absWorkingDir: root,
  loader: { '.py': 'text' }, // bench/torch_step.py, the PyTorch peer `zpd-wgpu bench` runs
};
// Runtime dependencies stay imports in the Node build; the browser build bundles them, and never
// names Dawn's Node addon (src/platform/ swaps it out with Node's built-ins).
const nodeExternal = ['webgpu', 'msgpackr', 'hyparquet', '@huggingface/jinja', 'yaml'];
// The browser build swaps src/platform/node.ts (Node's built-ins) for src/platform/browser.ts.
const browserPlatform = {
  name: 'zpd-browser-platform',
  setup(build) {
    build.onResolve({ filter: /platform\/node\.js$/ }, () => ({ path: join(root, 'src', 'platform', 'browser.ts') }));
  },
};
const jobs = [
  { entryPoints: ['src/index.ts'], outfile: 'dist/node/index.js', platform: 'node', external: nodeExternal },
  { entryPoints: ['src/reference/index.ts'], outfile: 'dist/node/reference.js', platform: 'node', external: nodeExternal },
  { entryPoints: ['src/index.ts'], outfile: 'dist/browser/index.js', platform: 'browser', plugins: [assetsPlugin, browserPlatform] },
  { entryPoints: ['src/worker/worker.ts'], outfile: 'dist/browser/worker.js', platform: 'browser', plugins: [assetsPlugin, browserPlatform] },
  { entryPoints: ['web/demo.ts'], outfile: 'dist/web/demo.js', platform: 'browser', plugins: [assetsPlugin, browserPlatform] },
  { entryPoints: ['cli/main.ts'], outfile: 'dist/cli.js', platform: 'node', external: nodeExternal },
].filter((j) => existsSync(join(root, j.entryPoints[0])));
await Promise.all(jobs.map((j) => esbuild.build({ ...common, ...j })));

// TypeScript declarations for `import … from 'zpd-wgpu'`; the public types name WebGPU's
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (existsSync(tsc) && existsSync(join(root, 'tsconfig.types.json'))) {
  rmSync(join(root, 'dist', 'types'), { recursive: true, force: true });
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.types.json'], { cwd: root, stdio: 'inherit' });
  for (const entry of ['index.d.ts', 'reference/index.d.ts']) {
    const f = join(root, 'dist', 'types', entry);
    writeFileSync(f, `/// <reference types="@webgpu/types" />\n${readFileSync(f, 'utf8')}`);
  }
}
// what a page loads: the library, the training worker (shaders and wasm inlined), the demo's script
const kib = (f) => `${f} ${(statSync(join(root, f)).size / 1024).toFixed(0)} KiB`;
console.log(`build: browser ${['dist/browser/index.js', 'dist/browser/worker.js', 'dist/web/demo.js'].filter((f) => existsSync(join(root, f))).map(kib).join(', ')}`);
if (process.argv.includes('--sizes')) {
  const sizes = (files) => files.map((f) => `${f} ${(statSync(join(root, f)).size / 1024).toFixed(0)} KiB`).join(', ');
  console.log(`build: ${sizes(['dist/node/index.js', 'dist/browser/index.js', 'dist/cli.js'])}`);
}
