// The browser build (dist/browser/index.js, made by `node scripts/build.mjs`, which npm test runs)
// in a real browser: headless Chromium opens test/browser/index.html from a loopback HTTP server
// started here; the page (test/browser/page.js) runs a matmul against a JS loop and the tiny Llama
// fixture's generation through navigator.gpu, and POSTs what it got to /result; the same model
// calls made here in Node must agree. A second page (test/browser/no-webgpu.html), in a Chromium
// without WebGPU, trains and generates on the wasm backend (see below).
//
// Chromium's WebGPU on a machine without a GPU is SwiftShader (Vulkan on the CPU): Chromium
// lists Mesa's lavapipe too but blocklists it ("CPU adapters not fully tested or conformant"),
// and no switch picks it; `--enable-unsafe-webgpu` is what turns WebGPU on at all there.
// Without Chromium (or WebGPU in it) the test is skipped locally; with ZPD_REQUIRE_GPU=1 (CI)
// it fails: `bash scripts/ensure-webgpu.sh --browser` installs Debian's chromium.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesSource, SafetensorsFile } from '../src/io/safetensors.js';
import { generate } from '../src/model/llama.js';
import { loadModel } from '../src/model/load.js';
import type { TrainOptions } from '../src/train/options.js';
import { openScorer, train } from '../src/train/train.js';
import { expectClose } from './helpers/check.js';
import { CHROMIUM_FLAGS, findChromium } from './helpers/chromium.js';
import { gradedData } from './helpers/cli.js';
import { testGpu } from './helpers/gpu.js';

const root = join(import.meta.dirname, '..');
const required = process.env.ZPD_REQUIRE_GPU === '1';
const MODEL = join(root, 'test/fixtures/models/llama');
const PAGE_TIMEOUT_MS = 60_000;

const chromium = findChromium();
const gpu = await testGpu(); // null only locally without an adapter; throws under ZPD_REQUIRE_GPU=1
const INSTALL = 'install it with `bash scripts/ensure-webgpu.sh --browser` (Debian/Ubuntu, as root) or set ZPD_CHROMIUM to a Chrome/Chromium binary';
if (!chromium && !required) console.warn(`browser test skipped: no chromium on PATH; ${INSTALL} (ZPD_REQUIRE_GPU=1 fails instead)`);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
};

interface PageResult {
  error?: string;
  noWebgpu?: string;
  steps: [string, number][];
  adapter?: { vendor: string; architecture: string; device: string; description: string; backend: string; fallback: boolean; features: string[] };
  matmul?: { M: number; N: number; K: number; maxErr: number };
  logits?: number[];
  ids?: number[];
}

