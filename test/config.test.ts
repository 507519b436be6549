// config.json parsing for each model type, the refusals, and the tensor checker.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { SafetensorsFile, bytesSource, openCheckpoint, safetensorsBytes, type TensorToWrite } from '../src/io/safetensors.js';
import { MODEL_TYPES, checkTensors, expectedTensors, loadConfig, parseConfig, ropeInvFreq } from '../src/io/config.js';
import { expectClose } from './helpers/check.js';

const FIX = join(__dirname, 'fixtures/models');
const json = async (p: string) => JSON.parse(await readFile(p, 'utf8'));

function expectFormat(f: () => unknown, ...parts: string[]): FormatError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  for (const s of parts) expect((err as Error).message).toContain(s);
  return err as FormatError;
}

describe('config.json', () => {
  it('llama: GQA, untied head, llama3 rope scaling', async () => {
    const c = await loadConfig(join(FIX, 'llama'));
    expect(c).toMatchObject({
      modelType: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16,
      vocabSize: 272, rmsNormEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, attentionBias: false, oProjBias: false,
      qkNorm: false, maxPositionEmbeddings: 256, bosTokenId: 269, eosTokenId: 270, torchDtype: 'float32',
    });
    expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 });
  });

  it('qwen2: q/k/v bias (not o), tied embeddings, head_dim from hidden/heads', async () => {
    const c = await loadConfig(join(FIX, 'qwen2'));
    expect(c).toMatchObject({ modelType: 'qwen2', headDim: 16, attentionBias: true, oProjBias: false, tieWordEmbeddings: true, qkNorm: false, ropeScaling: null, bosTokenId: null });
    const names = expectedTensors(c).map((t) => t.name);
    expect(names).toContain('model.layers.1.self_attn.k_proj.bias');
    expect(names).not.toContain('model.layers.1.self_attn.o_proj.bias');
    expect(names).not.toContain('lm_head.weight');
  });

  it('qwen3: q/k norm, head_dim 24 ≠ hidden/heads, a list of eos ids', async () => {
    const c = await loadConfig(join(FIX, 'qwen3'));
    expect(c).toMatchObject({ modelType: 'qwen3', headDim: 24, qkNorm: true, attentionBias: false, eosTokenId: [299, 297] });
    const t = expectedTensors(c);
    expect(t.find((x) => x.name === 'model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([96, 64]);
    expect(t.find((x) => x.name === 'model.layers.0.self_attn.o_proj.weight')!.shape).toEqual([64, 96]);
    expect(t.find((x) => x.name === 'model.layers.0.self_attn.k_norm.weight')!.shape).toEqual([24]);
  });

  it('mistral, and llama with attention_bias (bias on q, k, v and o)', () => {
    const base = { hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 10 };
    const m = parseConfig(JSON.stringify({ ...base, model_type: 'mistral', sliding_window: 4096 }));
    expect(m).toMatchObject({ modelType: 'mistral', numKvHeads: 4, rmsNormEps: 1e-6, ropeTheta: 10000, slidingWindow: 4096, attentionBias: false });
    const l = parseConfig(JSON.stringify({ ...base, model_type: 'llama', attention_bias: true }));
    expect(l.oProjBias).toBe(true);
    expect(expectedTensors(l).map((t) => t.name)).toContain('model.layers.0.self_attn.o_proj.bias');
  });

  it('transformers 5 rope_parameters (theta and llama3 scaling in one object)', () => {
    const base = { model_type: 'llama', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 10 };
    const a = parseConfig(JSON.stringify({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 500000 } }));
    expect([a.ropeTheta, a.ropeScaling]).toEqual([500000, null]);
    const b = parseConfig(JSON.stringify({ ...base, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }));
    expect(b.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expectFormat(() => parseConfig(JSON.stringify({ ...base, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } })), 'rope_parameters.rope_type', 'yarn');
  });

  it('refuses an unknown model_type with the list of supported ones', () => {
    const e = expectFormat(() => parseConfig(JSON.stringify({ model_type: 'gpt2', hidden_size: 8 }), '/m/config.json'), '/m/config.json', 'model_type', '"gpt2"');
    for (const t of MODEL_TYPES) expect(e.message).toContain(t);
    expectFormat(() => parseConfig('{}'), 'config.json', 'model_type', 'missing');
  });

  it('names the missing or bad key', () => {
    const good = { model_type: 'llama', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 10 };
    for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size']) {
      const j: Record<string, unknown> = { ...good };
      delete j[k];
      expectFormat(() => parseConfig(JSON.stringify(j), 'cfg.json'), 'cfg.json', k, 'missing');
    }
    expectFormat(() => parseConfig(JSON.stringify({ ...good, num_key_value_heads: 3 })), 'num_key_value_heads', 'divide');
    expectFormat(() => parseConfig(JSON.stringify({ ...good, hidden_size: 66 })), 'head_dim');
    expectFormat(() => parseConfig(JSON.stringify({ ...good, hidden_act: 'gelu' })), 'hidden_act', 'gelu');
    expectFormat(() => parseConfig(JSON.stringify({ ...good, rope_scaling: { rope_type: 'yarn', factor: 4 } })), 'rope_scaling', 'yarn');
    expectFormat(() => parseConfig(JSON.stringify({ ...good, rope_scaling: { rope_type: 'llama3', factor: 8 } })), 'rope_scaling.low_freq_factor');
    expectFormat(() => parseConfig('{"model_type": '), 'config.json', 'JSON');
  });

  it('RoPE inverse frequencies match the PyTorch fixtures (llama3 scaling included)', async () => {
    for (const m of ['llama', 'qwen2', 'qwen3']) {
      const c = await loadConfig(join(FIX, m));
      const exp = await SafetensorsFile.openPath(join(FIX, m, 'expected.safetensors'));
      expectClose(`${m} inv_freq`, ropeInvFreq(c), await exp.readF64('inv_freq'), { atol: 0, rtol: 1e-14 });
      await exp.close();
    }
    // the llama fixture's frequencies span all three bands (unscaled, smoothed, divided by factor)
    const c = await loadConfig(join(FIX, 'llama'));
    const plain = ropeInvFreq({ ...c, ropeScaling: null });
    const s = ropeInvFreq(c);
    const kinds = new Set(Array.from(s, (v, i) => (v === plain[i] ? 'same' : Math.abs(v - plain[i] / 8) < 1e-18 ? 'div' : 'smooth')));
    expect([...kinds].sort()).toEqual(['div', 'same', 'smooth']);
  });
});

