#!/usr/bin/env node
// npm run demo: build what the demo page needs when it is missing or older than its sources, then
// serve the repository on localhost (web/index.html, dist/, default/) and print the page's URL.
// A small static server: GET and HEAD, single byte ranges (the page reads safetensors tensor by
// tensor with Range requests), ETag/Last-Modified from the file's size and time, nothing outside
// the folder it serves. Usage: node scripts/demo.mjs [--port N] [--host H] [--no-build]
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.jsonl': 'application/jsonl',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.md': 'text/markdown; charset=utf-8',
};

/** The newest modification time of the files under `dir` (0 when it is absent). */
function newest(dir) {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Build when a bundle the page loads is missing or older than src/, web/ or shaders/. */
export function buildIfNeeded(log = console.log) {
  const outs = ['dist/browser/worker.js', 'dist/web/demo.js'].map((f) => join(root, f));
  const built = Math.min(...outs.map((f) => (existsSync(f) ? statSync(f).mtimeMs : 0)));
  const sources = Math.max(...['src', 'web', 'shaders'].map((d) => newest(join(root, d))));
  if (built > sources) return false;
  log('demo: building (node scripts/build.mjs)…');
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });
  return true;
}

/** "bytes=a-b" / "bytes=a-" / "bytes=-n" → [start, end] inclusive; null when unsatisfiable; undefined when absent or not one range. */
function parseRange(h, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start, end;
  if (m[1] === '') (start = Math.max(0, size - Number(m[2]))), (end = size - 1);
  else (start = Number(m[1])), (end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1));
  return start <= end && start < size ? [start, end] : null;
}

/**
 * Serve `dir` on host:port (port 0: any free one). `onRequest` sees every request (method, path,
 * range header) — the browser test counts range requests with it. Resolves with the server and
 * the demo page's URL.
 */
export async function serveDemo({ dir = root, port = 8787, host = '127.0.0.1', onRequest } = {}) {
  const server = createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.statusCode = 400;
      return res.end('bad path');
    }
    onRequest?.({ method: req.method, path, range: req.headers.range ?? null });
    if (path === '/') {
      res.writeHead(302, { location: '/web/' });
      return res.end();
    }
    let file = normalize(join(dir, path));
    if (file !== dir && !file.startsWith(dir + sep)) {
      res.statusCode = 403;
      return res.end('outside the served folder');
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = req.method === 'GET' || req.method === 'HEAD' ? 404 : 405;
      return res.end('not found');
    }
    const st = statSync(file);
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers = {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag,
      'last-modified': st.mtime.toUTCString(),
      'cache-control': 'no-cache',
    };
    if (req.headers['if-none-match'] === etag && !req.headers.range) {
      res.writeHead(304, headers);
      return res.end();
    }
    const range = parseRange(req.headers.range, st.size);
    if (range === null) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${st.size}` });
      return res.end();
    }
    const [start, end] = range ?? [0, st.size - 1];
    res.writeHead(range ? 206 : 200, { ...headers, 'content-length': String(st.size === 0 ? 0 : end - start + 1), ...(range ? { 'content-range': `bytes ${start}-${end}/${st.size}` } : {}) });
    if (req.method === 'HEAD' || st.size === 0) return res.end();
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: p } = server.address();
  const shown = host.includes(':') ? `[${host}]` : host;
  return { server, url: `http://${shown}:${p}/web/`, close: () => new Promise((r) => server.close(r)) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  if (!process.argv.includes('--no-build')) buildIfNeeded();
  const { url } = await serveDemo({ port: Number(arg('port', 8787)), host: arg('host', '127.0.0.1') });
  console.log(`zpd-wgpu demo: ${url}  (Ctrl-C stops it; a browser with WebGPU: Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows)`);
}
