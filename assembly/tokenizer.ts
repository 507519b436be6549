// Tokenizer core: BPE over bytes (byte-level, GPT-2 / Llama 3 / Qwen) or over characters with
// byte fallback (sentencepiece-style, Llama 2), added-token splitting, pre-tokenizer scanners
// that reproduce the tokenizer.json regexes, and decoding. One tokenizer per wasm instance;
// all state is in globals and raw memory (stub runtime: nothing is ever collected, scratch
// buffers only grow). The host (src/tokenizer/tokenizer.ts) writes UTF-8 text into the input
// buffer, calls tk_encode, and reads ids from tk_out().
import { charClass } from './unicode';

// ---- configuration (tk_init) ----------------------------------------------------------------
export const MODE_BYTELEVEL: u32 = 0;
export const MODE_SENTENCEPIECE: u32 = 1;
export const PRETOK_NONE: u32 = 0;
export const PRETOK_GPT2: u32 = 1;
export const PRETOK_LLAMA3: u32 = 2; // digits in groups of 1..3
export const PRETOK_QWEN: u32 = 3; // single digits
// flags
export const F_IGNORE_MERGES: u32 = 1;
export const F_PREPEND_ALWAYS: u32 = 2; // sentencepiece: "▁" before every text section
export const F_PREPEND_FIRST: u32 = 4; // sentencepiece: "▁" before the first section only
export const F_REPLACE_SPACE: u32 = 8; // sentencepiece: " " → "▁"
export const F_STRIP_LEADING_SPACE: u32 = 16; // decoder Strip(start=1)

const CLS_OTHER: u32 = 0;
const CLS_L: u32 = 1;
const CLS_N: u32 = 2;
const CLS_WS: u32 = 3;

let mode: u32 = 0;
let pretok: u32 = 0;
let flags: u32 = 0;
let unkId: i32 = -1;

// id → bytes: bytes[offs[id] .. offs[id+1]); kinds[id]: 0 none, 1 vocab, 2 added, 3 added special
let nIds: i32 = 0;
let offs: usize = 0;
let bytes: usize = 0;
let kinds: usize = 0;

// vocab hash (token bytes → id), open addressing, i32 slots, -1 = empty
let vcap: u32 = 0;
let vslots: usize = 0;
// merges hash: key u64 (a << 32 | b), value u64 (rank << 32 | merged id)
let mcap: u32 = 0;
let mkeys: usize = 0;
let mvals: usize = 0;
// byte → id: byte-level single-byte tokens, or sentencepiece <0xXX> tokens (-1 when missing)
const byteIds: usize = memory.data(256 * 4);
// id → byte value for <0xXX> tokens (decode), -1 otherwise
let byteOfId: usize = 0;

// added tokens: list of ids sorted by length descending; first-byte bitmap
let nAdded: i32 = 0;
let added: usize = 0;
const addedFirst: usize = memory.data(32);
const FFFD: usize = memory.data<u8>([0xef, 0xbf, 0xbd]);

// ---- memory helpers ------------------------------------------------------------------------
function alloc(n: usize): usize {
  return heap.alloc(n > 0 ? n : 1);
}

/** Host allocation of n bytes (blobs written once at load time). */
export function tk_alloc(n: usize): usize {
  return alloc(n);
}

@inline function hashBytes(p: usize, n: usize): u32 {
  let h: u32 = 0x811c9dc5 ^ <u32>n;
  let i: usize = 0;
  while (i + 4 <= n) {
    h = (h ^ load<u32>(p + i)) * 0x01000193;
    h ^= h >> 15;
    i += 4;
  }
  while (i < n) {
    h = (h ^ <u32>load<u8>(p + i)) * 0x01000193;
    i++;
  }
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  return h;
}

@inline function hash64(k: u64): u32 {
  return <u32>((k * 0x9e3779b97f4a7c15) >> 32);
}

