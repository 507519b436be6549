// Files over HTTP without a file system: a safetensors file read tensor by tensor with Range
// requests (a ByteSource, so SafetensorsFile never holds more than the header and one tensor),
// and small files (config.json, tokenizer.json, data) fetched whole. Both keep what they fetched
// in the Cache API when there is one (pages and workers on https or localhost), so a reload
// reads the model from the cache:
//   a range    → one cache entry per byte range, keyed by the URL, the file's version (ETag or
//                Last-Modified, else its size) and the range; the version is what the 8-byte
//                request each open makes (the header's length) says
//   a file     → one entry per URL, revalidated with If-None-Match / If-Modified-Since
// Offline, the cached entries are used as they are.
import { FormatError, UsageError } from '../errors.js';
import { bytesSource, type ByteSource } from './safetensors.js';

export interface HttpOptions {
  /** Cache API cache to keep fetched bytes in (default 'zpd-wgpu-models'); null: none. */
  cache?: string | null;
  /** Bytes of `file` read so far (from the network or the cache) out of `total`. */
  onBytes?: (file: string, bytes: number, total: number, fromCache: boolean) => void;
  /** Counts what came from where (for progress lines and tests). */
  stats?: { networkBytes: number; cachedBytes: number; requests: number };
}

export const HTTP_CACHE = 'zpd-wgpu-models';

type CacheLike = Pick<Cache, 'match' | 'put'>;

async function openCache(o: HttpOptions): Promise<CacheLike | null> {
  const name = o.cache === undefined ? HTTP_CACHE : o.cache;
  const cs = (globalThis as { caches?: CacheStorage }).caches;
  if (name === null || !cs) return null;
  try {
    return await cs.open(name);
  } catch {
    return null; // e.g. an opaque origin: no cache, only slower
  }
}

function fileName(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() || url);
  } catch {
    return url;
  }
}

async function get(url: string, init: RequestInit, o: HttpOptions): Promise<Response> {
  if (o.stats) o.stats.requests++;
  let r: Response;
  try {
    r = await fetch(url, init);
  } catch (e) {
    throw new UsageError(`cannot fetch ${url}: ${(e as Error).message} (offline, or the server does not allow this page to read it: CORS)`);
  }
  return r;
}

function httpError(url: string, r: Response): UsageError {
  const what = r.status === 404 ? 'not found' : `HTTP ${r.status} ${r.statusText}`;
  return new UsageError(`${url}: ${what}`, r.status === 404 ? 'check the URL: it must point at a model folder (config.json, model.safetensors, tokenizer.json beside each other)' : undefined);
}

