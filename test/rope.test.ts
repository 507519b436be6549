import { expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { ropeForward } from '../src/kernels/rope.js';
import { configFromJson, ropeInvFreq as invFreq64 } from '../src/io/config.js';
import { ropeRef } from '../src/reference/rope.js';
import { checkOp, expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 2e-5, rtol: 1e-5 };

/** inv_freq as the model computes it: from a config.json, through the config parser. */
function ropeInvFreq(o: { headDim: number; ropeTheta: number; ropeScaling?: Record<string, unknown> | null }): Float32Array {
  const cfg = configFromJson({
    model_type: 'llama', hidden_size: 4 * o.headDim, intermediate_size: 8, num_hidden_layers: 1,
    num_attention_heads: 4, vocab_size: 8, head_dim: o.headDim, rope_theta: o.ropeTheta, rope_scaling: o.ropeScaling ?? null,
  });
  return Float32Array.from(invFreq64(cfg));
}

// Meta's published Llama 3.1 `apply_scaling` (llama/model.py), written out independently of
// src/kernels/rope.ts (which follows transformers' vectorised form), in float64.
function metaApplyScaling(freqs: number[], scale: number, lo: number, hi: number, old: number): number[] {
  const lowWavelen = old / lo;
  const highWavelen = old / hi;
  return freqs.map((freq) => {
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) return freq;
    if (wavelen > lowWavelen) return freq / scale;
    const smooth = (old / wavelen - lo) / (hi - lo);
    return (1 - smooth) * (freq / scale) + smooth * freq;
  });
}
const baseFreqs = (D: number, theta: number) => Array.from({ length: D / 2 }, (_, i) => 1 / theta ** ((2 * i) / D));

describeGpu('rope', (gpu) => {
  async function rope(x: Float32Array, pos: Int32Array, inv: Float32Array, N: number, H: number, D: number, inverse = false) {
    const xb = gpu.buffer(x);
    gpu.submit((enc) => ropeForward(gpu, enc, { x: xb, pos: gpu.buffer(pos), invFreq: gpu.buffer(inv), N, H, D, inverse }));
    return gpu.readF32(xb, N * H * D);
  }

  for (const [N, H, D, theta] of [[45, 3, 64, 10000], [13, 5, 128, 1e6], [1, 2, 16, 10000], [300, 7, 64, 500000]] as const) {
    it(`forward and backward (inverse rotation) at N ${N}, H ${H}, D ${D}, theta ${theta}`, async () => {
      // Two packed samples: positions restart at 0 in the middle of the row.
      const pos = Int32Array.from({ length: N }, (_, n) => (n < 29 ? n : n - 29));
      const inv = ropeInvFreq({ headDim: D, ropeTheta: theta });
      await checkOp({
        name: `rope ${N}x${H}x${D}`,
        inputs: { x: randn(N * H * D, N + D) },
        ref: ({ x }) => ({ out: ropeRef(x, pos, inv, N, H, D) }),
        gpu: async ({ x }) => ({ out: await rope(x, pos, inv, N, H, D) }),
        backward: {
          dout: { out: randn(N * H * D, N + D + 1) },
          wrt: ['x'],
          ref: (_x, { out: dout }) => ({ dx: ropeRef(dout, pos, inv, N, H, D, true) }),
          gpu: async (_x, { out: dout }) => ({ dx: await rope(dout, pos, inv, N, H, D, true) }),
        },
        tol: TOL,
      });
    });
  }

  it('long positions (to 131071): angles of thousands of radians stay accurate', async () => {
    const [N, H, D] = [64, 1, 64];
    const pos = Int32Array.from({ length: N }, (_, n) => (n === N - 1 ? 131071 : n * 2011 + 7));
    const inv = ropeInvFreq({ headDim: D, ropeTheta: 10000 });
    const x = randn(N * H * D, 5);
    expectClose('long positions', await rope(x, pos, inv, N, H, D), ropeRef(x, pos, inv, N, H, D), { atol: 2e-5, rtol: 1e-5 });
  });

  it('inverse undoes forward; twice gives bit-identical results', async () => {
    const [N, H, D] = [45, 4, 64];
    const pos = Int32Array.from({ length: N }, (_, n) => 3 * n);
    const inv = ropeInvFreq({ headDim: D, ropeTheta: 10000 });
    const x = randn(N * H * D, 8);
    const y1 = await rope(x, pos, inv, N, H, D);
    const y2 = await rope(x, pos, inv, N, H, D);
    expect(Buffer.from(y1.buffer).equals(Buffer.from(y2.buffer))).toBe(true);
    expectClose('inverse(forward(x))', await rope(y1, pos, inv, N, H, D, true), x, { atol: 1e-5, rtol: 1e-5 });
  });
});

it('ropeInvFreq: default is 1/theta^(2i/D); rope_type default and missing agree', () => {
  for (const [D, theta] of [[64, 10000], [128, 1e6], [16, 500000]]) {
    const want = baseFreqs(D, theta);
    expectClose(`default ${D}`, ropeInvFreq({ headDim: D, ropeTheta: theta }), want, { atol: 0, rtol: 1e-7 });
    expectClose(`null ${D}`, ropeInvFreq({ headDim: D, ropeTheta: theta, ropeScaling: null }), want, { atol: 0, rtol: 1e-7 });
    expectClose(`rope_type default ${D}`, ropeInvFreq({ headDim: D, ropeTheta: theta, ropeScaling: { rope_type: 'default' } }), want, { atol: 0, rtol: 1e-7 });
  }
});

it('ropeInvFreq: llama3 scaling matches the published formula (Llama 3.2 1B and 3.1 8B settings)', () => {
  for (const [D, theta, factor, lo, hi, old] of [[64, 500000, 32, 1, 4, 8192], [128, 500000, 8, 1, 4, 8192], [16, 10000, 4, 1, 4, 64]]) {
    const got = ropeInvFreq({
      headDim: D, ropeTheta: theta,
      ropeScaling: { rope_type: 'llama3', factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old },
    });
    const want = metaApplyScaling(baseFreqs(D, theta), factor, lo, hi, old);
    expectClose(`llama3 D ${D}`, got, want, { atol: 0, rtol: 1e-7 });
    // The three bands are all exercised: some unchanged, some divided by factor, some between.
    const base = baseFreqs(D, theta);
    const kinds = new Set(want.map((w, i) => (w === base[i] ? 'high' : Math.abs(w - base[i] / factor) < 1e-12 * base[i] ? 'low' : 'mid')));
    expect(kinds.size, `bands covered at D ${D}`).toBe(3);
  }
  // Legacy key `type` is read too.
  const legacy = ropeInvFreq({ headDim: 64, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
  expectClose('legacy type', legacy, metaApplyScaling(baseFreqs(64, 500000), 32, 1, 4, 8192), { atol: 0, rtol: 1e-7 });
  expect(() => ropeInvFreq({ headDim: 64, ropeTheta: 1e4, ropeScaling: { rope_type: 'yarn', factor: 4 } })).toThrow(FormatError);
  expect(() => ropeInvFreq({ headDim: 63, ropeTheta: 1e4 })).toThrow(FormatError);
});