function bytesEq(a: usize, b: usize, n: usize): bool {
  let i: usize = 0;
  while (i + 4 <= n) {
    if (load<u32>(a + i) != load<u32>(b + i)) return false;
    i += 4;
  }
  while (i < n) {
    if (load<u8>(a + i) != load<u8>(b + i)) return false;
    i++;
  }
  return true;
}

@inline function tokLen(id: i32): u32 {
  return load<u32>(offs + ((<usize>id + 1) << 2)) - load<u32>(offs + (<usize>id << 2));
}
@inline function tokPtr(id: i32): usize {
  return bytes + <usize>load<u32>(offs + (<usize>id << 2));
}

function pow2Above(n: u32): u32 {
  let c: u32 = 16;
  while (c < n * 2) c <<= 1;
  return c;
}

/** Vocab lookup: id of the token whose bytes are p[0..n), or -1. */
function vocabGet(p: usize, n: usize): i32 {
  const mask = vcap - 1;
  let s = hashBytes(p, n) & mask;
  while (true) {
    const id = load<i32>(vslots + (<usize>s << 2));
    if (id < 0) return -1;
    if (<usize>tokLen(id) == n && bytesEq(tokPtr(id), p, n)) return id;
    s = (s + 1) & mask;
  }
  return -1;
}

/** Merge lookup: rank << 32 | merged id for the pair (a, b), or u64.MAX_VALUE. */
@inline function mergeGet(a: i32, b: i32): u64 {
  const key = (<u64>(<u32>a) << 32) | <u64>(<u32>b);
  const mask = mcap - 1;
  let s = hash64(key) & mask;
  while (true) {
    const k = load<u64>(mkeys + (<usize>s << 3));
    if (k == key) return load<u64>(mvals + (<usize>s << 3));
    if (k == u64.MAX_VALUE) return u64.MAX_VALUE;
    s = (s + 1) & mask;
  }
  return u64.MAX_VALUE;
}

// ---- loading -------------------------------------------------------------------------------
/**
 * Set up the tokenizer. offsPtr: u32[n+1], bytesPtr: token bytes, kindsPtr: u8[n] (0 none,
 * 1 vocab, 2 added, 3 added special), mergesPtr: i32[3·m] (a, b, merged) in rank order.
 */