/** A static file server for the repository on 127.0.0.1 (random port), `extra` files by path, and a POST /result sink. */
async function serve<R extends { error?: string; steps: [string, number][] }>(page: string, extra: Record<string, Uint8Array> = {}): Promise<{ server: Server; url: string; result: Promise<R> }> {
  let deliver!: (r: R) => void;
  const result = new Promise<R>((resolve) => (deliver = resolve));
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (req.method === 'POST' && path === '/result') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        res.end('ok');
        try {
          deliver(JSON.parse(body) as R);
        } catch (e) {
          deliver({ error: `bad result from the page: ${String(e)}: ${body.slice(0, 200)}`, steps: [] } as unknown as R);
        }
      });
      return;
    }
    if (req.method === 'GET' && extra[path]) {
      res.setHeader('content-type', TYPES[extname(path)] ?? 'application/octet-stream');
      res.end(extra[path]);
      return;
    }
    const file = normalize(join(root, path));
    if (req.method !== 'GET' || !file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('cache-control', 'no-store');
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/${page}`, result };
}

/** Chromium, its own process group (so that killing the group ends every child), a fresh profile. */
function launch(bin: string, url: string, flags = CHROMIUM_FLAGS) {
  const profile = mkdtempSync(join(tmpdir(), 'zpd-chromium-'));
  const proc = spawn(bin, [...flags, `--user-data-dir=${profile}`, url], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let log = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    log = (log + d).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', () => resolve(-1));
  });
  return { proc, profile, exited, log: () => log.split('\n').filter((l) => l && !/dbus|object_proxy/.test(l)).slice(-15).join('\n') };
}

async function stop(proc: ChildProcess, exited: Promise<unknown>, profile: string): Promise<void> {
  if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
  rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
}

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/**
 * `page` (a path in the repository, with its query) opened in Chromium started with `flags`:
 * what it POSTed to /result (or an error: Chromium exited, or nothing came in PAGE_TIMEOUT_MS),
 * and Chromium's log. Chromium and the server are gone when it returns.
 */
async function openPage<R extends { error?: string; steps: [string, number][] }>(bin: string, page: string, o: { flags?: string[]; extra?: Record<string, Uint8Array> } = {}) {
  const { server, url, result } = await serve<R>(page, o.extra);
  const chrome = launch(bin, url, o.flags);
  const cleanup = async () => {
    await stop(chrome.proc, chrome.exited, chrome.profile);
    await new Promise((r) => server.close(r));
  };
  cleanups.push(cleanup);
  let timer: NodeJS.Timeout | undefined;
  const fail = (error: string) => ({ error, steps: [] }) as unknown as R;
  const got = await Promise.race([
    result,
    chrome.exited.then((code) => fail(`Chromium exited (code ${code}) before the page reported`)),
    new Promise<R>((resolve) => {
      timer = setTimeout(() => resolve(fail(`no result from the page in ${PAGE_TIMEOUT_MS / 1000} s`)), PAGE_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  const log = chrome.log();
  await cleanup();
  cleanups.splice(cleanups.indexOf(cleanup), 1);
  return { page: got, log };
}

describe.skipIf(gpu === null || (!chromium && !required))('browser build in headless Chromium', () => {
  it('runs a matmul and the tiny Llama as Node does', async (ctx) => {
    if (!chromium) throw new Error(`ZPD_REQUIRE_GPU=1 but no Chromium was found: ${INSTALL}`);
    const bundle = join(root, 'dist/browser/index.js');
    if (!existsSync(bundle)) throw new Error('dist/browser/index.js is missing: run `node scripts/build.mjs` (npm test does)');

    const opened = openPage<PageResult>(chromium, 'test/browser/index.html');

    // Node's answer while the browser works
    const node = (async () => {
      const model = await loadModel(gpu!, MODEL, { weights: 'f32' });
      const kv = model.newKvCache(3);
      const logits = await model.decode(kv, Int32Array.of(1, 2, 3));
      const ids = await generate(model, [1, 2, 3], { maxNewTokens: 3 });
      return { logits, ids };
    })();
    node.catch(() => {}); // awaited below; not an unhandled rejection if the page fails first

    const { page, log: chromeLog } = await opened;

    if (page.noWebgpu) {
      const msg = `Chromium (${chromium}) has no WebGPU here: ${page.noWebgpu}`;
      if (required) throw new Error(`${msg}\nChromium's log:\n${chromeLog}`);
      console.warn(`browser test skipped: ${msg}`);
      ctx.skip();
    }
    expect(page.error, `the page failed; Chromium's log:\n${chromeLog}`).toBeUndefined();
    console.log(`browser: ${JSON.stringify(page.adapter && { ...page.adapter, features: page.adapter.features.join(' ') })}; ms since page start: ${JSON.stringify(page.steps)}`);

    expect(page.matmul!.maxErr).toBeLessThan(1e-4);
    const want = await node;
    expect(page.logits!.length).toBe(want.logits.length);
    let maxDiff = 0;
    for (let i = 0; i < want.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(page.logits![i] - want.logits[i]));
    console.log(`browser vs Node: ids ${JSON.stringify(page.ids)} / ${JSON.stringify(want.ids)}, max |Δlogit| ${maxDiff.toExponential(2)}, matmul max error ${page.matmul!.maxErr.toExponential(2)}`);
    expect(maxDiff, 'first-step logits, browser vs Node').toBeLessThan(1e-3);
    expect(page.ids).toEqual(want.ids);
    expect(want.ids.length).toBe(3);
  });
});

// ---------------------------------------------------------------- without WebGPU: the wasm backend
//
// Chromium started without --enable-unsafe-webgpu has navigator.gpu, but requestAdapter() gives
// null (measured with Chromium 156 on Linux; --disable-webgpu changes nothing there). The page
// (test/browser/no-webgpu.js) trains with the default backend, 'webgpu', which falls back to the
// wasm backend, then removes navigator.gpu and generates with the run's adapter; the demo's
// training worker does the same run and generation. Node makes the same run with
// train({ backend: 'wasm' }) and the same generation; no GPU is needed on either side.

interface NoWebgpuResult {
  error?: string;
  steps: [string, number][];
  navigatorGpu: boolean;
  adapter: null | string | undefined;
  isolated: boolean;
  train: {
    status: string; losses: number[]; evalLosses: number[]; startBackend: string; backend: string; backendChoice: string;
    wasm: { isa: string; sharedMemory: boolean } | null; gpuAdapter: unknown; files: string[]; adapter: string;
  };
  auto: { kind: string; reason: string };
  navigatorGpuAfterDelete: boolean;
  generate: { reason: string; backend: string; template: string; from: string; prompt: string; ids: number[]; text: string };
  worker: { gpu: string; status: string; startBackend: string; losses: number[]; ids: number[]; backend: string };
}

