// safetensors reader/writer: round trips of every dtype, the fixtures PyTorch wrote, sharded
// checkpoints, and every corruption giving a FormatError that names the file and the tensor.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { f32ToF16Bits } from '../src/io/dtype.js';
import {
  SafetensorsFile,
  blobSource,
  bytesSource,
  openCheckpoint,
  readF16Bits,
  safetensorsBytes,
  writeSafetensors,
  type TensorToWrite,
} from '../src/io/safetensors.js';
import { randn } from './helpers/check.js';

const FIX = join(__dirname, 'fixtures/models');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zpd-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A raw file: 8-byte length, the header text as given, then `data`. */
function raw(header: string, data: Uint8Array = new Uint8Array(0), len = new TextEncoder().encode(header).byteLength): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(len), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

async function expectFormatError(p: Promise<unknown>, ...parts: string[]): Promise<FormatError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a FormatError').toBeInstanceOf(FormatError);
  for (const s of parts) expect((err as Error).message).toContain(s);
  return err as FormatError;
}

describe('safetensors round trip', () => {
  const vals = randn(6 * 5, 7, -3, 3);
  const tensors: TensorToWrite[] = [
    { name: 'a.f64', dtype: 'F64', shape: [6, 5], data: Float64Array.from(vals, (v) => v / 3) },
    { name: 'b.f32', dtype: 'F32', shape: [5, 6], data: vals },
    { name: 'c.f16', dtype: 'F16', shape: [30], data: vals },
    { name: 'd.bf16', dtype: 'BF16', shape: [2, 3, 5], data: vals },
    { name: 'e.i32', dtype: 'I32', shape: [3], data: Int32Array.of(-5, 0, 2147483647) },
    { name: 'f.i64', dtype: 'I64', shape: [2], data: [7, -9] },
    { name: 'g.empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    { name: 'h.scalar', dtype: 'F32', shape: [], data: [2.5] },
  ];

  it('writes atomically, pads the header to 8, and reads every dtype back', async () => {
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')).__metadata__).toEqual({ format: 'pt' });

    const f = await SafetensorsFile.openPath(path);
    try {
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(f.names()).toEqual(tensors.map((t) => t.name));
      expect(f.info('d.bf16')).toMatchObject({ dtype: 'BF16', shape: [2, 3, 5] });
      expect(Array.from(await f.readF64('a.f64'))).toEqual(Array.from(tensors[0].data as Float64Array));
      expect(Array.from(await f.readF32('b.f32'))).toEqual(Array.from(vals));
      // f16: the raw bits are what the writer made; the values are within f16 precision
      expect(Array.from(new Uint16Array((await f.readBytes('c.f16')).buffer))).toEqual(Array.from(f32ToF16Bits(vals)));
      const h = await f.readF32('c.f16');
      for (let i = 0; i < vals.length; i++) expect(Math.abs(h[i] - vals[i])).toBeLessThanOrEqual(Math.abs(vals[i]) * 2 ** -11);
      const bf = await f.readF32('d.bf16');
      for (let i = 0; i < vals.length; i++) expect(Math.abs(bf[i] - vals[i])).toBeLessThanOrEqual(Math.abs(vals[i]) * 2 ** -8);
      expect(Array.from(await f.readI32('e.i32'))).toEqual([-5, 0, 2147483647]);
      expect(Array.from(await f.readI32('f.i64'))).toEqual([7, -9]);
      expect((await f.readF32('g.empty')).length).toBe(0);
      expect(Array.from(await f.readF32('h.scalar'))).toEqual([2.5]);
      await expectFormatError(f.readF32('e.i32'), path, "'e.i32'", 'float');
      await expectFormatError(f.readF32('nope'), path, "'nope'");
    } finally {
      await f.close();
    }
  });

  it('readF16Bits: f16 as stored, bf16 and f32 rounded to f16', async () => {
    const path = join(dir, 'f16bits.safetensors');
    await writeSafetensors(path, tensors);
    const f = await SafetensorsFile.openPath(path);
    const want = Array.from(f32ToF16Bits(vals));
    expect(Array.from(await readF16Bits(f, 'c.f16'))).toEqual(want);
    expect(Array.from(await readF16Bits(f, 'b.f32'))).toEqual(want);
    expect(Array.from(await readF16Bits(f, 'd.bf16'))).toEqual(Array.from(f32ToF16Bits(await f.readF32('d.bf16'))));
    await expectFormatError(readF16Bits(f, 'missing'), "'missing'");
    await f.close();
  });

  it('rounds f32 → bf16 to nearest even', async () => {
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1)
    const x = Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -2.0);
    const f = await SafetensorsFile.open(bytesSource(safetensorsBytes([{ name: 'x', dtype: 'BF16', shape: [4], data: x }])));
    expect(Array.from(await f.readF32('x'))).toEqual([1, 1 + 2 ** -6, 1 + 2 ** -7, -2]);
  });

  it('reads from a Blob as from a file', async () => {
    const bytes = safetensorsBytes(tensors.slice(0, 2));
    const f = await SafetensorsFile.open(blobSource(new Blob([bytes.buffer as ArrayBuffer]), 'in-memory.safetensors'));
    expect(Array.from(await f.readF32('b.f32'))).toEqual(Array.from(vals));
  });
});

