// lmhead_grad.wgsl — the rest of the LM head's single-pass gradient for a frozen head (the
// forward chunks of shaders/lmhead.wgsl with GRAD leave e^(z − chunk max) in the chunk's logits
// and each row's factors in run.a, run.b); the host (src/kernels/lmhead.ts,
// lmHeadForwardBackward) runs, per vocabulary chunk k:
//
//   matmul                P = E_k · W_chunk              (E_k: the chunk's e^(z − its max), N × width)
//   lmhead_grad_combine   acc[n, :] ← run[n].a · acc[n, :] + run[n].b · P[n, :]   (the first chunk: b·P,
//                         whatever acc held); wt[n, :] ← W[target[n], :] when the target lies in this chunk
//
// and after the last chunk, with s = run[n].s the final Σ e^(z − m):
//   lmhead_grad_final     acc[n, :] ← gscale[n] · (acc[n, :] / s − wt[n, :]),  0 without a target
//                         (the accumulator is dhidden itself), or
//   lmhead_grad_final_add dhidden[n, :] += the same, from a separate accumulator
//
// since dhidden = Σ_v gscale·(p_v − 1[v = target])·W[v, :] with p_v = e^(z_v − m)/s. Elementwise
// over N × C, WG invocations per workgroup, on a 2-D grid past 65535 workgroups; no reduction
// order to vary: bit-identical reruns.

override WG: u32 = 256u;

alias WT = f32; // element type of the weight chunk (f16 for a head kept in half precision)

struct Params {
  N: u32,
  C: u32,
  v0: u32,       // first vocabulary id of this chunk
  width: u32,    // rows of this chunk
  is_first: u32,
  row: u32,      // invocations per row of the 2-D grid
  V: u32,
  _pad: u32,
}

struct Run { m: f32, s: f32, t: f32, arg: u32, zt: f32, a: f32, b: f32, _pad: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> run: array<Run>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;
// combine
@group(0) @binding(4) var<storage, read> wchunk: array<WT>;
@group(0) @binding(5) var<storage, read_write> wt: array<f32>;
@group(0) @binding(6) var<storage, read> pchunk: array<f32>;
// final
@group(0) @binding(4) var<storage, read> wt_in: array<f32>;
@group(0) @binding(5) var<storage, read> gscale: array<f32>;
@group(0) @binding(6) var<storage, read_write> dhidden: array<f32>; // final_add

fn target_of(n: u32) -> i32 {
  let t = targets[n];
  if (t < 0 || u32(t) >= p.V) { return -1; }
  return t;
}

@compute @workgroup_size(WG)
fn lmhead_grad_combine(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i % p.C;
  let bp = run[n].b * pchunk[i];
  acc[i] = select(fma(run[n].a, acc[i], bp), bp, p.is_first == 1u);
  let t = target_of(n);
  if (t >= 0 && u32(t) >= p.v0 && u32(t) < p.v0 + p.width) {
    wt[i] = f32(wchunk[(u32(t) - p.v0) * p.C + c]);
  }
}

fn grad_of(i: u32) -> f32 {
  let n = i / p.C;
  if (target_of(n) < 0) { return 0.0; }
  return gscale[n] * (acc[i] / run[n].s - wt_in[i]);
}

@compute @workgroup_size(WG)
fn lmhead_grad_final(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row;
  if (i >= p.N * p.C) { return; }
  acc[i] = grad_of(i);
}

@compute @workgroup_size(WG)
fn lmhead_grad_final_add(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row;
  if (i >= p.N * p.C) { return; }
  dhidden[i] += grad_of(i);
}
