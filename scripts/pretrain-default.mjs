#!/usr/bin/env node
// Pretrain the embedded default model from scratch with zpd-wgpu's own full fine-tuning mode:
//   1. the corpus: the King James Bible from Debian's bible-kjv (scripts/default-corpus.mjs),
//      one verse per line as "chapter:verse text", every 50th verse held out;
//   2. the tokenizer: byte-level BPE learned on the training verses (scripts/train-tokenizer.mjs);
//   3. a random Llama-architecture model (HF-style init: normal(0, 0.02), norms 1), tied embeddings;
//   4. `zpd-wgpu train --full` on the verses ({"text"} records: every token is a target), random
//      order, AdamW, warm-up + cosine;
//   5. the result, a normal Hugging Face folder, into --dest (default: default/model) with a README
//      saying how it was made, how long it took on what, and the held-out perplexity.
//
//   npm run pretrain-default [-- --steps N] [--hidden C --layers L …] [--dest DIR] [--resume]
//
// The work folder (.cache/pretrain by default) keeps the checkpoint: after an interruption, run
// the same command with --resume; --finish-only redoes step 5 from a finished run. On a real GPU,
// pass a bigger --steps / --hidden: same script, same result format.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureCorpus } from './default-corpus.mjs';
import { trainTokenizer } from './train-tokenizer.mjs';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const { values: v } = parseArgs({
  options: {
    steps: { type: 'string', default: '800' },
    'batch-size': { type: 'string', default: '16' },
    'seq-len': { type: 'string', default: '128' },
    lr: { type: 'string', default: '3e-3' },
    hidden: { type: 'string', default: '128' },
    intermediate: { type: 'string', default: '384' },
    layers: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    'kv-heads': { type: 'string', default: '2' },
    vocab: { type: 'string', default: '2048' },
    seed: { type: 'string', default: '1' },
    work: { type: 'string', default: '.cache/pretrain' },
    dest: { type: 'string', default: 'default/model' },
    resume: { type: 'boolean', default: false },
    'finish-only': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (v.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 17).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const int = (k) => {
  const x = Number(v[k]);
  if (!Number.isInteger(x) || x <= 0) throw new Error(`--${k} must be a positive integer`);
  return x;
};
const work = resolve(v.work), initDir = join(work, 'init'), runDir = join(work, 'run'), dest = resolve(v.dest);
const t0 = Date.now();

// 1. corpus → {"text"} records
const corpus = await ensureCorpus({ out: join(work, 'corpus'), log: console.log });
mkdirSync(initDir, { recursive: true });
const toJsonl = (file, out) => writeFileSync(out, readFileSync(file, 'utf8').split('\n').filter(Boolean).map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
const trainJsonl = join(work, 'train.jsonl'), heldoutJsonl = join(work, 'heldout.jsonl');
toJsonl(corpus.train, trainJsonl);
toJsonl(corpus.heldout, heldoutJsonl);

// 2. tokenizer
trainTokenizer({ corpus: corpus.train, vocabSize: int('vocab'), out: initDir, log: console.log });
const tokCfg = JSON.parse(readFileSync(join(initDir, 'tokenizer_config.json'), 'utf8'));
const tokJson = JSON.parse(readFileSync(join(initDir, 'tokenizer.json'), 'utf8'));
const idOf = (s) => tokJson.added_tokens.find((t) => t.content === s).id;

// 3. config and random weights
const C = int('hidden'), I = int('intermediate'), L = int('layers'), H = int('heads'), KV = int('kv-heads'), V = int('vocab');
if (C % H || H % KV) throw new Error('--hidden must be a multiple of --heads, and --heads of --kv-heads');
const D = C / H;
const config = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: C, intermediate_size: I, num_hidden_layers: L,
  num_attention_heads: H, num_key_value_heads: KV, head_dim: D, vocab_size: V, hidden_act: 'silu', rms_norm_eps: 1e-5,
  rope_theta: 10000.0, rope_scaling: null, max_position_embeddings: tokCfg.model_max_length, tie_word_embeddings: true,
  attention_bias: false, mlp_bias: false, initializer_range: 0.02,
  bos_token_id: idOf(tokCfg.bos_token), eos_token_id: [idOf(tokCfg.eos_token), idOf('<|im_end|>')], pad_token_id: idOf(tokCfg.pad_token),
  torch_dtype: 'float32', transformers_version: '4.46.0',
};
writeFileSync(join(initDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
const zpd = await import(join(root, 'dist', 'node', 'index.js'));
let params = 0;
{
  const rng = new zpd.Rng(Number(v.seed));
  const normal = (n, std) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(rng.next(), 1e-12), w = rng.next(), r = std * Math.sqrt(-2 * Math.log(u));
      a[i] = r * Math.cos(2 * Math.PI * w);
      if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * w);
    }
    return a;
  };
  const tensors = zpd.expectedTensors(zpd.configFromJson(config)).map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    return { name: t.name, dtype: 'F32', shape: t.shape, data: t.name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : normal(n, 0.02) };
  });
  await zpd.writeSafetensors(join(initDir, 'model.safetensors'), tensors, { format: 'pt' });
  params = tensors.reduce((s, t) => s + t.data.length, 0);
  console.log(`model: llama, hidden ${C}, ${L} layers, ${H} heads (${KV} kv) of ${D}, intermediate ${I}, vocab ${V}, tied: ${(params / 1e6).toFixed(2)} M parameters`);
}

