// bench/attention-dev/run.ts — numbered fused-attention variants (bench/attention-dev/v*.wgsl,
// same entry points and bindings as shaders/attention.wgsl), each validated against
// src/reference/attention.ts (segments + padding, GQA, KV-cache forward, head_dim 64 and 128,
// bit-identical reruns) before it is timed; prints compile time per pipeline (first dispatch,
// wall) and forward / backward ms per size.
//   npx esbuild bench/attention-dev/run.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=dist/attention-dev.js && node dist/attention-dev.js [variants, e.g. v1_base,current] [reps] [TxHqxHkvxD,…]
//   env: ROWS, TILE (default 32, 32), COMPILE_D (head_dims to time compiles at), SPLIT=1 (dq, dkv alone)
import { readFileSync } from 'node:fs';
import { getGpu } from '../../src/gpu/device.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import { attentionBackwardRef, attentionRef } from '../../src/reference/attention.js';

interface Shape { B: number; Tq: number; Tk: number; Hq: number; Hkv: number; D: number; qOffset: number; cap: number }
const ROWS = Number(process.env.ROWS ?? 32), TILE = Number(process.env.TILE ?? 32); // override: ROWS=16 TILE=8 node …

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; r[i] = s / 2 ** 32 * 2 - 1; }
  return r;
}

function params(s: Shape): ArrayBuffer {
  const buf = new ArrayBuffer(48);
  new Uint32Array(buf, 0, 8).set([s.B, s.Tq, s.Tk, s.Hq, s.Hkv, s.qOffset, s.cap, s.Hq / s.Hkv]);
  new Float32Array(buf, 32, 1)[0] = 1 / Math.sqrt(s.D);
  new Uint32Array(buf, 36, 1)[0] = s.D; // head_dim (v4+; padding before)
  return buf;
}

interface Bufs { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; seg: GPUBuffer; out: GPUBuffer; lse: GPUBuffer; dout: GPUBuffer; delta: GPUBuffer; ld: GPUBuffer; dq: GPUBuffer; dk: GPUBuffer; dv: GPUBuffer }

// Grids are the same for every variant: (ceil(T / ROWS), heads, B).
function fwd(gpu: Gpu, code: string, s: Shape, x: Bufs) {
  const pl = gpu.pipeline(code, 'attention_forward', { HEAD_DIM: s.D, ROWS, TILE });
  return (e: GPUCommandEncoder) => gpu.dispatch(e, pl, [gpu.uniform(params(s)), x.q, x.k, x.v, x.seg, x.out, x.lse], [Math.ceil(s.Tq / ROWS), s.Hq, s.B]);
}
function bwd(gpu: Gpu, code: string, s: Shape, x: Bufs) {
  const c = { HEAD_DIM: s.D, ROWS, TILE };
  const pd = gpu.pipeline(code, 'attention_delta', { HEAD_DIM: s.D, WG: 64 });
  const pq = gpu.pipeline(code, 'attention_backward_dq', c), pk = gpu.pipeline(code, 'attention_backward_dkv', c);
  const n = s.B * s.Tq * s.Hq;
  // the shipped kernel keeps lse and delta in one binding (ld), so that dkv binds 8 storage buffers
  if (code.includes('ld_w')) {
    return (e: GPUCommandEncoder) => {
      const u = gpu.uniform(params(s));
      gpu.dispatch(e, pd, [u, x.out, x.dout, x.lse, x.ld], [Math.ceil(n / 64), 1, 1]);
      gpu.dispatch(e, pq, [u, x.q, x.k, x.v, x.seg, x.ld, x.dout, x.dq], [Math.ceil(s.Tq / ROWS), s.Hq, s.B]);
      gpu.dispatch(e, pk, [u, x.q, x.k, x.v, x.seg, x.ld, x.dout, x.dk, x.dv], [Math.ceil(s.Tq / ROWS), s.Hkv, s.B]);
    };
  }
  return (e: GPUCommandEncoder) => {
    const u = gpu.uniform(params(s));
    gpu.dispatch(e, pd, [u, x.out, x.dout, x.delta], [Math.ceil(n / 64), 1, 1]);
    gpu.dispatch(e, pq, [u, x.q, x.k, x.v, x.seg, x.lse, x.dout, x.delta, x.dq], [Math.ceil(s.Tq / ROWS), s.Hq, s.B]);
    gpu.dispatch(e, pk, [u, x.q, x.k, x.v, x.seg, x.lse, x.dout, x.delta, x.dk, x.dv], [Math.ceil(s.Tq / ROWS), s.Hkv, s.B]);
  };
}