export function tk_init(
  mode_: u32, pretok_: u32, flags_: u32, unk: i32,
  n: i32, offsPtr: usize, bytesPtr: usize, kindsPtr: usize, m: i32, mergesPtr: usize,
): void {
  mode = mode_;
  pretok = pretok_;
  flags = flags_;
  unkId = unk;
  nIds = n;
  offs = offsPtr;
  bytes = bytesPtr;
  kinds = kindsPtr;

  let nv: u32 = 0;
  for (let id = 0; id < n; id++) if (load<u8>(kinds + id) == 1) nv++;
  vcap = pow2Above(nv);
  vslots = alloc(<usize>vcap << 2);
  memory.fill(vslots, 0xff, <usize>vcap << 2);
  const vmask = vcap - 1;
  nAdded = 0;
  for (let id = 0; id < n; id++) {
    const k = load<u8>(kinds + id);
    if (k >= 2) nAdded++;
    if (k != 1) continue;
    const len = <usize>tokLen(id);
    const p = tokPtr(id);
    // the first id wins for duplicate strings (as a JS Map built from the vocab object does)
    if (vocabGet(p, len) >= 0) continue;
    let s = hashBytes(p, len) & vmask;
    while (load<i32>(vslots + (<usize>s << 2)) >= 0) s = (s + 1) & vmask;
    store<i32>(vslots + (<usize>s << 2), id);
  }

  mcap = pow2Above(<u32>m);
  mkeys = alloc(<usize>mcap << 3);
  mvals = alloc(<usize>mcap << 3);
  memory.fill(mkeys, 0xff, <usize>mcap << 3);
  const mmask = mcap - 1;
  for (let r = 0; r < m; r++) {
    const a = load<i32>(mergesPtr + (<usize>r * 12));
    const b = load<i32>(mergesPtr + (<usize>r * 12) + 4);
    const c = load<i32>(mergesPtr + (<usize>r * 12) + 8);
    if (a < 0 || b < 0 || c < 0) continue;
    const key = (<u64>(<u32>a) << 32) | <u64>(<u32>b);
    let s = hash64(key) & mmask;
    let dup = false;
    while (true) {
      const k = load<u64>(mkeys + (<usize>s << 3));
      if (k == u64.MAX_VALUE) break;
      if (k == key) { dup = true; break; }
      s = (s + 1) & mmask;
    }
    if (dup) continue; // the first (lowest) rank wins
    store<u64>(mkeys + (<usize>s << 3), key);
    store<u64>(mvals + (<usize>s << 3), (<u64>r << 32) | <u64>(<u32>c));
  }

  // byte tokens
  byteOfId = alloc(<usize>n << 2);
  memory.fill(byteOfId, 0xff, <usize>n << 2);
  const tmp = alloc(8);
  for (let b = 0; b < 256; b++) {
    let id: i32 = -1;
    if (mode == MODE_BYTELEVEL) {
      store<u8>(tmp, <u8>b);
      id = vocabGet(tmp, 1);
    } else {
      // "<0xXX>" with upper-case hex, as sentencepiece writes them
      store<u8>(tmp, 0x3c);
      store<u8>(tmp + 1, 0x30);
      store<u8>(tmp + 2, 0x78);
      store<u8>(tmp + 3, hexDigit(b >> 4));
      store<u8>(tmp + 4, hexDigit(b & 15));
      store<u8>(tmp + 5, 0x3e);
      id = vocabGet(tmp, 6);
      if (id >= 0) store<i32>(byteOfId + (<usize>id << 2), b);
    }
    store<i32>(byteIds + (<usize>b << 2), id);
  }

  // added tokens, longest first (so the first match at a position is the longest)
  const na: i32 = nAdded > 0 ? nAdded : 1;
  added = alloc(<usize>na << 2);
  let j = 0;
  memory.fill(addedFirst, 0, 32);
  for (let id = 0; id < n; id++) {
    if (load<u8>(kinds + id) < 2 || tokLen(id) == 0) continue;
    // insertion sort by length descending (a few hundred tokens at most)
    let k = j;
    const len = tokLen(id);
    while (k > 0 && tokLen(load<i32>(added + (<usize>(k - 1) << 2))) < len) {
      store<i32>(added + (<usize>k << 2), load<i32>(added + (<usize>(k - 1) << 2)));
      k--;
    }
    store<i32>(added + (<usize>k << 2), id);
    j++;
    const b0 = load<u8>(tokPtr(id));
    store<u8>(addedFirst + (b0 >> 3), load<u8>(addedFirst + (b0 >> 3)) | <u8>(1 << (b0 & 7)));
  }
  nAdded = j;
  cacheReset();
}

@inline function hexDigit(v: i32): u8 {
  return <u8>(v < 10 ? 0x30 + v : 0x41 + v - 10);
}

/** id of the token whose bytes are p[0..n) in the model vocab, or -1 (host lookups). */
export function tk_lookup(p: usize, n: usize): i32 {
  return vocabGet(p, n);
}

// ---- scratch buffers -----------------------------------------------------------------------
let inCap: usize = 0;
let inBuf: usize = 0;
let outCap: usize = 0;
let outBuf: usize = 0;
let outLen: i32 = 0;

/** Pointer to an input buffer of at least n bytes (valid until the next call). */
export function tk_input(n: usize): usize {
  if (n > inCap) {
    inCap = n + (n >> 1) + 64;
    inBuf = alloc(inCap);
  }
  return inBuf;
}
export function tk_out(): usize {
  return outBuf;
}

