// The LoRA step, the scoring pass and the step's memory for one stated config: zpd-wgpu, then
// tfjs-webgpu on the same adapter with the same weights, LoRA initialisation and batch, then
// PyTorch (on the CPU; on CUDA with --torch cuda, in float32 and bfloat16 autocast).
import { configFromJson } from '../src/io/config.js';
import { loraScale } from '../src/lora.js';
import { DEFAULT_ADAMW } from '../src/train/backend.js';
import { figure, loadTfjs, type BenchContext, type Figure, type Figures } from './common.js';
import { fullBatch, LR, prepareOurs, randomWeights, type Runner, type StepSpec } from './model.js';
import { prepareTfjs } from './tfjs-model.js';
import { findTorch, runTorch } from './torch.js';
import { wasmStepRunner, type WasmStepRunner } from '../src/wasm/bench.js';


function describe(spec: StepSpec): string {
  const c = spec.config as Record<string, number>;
  return `LoRA r${spec.r} (q,k,v,o,gate,up,down) step, Llama hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ` +
    `heads ${c.num_attention_heads}/${c.num_key_value_heads}×${c.head_dim}, intermediate ${c.intermediate_size}, vocab ${c.vocab_size}, ` +
    `batch ${spec.B}×${spec.T}, every token a target, AdamW + clip 1.0, f32`;
}

const median = (a: number[]) => {
  const b = [...a].sort((x, y) => x - y);
  return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
};

/**
 * Time `rounds` calls of `what` on every runner, interleaved call by call (the order alternating
 * from round to round) after one warm-up call each: on a busy machine the load then falls on all
 * sides alike. Returns each runner's median milliseconds and the results of its first two calls.
 */
async function interleaved<T>(runners: { name: string; call: () => Promise<T> }[], rounds: number, say: (s: string) => void): Promise<{ ms: number; first: T[] }[]> {
  const out = runners.map(() => ({ times: [] as number[], first: [] as T[] }));
  for (const [i, r] of runners.entries()) {
    say(`${r.name}, warm-up`);
    out[i].first.push(await r.call());
  }
  for (let k = 0; k < rounds; k++) {
    const order = [...runners.keys()];
    if (k % 2) order.reverse();
    for (const i of order) {
      say(`${runners[i].name} ${k + 1}/${rounds}`);
      const t0 = performance.now();
      const v = await runners[i].call();
      out[i].times.push(performance.now() - t0);
      if (k === 0) out[i].first.push(v);
    }
  }
  return out.map((o) => ({ ms: median(o.times), first: o.first }));
}