function alloc(gpu: Gpu, s: Shape, seg: Int32Array, seed = 1): { x: Bufs; h: Record<string, Float32Array> } {
  const nq = s.B * s.Tq * s.Hq * s.D, nk = s.B * s.cap * s.Hkv * s.D;
  const h = { q: randn(nq, seed), k: randn(nk, seed + 1), v: randn(nk, seed + 2), dout: randn(nq, seed + 3) };
  const nan = (n: number) => gpu.buffer(new Float32Array(n).fill(NaN));
  return {
    h,
    x: {
      q: gpu.buffer(h.q), k: gpu.buffer(h.k), v: gpu.buffer(h.v), dout: gpu.buffer(h.dout), seg: gpu.buffer(seg),
      out: nan(nq), lse: nan(s.B * s.Hq * s.Tq), delta: nan(s.B * s.Hq * s.Tq), ld: nan(2 * s.B * s.Hq * s.Tq), dq: nan(nq), dk: nan(nk), dv: nan(nk),
    },
  };
}

function cmp(name: string, got: Float32Array, ref: ArrayLike<number>, atol: number, rtol: number): string | null {
  for (let i = 0; i < ref.length; i++)
    if (!(Math.abs(got[i] - ref[i]) <= atol + rtol * Math.abs(ref[i]))) return `${name}[${i}] = ${got[i]}, expected ${ref[i]}`;
  return null;
}

async function validate(gpu: Gpu, code: string): Promise<string | null> {
  // Training shapes: two rows, packed segments then padding; GQA 4/2; T not a multiple of ROWS.
  for (const [T, D] of [[45, 64], [37, 128]]) {
    const s: Shape = { B: 2, Tq: T, Tk: T, Hq: 4, Hkv: 2, D, qOffset: 0, cap: T };
    const seg = new Int32Array(2 * T).fill(-1);
    for (let t = 0; t < T; t++) seg[t] = t < 17 ? 0 : 1; // row 0: two samples
    for (let t = 0; t < T - 6; t++) seg[T + t] = 0; // row 1: one sample, padding
    const { x, h } = alloc(gpu, s, seg);
    gpu.submit((e) => { fwd(gpu, code, s, x)(e); bwd(gpu, code, s, x)(e); });
    const ra = { q: h.q, k: h.k, v: h.v, seg, B: 2, Hq: 4, Hkv: 2, D };
    const rf = attentionRef({ ...ra, Tq: T, Tk: T });
    const rb = attentionBackwardRef({ ...ra, T, dout: h.dout });
    const got = { out: await gpu.readF32(x.out), lse: await gpu.readF32(x.lse), dq: await gpu.readF32(x.dq), dk: await gpu.readF32(x.dk), dv: await gpu.readF32(x.dv) };
    const err = cmp(`T${T} D${D} out`, got.out, rf.out, 2e-5, 1e-4) ?? cmp('lse', got.lse, rf.lse, 2e-5, 1e-4)
      ?? cmp(`T${T} D${D} dq`, got.dq, rb.dq, 5e-5, 2e-4) ?? cmp(`T${T} D${D} dk`, got.dk, rb.dk, 5e-5, 2e-4) ?? cmp(`T${T} D${D} dv`, got.dv, rb.dv, 5e-5, 2e-4);
    if (err) return err;
    // Rerun: bit-identical.
    gpu.submit((e) => { fwd(gpu, code, s, x)(e); bwd(gpu, code, s, x)(e); });
    for (const [n, b] of [['out', x.out], ['dq', x.dq], ['dk', x.dk], ['dv', x.dv]] as const) {
      const again = await gpu.readF32(b);
      if (!Buffer.from(again.buffer).equals(Buffer.from(got[n].buffer))) return `T${T} D${D} ${n}: rerun not bit-identical`;
    }
  }
  // KV-cache forward: 5 queries at positions 25..29 of a cache of capacity 40, D 64.
  {
    const s: Shape = { B: 1, Tq: 5, Tk: 30, Hq: 4, Hkv: 2, D: 64, qOffset: 25, cap: 40 };
    const seg = new Int32Array(40);
    for (let t = 0; t < 40; t++) seg[t] = t < 8 ? 0 : 1;
    const { x, h } = alloc(gpu, s, seg, 7);
    gpu.submit(fwd(gpu, code, s, x));
    const rf = attentionRef({ q: h.q, k: h.k, v: h.v, seg, B: 1, Tq: 5, Tk: 30, Hq: 4, Hkv: 2, D: 64, qOffset: 25, kvCapacity: 40 });
    const err = cmp('cache out', await gpu.readF32(x.out), rf.out, 2e-5, 1e-4) ?? cmp('cache lse', await gpu.readF32(x.lse), rf.lse, 2e-5, 1e-4);
    if (err) return err;
  }
  return null;
}