// 4. full fine-tuning from the random start
const steps = int('steps');
const gpu = await zpd.getGpu();
let last = 0;
const summary = v['finish-only'] ? JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).summary : await zpd.train({
  model: initDir, data: trainJsonl, evalData: heldoutJsonl, full: true, curriculum: 'random', steps,
  batchSize: int('batch-size'), seqLen: int('seq-len'), lr: Number(v.lr), warmup: 0.02, schedule: 'cosine', minLrRatio: 0.1,
  weightDecay: 0.1, beta2: 0.95, maxGradNorm: 1, seed: Number(v.seed), evalEvery: Math.max(1, Math.round(steps / 4)), evalSamples: 100_000,
  saveEvery: 100, out: runDir, resume: v.resume, overwrite: !v.resume,
}, {
  gpu,
  onProgress: (e) => {
    if (e.type === 'eval') console.log(`step ${e.step}: held-out loss ${e.loss.toFixed(4)}, ppl ${e.ppl.toFixed(2)}`);
    if (e.type === 'step' && (Date.now() - last > 15_000 || e.step === e.steps)) {
      last = Date.now();
      console.log(`step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} | ${e.tokensPerSecond.toFixed(0)} tok/s | ETA ${Math.round(e.etaSeconds / 60)} min`);
    }
  },
});
const minutes = v['finish-only'] ? summary.seconds.total / 60 : (Date.now() - t0) / 60_000;

// 5. the Hugging Face folder, weights stored as float16 (half the size; frozen weights stay f16
// on GPUs with shader-f16, and f16 matmuls are the faster ones there)
mkdirSync(dest, { recursive: true });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(runDir, f), join(dest, f));
writeFileSync(join(dest, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')), torch_dtype: 'float16' }, null, 2) + '\n');
{
  const st = await zpd.SafetensorsFile.openPath(join(runDir, 'model.safetensors'));
  const half = [];
  for (const n of st.names()) half.push({ name: n, dtype: 'F16', shape: st.info(n).shape, data: zpd.f32ToF16Bits(await st.readF32(n)) });
  await st.close();
  await zpd.writeSafetensors(join(dest, 'model.safetensors'), half, { format: 'pt' });
}
writeFileSync(join(dest, 'generation_config.json'), JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, pad_token_id: config.pad_token_id }, null, 2) + '\n');
const stored = await zpd.evaluateFile({ model: dest, data: heldoutJsonl, seqLen: int('seq-len') }, gpu);
const a = summary.after, b = summary.before;
const readme = `# The embedded default model

A tiny Llama-architecture model pretrained from scratch by zpd-wgpu's own full fine-tuning mode
(\`npm run pretrain-default\`, scripts/pretrain-default.mjs), so that \`npx zpd-wgpu train\` has a
real model to fine-tune without a download. A normal Hugging Face folder: config.json,
model.safetensors (float16), tokenizer.json, tokenizer_config.json (ChatML chat_template),
generation_config.json.

| | |
|---|---|
| architecture | llama: hidden ${C}, ${L} layers, ${H} attention heads (${KV} key/value heads) of ${D}, SwiGLU ${I}, RoPE θ 10000, tied embeddings |
| parameters | ${(params / 1e6).toFixed(2)} M (${params}) |
| tokenizer | byte-level BPE, ${V} tokens (256 bytes, ${V - 261} merges learned on the training verses, 5 special: <\\|bos\\|> <\\|eos\\|> <\\|pad\\|> <\\|im_start\\|> <\\|im_end\\|>); Qwen2 pre-tokenizer, so every digit is its own token |
| corpus | the King James Bible (public domain) from Debian's bible-kjv: ${corpus.trainVerses} verses (${corpus.trainBytes} bytes) for training, every 50th verse (${corpus.heldoutVerses}) held out; each verse as "chapter:verse text" |
| training | ${summary.steps} steps of ${v['batch-size']} verses (one per row, at most ${v['seq-len']} tokens), random order, AdamW lr ${v.lr} (β 0.9/0.95, weight decay 0.1), 2% warm-up, cosine to 10%, clip 1, seed ${v.seed} |
| held-out | loss ${a?.loss.toFixed(4)} (perplexity ${a?.ppl.toFixed(2)}, token accuracy ${(100 * (a?.accuracy ?? NaN)).toFixed(1)}%) on the ${corpus.heldoutVerses} held-out verses at the end of training (float32); as stored (float16) ${stored.loss.toFixed(4)} (perplexity ${stored.ppl.toFixed(2)}); at the random start ${b?.loss.toFixed(4)} (perplexity ${b?.ppl.toFixed(1)}) |
| time | ${minutes.toFixed(1)} minutes in all (training ${(summary.seconds.train / 60).toFixed(1)}, evaluation ${(summary.seconds.eval / 60).toFixed(1)}) on ${gpu.info.description || gpu.info.device || 'an unnamed adapter'} (${gpu.info.vendor || '?'}, ${gpu.info.backend}), ${new Date().toISOString().slice(0, 10)} |

Reproduce: \`npm run pretrain-default -- --steps ${steps}\` (the same seed gives the same weights on the
same adapter; on a faster GPU, raise --steps and the sizes).
`;
writeFileSync(join(dest, 'README.md'), readme);
console.log(readme);
if (!existsSync(join(dest, 'model.safetensors'))) process.exit(1);