describe('checkTensors', () => {
  it('accepts every fixture checkpoint, listing nothing unused', async () => {
    for (const m of ['llama', 'qwen2', 'qwen3']) {
      const c = await loadConfig(join(FIX, m));
      const st = await openCheckpoint(join(FIX, m));
      expect(checkTensors(st, c).unused, m).toEqual([]);
      expect(st.names().length).toBe(expectedTensors(c).length);
      await st.close();
    }
  });

  it('names the missing tensor, the wrongly shaped one, and lists extras as unused', async () => {
    const c = parseConfig(JSON.stringify((await json(join(FIX, 'qwen2/config.json')))));
    const all: TensorToWrite[] = expectedTensors(c).map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: new Float32Array(t.shape.reduce((a, b) => a * b, 1)) }));
    const open = (ts: typeof all) => SafetensorsFile.open(bytesSource(safetensorsBytes(ts), 'w.safetensors'));

    const missing = await open(all.filter((t) => t.name !== 'model.layers.1.self_attn.v_proj.bias'));
    expectFormat(() => checkTensors(missing, c, 'w.safetensors'), 'w.safetensors', "'model.layers.1.self_attn.v_proj.bias'", 'missing', '[32]');

    const wrong = await open(all.map((t) => (t.name === 'model.layers.0.mlp.up_proj.weight' ? { ...t, shape: [64, 96] } : t)));
    expectFormat(() => checkTensors(wrong, c), 'w.safetensors', "'model.layers.0.mlp.up_proj.weight'", '[64,96]', '[96,64]');

    const extra = await open([...all, { name: 'lm_head.weight', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    expect(checkTensors(extra, c).unused).toEqual(['lm_head.weight']);

    const ints = await open(all.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'I32' as const, data: new Int32Array(64) } : t)));
    expectFormat(() => checkTensors(ints, c), "'model.norm.weight'", 'I32');
  });
});
