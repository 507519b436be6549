// The browser build (dist/browser/index.js, made by `node scripts/build.mjs`, which npm test runs)
// in a real browser: headless Chromium opens test/browser/index.html from a loopback HTTP server
// started here; the page (test/browser/page.js) runs a matmul against a JS loop and the tiny Llama
// fixture's generation through navigator.gpu, and POSTs what it got to /result; the same model
// calls made here in Node must agree.
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
import { generate } from '../src/model/llama.js';
import { loadModel } from '../src/model/load.js';
import { CHROMIUM_FLAGS, findChromium } from './helpers/chromium.js';
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

/** A static file server for the repository on 127.0.0.1 (random port) and a POST /result sink. */
async function serve(): Promise<{ server: Server; url: string; result: Promise<PageResult> }> {
  let deliver!: (r: PageResult) => void;
  const result = new Promise<PageResult>((resolve) => (deliver = resolve));
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (req.method === 'POST' && path === '/result') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        res.end('ok');
        try {
          deliver(JSON.parse(body) as PageResult);
        } catch (e) {
          deliver({ error: `bad result from the page: ${String(e)}: ${body.slice(0, 200)}`, steps: [] });
        }
      });
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
  return { server, url: `http://127.0.0.1:${port}/test/browser/index.html`, result };
}

/** Chromium, its own process group (so that killing the group ends every child), a fresh profile. */
function launch(bin: string, url: string) {
  const profile = mkdtempSync(join(tmpdir(), 'zpd-chromium-'));
  const proc = spawn(bin, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, url], {
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

describe.skipIf(gpu === null || (!chromium && !required))('browser build in headless Chromium', () => {
  it('runs a matmul and the tiny Llama as Node does', async (ctx) => {
    if (!chromium) throw new Error(`ZPD_REQUIRE_GPU=1 but no Chromium was found: ${INSTALL}`);
    const bundle = join(root, 'dist/browser/index.js');
    if (!existsSync(bundle)) throw new Error('dist/browser/index.js is missing: run `node scripts/build.mjs` (npm test does)');

    const { server, url, result } = await serve();
    const chrome = launch(chromium, url);
    const cleanup = async () => {
      await stop(chrome.proc, chrome.exited, chrome.profile);
      await new Promise((r) => server.close(r));
    };
    cleanups.push(cleanup);

    // Node's answer while the browser works
    const node = (async () => {
      const model = await loadModel(gpu!, MODEL, { weights: 'f32' });
      const kv = model.newKvCache(3);
      const logits = await model.decode(kv, Int32Array.of(1, 2, 3));
      const ids = await generate(model, [1, 2, 3], { maxNewTokens: 3 });
      return { logits, ids };
    })();
    node.catch(() => {}); // awaited below; not an unhandled rejection if the page fails first

    let timer: NodeJS.Timeout | undefined;
    const page = await Promise.race([
      result,
      chrome.exited.then((code): PageResult => ({ error: `Chromium exited (code ${code}) before the page reported`, steps: [] })),
      new Promise<PageResult>((resolve) => {
        timer = setTimeout(() => resolve({ error: `no result from the page in ${PAGE_TIMEOUT_MS / 1000} s`, steps: [] }), PAGE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    const chromeLog = chrome.log();
    await cleanup();
    cleanups.splice(cleanups.indexOf(cleanup), 1);

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