function ensureOut(n: usize): void {
  if (n > outCap) {
    const cap = n + (n >> 1) + 64;
    const nb = alloc(cap << 2);
    if (outLen > 0) memory.copy(nb, outBuf, <usize>outLen << 2);
    outBuf = nb;
    outCap = cap;
  }
}
@inline function emit(id: i32): void {
  store<i32>(outBuf + (<usize>outLen << 2), id);
  outLen++;
}

// ---- UTF-8 ---------------------------------------------------------------------------------
let cpLen: usize = 1; // length in bytes of the code point last read by cpAt

@inline function cpAt(p: usize): u32 {
  const b0 = <u32>load<u8>(p);
  if (b0 < 0x80) { cpLen = 1; return b0; }
  if (b0 < 0xe0) { cpLen = 2; return ((b0 & 0x1f) << 6) | (<u32>load<u8>(p + 1) & 0x3f); }
  if (b0 < 0xf0) {
    cpLen = 3;
    return ((b0 & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6) | (<u32>load<u8>(p + 2) & 0x3f);
  }
  cpLen = 4;
  return ((b0 & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12) |
    ((<u32>load<u8>(p + 2) & 0x3f) << 6) | (<u32>load<u8>(p + 3) & 0x3f);
}

const ASCII_CLS: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
  0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
  0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
]);

@inline function cls(cp: u32): u32 {
  return cp < 128 ? <u32>load<u8>(ASCII_CLS + cp) : charClass(cp);
}

// ---- pre-tokenizer scanners ------------------------------------------------------------------
// Each returns the end of the piece that starts at p (< end), following the leftmost-first
// alternation of the tokenizer.json regex exactly.

@inline function lower(b: u32): u32 {
  return b >= 65 && b <= 90 ? b + 32 : b;
}

/** Length of a contraction ('s 't 're 've 'm 'll 'd) after the apostrophe at p, or 0. */
function contraction(p: usize, end: usize, ci: bool): usize {
  if (p + 1 >= end) return 0;
  let c1 = <u32>load<u8>(p + 1);
  if (ci) c1 = lower(c1);
  if (c1 == 0x73 || c1 == 0x74 || c1 == 0x6d || c1 == 0x64) return 2; // s t m d
  if (p + 2 >= end) return 0;
  let c2 = <u32>load<u8>(p + 2);
  if (ci) c2 = lower(c2);
  if ((c1 == 0x72 || c1 == 0x76) && c2 == 0x65) return 3; // re ve
  if (c1 == 0x6c && c2 == 0x6c) return 3; // ll
  return 0;
}

function skipClass(p: usize, end: usize, k: u32): usize {
  while (p < end) {
    const b = <u32>load<u8>(p);
    if (b < 128) {
      if (<u32>load<u8>(ASCII_CLS + b) != k) break;
      p++;
    } else {
      const c = cpAt(p);
      if (charClass(c) != k) break;
      p += cpLen;
    }
  }
  return p;
}

/** Whitespace run at p: \s*[\r\n]+ | \s+(?!\S) | \s+ (p is whitespace). */
function scanSpace(p: usize, end: usize, newlines: bool): usize {
  let j = p;
  let lastNl: usize = 0;
  let lastStart = p;
  while (j < end) {
    const c = cpAt(j);
    if (cls(c) != CLS_WS) break;
    if (c == 10 || c == 13) lastNl = j + 1;
    lastStart = j;
    j += cpLen;
  }
  if (newlines && lastNl != 0) return lastNl;
  if (j == end) return j;
  if (lastStart > p) return lastStart;
  return j;
}

