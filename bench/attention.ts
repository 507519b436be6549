// The runtime's attention (src/kernels/attention.ts) against the unfused path, in the same run
// on the same adapter: S = scale·Q·Kᵀ with the matmul kernel into a T×T buffer per head, a
// causal softmax shader, O = P·V; backward dP = dO·Vᵀ, dV = Pᵀ·dO, dS = P⊙(dP − rowsum(P⊙dP)),
// dQ = scale·dS·K, dK = scale·dSᵀ·Q. The unfused path gets its inputs already in the
// head-major layout it needs, (B, Hkv, G, T, D) — no permutes are timed, which flatters it.
// GQA needs no copies there: one matmul batch per kv head, with its G query heads stacked as
// G·T rows. GFLOP/s count the causal work only (half of each T×T product) for both paths,
// so the unfused path, which computes full squares, is charged for what it wastes.
// The unfused path is validated against the fused one at the first size before timing.
import type { Gpu } from '../src/gpu/gpu.js';
import { attentionBackward, attentionPath, attentionForward } from '../src/kernels/attention.js';
import { matmul } from '../src/kernels/matmul.js';
import { bestOf, clockOf, figure, gpuTimer, type BenchContext, type Figures } from './common.js';

// Row softmax with the causal mask, and its backward, over S (batch, G·T, T): one workgroup per
// row, fixed-order tree reductions. Row r holds query i = r mod T.
const SOFTMAX = /* wgsl */ `
override WG: u32 = 64u;
struct Params { rows: u32, T: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;   // S in, P out
@group(0) @binding(1) var<storage, read> pr: array<f32>;        // backward: P
@group(0) @binding(2) var<storage, read_write> dp: array<f32>;  // backward: dP in, dS out
var<workgroup> red: array<f32, WG>;
fn reduce(lid: u32, v: f32, is_max: bool) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] = select(red[lid] + red[lid + k], max(red[lid], red[lid + k]), is_max); }
    workgroupBarrier();
  }
  return red[0];
}
@compute @workgroup_size(WG)
fn softmax_causal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let i = r % p.T;
  let o = r * p.T;
  var m = -3.0e38;
  for (var j = l.x; j <= i; j += WG) { m = max(m, s[o + j]); }
  m = reduce(l.x, m, true);
  var z = 0.0;
  for (var j = l.x; j <= i; j += WG) { z += exp(s[o + j] - m); }
  z = reduce(l.x, z, false);
  for (var j = l.x; j < p.T; j += WG) { s[o + j] = select(0.0, exp(s[o + j] - m) / z, j <= i); }
}
@compute @workgroup_size(WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let o = r * p.T;
  var d = 0.0;
  for (var j = l.x; j < p.T; j += WG) { d += pr[o + j] * dp[o + j]; }
  d = reduce(l.x, d, false);
  for (var j = l.x; j < p.T; j += WG) { dp[o + j] = pr[o + j] * (dp[o + j] - d); }
}`;

interface Size { B: number; T: number; Hq: number; Hkv: number; D: number }

function rowGrid(gpu: Gpu, rows: number): [number, number] {
  const maxX = gpu.limits.maxComputeWorkgroupsPerDimension;
  return rows <= maxX ? [rows, 1] : [maxX, Math.ceil(rows / maxX)];
}

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

// (B, T, H, D) ↔ (B, Hkv, G, T, D) with H = Hkv·G: head h = hk·G + g.
function toHeadMajor(x: Float32Array, B: number, T: number, H: number, D: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++)
    y.set(x.subarray(((b * T + t) * H + h) * D, ((b * T + t) * H + h + 1) * D), ((b * H + h) * T + t) * D);
  return y;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

