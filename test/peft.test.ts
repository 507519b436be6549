// PEFT adapters: what we write is read back by an independent minimal safetensors parse (plain
// JSON header), with exactly PEFT's key names, shapes, metadata and adapter_config fields; what
// PEFT-style files hold (with or without an adapter-name segment) is read back.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { initAdapter, initLora, loadAdapter, loraFeatures, parseAdapterConfig, parsePeftKey, peftKey, planLora, readAdapter, saveAdapter } from '../src/io/peft.js';
import { SafetensorsFile, bytesSource, safetensorsBytes } from '../src/io/safetensors.js';
import { loadConfig } from '../src/io/config.js';
import { DEFAULT_LORA, LORA_MODULES, loraScale } from '../src/lora.js';

const FIX = join(__dirname, 'fixtures/models');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zpd-peft-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Independent reader: u64 length, JSON header, raw little-endian f32 data. */
function parseIndependently(buf: Buffer) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const f32 = (name: string) => {
    const [b, e] = header[name].data_offsets;
    const out = new Float32Array((e - b) / 4);
    for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(8 + n + b + 4 * i);
    return out;
  };
  return { n, header, f32 };
}

describe('PEFT adapter writing', () => {
  it('writes exactly PEFT key names, shapes, metadata and adapter_config', async () => {
    const cfg = await loadConfig(join(FIX, 'qwen3')); // q out 96 ≠ hidden 64: A/B orientation matters
    const adapter = initAdapter(cfg, { ...DEFAULT_LORA, r: 4, alpha: 8 }, 42, 'Qwen/Qwen3-tiny');
    for (const w of adapter.weights) w.b.fill(0.25); // B non-zero so that A and B are told apart by value
    const out = join(dir, 'adapter');
    await saveAdapter(out, adapter);
    expect((await readdir(out)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

    const { n, header, f32 } = parseIndependently(await readFile(join(out, 'adapter_model.safetensors')));
    expect(n % 8).toBe(0);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    const want: Record<string, number[]> = {};
    const io: Record<string, [string, number, number]> = {
      q_proj: ['self_attn', 64, 96], k_proj: ['self_attn', 64, 48], v_proj: ['self_attn', 64, 48], o_proj: ['self_attn', 96, 64],
      gate_proj: ['mlp', 64, 96], up_proj: ['mlp', 64, 96], down_proj: ['mlp', 96, 64],
    };
    for (let i = 0; i < 2; i++) {
      for (const [m, [g, inF, outF]] of Object.entries(io)) {
        want[`base_model.model.model.layers.${i}.${g}.${m}.lora_A.weight`] = [4, inF];
        want[`base_model.model.model.layers.${i}.${g}.${m}.lora_B.weight`] = [outF, 4];
      }
    }
    const got = Object.fromEntries(Object.entries(header).filter(([k]) => k !== '__metadata__').map(([k, v]) => [k, (v as { shape: number[]; dtype: string }).shape]));
    expect(got).toEqual(want);
    for (const [k, v] of Object.entries(header)) if (k !== '__metadata__') expect((v as { dtype: string }).dtype).toBe('F32');
    const w0 = adapter.weights.find((w) => w.layer === 1 && w.module === 'o_proj')!;
    expect(Array.from(f32('base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight'))).toEqual(Array.from(w0.a));
    expect(Array.from(f32('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight'))).toEqual(Array.from(w0.b));

    const ac = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(ac).toMatchObject({
      peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0, bias: 'none', use_rslora: false, use_dora: false,
      task_type: 'CAUSAL_LM', base_model_name_or_path: 'Qwen/Qwen3-tiny', fan_in_fan_out: false, inference_mode: true,
      modules_to_save: null, init_lora_weights: true,
    });
    expect(ac.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);

    const back = await loadAdapter(out, cfg);
    expect(back.config).toEqual(adapter.config);
    expect(back.weights.length).toBe(14);
    for (let i = 0; i < 14; i++) {
      expect(Array.from(back.weights[i].a)).toEqual(Array.from(adapter.weights[i].a));
      expect(Array.from(back.weights[i].b)).toEqual(Array.from(adapter.weights[i].b));
    }
  });

  it('only the chosen target modules are written', async () => {
    const cfg = await loadConfig(join(FIX, 'llama'));
    const a = initAdapter(cfg, { ...DEFAULT_LORA, targetModules: ['v_proj', 'q_proj'] }, 1);
    await saveAdapter(join(dir, 'qv'), a);
    const { header } = parseIndependently(await readFile(join(dir, 'qv/adapter_model.safetensors')));
    expect(Object.keys(header).filter((k) => k !== '__metadata__').sort()).toEqual(
      [0, 1].flatMap((i) => ['q_proj', 'v_proj'].flatMap((m) => ['A', 'B'].map((x) => `base_model.model.model.layers.${i}.self_attn.${m}.lora_${x}.weight`))).sort(),
    );
    expect(JSON.parse(await readFile(join(dir, 'qv/adapter_config.json'), 'utf8')).target_modules).toEqual(['q_proj', 'v_proj']);
  });
});

describe('PEFT adapter reading', () => {
  it('reads the fixture adapter (written by the Python script) with the values of expected.safetensors', async () => {
    const cfg = await loadConfig(join(FIX, 'llama'));
    const a = await loadAdapter(join(FIX, 'llama/lora_init'), cfg);
    expect(a.config).toMatchObject({ r: 4, alpha: 8, dropout: 0, useRslora: false });
    expect(a.weights.length).toBe(14);
    const exp = await SafetensorsFile.openPath(join(FIX, 'llama/expected.safetensors'));
    for (const w of a.weights) {
      expect(Array.from(w.a)).toEqual(Array.from(await exp.readF32(peftKey(w.layer, w.module, 'A'))));
      expect(Array.from(w.b)).toEqual(Array.from(await exp.readF32(peftKey(w.layer, w.module, 'B'))));
    }
    await exp.close();
  });

  it('accepts keys with an adapter name segment or without the base_model prefix', async () => {
    expect(parsePeftKey('base_model.model.model.layers.3.mlp.down_proj.lora_B.default.weight')).toEqual({ layer: 3, module: 'down_proj', which: 'B', adapterName: 'default' });
    expect(parsePeftKey('model.layers.0.self_attn.q_proj.lora_A.weight')).toEqual({ layer: 0, module: 'q_proj', which: 'A', adapterName: null });
    expect(parsePeftKey('base_model.model.model.layers.0.mlp.q_proj.lora_A.weight')).toBeNull();
    const cfgText = JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] });
    const bytes = safetensorsBytes([
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', dtype: 'F32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight', dtype: 'BF16', shape: [5, 2], data: new Array(10).fill(0.5) },
    ]);
    const a = await readAdapter(cfgText, await SafetensorsFile.open(bytesSource(bytes)));
    expect(a.weights).toHaveLength(1);
    expect(a.weights[0]).toMatchObject({ layer: 0, module: 'q_proj', inFeatures: 3, outFeatures: 5 });
    expect(Array.from(a.weights[0].b)).toEqual(new Array(10).fill(0.5));
  });

  it('refuses unpaired, wrongly shaped, foreign and mismatched tensors, naming them', async () => {
    const cfgText = JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'k_proj'] });
    const A = { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32' as const, shape: [2, 64], data: new Float32Array(128) };
    const B = { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', dtype: 'F32' as const, shape: [64, 2], data: new Float32Array(128) };
    const open = (ts: (typeof A)[]) => SafetensorsFile.open(bytesSource(safetensorsBytes(ts), 'ad.safetensors'));
    const fail = async (ts: (typeof A)[], ...parts: string[]) => {
      const e = await readAdapter(cfgText, await open(ts), { weightsFile: 'ad.safetensors', model: await loadConfig(join(FIX, 'llama')) }).catch((x) => x);
      expect(e).toBeInstanceOf(FormatError);
      for (const p of parts) expect(e.message).toContain(p);
    };
    await fail([A], 'ad.safetensors', `'${A.name}'`, 'lora_B');
    await fail([A, { ...B, shape: [64, 3], data: new Float32Array(192) }], `'${B.name}'`, 'r = 2');
    await fail([A, B, { ...A, name: 'base_model.model.lm_head.lora_A.weight' }], "'base_model.model.lm_head.lora_A.weight'");
    await fail([{ ...A, shape: [2, 32], data: new Float32Array(64) }, B], `'${A.name}'`, "the model's q_proj is [64 × 64]");
    await fail([{ ...A, name: A.name.replace(/q_proj/, 'v_proj') }, { ...B, name: B.name.replace(/q_proj/, 'v_proj') }], 'target_modules');
  });

  it('adapter_config: defaults, refusals and scaling', () => {
    const c = parseAdapterConfig(JSON.stringify({ peft_type: 'LORA', r: 16, lora_alpha: 32, target_modules: ['model.layers.0.self_attn.q_proj', 'v_proj'], use_rslora: true }));
    expect(c.targetModules).toEqual(['q_proj', 'v_proj']);
    expect(loraScale(c)).toBeCloseTo(32 / 4, 12);
    expect(loraScale({ r: 4, alpha: 8, useRslora: false })).toBe(2);
    expect(parseAdapterConfig(JSON.stringify({ peft_type: 'LORA', target_modules: 'all-linear' })).targetModules).toHaveLength(7);
    expect(parseAdapterConfig(JSON.stringify({ peft_type: 'LORA', target_modules: '.*(q|v)_proj' })).targetModules).toEqual(['q_proj', 'v_proj']);
    for (const [bad, key] of [
      [{ peft_type: 'IA3', target_modules: [] }, 'peft_type'],
      [{ peft_type: 'LORA', target_modules: ['q_proj'], use_dora: true }, 'use_dora'],
      [{ peft_type: 'LORA', target_modules: ['q_proj'], bias: 'all' }, 'bias'],
      [{ peft_type: 'LORA', target_modules: ['fc1'] }, 'target_modules'],
      [{ peft_type: 'LORA', target_modules: ['q_proj'], rank_pattern: { q_proj: 4 } }, 'rank_pattern'],
    ] as const) {
      expect(() => parseAdapterConfig(JSON.stringify(bad), 'x/adapter_config.json')).toThrowError(new RegExp(`x/adapter_config.json: ${key}`));
    }
  });

  it('a missing or corrupt adapter file is a FormatError naming it', async () => {
    await expect(loadAdapter(join(dir, 'nothing'))).rejects.toThrowError(/nothing\/adapter_config.json/);
    const d = join(dir, 'corrupt');
    await saveAdapter(d, initAdapter(await loadConfig(join(FIX, 'llama')), DEFAULT_LORA, 3));
    const p = join(d, 'adapter_model.safetensors');
    const b = await readFile(p);
    await writeFile(p, b.subarray(0, b.length - 100));
    await expect(loadAdapter(d)).rejects.toThrowError(/adapter_model.safetensors: tensor 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight'/);
  });
});