/** (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
function scanLlama3(p: usize, end: usize, maxDigits: i32): usize {
  const c0 = cpAt(p);
  const l0 = cpLen;
  const k0 = cls(c0);
  if (c0 == 0x27) {
    const m = contraction(p, end, true);
    if (m) return p + m;
  }
  if (k0 == CLS_L) return skipClass(p + l0, end, CLS_L);
  if (k0 != CLS_N && c0 != 10 && c0 != 13 && p + l0 < end) {
    const c1 = cpAt(p + l0);
    if (cls(c1) == CLS_L) return skipClass(p + l0 + cpLen, end, CLS_L);
  }
  if (k0 == CLS_N) {
    let j = p + l0;
    let n = 1;
    while (n < maxDigits && j < end) {
      const c = cpAt(j);
      if (cls(c) != CLS_N) break;
      j += cpLen;
      n++;
    }
    return j;
  }
  let s = p;
  if (c0 == 32 && p + 1 < end) {
    const c1 = cpAt(p + 1);
    if (cls(c1) == CLS_OTHER) s = p + 1;
  }
  if (s != p || k0 == CLS_OTHER) {
    let j = skipClass(s, end, CLS_OTHER);
    while (j < end) {
      const b = load<u8>(j);
      if (b != 10 && b != 13) break;
      j++;
    }
    return j;
  }
  return scanSpace(p, end, true);
}

/** 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
function scanGpt2(p: usize, end: usize): usize {
  const c0 = cpAt(p);
  const k0 = cls(c0);
  if (c0 == 0x27) {
    const m = contraction(p, end, false);
    if (m) return p + m;
  }
  let s = p;
  let k = k0;
  if (c0 == 32 && p + 1 < end) {
    const c1 = cpAt(p + 1);
    const k1 = cls(c1);
    if (k1 != CLS_WS) {
      s = p + 1;
      k = k1;
    }
  }
  if (k != CLS_WS) return skipClass(s, end, k);
  return scanSpace(p, end, false);
}

// ---- BPE -----------------------------------------------------------------------------------
// Symbols of one word: sym id, prev, next, start (bytes); heap of u64 (rank << 32 | position).
let symCap: usize = 0;
let symId: usize = 0;
let symPrev: usize = 0;
let symNext: usize = 0;
let symStart: usize = 0;
let symEnd: usize = 0;
let heapBuf: usize = 0;
let heapLen: i32 = 0;

function ensureSyms(n: usize): void {
  if (n <= symCap) return;
  symCap = n + (n >> 1) + 64;
  symId = alloc(symCap << 2);
  symPrev = alloc(symCap << 2);
  symNext = alloc(symCap << 2);
  symStart = alloc(symCap << 2);
  symEnd = alloc(symCap << 2);
  heapBuf = alloc(symCap * 24); // n-1 initial pairs + at most 2 per merge
}

function heapPush(v: u64): void {
  let i = heapLen++;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pv = load<u64>(heapBuf + (<usize>parent << 3));
    if (pv <= v) break;
    store<u64>(heapBuf + (<usize>i << 3), pv);
    i = parent;
  }
  store<u64>(heapBuf + (<usize>i << 3), v);
}

function heapPop(): u64 {
  const top = load<u64>(heapBuf);
  const last = load<u64>(heapBuf + (<usize>(--heapLen) << 3));
  let i = 0;
  const n = heapLen;
  while (true) {
    let c = 2 * i + 1;
    if (c >= n) break;
    let cv = load<u64>(heapBuf + (<usize>c << 3));
    if (c + 1 < n) {
      const rv = load<u64>(heapBuf + (<usize>(c + 1) << 3));
      if (rv < cv) { c++; cv = rv; }
    }
    if (last <= cv) break;
    store<u64>(heapBuf + (<usize>i << 3), cv);
    i = c;
  }
  if (n > 0) store<u64>(heapBuf + (<usize>i << 3), last);
  return top;
}

@inline function pushPair(i: i32): void {
  const j = load<i32>(symNext + (<usize>i << 2));
  if (j < 0) return;
  const a = load<i32>(symId + (<usize>i << 2));
  const b = load<i32>(symId + (<usize>j << 2));
  if (a < 0 || b < 0) return;
  const mv = mergeGet(a, b);
  if (mv == u64.MAX_VALUE) return;
  heapPush((mv & 0xffffffff00000000) | <u64>(<u32>i));
}

/** Merge the n symbols already in symId/symStart/symEnd; emits the resulting ids. */
function bpeRun(n: i32, text: usize): void {
  heapLen = 0;
  for (let i = 0; i < n; i++) {
    store<i32>(symPrev + (<usize>i << 2), i - 1);
    store<i32>(symNext + (<usize>i << 2), i + 1 < n ? i + 1 : -1);
  }
  for (let i = 0; i < n - 1; i++) pushPair(i);
  while (heapLen > 0) {
    const top = heapPop();
    const i = <i32>(<u32>top);
    const rank = top >> 32;
    const a = load<i32>(symId + (<usize>i << 2));
    if (a == -2) continue; // merged away
    const j = load<i32>(symNext + (<usize>i << 2));
    if (j < 0) continue;
    const b = load<i32>(symId + (<usize>j << 2));
    if (a < 0 || b < 0) continue;
    const mv = mergeGet(a, b);
    if (mv == u64.MAX_VALUE || (mv >> 32) != rank) continue; // stale entry
    store<i32>(symId + (<usize>i << 2), <i32>(<u32>mv));
    store<i32>(symEnd + (<usize>i << 2), load<i32>(symEnd + (<usize>j << 2)));
    const k = load<i32>(symNext + (<usize>j << 2));
    store<i32>(symNext + (<usize>i << 2), k);
    if (k >= 0) store<i32>(symPrev + (<usize>k << 2), i);
    store<i32>(symId + (<usize>j << 2), -2);
    const pr = load<i32>(symPrev + (<usize>i << 2));
    if (pr >= 0) pushPair(pr);
    pushPair(i);
  }
  let i = 0;
  while (i >= 0 && n > 0) {
    const id = load<i32>(symId + (<usize>i << 2));
    if (id >= 0) emit(id);
    else {
      // unknown character: byte fallback, or unk when a byte token is missing
      let s = <usize>load<i32>(symStart + (<usize>i << 2));
      let e = <usize>load<i32>(symEnd + (<usize>i << 2));
      let src = text;
      // a lone surrogate (the host writes it as WTF-8, ED A0..BF xx) falls back to U+FFFD's bytes
      if (e - s == 3 && load<u8>(text + s) == 0xed && load<u8>(text + s + 1) >= 0xa0) {
        src = FFFD;
        s = 0;
        e = 3;
      }
      let ok = true;
      for (let q = s; q < e; q++) if (load<i32>(byteIds + (<usize>load<u8>(src + q) << 2)) < 0) ok = false;
      if (ok) {
        for (let q = s; q < e; q++) emit(load<i32>(byteIds + (<usize>load<u8>(src + q) << 2)));
      } else if (unkId >= 0) emit(unkId);
    }
    i = load<i32>(symNext + (<usize>i << 2));
  }
}