export async function stepFigures(ctx: BenchContext, figs: Figures, spec: StepSpec): Promise<void> {
  const { gpu } = ctx;
  const cfg = configFromJson(spec.config);
  const tokens = spec.B * spec.T;
  const weights = randomWeights(cfg);
  const batch = fullBatch(spec.B, spec.T, cfg.vocabSize);
  const rate = (ms: number) => tokens / (ms / 1000);
  ctx.progress(`${spec.name}: building the model`);
  const ours = await prepareOurs(gpu, spec, weights, batch);
  const { tf, why } = await loadTfjs(gpu);
  let peer: Runner | null = null, note = why;
  if (tf && !why) {
    try {
      peer = prepareTfjs(tf, cfg, weights, ours.adapter, loraScale({ r: spec.r, alpha: spec.alpha, useRslora: false }), batch, { lr: LR, maxGradNorm: DEFAULT_ADAMW.maxGradNorm });
    } catch (e) {
      note = `tfjs-webgpu failed: ${(e as Error).message}`;
    }
  }
  // the wasm backend (the CPU) on the same weights, LoRA initialisation and batch: a column beside the adapter's
  let wasm: WasmStepRunner | null = null, wasmNote = '';
  if (ctx.wasm) {
    ctx.progress(`${spec.name}: building the model on the wasm backend`);
    try {
      wasm = await wasmStepRunner(spec, weights, batch, { adapter: ours.adapter, opt: { ...DEFAULT_ADAMW, lr: LR } });
    } catch (e) {
      wasmNote = `the wasm backend failed: ${(e as Error).message}`;
    }
  }
  const sides = [{ name: `zpd-wgpu ${spec.name} LoRA step`, call: ours.step }];
  if (wasm) sides.push({ name: `zpd-wgpu wasm ${spec.name} LoRA step`, call: wasm.step });
  if (peer) sides.push({ name: `tfjs-webgpu ${spec.name} LoRA step`, call: peer.step });
  let steps: { ms: number; first: number[] }[] = [], check: Figure['check'];
  try {
    steps = await interleaved(sides, spec.steps, ctx.progress);
  } catch (e) {
    if (!peer) throw e;
    note = `tfjs-webgpu failed: ${(e as Error).message}`;
    peer = null;
    steps = await interleaved(sides.slice(0, wasm ? 2 : 1), spec.steps, ctx.progress);
  }
  const peak = ours.peak();
  const scoreSides = [{ name: `zpd-wgpu ${spec.name} scoring pass`, call: ours.score }];
  if (wasm) scoreSides.push({ name: `zpd-wgpu wasm ${spec.name} scoring pass`, call: async () => wasm.score() });
  if (peer) scoreSides.push({ name: `tfjs-webgpu ${spec.name} scoring pass`, call: peer.score });
  const scores = await interleaved(scoreSides, spec.steps, ctx.progress);
  const wasmInfo = wasm ? `${wasm.kernels.threads} threads, ${wasm.kernels.isa}` : '';
  await ours.dispose();
  await peer?.dispose();
  wasm?.dispose();
  const [o, w] = wasm ? steps.slice(0, 2) : [steps[0], null];
  const t = steps[wasm ? 2 : 1];
  const [so, sw] = wasm ? scores.slice(0, 2) : [scores[0], null];
  const st = scores[wasm ? 2 : 1];
  if (peer && t) {
    const d = Math.max(...t.first.map((l, i) => Math.abs(l - o.first[i])));
    check = { what: 'losses of the first two steps (same weights, LoRA initialisation, batch)', maxAbsDiff: d };
    note = `median of ${spec.steps} steps each, interleaved step by step; ms/step ours ${o.ms.toFixed(0)}, tfjs ${t.ms.toFixed(0)}; ` +
      `losses of steps 1, 2: ours ${o.first.map((l) => l.toFixed(5)).join(', ')}, tfjs ${t.first.map((l) => l.toFixed(5)).join(', ')} (max |diff| ${d.toExponential(1)})`;
  }
  const key = spec.name;
  figs[`step.${key}`] = figure(describe(spec), rate(o.ms), 'tokens/s', 'tfjs-webgpu (same step: its autograd + Adam)', t ? rate(t.ms) : null, note);
  if (check) figs[`step.${key}`].check = check;
  figs[`score.${key}`] = figure(`scoring pass (forward + per-token NLL, read back) of the same model and batch`, rate(so.ms), 'tokens/s', 'tfjs-webgpu forward + cross-entropy', st ? rate(st.ms) : null,
    st ? `median of ${spec.steps} passes each, interleaved; ms ours ${so.ms.toFixed(0)}, tfjs ${st.ms.toFixed(0)}` : note);
  if (ctx.wasm) {
    const d = w ? Math.max(...w.first.map((l, i) => Math.abs(l - o.first[i]))) : NaN;
    figs[`step.${key}.wasm`] = figure(`${describe(spec)} — on the wasm backend (the CPU), beside the WebGPU backend on this adapter`, w ? rate(w.ms) : NaN, 'tokens/s',
      'zpd-wgpu webgpu on this adapter', w ? rate(o.ms) : null,
      w ? `wasm ${wasmInfo}; median of ${spec.steps} steps each, interleaved with the WebGPU and tfjs steps; ms/step wasm ${w.ms.toFixed(0)}, webgpu ${o.ms.toFixed(0)}; losses of steps 1, 2: wasm ${w.first.map((l) => l.toFixed(5)).join(', ')} (max |diff| to webgpu ${d.toExponential(1)})` : wasmNote);
    if (w) figs[`step.${key}.wasm`].check = { what: 'losses of the first two steps, wasm vs webgpu (same weights, LoRA initialisation, batch)', maxAbsDiff: d };
    figs[`score.${key}.wasm`] = figure('the scoring pass on the wasm backend, beside the WebGPU backend on this adapter', sw ? rate(sw.ms) : NaN, 'tokens/s',
      'zpd-wgpu webgpu on this adapter', sw ? rate(so.ms) : null, sw ? `median of ${spec.steps} passes each, interleaved; ms wasm ${sw.ms.toFixed(0)}, webgpu ${so.ms.toFixed(0)}` : wasmNote);
  }
  figs[`memory.${key}`] = figure(
    `peak GPU memory of the LoRA step / its analytical need (weights, LoRA + grads + AdamW moments, saved activations)`,
    peak / ours.need, '× need', null, null, `peak ${(peak / 2 ** 20).toFixed(1)} MiB, need ${(ours.need / 2 ** 20).toFixed(1)} MiB`,
  );
  if (ctx.torch === 'off') return;
  const dev = ctx.torch;
  ctx.progress(`PyTorch (${dev}): looking for python3 with torch`);
  const { python, why: noTorch } = await findTorch(dev);
  const dtypes = dev === 'cuda' ? (['float32', 'bfloat16'] as const) : (['float32'] as const);
  for (const dtype of dtypes) {
    const name = `step.${key}.pytorch-${dev}${dtype === 'float32' ? '' : '-bf16'}`;
    let r = null, n = noTorch;
    if (python) {
      ctx.progress(`PyTorch (${dev}, ${dtype}): ${spec.name} LoRA step`);
      try {
        r = await runTorch(python, spec, { device: dev, dtype, lr: LR, maxGradNorm: DEFAULT_ADAMW.maxGradNorm });
        n = `torch ${r.torch} on ${r.device}${r.threads ? `, ${r.threads} threads` : ''}, ${r.dtype}, attention ${r.attention}, eager, mean of ${spec.steps} steps right after ours; ms/step ours ${o.ms.toFixed(0)}, torch ${r.stepMs.toFixed(0)}; torch's f32 1024³ matmul ${r.matmulGflops.toFixed(1)} GFLOP/s`;
      } catch (e) {
        n = `PyTorch failed: ${String((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').slice(-3).join(' | ')}`;
      }
    }
    figs[name] = figure(describe(spec), rate(o.ms), 'tokens/s', `PyTorch ${dev} eager ${dtype}`, r && rate(r.stepMs), n);
    if (dtype === 'float32') {
      const sn = r && `torch ${r.torch} on ${r.device}${r.threads ? `, ${r.threads} threads` : ''}, forward + cross-entropy under no_grad, mean of ${spec.steps} passes; ms torch ${r.scoreMs.toFixed(0)}`;
      figs[`score.${key}.pytorch-${dev}`] = figure('the scoring pass (forward + per-token NLL) of the same model and batch', rate(so.ms), 'tokens/s', `PyTorch ${dev} eager float32`, r && rate(r.scoreMs), sn ? `ms ours ${so.ms.toFixed(0)}; ${sn}` : n);
      if (sw && dev === 'cpu') figs[`score.${key}.wasm.pytorch-cpu`] = figure('the scoring pass on the wasm backend (the CPU), beside PyTorch on the same CPU', rate(sw.ms), 'tokens/s', 'PyTorch cpu eager float32', r && rate(r.scoreMs), sn ? `ms wasm ${sw.ms.toFixed(0)}; ${sn}` : n);
    }
    if (w && dev === 'cpu') figs[`step.${key}.wasm.pytorch-cpu`] = figure(`${describe(spec)} — on the wasm backend (the CPU), beside PyTorch on the same CPU`, rate(w.ms), 'tokens/s', `PyTorch cpu eager ${dtype}`, r && rate(r.stepMs), n && `wasm ${wasmInfo}, ms/step ${w.ms.toFixed(0)}; ${n}`);
  }
}
