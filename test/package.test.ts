// The package as users get it: `npm pack`, installed into an empty project (dependencies from
// npm's local cache where it has them), then the command, a JavaScript import, a TypeScript file
// checked against the installed types, and a browser bundle made with esbuild.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as esbuild from 'esbuild';
import { beforeAll, expect, it } from 'vitest';
import { root } from './helpers/cli.js';
import { describeGpu } from './helpers/gpu.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const tmp = mkdtempSync(join(tmpdir(), 'zpd-consumer-'));
const app = join(tmp, 'app');
const home = join(tmp, 'home'); // a fresh user: the default cache folder goes under it
let tarball = '';

async function inApp(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const r = await run(cmd, args, { cwd: app, timeout: 300_000, maxBuffer: 32 << 20, env: { ...process.env, HOME: home, XDG_CACHE_HOME: '', ZPD_WGPU_CACHE: '', ...env } });
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

beforeAll(async () => {
  const packed = JSON.parse((await run(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root, maxBuffer: 16 << 20 })).stdout);
  tarball = join(tmp, packed[0].filename);
  mkdirSync(app);
  mkdirSync(home);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // npm's own cache (HOME of this process) has the dependencies after `npm ci`
  const r = await run(npm, ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, timeout: 300_000 });
  expect(r.stderr).not.toMatch(/ERR!/);
}, 300_000);

it('ships what users need and nothing else: built code, CLI, types, the embedded model and data; no tests, fixtures or sources', async () => {
  const files = JSON.parse((await run(npm, ['pack', '--dry-run', '--json'], { cwd: root, maxBuffer: 16 << 20 })).stdout)[0].files.map((f: { path: string }) => f.path);
  for (const f of ['dist/node/index.js', 'dist/browser/index.js', 'dist/cli.js', 'dist/types/index.d.ts', 'cli/zpd-wgpu.mjs', 'default/model/config.json', 'default/model/model.safetensors', 'default/model/tokenizer.json', 'default/data/train.jsonl', 'default/data/eval.jsonl'])
    expect(files).toContain(f);
  for (const f of files) expect(f).not.toMatch(/^(test|src|bench|assembly|shaders)\/|\.map$|^dist\/bench/);
});

describeGpu('the installed package', () => {
  it('npx zpd-wgpu --help and doctor --json; the cache goes to the user cache folder, or ZPD_WGPU_CACHE', async () => {
    const h = await inApp('npx', ['zpd-wgpu', '--help']);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/train .* fine-tune/);
    const d = await inApp('npx', ['zpd-wgpu', 'doctor', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).selfTest.ok).toBe(true);
    expect(readdirSync(join(home, '.cache', 'zpd-wgpu'))).toContain('matmul-tiles.json');
    const moved = join(tmp, 'moved-cache');
    expect((await inApp('npx', ['zpd-wgpu', 'doctor', '--json'], { ZPD_WGPU_CACHE: moved })).code).toBe(0);
    expect(readdirSync(moved)).toContain('matmul-tiles.json');
    expect(existsSync(join(app, 'zpd-wgpu-cache'))).toBe(false);
  }, 400_000); // three CLI runs, two of them autotuning from an empty cache: 17 s alone, past 120 s beside the compare test on 2 cores

  it('npx zpd-wgpu train on the embedded default writes an adapter', async () => {
    const r = await inApp('npx', ['zpd-wgpu', 'train', '--steps', '4', '--exact-match', '0', '--eval-samples', '16', '--out', 'run']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(app, 'run', 'adapter_model.safetensors'))).toBe(true);
    expect(JSON.parse(readFileSync(join(app, 'run', 'adapter_config.json'), 'utf8')).peft_type).toBe('LORA');
  });

  it('a JavaScript ESM import', async () => {
    writeFileSync(join(app, 'use.mjs'), "import { train, Rng, TRAIN_DEFAULTS } from 'zpd-wgpu';\nconsole.log(typeof train, new Rng(1).int(10) >= 0, TRAIN_DEFAULTS.curriculum);\n");
    const r = await inApp(process.execPath, ['use.mjs']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('function true zpd');
  });

  it('a TypeScript file type-checks against the installed types (node16 and bundler resolution)', async () => {
    writeFileSync(join(app, 'use.ts'), `import { train, getGpu, type TrainOptions, type TrainSummary } from 'zpd-wgpu';
import { matmulRef } from 'zpd-wgpu/reference';
const o: Partial<TrainOptions> = { steps: 10, curriculum: 'zpd', zpdBand: [0.3, 0.8] };
export async function go(): Promise<number> {
  const gpu = await getGpu();
  const buf: GPUBuffer = gpu.buffer(16);
  buf.destroy();
  let last = '';
  const s: TrainSummary = await train(o, { onProgress: (e) => { if (e.type === 'step') last = e.loss.toFixed(3); } });
  return s.steps + last.length + matmulRef({ a: [1], bm: [1], M: 1, N: 1, K: 1 }).length;
}
// @ts-expect-error: not a curriculum
const bad: Partial<TrainOptions> = { curriculum: 'magic' };
`);
    // a Node project (no DOM lib: the WebGPU types come with the package) and a web one (DOM lib)
    for (const [module, resolution, lib] of [['node16', 'node16', ['es2022']], ['esnext', 'bundler', ['es2022', 'dom']]] as const) {
      writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module, moduleResolution: resolution, target: 'es2022', lib, strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['use.ts'] }));
      const r = await inApp(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
      expect(r.code, `${resolution}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('esbuild bundles a browser entry under the browser condition without Node built-ins', async () => {
    writeFileSync(join(app, 'web.js'), "import { getGpu, loadTokenizer, Batcher } from 'zpd-wgpu';\nexport { getGpu, loadTokenizer, Batcher };\n");
    const out = await esbuild.build({ absWorkingDir: app, entryPoints: ['web.js'], bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
    const code = out.outputFiles[0].text;
    expect(code).not.toMatch(/from ["'](node:|fs|path|os|worker_threads|child_process)["']/);
    expect(code).not.toMatch(/require\(["'](node:|fs|path|os)/);
    expect(code).not.toMatch(/modelForwardRef/); // the float64 reference is not in the browser build
    expect(code).not.toMatch(/(from |import\(|require\()["']webgpu["']/); // nor Dawn's Node addon
  });
});