const NO_WEBGPU_FLAGS = CHROMIUM_FLAGS.filter((f) => f !== '--enable-unsafe-webgpu');
// a few steps of the tiny fixture with LoRA dropout (the masks), a re-scoring and checkpoints (the memory folder's renames)
const WASM_RUN: Partial<TrainOptions> = {
  steps: 4, batchSize: 2, seqLen: 32, lr: 3e-3, loraR: 4, loraAlpha: 8, loraDropout: 0.1, rescoreEvery: 2, evalEvery: 2, evalSamples: 8, seed: 7,
};
const PROMPT = 'Add: 12+7';
const MAX_NEW = 12;
/**
 * The page has no cross-origin isolation, so no SharedArrayBuffer: one thread on the plain SIMD
 * build (kernels-single.wasm). Node runs its threads on the relaxed-SIMD build where V8 has it
 * (Node 22+, or Node 20 with the flag the backend sets). The thread count changes no bit (each
 * output element is summed by one thread in a fixed order), so against Node's plain build
 * (ZPD_WASM_SIMD=simd) the run is bit-identical — measured, and asserted when Node ran that build.
 * The relaxed build's multiply-adds are fused (one rounding instead of two): measured over these
 * 4 steps, |Δloss| ≤ 2.6e-7, held-out 4.1e-7, adapter elements 5e-7. The bound leaves a factor
 * of 60; a 1 % change of the learning rate moves the losses by 1.1e-3 (measured), 70× beyond it.
 */
const WASM_LOSS_TOL = { atol: 1e-5, rtol: 1e-6 };
const WASM_ADAPTER_TOL = 2e-5;