// ---- word cache (byte-level): piece bytes → ids ---------------------------------------------
const CACHE_SLOTS: u32 = 1 << 16;
const CACHE_ARENA: usize = 4 << 20;
const CACHE_MAX_KEY: usize = 64;
let cacheSlots: usize = 0; // u32 arena offset + 1, 0 = empty
let cacheArena: usize = 0;
let cacheTop: usize = 0;
let cacheCount: u32 = 0;

function cacheReset(): void {
  if (cacheSlots == 0) {
    cacheSlots = alloc(<usize>CACHE_SLOTS << 2);
    cacheArena = alloc(CACHE_ARENA);
  }
  memory.fill(cacheSlots, 0, <usize>CACHE_SLOTS << 2);
  cacheTop = 0;
  cacheCount = 0;
}

/** Byte-level word: cached ids, or the whole word when it is a token (ignore_merges), or BPE. */
function encodeWord(p: usize, n: usize): void {
  const cacheable = n <= CACHE_MAX_KEY;
  let h: u32 = 0;
  let slot: u32 = 0;
  if (cacheable) {
    h = hashBytes(p, n);
    const mask = CACHE_SLOTS - 1;
    slot = h & mask;
    while (true) {
      const e = load<u32>(cacheSlots + (<usize>slot << 2));
      if (e == 0) break;
      const ep = cacheArena + <usize>(e - 1);
      if (load<u32>(ep) == h && <usize>load<u32>(ep + 4) == n && bytesEq(ep + 12, p, n)) {
        const cnt = load<u32>(ep + 8);
        const ids = ep + 12 + ((n + 3) & ~3);
        for (let q: u32 = 0; q < cnt; q++) emit(load<i32>(ids + (<usize>q << 2)));
        return;
      }
      slot = (slot + 1) & mask;
    }
  }
  const start = outLen;
  let done = false;
  if (flags & F_IGNORE_MERGES) {
    const id = vocabGet(p, n);
    if (id >= 0) { emit(id); done = true; }
  }
  if (!done) {
    if (n == 1) emit(load<i32>(byteIds + (<usize>load<u8>(p) << 2)));
    else {
      ensureSyms(n);
      for (let i: usize = 0; i < n; i++) {
        store<i32>(symId + (i << 2), load<i32>(byteIds + (<usize>load<u8>(p + i) << 2)));
        store<i32>(symStart + (i << 2), <i32>i);
        store<i32>(symEnd + (i << 2), <i32>i + 1);
      }
      bpeRun(<i32>n, p);
    }
  }
  if (!cacheable) return;
  const cnt = <u32>(outLen - start);
  const size: usize = <usize>12 + ((n + 3) & ~3) + (<usize>cnt << 2);
  if (cacheTop + size > CACHE_ARENA || cacheCount >= CACHE_SLOTS >> 1) {
    cacheReset();
    // slot found above is stale after a reset; find it again
    slot = h & (CACHE_SLOTS - 1);
  }
  const ep = cacheArena + cacheTop;
  store<u32>(ep, h);
  store<u32>(ep + 4, <u32>n);
  store<u32>(ep + 8, cnt);
  memory.copy(ep + 12, p, n);
  memory.copy(ep + 12 + ((n + 3) & ~3), outBuf + (<usize>start << 2), <usize>cnt << 2);
  store<u32>(cacheSlots + (<usize>slot << 2), <u32>cacheTop + 1);
  cacheTop += (size + 7) & ~7;
  cacheCount++;
}

