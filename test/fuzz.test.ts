// A seeded fuzzer over the files users bring: safetensors, config.json, tokenizer.json /
// tokenizer_config.json, data JSONL, PEFT adapters and checkpoints. Each valid file is mutated
// (bytes flipped, ranges cut or repeated, numbers made absurd, JSON fields deleted or given the
// wrong type) and fed to its reader: the reader must either accept it or throw one of our errors
// (FormatError, UsageError, LimitError) naming the file — never a TypeError, RangeError or other
// crash, never a hang. The number of inputs and the time are printed; both are bounded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ZpdError } from '../src/errors.js';
import { parseConfig } from '../src/io/config.js';
import { parseAdapterConfig, readAdapter } from '../src/io/peft.js';
import { bytesSource, SafetensorsFile } from '../src/io/safetensors.js';
import { parseJsonl } from '../src/data/read.js';
import { compactFromJSON } from '../src/tokenizer/compact.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import type { RunFolder } from '../src/train/io.js';
import { Rng } from '../src/rng.js';

const FIX = join(import.meta.dirname, 'fixtures');
const PER_FAMILY = 3000; // inputs per file family
const BUDGET_MS = 8_000; // and at most this long per family

// ---- mutations -----------------------------------------------------------------------------

function mutateBytes(src: Uint8Array, r: Rng, focus = src.length): Uint8Array {
  let b = src;
  const cat = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) out.set(p, o), (o += p.length);
    return out;
  };
  const ops = 1 + r.int(3);
  for (let k = 0; k < ops; k++) {
    const i = r.int(Math.max(1, r.int(3) ? Math.min(focus, b.length) : b.length)), n = 1 + r.int(64);
    switch (r.int(6)) {
      case 0: b = cat(b.subarray(0, i), Uint8Array.of(r.int(256)), b.subarray(i + 1)); break; // flip a byte
      case 1: b = cat(b.subarray(0, i), b.subarray(i + n)); break; // cut a range
      case 2: b = cat(b.subarray(0, i + n), b.subarray(i)); break; // repeat a range
      case 3: b = cat(b.subarray(0, i), Uint8Array.from({ length: 1 + r.int(8) }, () => r.int(256)), b.subarray(i)); break; // insert junk
      case 4: b = b.subarray(0, i); break; // truncate
      case 5: b = cat(b.subarray(0, i), Uint8Array.of([0, 0xff, 0x80, 0x7b, 0x22, 0x5b][r.int(6)]), b.subarray(i + 1)); break; // NUL, invalid UTF-8, { " [
    }
  }
  return b;
}

const WEIRD = [null, -1, 0, 1e12, 2 ** 53, -(2 ** 31), 0.5, NaN, '', 'x', 'llama', [], [1, 2], {}, { a: 1 }, true, '1e309', -0];

/** Replace, delete or retype one field somewhere in a JSON value (paths chosen by the Rng). */
function mutateJson(v: unknown, r: Rng, depth = 0): unknown {
  if (Array.isArray(v)) {
    if (v.length === 0 || r.int(4) === 0) return r.int(2) ? WEIRD[r.int(WEIRD.length)] : [...v, WEIRD[r.int(WEIRD.length)]];
    const c = [...v];
    const i = r.int(c.length);
    if (r.int(5) === 0) c.splice(i, 1);
    else c[i] = mutateJson(c[i], r, depth + 1);
    return c;
  }
  if (typeof v === 'object' && v !== null) {
    const keys = Object.keys(v);
    const c: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    if (keys.length === 0 || depth > 6) return WEIRD[r.int(WEIRD.length)];
    const k = keys[r.int(keys.length)];
    const op = r.int(4);
    if (op === 0) delete c[k];
    else if (op === 1) c[k] = WEIRD[r.int(WEIRD.length)];
    else c[k] = mutateJson(c[k], r, depth + 1);
    return c;
  }
  return WEIRD[r.int(WEIRD.length)];
}