describe('safetensors written by the PyTorch fixture script', () => {
  it('bf16 copy of the llama weights equals the f32 weights rounded to nearest even', async () => {
    const f32 = await SafetensorsFile.openPath(join(FIX, 'llama/model.safetensors'));
    const b16 = await SafetensorsFile.openPath(join(FIX, 'llama/model-bf16.safetensors'));
    try {
      expect(b16.names().sort()).toEqual(f32.names().sort());
      for (const name of ['model.embed_tokens.weight', 'model.layers.1.mlp.down_proj.weight', 'model.norm.weight']) {
        const a = await f32.readF32(name);
        const ours = await SafetensorsFile.open(bytesSource(safetensorsBytes([{ name, dtype: 'BF16', shape: [a.length], data: a }])));
        expect(b16.info(name)!.dtype).toBe('BF16');
        expect(Array.from(await b16.readF32(name)), name).toEqual(Array.from(await ours.readF32(name)));
      }
    } finally {
      await f32.close();
      await b16.close();
    }
  });

  it('opens a sharded checkpoint through its index, and a single-file one', async () => {
    const q3 = await openCheckpoint(join(FIX, 'qwen3'));
    try {
      const index = JSON.parse(await readFile(join(FIX, 'qwen3/model.safetensors.index.json'), 'utf8'));
      expect(q3.names().sort()).toEqual(Object.keys(index.weight_map).sort());
      expect(q3.info('model.layers.1.self_attn.q_proj.weight')).toMatchObject({ dtype: 'F32', shape: [96, 64] });
      expect(q3.info('model.layers.1.self_attn.q_proj.weight')!.file).toContain('model-00002-of-00002.safetensors');
      expect((await q3.readF32('model.layers.0.self_attn.q_norm.weight')).length).toBe(24);
    } finally {
      await q3.close();
    }
    const ll = await openCheckpoint(join(FIX, 'llama'));
    expect(ll.info('lm_head.weight')).toMatchObject({ shape: [272, 64] });
    await ll.close();
    await expectFormatError(openCheckpoint(dir), dir, 'model.safetensors');
  });

  it('a shard the index names but that is missing is an error naming the shard', async () => {
    const d = join(dir, 'badshards');
    await import('node:fs/promises').then((fs) => fs.mkdir(d));
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'x.weight': 'model-00001-of-00002.safetensors' } }));
    await expectFormatError(openCheckpoint(d), 'model.safetensors.index.json', 'model-00001-of-00002.safetensors');
    await writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), [{ name: 'y.weight', dtype: 'F32', shape: [1], data: [1] }]);
    await expectFormatError(openCheckpoint(d), 'model.safetensors.index.json', "'x.weight'");
  });
});