function encodeByteLevel(p: usize, end: usize): void {
  let i = p;
  while (i < end) {
    let j: usize;
    if (pretok == PRETOK_LLAMA3) j = scanLlama3(i, end, 3);
    else if (pretok == PRETOK_QWEN) j = scanLlama3(i, end, 1);
    else if (pretok == PRETOK_GPT2) j = scanGpt2(i, end);
    else j = end;
    encodeWord(i, j - i);
    i = j;
  }
}

// normalized text of one sentencepiece section
let spCap: usize = 0;
let spBuf: usize = 0;

function encodeSentencePiece(p: usize, end: usize, first: bool): void {
  const n = end - p;
  if (spCap < n * 3 + 3) {
    spCap = n * 3 + 64;
    spBuf = alloc(spCap);
  }
  let w = spBuf;
  if ((flags & F_PREPEND_ALWAYS) || ((flags & F_PREPEND_FIRST) && first)) {
    store<u8>(w, 0xe2); store<u8>(w + 1, 0x96); store<u8>(w + 2, 0x81);
    w += 3;
  }
  const rep = (flags & F_REPLACE_SPACE) != 0;
  for (let i = p; i < end; i++) {
    const b = load<u8>(i);
    if (rep && b == 32) {
      store<u8>(w, 0xe2); store<u8>(w + 1, 0x96); store<u8>(w + 2, 0x81);
      w += 3;
    } else {
      store<u8>(w, b);
      w++;
    }
  }
  const len = w - spBuf;
  ensureSyms(len);
  ensureOut(<usize>outLen + len + 16);
  let ns = 0;
  let i: usize = 0;
  while (i < len) {
    cpAt(spBuf + i);
    const l = cpLen;
    store<i32>(symId + (<usize>ns << 2), vocabGet(spBuf + i, l));
    store<i32>(symStart + (<usize>ns << 2), <i32>i);
    store<i32>(symEnd + (<usize>ns << 2), <i32>(i + l));
    ns++;
    i += l;
  }
  bpeRun(ns, spBuf);
}