export async function attentionFigures(ctx: BenchContext, figs: Figures): Promise<void> {
  const { gpu } = ctx;
  const sizes: Size[] = ctx.quick
    ? [{ B: 1, T: 128, Hq: 8, Hkv: 2, D: 64 }]
    : [{ B: 1, T: 128, Hq: 8, Hkv: 2, D: 64 }, { B: 1, T: 512, Hq: 8, Hkv: 2, D: 64 }, { B: 1, T: 1024, Hq: 8, Hkv: 2, D: 64 }];
  const reps = ctx.quick ? 1 : 2;
  for (const [n, z] of sizes.entries()) {
    const { B, T, Hq, Hkv, D } = z;
    ctx.progress(`attention T${T}`);
    const G = Hq / Hkv, scale = 1 / Math.sqrt(D);
    const hq = rand(B * T * Hq * D, 1), hk = rand(B * T * Hkv * D, 2), hv = rand(B * T * Hkv * D, 3), hdo = rand(B * T * Hq * D, 4);
    // ours: token-major layouts, one segment per row
    const q = gpu.buffer(hq), k = gpu.buffer(hk), v = gpu.buffer(hv), dout = gpu.buffer(hdo);
    const seg = gpu.buffer(new Int32Array(B * T));
    const out = gpu.buffer(hq.byteLength), lse = gpu.buffer(B * Hq * T * 4);
    const dq = gpu.buffer(hq.byteLength), dk = gpu.buffer(hk.byteLength), dv = gpu.buffer(hk.byteLength);
    const fwd = (e: GPUCommandEncoder) => attentionForward(gpu, e, { q, k, v, out, lse, seg, B, Tq: T, Tk: T, Hq, Hkv, D });
    const fwdFused = (e: GPUCommandEncoder) => attentionForward(gpu, e, { q, k, v, out, lse, seg, B, Tq: T, Tk: T, Hq, Hkv, D, path: 'fused' });
    const bwd = (e: GPUCommandEncoder) => attentionBackward(gpu, e, { q, k, v, out, lse, dout, seg, dq, dk, dv, B, T, Hq, Hkv, D });
    const bwdFused = (e: GPUCommandEncoder) => attentionBackward(gpu, e, { q, k, v, out, lse, dout, seg, dq, dk, dv, B, T, Hq, Hkv, D, path: 'fused' });
    const path = attentionPath(gpu, { B, T, Hq });
    // unfused: head-major layouts, batch = B·Hkv, M = G·T
    const batch = B * Hkv, M = G * T;
    const uq = gpu.buffer(toHeadMajor(hq, B, T, Hq, D)), uk = gpu.buffer(toHeadMajor(hk, B, T, Hkv, D));
    const uv = gpu.buffer(toHeadMajor(hv, B, T, Hkv, D)), udo = gpu.buffer(toHeadMajor(hdo, B, T, Hq, D));
    const sBytes = batch * M * T * 4;
    const S = gpu.buffer(sBytes, 'bench.S'), dP = gpu.buffer(sBytes, 'bench.dP');
    const uo = gpu.buffer(hq.byteLength), udq = gpu.buffer(hq.byteLength), udk = gpu.buffer(hk.byteLength), udv = gpu.buffer(hk.byteLength);
    const u = gpu.uniform(new Uint32Array([batch * M, T, 0, 0]));
    const sm = gpu.pipeline(SOFTMAX, 'softmax_causal', { WG: 64 }), smb = gpu.pipeline(SOFTMAX, 'softmax_backward', { WG: 64 });
    const ufwd = (e: GPUCommandEncoder) => {
      matmul(gpu, e, { a: uq, bm: uk, out: S, M, N: T, K: D, batch, transB: true, alpha: scale });
      gpu.dispatch(e, sm, [u, S], rowGrid(gpu, batch * M));
      matmul(gpu, e, { a: S, bm: uv, out: uo, M, N: D, K: T, batch });
    };
    const ubwd = (e: GPUCommandEncoder) => {
      matmul(gpu, e, { a: udo, bm: uv, out: dP, M, N: T, K: D, batch, transB: true });
      matmul(gpu, e, { a: S, bm: udo, out: udv, M: T, N: D, K: M, batch, transA: true });
      gpu.dispatch(e, smb, [u, S, dP], rowGrid(gpu, batch * M));
      matmul(gpu, e, { a: dP, bm: uk, out: udq, M, N: D, K: T, batch, alpha: scale });
      matmul(gpu, e, { a: dP, bm: uq, out: udk, M: T, N: D, K: M, batch, transA: true, alpha: scale });
    };
    if (n === 0) {
      // both paths agree (forward, then backward from the same forward) before anything is timed
      // (and the fused forward's output equals the runtime's)
      gpu.submit((e) => { fwdFused(e); });
      const fusedOut = await gpu.readF32(out);
      gpu.submit((e) => { fwd(e); bwd(e); ufwd(e); ubwd(e); });
      const pairs: [string, GPUBuffer, GPUBuffer, number][] = [['out', out, uo, Hq], ['dq', dq, udq, Hq], ['dk', dk, udk, Hkv], ['dv', dv, udv, Hkv]];
      for (const [name, f, uf, H] of pairs) {
        const diff = maxDiff(toHeadMajor(await gpu.readF32(f), B, T, H, D), await gpu.readF32(uf));
        if (!(diff < 1e-3)) throw new Error(`bench attention: ours and the unfused path differ in ${name} by ${diff}`);
      }
      const diff = maxDiff(fusedOut, await gpu.readF32(out));
      if (!(diff < 1e-3)) throw new Error(`bench attention: the fused and the runtime's forward differ by ${diff}`);
    }
    const fwdFlop = (4 * B * Hq * T * T * D) / 2; // causal half of q·kᵀ and p·v
    const bwdFlop = 2.5 * fwdFlop; // s (recomputed), dp, dv, dq, dk
    const unfused = path !== 'fused';
    const [tf, tuf, tb, tub, tbf, tff] = await bestOf([gpuTimer(gpu, fwd), gpuTimer(gpu, ufwd), gpuTimer(gpu, bwd), gpuTimer(gpu, ubwd), unfused ? gpuTimer(gpu, bwdFused) : null, unfused ? gpuTimer(gpu, fwdFused) : null], reps);
    const what = (pass: string) => `${pass}, B${B} T${T} Hq${Hq}/Hkv${Hkv} D${D}, causal; GFLOP/s of the causal work; unfused needs ${((pass === 'forward' ? 1 : 2) * sBytes / 2 ** 20).toFixed(1)} MiB of scores; best of ${reps} alternating, ${clockOf(gpu)}`;
    const peer = 'unfused matmul → softmax → matmul, same adapter';
    figs[`attention.fwd.T${T}`] = figure(`${what('forward')}; the runtime's attentionForward, which takes the ${path} path here (its head-major copies included)`, fwdFlop / tf / 1e6, 'GFLOP/s', peer, fwdFlop / tuf / 1e6);
    if (unfused) figs[`attention.fwd.fused.T${T}`] = figure(`${what('forward')}; the fused kernel (what runs where the scores do not fit, and with a KV cache)`, fwdFlop / tff / 1e6, 'GFLOP/s', peer, fwdFlop / tuf / 1e6);
    figs[`attention.bwd.T${T}`] = figure(`${what('backward')}; the runtime's attentionBackward, which takes the ${path} path here (its head-major copies included)`, bwdFlop / tb / 1e6, 'GFLOP/s', peer, bwdFlop / tub / 1e6);
    if (unfused) figs[`attention.bwd.fused.T${T}`] = figure(`${what('backward')}; the fused kernels (what runs where the scores do not fit)`, bwdFlop / tbf / 1e6, 'GFLOP/s', peer, bwdFlop / tub / 1e6);
    for (const b of [q, k, v, dout, seg, out, lse, dq, dk, dv, uq, uk, uv, udo, S, dP, uo, udq, udk, udv]) b.destroy();
  }
}