async function main() {
  const [vs = 'v1_base', rs = '2', ss = '512x16x4x128,1024x8x2x64'] = process.argv.slice(2);
  const gpu = await getGpu();
  const reps = Number(rs);
  for (const name of vs.split(',')) {
    // 'current' is the shipped kernel (the last variant that won, v4_block4_rtd, now lives there)
    const file = name === 'current' ? '../shaders/attention.wgsl' : `../bench/attention-dev/${name}.wgsl`;
    const code = readFileSync(new URL(file, import.meta.url), 'utf8');
    // Compile: each pipeline created and dispatched once on a tiny problem (wall), D 64 and 128.
    const compile: string[] = [];
    for (const D of (process.env.COMPILE_D ?? '16,64,128').split(',').map(Number)) {
      const s: Shape = { B: 1, Tq: 4, Tk: 4, Hq: 2, Hkv: 1, D, qOffset: 0, cap: 4 };
      const { x } = alloc(gpu, s, new Int32Array(4));
      let t0 = performance.now();
      gpu.submit(fwd(gpu, code, s, x)); await gpu.sync();
      const cf = (performance.now() - t0) / 1000;
      t0 = performance.now();
      gpu.submit(bwd(gpu, code, s, x)); await gpu.sync();
      compile.push(`D${D} fwd ${cf.toFixed(1)}s bwd(3 pipelines) ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    }
    const err = await validate(gpu, code);
    if (err) { console.log(`${name} WRONG: ${err} | compile ${compile.join(', ')}`); continue; }
    const line: string[] = [];
    for (const sz of ss.split(',')) {
      const [T, Hq, Hkv, D] = sz.split('x').map(Number);
      const s: Shape = { B: 1, Tq: T, Tk: T, Hq, Hkv, D, qOffset: 0, cap: T };
      const { x } = alloc(gpu, s, new Int32Array(T));
      const best = async (fn: (e: GPUCommandEncoder) => void) => {
        let ms = (await gpu.time(fn)).ms;
        for (let r = 0; r < reps; r++) ms = Math.min(ms, (await gpu.time(fn)).ms);
        return ms;
      };
      const tf = await best(fwd(gpu, code, s, x));
      const tb = await best(bwd(gpu, code, s, x));
      let split = '';
      if (process.env.SPLIT) {
        // Each backward kernel alone (after one full backward, so delta is in place).
        const c = { HEAD_DIM: D, ROWS, TILE }, u = gpu.uniform(params(s));
        const pq = gpu.pipeline(code, 'attention_backward_dq', c), pk = gpu.pipeline(code, 'attention_backward_dkv', c);
        const tq = await best((e) => gpu.dispatch(e, pq, [u, x.q, x.k, x.v, x.seg, x.lse, x.dout, x.delta, x.dq], [Math.ceil(T / ROWS), Hq, 1]));
        const tk = await best((e) => gpu.dispatch(e, pk, [u, x.q, x.k, x.v, x.seg, x.lse, x.dout, x.delta, x.dk, x.dv], [Math.ceil(T / ROWS), Hkv, 1]));
        split = ` (dq ${tq.toFixed(0)}, dkv ${tk.toFixed(0)})`;
      }
      line.push(`T${T} ${Hq}/${Hkv} D${D}: fwd ${tf.toFixed(0)} bwd ${tb.toFixed(0)}${split} ms`);
      for (const b of Object.values(x)) b.destroy();
    }
    console.log(`${name} valid | compile ${compile.join(', ')} | ${line.join(' | ')}`);
  }
  gpu.destroy();
}
await main();