/** A response's body, with progress as it arrives. */
async function body(r: Response, name: string, total: number, o: HttpOptions, base = 0): Promise<Uint8Array> {
  if (!r.body || !o.onBytes) return new Uint8Array(await r.arrayBuffer());
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    n += value.byteLength;
    o.onBytes(name, base + n, total, false);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/**
 * A file fetched whole (config.json, tokenizer.json, a data file): from the cache when the server
 * says it has not changed (or cannot be reached), else from the network. null when absent (404)
 * and `optional`.
 */
export async function fetchBytes(url: string, o: HttpOptions & { optional?: boolean } = {}): Promise<Uint8Array | null> {
  const cache = await openCache(o);
  const name = fileName(url);
  const hit = cache ? await cache.match(url) : undefined;
  const headers: Record<string, string> = {};
  if (hit?.headers.get('etag')) headers['if-none-match'] = hit.headers.get('etag')!;
  else if (hit?.headers.get('last-modified')) headers['if-modified-since'] = hit.headers.get('last-modified')!;
  let r: Response;
  try {
    r = await get(url, { headers, cache: 'no-store' }, o);
  } catch (e) {
    if (!hit) throw e;
    r = new Response(null, { status: 304 }); // offline: what the cache holds
  }
  if (r.status === 304 && hit) {
    const b = new Uint8Array(await hit.arrayBuffer());
    if (o.stats) o.stats.cachedBytes += b.byteLength;
    o.onBytes?.(name, b.byteLength, b.byteLength, true);
    return b;
  }
  if (r.status === 404 && o.optional) return null;
  if (!r.ok) throw httpError(url, r);
  const total = Number(r.headers.get('content-length') ?? 0);
  const b = await body(r, name, total, o);
  if (o.stats) o.stats.networkBytes += b.byteLength;
  if (cache) {
    const keep = new Headers();
    for (const h of ['etag', 'last-modified', 'content-type']) if (r.headers.get(h)) keep.set(h, r.headers.get(h)!);
    await cache.put(url, new Response(b as Uint8Array<ArrayBuffer>, { headers: keep })).catch(() => {});
  }
  return b;
}

/**
 * A file on a web server read in byte ranges (HTTP Range requests), each range cached. A server
 * that ignores Range (answers 200 with the whole file) still works, from memory, for files that
 * fit in one buffer.
 */
export async function httpSource(url: string, o: HttpOptions = {}): Promise<ByteSource> {
  const cache = await openCache(o);
  const name = fileName(url);
  const metaKey = `${url}${url.includes('?') ? '&' : '?'}zpd-meta`;
  // the first 8 bytes (the safetensors header's length) also tell the size and the version
  let size: number, version: string, first: Uint8Array | null = null;
  let r: Response | null = null;
  try {
    r = await get(url, { headers: { range: 'bytes=0-7' }, cache: 'no-store' }, o);
  } catch (e) {
    const meta = cache ? await cache.match(metaKey) : undefined;
    if (!meta) throw e;
    ({ size, version } = (await meta.json()) as { size: number; version: string }); // offline: the cached copy
  }
  if (r) {
    if (r.status === 200) {
      // no Range support: the whole file came back
      const all = await body(r, name, Number(r.headers.get('content-length') ?? 0), o);
      if (o.stats) o.stats.networkBytes += all.byteLength;
      return bytesSource(all, url);
    }
    if (r.status === 416) throw new FormatError(url, 'file', 'the file is empty', 'a safetensors file starts with an 8-byte header length');
    if (r.status !== 206) throw httpError(url, r);
    const range = /\/(\d+)\s*$/.exec(r.headers.get('content-range') ?? '');
    if (!range) throw new UsageError(`${url}: the server's range reply has no readable Content-Range (a cross-origin server must expose it: Access-Control-Expose-Headers: Content-Range)`);
    size = Number(range[1]);
    version = r.headers.get('etag') ?? r.headers.get('last-modified') ?? `size-${size}`;
    first = new Uint8Array(await r.arrayBuffer());
    if (o.stats) (o.stats.networkBytes += first.byteLength);
    await cache?.put(metaKey, new Response(JSON.stringify({ size, version }))).catch(() => {});
  }
  let loaded = 0;
  const counted = (n: number, fromCache: boolean) => {
    loaded += n;
    o.onBytes?.(name, Math.min(loaded, size), size, fromCache);
  };
  const key = (offset: number, end: number) => `${url}${url.includes('?') ? '&' : '?'}zpd-range=${offset}-${end}&v=${encodeURIComponent(version)}`;
  return {
    name: url,
    size: size!,
    async read(offset, length) {
      const end = Math.min(offset + length, size);
      if (end <= offset) return new Uint8Array(0);
      if (first && offset === 0 && end <= first.byteLength) return first.slice(0, end);
      const k = key(offset, end);
      const hit = cache ? await cache.match(k) : undefined;
      if (hit) {
        const b = new Uint8Array(await hit.arrayBuffer());
        if (o.stats) o.stats.cachedBytes += b.byteLength;
        counted(b.byteLength, true);
        return b;
      }
      const res = await get(url, { headers: { range: `bytes=${offset}-${end - 1}` }, cache: 'no-store' }, o);
      if (res.status !== 206) throw new UsageError(`${url}: asked for bytes ${offset}–${end - 1}, the server answered HTTP ${res.status}${res.status === 200 ? ' with the whole file (it changed, or stopped honouring Range requests)' : ''}`);
      const b = await body(res, name, size, { ...o, onBytes: o.onBytes && ((f, n) => o.onBytes!(f, Math.min(loaded + n, size), size, false)) });
      if (b.byteLength !== end - offset) throw new FormatError(url, `bytes ${offset}–${end - 1}`, `the server sent ${b.byteLength} bytes for a range of ${end - offset}`);
      if (o.stats) o.stats.networkBytes += b.byteLength;
      counted(b.byteLength, false);
      await cache?.put(k, new Response(b as Uint8Array<ArrayBuffer>)).catch(() => {});
      return b;
    },
  };
}