describe('corrupt safetensors files fail with FormatError naming the file and tensor', () => {
  const good = () =>
    safetensorsBytes(
      [
        { name: 'w.a', dtype: 'F32', shape: [4, 4], data: randn(16, 1) },
        { name: 'w.b', dtype: 'F32', shape: [8], data: randn(8, 2) },
      ],
      { format: 'pt' },
    );
  const open = async (bytes: Uint8Array, name: string) => {
    const p = join(dir, name);
    await writeFile(p, bytes);
    return { p, opened: SafetensorsFile.openPath(p) };
  };

  it('truncated inside the data: names the tensor whose bytes are cut', async () => {
    const g = good();
    const { p, opened } = await open(g.subarray(0, g.byteLength - 10), 'trunc-data.safetensors');
    await expectFormatError(opened, p, "'w.b'", 'past the end');
  });

  it('truncated inside the header, or shorter than 8 bytes', async () => {
    const g = good();
    const a = await open(g.subarray(0, 40), 'trunc-header.safetensors');
    await expectFormatError(a.opened, a.p, 'header length', 'truncated');
    const b = await open(g.subarray(0, 5), 'trunc-len.safetensors');
    await expectFormatError(b.opened, b.p, 'header length', '5 bytes');
  });

  it('a header length past the end of the file', async () => {
    const { p, opened } = await open(raw('{}', new Uint8Array(0), 1 << 20), 'hlen.safetensors');
    await expectFormatError(opened, p, 'header length', `${1 << 20}`);
  });

  it('a header that is not JSON, or not an object', async () => {
    const a = await open(raw('{"w": {"dtype": "F32",'), 'nojson.safetensors');
    await expectFormatError(a.opened, a.p, 'header', 'JSON');
    const b = await open(raw('[1,2,3] '), 'array.safetensors');
    await expectFormatError(b.opened, b.p, 'header', 'array');
  });

  it('data_offsets past the end of the data', async () => {
    const h = JSON.stringify({ 'w.x': { dtype: 'F32', shape: [4], data_offsets: [8, 24] } });
    const { p, opened } = await open(raw(h, new Uint8Array(16)), 'offs.safetensors');
    await expectFormatError(opened, p, "'w.x'", '[8,24]', 'past the end');
  });

  it('an unknown dtype string', async () => {
    const h = JSON.stringify({ 'w.q': { dtype: 'Q4_K', shape: [4], data_offsets: [0, 4] } });
    const { p, opened } = await open(raw(h, new Uint8Array(4)), 'dtype.safetensors');
    const e = await expectFormatError(opened, p, "'w.q'", 'Q4_K', 'BF16');
    expect(e.hint).toBeTruthy();
  });

  it('shape × dtype size not matching data_offsets', async () => {
    const h = JSON.stringify({ 'w.s': { dtype: 'F16', shape: [3, 3], data_offsets: [0, 16] } });
    const { p, opened } = await open(raw(h, new Uint8Array(16)), 'size.safetensors');
    await expectFormatError(opened, p, "'w.s'", '18 bytes', 'span 16');
  });

  it('overlapping tensors, bad shapes and bad offsets', async () => {
    const over = JSON.stringify({
      'w.one': { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      'w.two': { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    });
    const a = await open(raw(over, new Uint8Array(16)), 'overlap.safetensors');
    await expectFormatError(a.opened, a.p, "'w.two'", 'overlap', "'w.one'");
    const shape = JSON.stringify({ 'w.neg': { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } });
    const b = await open(raw(shape, new Uint8Array(4)), 'shape.safetensors');
    await expectFormatError(b.opened, b.p, "'w.neg'", 'shape');
    const offs = JSON.stringify({ 'w.rev': { dtype: 'F32', shape: [1], data_offsets: [4, 0] } });
    const c = await open(raw(offs, new Uint8Array(4)), 'rev.safetensors');
    await expectFormatError(c.opened, c.p, "'w.rev'", 'data_offsets');
  });

  it('every proper prefix of a good file fails with a FormatError (never another error)', async () => {
    const g = good();
    for (let cut = 0; cut < g.byteLength; cut += 3) {
      await expectFormatError(SafetensorsFile.open(bytesSource(g.subarray(0, cut), 'cut.safetensors')), 'cut.safetensors');
    }
  });
});
