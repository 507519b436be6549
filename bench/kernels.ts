// bench/kernels — time and throughput of the kernel library's ops on this adapter: RMSNorm and
// SwiGLU (GB/s of compulsory traffic), the LoRA linear forward+backward (GFLOP/s), and the matmul
// with f16 vs f32 weights; tfjs-webgpu's figure beside ours where it has the same op (matMul;
// SwiGLU composed from tf.sigmoid and tf.mul), on the same adapter in the same run.
import { getGpu } from '../src/gpu/device.js';
import { f32ToF16Bits } from '../src/io/dtype.js';
import { loraBackward, loraForward } from '../src/kernels/lora.js';
import { matmul } from '../src/kernels/matmul.js';
import { rmsnormBackward, rmsnormForward } from '../src/kernels/rmsnorm.js';
import { swigluBackward, swigluForward } from '../src/kernels/swiglu.js';
import type { BenchOpts, BenchRow } from './main.js';
import { loadTfjs, timeGpu, timeTf } from './matmul.js';

export const title = 'kernels: time, GB/s or GFLOP/s (ours, and tfjs-webgpu on the same adapter where it has the op)';

export async function run(o: BenchOpts): Promise<BenchRow[]> {
  const gpu = await getGpu();
  const tf = await loadTfjs(gpu);
  const rows: BenchRow[] = [];
  const reps = o.quick ? 2 : 5;
  const rand = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
    return a;
  };
  const row = (op: string, shape: string, ms: number, amount: number, unit: 'GB/s' | 'GFLOP/s', tfMs = NaN, clock = '') =>
    rows.push({ op, shape, ms, rate: amount / ms / 1e6, unit, tfjs_ms: tfMs, tfjs_rate: amount / tfMs / 1e6, clock });

  // RMSNorm: forward reads inp + writes out (+ weight, rstd); backward reads inp, dout, writes dinp (+ dweight pass)
  {
    const [N, C] = o.quick ? [512, 1024] : [2048, 2048];
    const inp = gpu.buffer(rand(N * C)), weight = gpu.buffer(rand(C)), out = gpu.buffer(N * C * 4), rstd = gpu.buffer(N * 4);
    const dout = gpu.buffer(rand(N * C)), dinp = gpu.buffer(N * C * 4), dweight = gpu.buffer(C * 4);
    const f = await timeGpu(gpu, (enc) => rmsnormForward(gpu, enc, { inp, weight, out, rstd, N, C, eps: 1e-6 }), reps);
    row('rmsnorm fwd', `${N}x${C}`, f.ms, 2 * N * C * 4, 'GB/s', NaN, f.clock);
    const b = await timeGpu(gpu, (enc) => rmsnormBackward(gpu, enc, { inp, weight, rstd, dout, dinp, dweight, N, C }), reps);
    row('rmsnorm bwd (+dweight)', `${N}x${C}`, b.ms, 5 * N * C * 4, 'GB/s', NaN, b.clock);
  }
  // SwiGLU: forward reads gate, up, writes out; backward reads 3, writes 2
  {
    const [N, I] = o.quick ? [512, 2048] : [2048, 5632];
    const n = N * I;
    const gate = gpu.buffer(rand(n)), up = gpu.buffer(rand(n)), out = gpu.buffer(n * 4), dgate = gpu.buffer(n * 4), dup = gpu.buffer(n * 4);
    const f = await timeGpu(gpu, (enc) => swigluForward(gpu, enc, { gate, up, out, n }), reps);
    let tfMs = NaN;
    if (tf) {
      const g = tf.randomNormal([N, I]), u = tf.randomNormal([N, I]);
      tfMs = await timeTf(tf, () => tf.tidy(() => tf.mul(tf.mul(g, tf.sigmoid(g)), u)), reps);
      g.dispose(); u.dispose();
    }
    row('swiglu fwd (tfjs: g·sigmoid(g)·u)', `${N}x${I}`, f.ms, 3 * n * 4, 'GB/s', tfMs, f.clock);
    const b = await timeGpu(gpu, (enc) => swigluBackward(gpu, enc, { gate, up, dout: out, dgate, dup, n }), reps);
    row('swiglu bwd', `${N}x${I}`, b.ms, 5 * n * 4, 'GB/s', NaN, b.clock);
  }
  // LoRA linear, forward + backward (dx, dA, dB), dropout 0.05
  {
    const [N, inF, outF, r] = o.quick ? [256, 512, 512, 16] : [1024, 2048, 2048, 16];
    const x = gpu.buffer(rand(N * inF)), W = gpu.buffer(rand(outF * inF)), A = gpu.buffer(rand(r * inF)), B = gpu.buffer(rand(outF * r));
    const y = gpu.buffer(N * outF * 4), u = gpu.buffer(N * r * 4), dy = gpu.buffer(rand(N * outF));
    const dx = gpu.buffer(N * inF * 4), dA = gpu.buffer(r * inF * 4), dB = gpu.buffer(outF * r * 4);
    const args = { x, W, A, B, u, N, inF, outF, r, scale: 2, dropout: 0.05, seed: 1 };
    const fwdFlop = 2 * N * inF * outF + 2 * N * r * (inF + outF);
    const bwdFlop = 2 * N * inF * outF + 2 * N * r * (outF + outF + inF + inF);
    const f = await timeGpu(gpu, (enc) => loraForward(gpu, enc, { ...args, y }), reps);
    row('lora linear fwd', `${N}:${inF}->${outF} r${r}`, f.ms, fwdFlop, 'GFLOP/s', NaN, f.clock);
    const fb = await timeGpu(gpu, (enc) => {
      loraForward(gpu, enc, { ...args, y });
      loraBackward(gpu, enc, { ...args, dy, dx, dA, dB });
    }, reps);
    row('lora linear fwd+bwd', `${N}:${inF}->${outF} r${r}`, fb.ms, fwdFlop + bwdFlop, 'GFLOP/s', NaN, fb.clock);
    // the same layer untargeted (plain x·Wᵀ and dx = dy·W): what the LoRA branch costs on top
    const plain = { x, W, N, inF, outF, r, scale: 2 };
    const pb = await timeGpu(gpu, (enc) => {
      loraForward(gpu, enc, { ...plain, y });
      loraBackward(gpu, enc, { ...plain, dy, dx });
    }, reps);
    row('plain linear fwd+bwd (no LoRA)', `${N}:${inF}->${outF}`, pb.ms, 4 * N * inF * outF, 'GFLOP/s', NaN, pb.clock);
  }
  // matmul x·Wᵀ with f32 vs f16 weights, and tfjs's f32 tf.matMul
  {
    const n = o.quick ? 512 : 1024;
    const wv = rand(n * n);
    const a = gpu.buffer(rand(n * n)), w32 = gpu.buffer(wv), out = gpu.buffer(n * n * 4);
    const flop = 2 * n * n * n;
    const m32 = await timeGpu(gpu, (enc) => matmul(gpu, enc, { a, bm: w32, out, M: n, N: n, K: n, transB: true }), reps);
    let tfMs = NaN;
    if (tf) {
      const ta = tf.randomNormal([n, n]), tb = tf.randomNormal([n, n]);
      tfMs = await timeTf(tf, () => tf.matMul(ta, tb, false, true), reps);
      ta.dispose(); tb.dispose();
    }
    row('matmul NT f32 W', `${n}^3`, m32.ms, flop, 'GFLOP/s', tfMs, m32.clock);
    if (gpu.hasF16) {
      const w16 = gpu.buffer(f32ToF16Bits(wv));
      const m16 = await timeGpu(gpu, (enc) => matmul(gpu, enc, { a, bm: w16, out, M: n, N: n, K: n, transB: true, bmF16: true }), reps);
      row('matmul NT f16 W', `${n}^3`, m16.ms, flop, 'GFLOP/s', NaN, m16.clock);
    } else {
      rows.push({ op: 'matmul NT f16 W', shape: 'n/a', ms: NaN, rate: NaN, unit: 'no shader-f16', tfjs_ms: NaN, tfjs_rate: NaN, clock: '' });
    }
  }
  return rows;
}
