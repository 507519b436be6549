// The peer of bench/model.ts in @tensorflow/tfjs-backend-webgpu: the same Llama model (the same
// weights), LoRA on the same seven modules with the same initial A and B, the same batch with
// every token a target, written the way a tfjs user writes it — tf ops, its autograd
// (tf.variableGrads), global-norm clipping as torch.nn.utils.clip_grad_norm_, and tf.train.adam
// (AdamW with weight decay 0 is Adam). The first two losses are checked against ours.
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../src/io/config.js';
import { ropeInvFreq } from '../src/io/config.js';
import type { Adapter } from '../src/io/peft.js';
import type { ModelBatch } from '../src/model/llama.js';
import type { LoraModule } from '../src/lora.js';
import type { Tf } from './common.js';
import type { NamedTensor, Runner } from './model.js';


const HF: Record<LoraModule, string> = {
  q_proj: 'self_attn.q_proj', k_proj: 'self_attn.k_proj', v_proj: 'self_attn.v_proj', o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj', up_proj: 'mlp.up_proj', down_proj: 'mlp.down_proj',
};

export function prepareTfjs(
  tf: Tf, cfg: ModelConfig, weights: NamedTensor[], adapter: Adapter, scale: number, batch: ModelBatch, o: { lr: number; maxGradNorm: number },
): Runner {
  const { hiddenSize: C, numHeads: Hq, numKvHeads: Hkv, headDim: D, vocabSize: V, numLayers: L, rmsNormEps: eps } = cfg;
  const { B, T } = batch, N = B * T, G = Hq / Hkv;
  const w = new Map(weights.map((t) => [t.name, tf.tensor(t.data, t.shape)]));
  const W = (name: string) => {
    const t = w.get(name);
    if (!t) throw new Error(`tfjs peer: no weight ${name}`);
    return t;
  };
  const lora = new Map<string, { A: Variable; B: Variable }>();
  for (const x of adapter.weights)
    lora.set(`${x.layer}.${x.module}`, { A: tf.variable(tf.tensor(x.a, [adapter.config.r, x.inFeatures])), B: tf.variable(tf.tensor(x.b, [x.outFeatures, adapter.config.r])) });
  const vars = [...lora.values()].flatMap((p) => [p.A, p.B]);
  // RoPE (rotate-half): cos/sin of pos·inv_freq, (1, T, 1, D)
  const inv = ropeInvFreq(cfg);
  const ang = new Float32Array(T * D);
  for (let t = 0; t < T; t++) for (let i = 0; i < D / 2; i++) ang[t * D + i] = ang[t * D + i + D / 2] = Math.fround(t * inv[i]);
  const angle = tf.tensor(ang, [1, T, 1, D]);
  const cos = tf.cos(angle), sin = tf.sin(angle);
  angle.dispose();
  const mask = tf.tensor(Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -1e9 : 0)), [1, 1, T, T]);
  const ids = tf.tensor1d(batch.ids, 'int32');
  const onehot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(batch.targets, 'int32'), V), 'float32'));

  const rms = (x: Tensor, weight: Tensor) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), weight);
  const linear = (x: Tensor, l: number, m: LoraModule) => {
    const y = tf.matMul(x, W(`model.layers.${l}.${HF[m]}.weight`), false, true);
    const p = lora.get(`${l}.${m}`);
    return p ? tf.add(y, tf.mul(tf.matMul(tf.matMul(x, p.A, false, true), p.B, false, true), scale)) : y;
  };
  const rope = (x: Tensor, H: number) => {
    const x4 = tf.reshape(x, [B, T, H, D]);
    const [x1, x2] = tf.split(x4, 2, 3);
    return tf.add(tf.mul(x4, cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), sin));
  };
  const heads = (x: Tensor) => tf.transpose(x, [0, 2, 1, 3]); // (B, T, H, D) → (B, H, T, D)
  // kv head j serves query heads j·G … j·G + G−1 (rank-4 tiles: tfjs runs rank 5 on the CPU)
  const repeatKv = (x: Tensor) => (G === 1 ? x : tf.reshape(tf.tile(tf.reshape(x, [B * Hkv, 1, T, D]), [1, G, 1, 1]), [B, Hq, T, D]));
  const forwardLoss = (): Tensor => {
    let x: Tensor = tf.gather(W('model.embed_tokens.weight'), ids);
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}.`;
      const xn = rms(x, W(`${p}input_layernorm.weight`));
      const q = heads(rope(linear(xn, l, 'q_proj'), Hq));
      const k = repeatKv(heads(rope(linear(xn, l, 'k_proj'), Hkv)));
      const v = repeatKv(heads(tf.reshape(linear(xn, l, 'v_proj'), [B, T, Hkv, D])));
      const s = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)), mask);
      const att = tf.reshape(tf.transpose(tf.matMul(tf.softmax(s), v), [0, 2, 1, 3]), [N, Hq * D]);
      const xm = tf.add(x, linear(att, l, 'o_proj'));
      const xn2 = rms(xm, W(`${p}post_attention_layernorm.weight`));
      const gate = linear(xn2, l, 'gate_proj');
      x = tf.add(xm, linear(tf.mul(tf.mul(gate, tf.sigmoid(gate)), linear(xn2, l, 'up_proj')), l, 'down_proj'));
    }
    const h = rms(x, W('model.norm.weight'));
    const head = w.get('lm_head.weight') ?? W('model.embed_tokens.weight');
    const logits = tf.matMul(h, head, false, true);
    return tf.losses.softmaxCrossEntropy(onehot, logits) as Tensor;
  };

  const adam = tf.train.adam(o.lr, 0.9, 0.999, 1e-8);
  const step = async (): Promise<number> => {
    const { value, grads } = tf.variableGrads(forwardLoss as () => import('@tensorflow/tfjs-core').Scalar, vars);
    const names = Object.keys(grads);
    // a chain of adds, not tf.addN: tfjs-webgpu binds every addN input at once, and past the
    // device's storage-buffer limit the kernel fails validation and reads as zeros
    const norm = tf.tidy(() => tf.sqrt(names.map((n) => tf.sum(tf.square(grads[n]))).reduce((a, b) => tf.add(a, b))));
    const clipped = tf.tidy(() => {
      const coef = tf.minimum(tf.div(o.maxGradNorm, tf.add(norm, 1e-6)), 1);
      return Object.fromEntries(names.map((n) => [n, tf.mul(grads[n], coef)]));
    });
    adam.applyGradients(clipped as Parameters<typeof adam.applyGradients>[0]);
    const loss = (await value.data())[0];
    await vars[vars.length - 1].data(); // the updates have run too (ours: its read-back follows AdamW)
    tf.dispose([value, grads, clipped, norm]);
    return loss;
  };
  return {
    step,
    score: async () => {
      const l = tf.tidy(forwardLoss);
      await l.data();
      l.dispose();
    },
    dispose: () => {
      adam.dispose();
      tf.dispose([...w.values(), ...vars, cos, sin, mask, ids, onehot]);
    },
  };
}