/** Which added token (longest) starts at p, or -1. */
function matchAdded(p: usize, end: usize): i32 {
  const b0 = load<u8>(p);
  if (!(load<u8>(addedFirst + (b0 >> 3)) & (1 << (b0 & 7)))) return -1;
  for (let k = 0; k < nAdded; k++) {
    const id = load<i32>(added + (<usize>k << 2));
    const len = <usize>tokLen(id);
    if (p + len <= end && bytesEq(tokPtr(id), p, len)) return id;
  }
  return -1;
}

function encodeSection(p: usize, end: usize, first: bool): void {
  if (end <= p) return;
  if (mode == MODE_BYTELEVEL) encodeByteLevel(p, end);
  else encodeSentencePiece(p, end, first);
}

/** Encode the n UTF-8 bytes in the input buffer; returns the number of ids at tk_out(). */
export function tk_encode(n: usize, splitAdded: bool): i32 {
  outLen = 0;
  ensureOut(n * 3 + 16);
  const p = inBuf;
  const end = p + n;
  let sec = p;
  let first = true;
  if (splitAdded && nAdded > 0) {
    let i = p;
    while (i < end) {
      const id = matchAdded(i, end);
      if (id < 0) { i++; continue; }
      encodeSection(sec, i, first);
      first = false; // prepend_scheme "first": only the text before the first added token
      emit(id);
      i += <usize>tokLen(id);
      sec = i;
    }
  }
  encodeSection(sec, end, first);
  return outLen;
}

// ---- decoding ------------------------------------------------------------------------------
let decCap: usize = 0;
let decBuf: usize = 0;

export function tk_dec_out(): usize {
  return decBuf;
}

/** Decode n ids at tk_input(); returns the byte length of the UTF-8 text at tk_dec_out(). */
export function tk_decode(n: i32, skipSpecial: bool): i32 {
  let total: usize = 0;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(inBuf + (<usize>i << 2));
    if (id >= 0 && id < nIds) total += <usize>tokLen(id);
  }
  if (total > decCap) {
    decCap = total + (total >> 1) + 64;
    decBuf = alloc(decCap);
  }
  let w = decBuf;
  const sp = mode == MODE_SENTENCEPIECE;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(inBuf + (<usize>i << 2));
    if (id < 0 || id >= nIds) continue;
    const kind = load<u8>(kinds + id);
    if (kind == 0) continue;
    if (kind == 3 && skipSpecial) continue;
    if (sp && kind == 1) {
      const bv = load<i32>(byteOfId + (<usize>id << 2));
      if (bv >= 0) {
        store<u8>(w++, <u8>bv);
        continue;
      }
      const tp = tokPtr(id);
      const tl = <usize>tokLen(id);
      let q: usize = 0;
      while (q < tl) {
        if (q + 2 < tl && load<u8>(tp + q) == 0xe2 && load<u8>(tp + q + 1) == 0x96 && load<u8>(tp + q + 2) == 0x81) {
          store<u8>(w++, 32);
          q += 3;
        } else {
          store<u8>(w++, load<u8>(tp + q));
          q++;
        }
      }
      continue;
    }
    const len = <usize>tokLen(id);
    memory.copy(w, tokPtr(id), len);
    w += len;
  }
  let len = w - decBuf;
  if ((flags & F_STRIP_LEADING_SPACE) && len > 0 && load<u8>(decBuf) == 32) {
    memory.copy(decBuf, decBuf + 1, len - 1);
    len--;
  }
  return <i32>len;
}