describe('initLora', () => {
  it('A is U(-1/sqrt(in), 1/sqrt(in)) like kaiming_uniform_(a=sqrt(5)), B is zero, and seeded', () => {
    const { a, b } = initLora([8, 400], [96, 8], 7);
    const bound = 1 / Math.sqrt(400);
    let max = 0, sum = 0, sq = 0;
    for (const v of a) {
      max = Math.max(max, Math.abs(v));
      sum += v;
      sq += v * v;
    }
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.98 * bound);
    expect(Math.abs(sum / a.length)).toBeLessThan(0.05 * bound);
    expect(sq / a.length).toBeCloseTo(bound ** 2 / 3, 4); // variance of U(-b, b)
    expect(b.every((v) => v === 0)).toBe(true);
    expect(Array.from(initLora([8, 400], [96, 8], 7).a)).toEqual(Array.from(a));
    expect(Array.from(initLora([8, 400], [96, 8], 8).a)).not.toEqual(Array.from(a));
    expect(() => initLora([8, 4], [4, 3], 1)).toThrow();
  });
});

it('planLora (both backends attach LoRA through it) pairs each adapter tensor with its layer and refuses a bad module, rank, layer or shape', async () => {
  const cfg = await loadConfig(join(import.meta.dirname, 'fixtures', 'models', 'llama'));
  const layers = Array.from({ length: cfg.numLayers }, () => ({
    lin: Object.fromEntries(LORA_MODULES.map((m) => { const f = loraFeatures(cfg, m); return [m, { inF: f.inFeatures, outF: f.outFeatures }]; })) as Record<(typeof LORA_MODULES)[number], { inF: number; outF: number }>,
  }));
  const plan = planLora(cfg, layers, { r: 4, targetModules: ['q_proj', 'down_proj'] }, 3);
  expect(plan.options.r).toBe(4);
  expect(plan.pairs.map((p) => p.name)).toEqual(Array.from({ length: cfg.numLayers }, (_, l) => [`layers.${l}.q_proj`, `layers.${l}.down_proj`]).flat());
  for (const { lin, w } of plan.pairs) expect([w.a.length, w.b.length]).toEqual([4 * lin.inF, lin.outF * 4]);
  expect(planLora(cfg, layers, {}, 3, plan.adapter).options.targetModules).toEqual(['q_proj', 'down_proj']); // the adapter's config counts
  expect(() => planLora(cfg, layers, { targetModules: ['qkv_proj' as never] })).toThrow(/LoRA target module 'qkv_proj' is not one of q_proj/);
  expect(() => planLora(cfg, layers, { r: 0 })).toThrow(/rank r must be a positive integer, got 0/);
  expect(() => planLora(cfg, layers.slice(0, 1), {}, 3, plan.adapter)).toThrow(/layer 1 q_proj.*the model has 1 layers/);
  const wide = layers.map((l) => ({ lin: { ...l.lin, down_proj: { inF: l.lin.down_proj.inF + 1, outF: l.lin.down_proj.outF } } }));
  expect(() => planLora(cfg, wide, {}, 3, plan.adapter)).toThrow(/layer 0 down_proj.*does not match the model's/);
});