describe.skipIf(!chromium && !required)('browser build without WebGPU', () => {
  it('trains and generates on the wasm backend (webgpu falls back), as Node does on wasm', async () => {
    if (!chromium) throw new Error(`ZPD_REQUIRE_GPU=1 but no Chromium was found: ${INSTALL}`);
    const bundle = join(root, 'dist/browser/index.js');
    if (!existsSync(bundle)) throw new Error('dist/browser/index.js is missing: run `node scripts/build.mjs` (npm test does)');
    const t0 = performance.now();
    const data = gradedData(40, 12, 3);
    const query = new URLSearchParams({ options: JSON.stringify(WASM_RUN), prompt: PROMPT, maxNewTokens: String(MAX_NEW) });
    const opened = openPage<NoWebgpuResult>(chromium, `test/browser/no-webgpu.html?${query}`, {
      flags: NO_WEBGPU_FLAGS,
      extra: { '/gen/train.jsonl': readFileSync(data.train), '/gen/eval.jsonl': readFileSync(data.eval) },
    });

    // Node's run on the wasm backend while the browser works
    const out = mkdtempSync(join(tmpdir(), 'zpd-wasm-browser-'));
    const node = (async () => {
      await train({ ...WASM_RUN, model: MODEL, data: data.train, evalData: data.eval, out, backend: 'wasm', exactMatch: 0 });
      const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; loss: number });
      const s = await openScorer({ model: MODEL, adapter: out, backend: 'wasm', weights: 'auto' });
      try {
        return {
          losses: metrics.filter((m) => m.type === 'step').map((m) => m.loss),
          evalLosses: metrics.filter((m) => m.type === 'eval').map((m) => m.loss),
          run: JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')),
          adapter: readFileSync(join(out, 'adapter_model.safetensors')),
          generate: (prompt: string) => generate(s.model, s.tok.encode(prompt), { maxNewTokens: MAX_NEW, stop: s.stopIds }),
          close: () => s.backend.dispose(),
        };
      } catch (e) {
        s.backend.dispose();
        throw e;
      }
    })();
    node.catch(() => {}); // awaited below; not an unhandled rejection if the page fails first

    try {
      const { page, log: chromeLog } = await opened;
      expect(page.error, `the page failed; Chromium's log:\n${chromeLog}`).toBeUndefined();
      const want = await node;
      console.log(`browser without WebGPU: ms since page start ${JSON.stringify(page.steps)}; run.json backendChoice "${page.train.backendChoice}"; wasm ${JSON.stringify(page.train.wasm)}`);
      // the browser really had no WebGPU, and the run says what ran and why
      expect(page.navigatorGpu).toBe(true);
      expect(page.adapter, 'Chromium without --enable-unsafe-webgpu gave a WebGPU adapter: this test needs a browser without one').toBeNull();
      expect(page.train.status).toBe('done');
      expect(page.train.backend).toBe('wasm');
      expect(page.train.startBackend).toBe('wasm');
      expect(page.train.backendChoice).toMatch(/^webgpu unavailable in this browser \(.*requestAdapter\(\) returned null.*\): the wasm backend$/);
      expect(page.train.wasm).toEqual({ isa: 'simd', sharedMemory: false }); // no cross-origin isolation: one thread, the unshared build
      expect(page.train.gpuAdapter).toBeNull();
      expect(page.train.files).toEqual(expect.arrayContaining(['run.json', 'metrics.jsonl', 'adapter_config.json', 'adapter_model.safetensors', 'checkpoint/state.msgpack']));
      expect(page.auto.kind).toBe('wasm');
      expect(page.auto.reason).toMatch(/^auto: no WebGPU adapter \(/);
      expect(want.run.backend).toBe('wasm');

      // the losses: finite, Node's within tolerance
      expect(page.train.losses.length).toBe(WASM_RUN.steps);
      expect(page.train.losses.every(Number.isFinite)).toBe(true);
      expect(page.train.evalLosses.length).toBe(want.evalLosses.length);
      const diff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
      const nodeWasm = want.run.inputs.wasm as { isa: string };
      const wa = await readAdapterBytes(want.adapter), pa = await readAdapterBytes(Buffer.from(page.train.adapter, 'base64'));
      console.log(
        `browser wasm (simd, 1 thread) vs Node wasm (${nodeWasm.isa}): losses ${JSON.stringify(page.train.losses)} / ${JSON.stringify(want.losses)}; ` +
          `max |Δloss| ${diff(page.train.losses, want.losses).toExponential(2)}, held-out ${diff(page.train.evalLosses, want.evalLosses).toExponential(2)}, adapter ${adapterDiff(pa, wa).toExponential(2)}`,
      );
      if (nodeWasm.isa === 'simd') {
        // the same build on both sides: bit for bit, whatever Node's thread count
        expect(page.train.losses).toEqual(want.losses);
        expect(page.train.evalLosses).toEqual(want.evalLosses);
        expect(adapterDiff(pa, wa)).toBe(0);
      } else {
        expectClose('training losses, browser vs Node (wasm)', page.train.losses, want.losses, WASM_LOSS_TOL);
        expectClose('held-out losses, browser vs Node (wasm)', page.train.evalLosses, want.evalLosses, WASM_LOSS_TOL);
        expect(adapterDiff(pa, wa), 'adapter, browser vs Node (wasm): largest elementwise difference').toBeLessThan(WASM_ADAPTER_TOL);
      }

      // generation with navigator.gpu gone: wasm, the run's adapter, Node's tokens
      expect(page.navigatorGpuAfterDelete).toBe(false);
      expect(page.generate.reason).toMatch(/^webgpu unavailable in this browser \(.*navigator\.gpu.*\): the wasm backend$/);
      expect(page.generate.backend).toBe('wasm');
      expect(page.generate.from).toBe('final');
      const ids = await want.generate(page.generate.prompt);
      console.log(`generation: browser ${JSON.stringify(page.generate.ids)} (${JSON.stringify(page.generate.text)}), Node ${JSON.stringify(ids)}; whole test ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      expect(page.generate.ids.length).toBeGreaterThan(0);
      expect(page.generate.ids).toEqual(ids);

      // the demo's worker: no adapter for its 'gpu' request, the run and the generation on wasm, the page's numbers bit for bit (one thread, the same build)
      expect(page.worker.gpu).toBe('NoAdapterError');
      expect(page.worker.status).toBe('done');
      expect(page.worker.startBackend).toBe('wasm');
      expect(page.worker.losses).toEqual(page.train.losses);
      expect(page.worker.backend).toBe('wasm');
      expect(page.worker.ids).toEqual(page.generate.ids);
    } finally {
      await node.then((n) => n.close(), () => {});
      rmSync(out, { recursive: true, force: true });
      rmSync(data.dir, { recursive: true, force: true });
    }
  });
});

/** An adapter_model.safetensors' tensors by name. */
async function readAdapterBytes(bytes: Uint8Array): Promise<Map<string, Float32Array>> {
  const st = await SafetensorsFile.open(bytesSource(bytes, 'adapter_model.safetensors'));
  const out = new Map<string, Float32Array>();
  for (const n of st.names()) out.set(n, await st.readF32(n));
  return out;
}

function adapterDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [n, x] of a) x.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.get(n)![i]))));
  return worst;
}