/** Absurd numbers in JSON text: every number has a chance to become huge, negative or fractional. */
function mutateNumbers(text: string, r: Rng): string {
  return text.replace(/-?\d+(\.\d+)?(e-?\d+)?/g, (m) => (r.int(12) === 0 ? String([1e12, -7, 0, 3.5, 2 ** 40, 1e400][r.int(6)]) : m));
}

// ---- the harness -----------------------------------------------------------------------------

interface Tally {
  inputs: number;
  accepted: number;
  refused: number;
  ms: number;
}
const tallies: Record<string, Tally> = {};

/** Feed `PER_FAMILY` mutants to `read`; anything but success or a ZpdError naming `file` fails. */
async function fuzz(family: string, file: string, make: (r: Rng) => unknown, read: (input: unknown) => Promise<unknown> | unknown): Promise<void> {
  const r = new Rng(0x5eed + family.length * 7919);
  const t0 = performance.now();
  const t: Tally = (tallies[family] = { inputs: 0, accepted: 0, refused: 0, ms: 0 });
  while (t.inputs < PER_FAMILY && performance.now() - t0 < BUDGET_MS) {
    const input = make(r);
    t.inputs++;
    try {
      await read(input);
      t.accepted++;
    } catch (e) {
      if (!(e instanceof ZpdError)) throw new Error(`${family}: input ${t.inputs} crashed the reader with ${(e as Error)?.stack ?? e}\ninput: ${String(typeof input === 'string' ? input : JSON.stringify(input)).slice(0, 600)}`);
      expect((e as Error).message, `${family}: the error must name the file`).toContain(file);
      t.refused++;
    }
  }
  t.ms = performance.now() - t0;
  console.log(`fuzz ${family}: ${t.inputs} inputs in ${t.ms.toFixed(0)} ms, ${t.accepted} accepted, ${t.refused} refused with a clear error`);
  expect(t.refused).toBeGreaterThan(0);
}

const text = (p: string) => readFileSync(join(FIX, p), 'utf8');
const bytes = (p: string) => new Uint8Array(readFileSync(join(FIX, p)));

it('safetensors: mutated checkpoints are read or refused with the file and tensor named', async () => {
  // mostly the header (where the structure is), sometimes anywhere
  const good = bytes('models/llama/model.safetensors');
  const headerEnd = 8 + Number(new DataView(good.buffer).getBigUint64(0, true));
  await fuzz('safetensors', 'm.safetensors', (r) => mutateBytes(good, r, headerEnd + 64), async (b) => {
    const f = await SafetensorsFile.open(bytesSource(b as Uint8Array, 'm.safetensors'));
    for (const n of f.names()) await f.readF32(n);
  });
});

it('config.json: mutated configs are parsed or refused before any allocation, with the key named', async () => {
  const good = JSON.parse(text('models/qwen3/config.json'));
  await fuzz('config.json', 'config.json', (r) => (r.int(3) ? JSON.stringify(mutateJson(good, r)) : mutateNumbers(JSON.stringify(good), r)), (t) => parseConfig(t as string));
});

it('tokenizer.json and tokenizer_config.json: mutated structures are loaded or refused', async () => {
  const tj = JSON.parse(text('models/qwen2/tokenizer.json')), tc = JSON.parse(text('models/qwen2/tokenizer_config.json'));
  await fuzz('tokenizer.json', 'tokenizer.json', (r) => (r.int(4) ? [mutateJson(tj, r), tc] : [tj, mutateJson(tc, r)]), async (x) => {
    const [j, c] = x as [unknown, unknown];
    const tok = await Tokenizer.fromCompact(compactFromJSON(j, c, 'tokenizer.json'));
    const ids = tok.encode('Hello, world 123 — 안녕하세요 <|im_start|>');
    tok.decode(ids);
  });
});

it('data JSONL: mutated files give records or one error naming the file and the line', async () => {
  const good = text('data/mixed.jsonl') + text('data/alpaca.jsonl');
  const enc = new TextEncoder(), dec = new TextDecoder();
  await fuzz('data.jsonl', 'd.jsonl', (r) => (r.int(2) ? dec.decode(mutateBytes(enc.encode(good), r)) : good.split('\n').map((l) => (l && r.int(3) === 0 ? JSON.stringify(mutateJson(JSON.parse(l), r)) : l)).join('\n')), (t) =>
    parseJsonl(t as string, 'd.jsonl', { chat: (m, g) => m.map((x) => `${x.role}: ${x.content}`).join('\n') + (g ? '\nassistant: ' : '') }),
  );
});

it('PEFT adapters: mutated adapter_config.json and adapter_model.safetensors are read or refused', async () => {
  const cfgText = text('models/llama/lora_init/adapter_config.json');
  const cfgJson = JSON.parse(cfgText);
  const weights = bytes('models/llama/lora_init/adapter_model.safetensors');
  const model = parseConfig(text('models/llama/config.json'));
  await fuzz('adapter_config.json', 'adapter_config.json', (r) => JSON.stringify(mutateJson(cfgJson, r)), (t) => parseAdapterConfig(t as string));
  const headerEnd = 8 + Number(new DataView(weights.buffer).getBigUint64(0, true));
  await fuzz('adapter_model.safetensors', 'a.safetensors', (r) => mutateBytes(weights, r, headerEnd + 64), async (b) => {
    const st = await SafetensorsFile.open(bytesSource(b as Uint8Array, 'a.safetensors'));
    return readAdapter(cfgText, st, { weightsFile: 'a.safetensors', model });
  });
});

it('checkpoints: a torn, altered or foreign state.msgpack is refused, never half-loaded', async () => {
  const files = new Map<string, Uint8Array>();
  const folder: RunFolder = {
    where: 'mem',
    read: async (p) => files.get(p) ?? null,
    writeAtomic: async (p, d) => void files.set(p, typeof d === 'string' ? new TextEncoder().encode(d) : d),
    append: async () => {},
    truncate: async () => {},
    size: async (p) => files.get(p)?.length ?? (([...files.keys()].some((k) => k.startsWith(`${p}/`)) ? 0 : null)),
    rename: async (a, b) => {
      for (const [k, v] of [...files]) if (k === a || k.startsWith(`${a}/`)) files.delete(k), files.set(b + k.slice(a.length), v);
    },
    remove: async (p) => {
      for (const k of [...files.keys()]) if (k === p || k.startsWith(`${p}/`)) files.delete(k);
    },
    mkdir: async () => {},
    exists: async (p) => [...files.keys()].some((k) => k === p || k.startsWith(`${p}/`)),
  };
  const settings = { lr: 1e-3 };
  await saveCheckpoint(folder, {
    settings, step: 3, optimizer: { step: 3, tensors: [{ name: 'w', shape: [4], value: new Float32Array(4), m: new Float32Array(4), v: new Float32Array(4) }] },
    curriculum: { order: [1, 2, 3] }, rng: 7, loop: {}, logs: { 'metrics.jsonl': 0 },
  });
  const good = files.get('checkpoint/state.msgpack')!;
  await fuzz('checkpoint', 'mem/checkpoint', (r) => mutateBytes(good, r), async (b) => {
    files.clear();
    files.set('checkpoint/state.msgpack', b as Uint8Array);
    const s = await loadCheckpoint(folder, settings);
    if (s && s.step !== 3) throw new Error('a mutated checkpoint was half-loaded');
  });
  files.clear();
  files.set('checkpoint/state.msgpack', good);
  await expect(loadCheckpoint(folder, { lr: 2e-3 })).rejects.toThrow(/made by a run with other settings \(lr: 0\.001 there, 0\.002 now\)/);
});
