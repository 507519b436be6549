// attention_unfused.wgsl — the helpers of the unfused attention (src/kernels/attention.ts, where the
// T×T scores fit): forward and backward as matmuls over head-major copies,
//   forward   S = Q·Kᵀ  →  P = softmax(mask · scale·S), lse (softmax_rows, this file)  →  O = P·V
//   backward  S = Q·Kᵀ, dP = dO·Vᵀ  →  P = mask · exp(scale·S − lse), dS = P ⊙ (dP − delta)  (probs)
//             dV = Pᵀ·dO, dQ = scale·dS·K, dK = scale·dSᵀ·Q
// with GQA as batches over kv heads: the G query heads of kv head hk are G·T consecutive rows.
//
//   token-major x (B, T, H, D)  ↔  head-major xh (B, H, T, D)   (H = Hq or Hkv)
//   S, dP (B, Hq, T, T): element ((b·Hq + h)·T + i)·T + j; h = hk·G + g, so for kv head hk this
//     is the (G·T, T) matrix of rows g·T + i — what the matmuls read and write as batch b·Hkv + hk
//   ld (2, B, Hq, T): the forward's lse, then delta = Σ_d dout·out (attention_delta)
//   seg (B, T) i32: query i attends key j iff j ≤ i and seg[b, j] = seg[b, i] ≥ 0 — the rule of
//     shaders/attention.wgsl, so a masked pair gets p = 0 and ds = 0 exactly.

override WG: u32 = 64u;
override TO_HEAD_MAJOR: bool = true;

struct Params {
  B: u32,
  T: u32,
  H: u32, // heads of the permuted tensor (permute); Hq (probs)
  D: u32,
  scale: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// permute
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// probs (softmax_rows: s, lse as binding 2, seg as binding 3)
@group(0) @binding(1) var<storage, read_write> s: array<f32>;  // S in, P out
@group(0) @binding(2) var<storage, read_write> dp: array<f32>; // dP in, dS out
@group(0) @binding(3) var<storage, read> ld: array<f32>;
@group(0) @binding(4) var<storage, read> seg: array<i32>;
@group(0) @binding(2) var<storage, read_write> lse_out: array<f32>; // (B, Hq, T)
@group(0) @binding(3) var<storage, read> seg_f: array<i32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// (B, T, H, D) → (B, H, T, D) when TO_HEAD_MAJOR, else back; one element per invocation, indexed
// by the destination (contiguous writes).
@compute @workgroup_size(WG)
fn permute(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  if (e >= p.B * p.T * p.H * p.D) { return; }
  let d = e % p.D;
  let r = e / p.D;
  if (TO_HEAD_MAJOR) {
    let t = r % p.T; // e = ((b·H + h)·T + t)·D + d
    let bh = r / p.T;
    let h = bh % p.H;
    let b = bh / p.H;
    dst[e] = src[((b * p.T + t) * p.H + h) * p.D + d];
  } else {
    let h = r % p.H; // e = ((b·T + t)·H + h)·D + d
    let bt = r / p.H;
    let t = bt % p.T;
    let b = bt / p.T;
    dst[e] = src[((b * p.H + h) * p.T + t) * p.D + d];
  }
}

// P and dS from S and dP in place, one score per invocation.
@compute @workgroup_size(WG)
fn probs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  let T = p.T;
  if (e >= p.B * p.H * T * T) { return; }
  let j = e % T;
  let row = e / T; // (b·Hq + h)·T + i: the index of lse and delta too
  let i = row % T;
  let b = row / (p.H * T);
  let si = seg[b * T + i];
  let ok = j <= i && si >= 0 && seg[b * T + j] == si;
  let pr = select(0.0, exp(s[e] * p.scale - ld[row]), ok);
  s[e] = pr;
  dp[e] = pr * (dp[e] - ld[p.B * p.H * T + row]);
}

// The forward's masked softmax over each row of S in place, and lse = m + log Σ exp(scale·S − m)
// (0 for a query that attends nothing: its P row is all 0). One workgroup per row
// (b·Hq + h)·T + i; WG (a power of two) invocations stride over the T keys, and their maxima and
// sums meet in a fixed tree: deterministic. The mask is probs' rule.
var<workgroup> red: array<f32, WG>;

fn tree(lid: u32, is_max: bool) -> f32 {
  for (var w = WG / 2u; w > 0u; w /= 2u) {
    workgroupBarrier();
    if (lid < w) { red[lid] = select(red[lid] + red[lid + w], max(red[lid], red[lid + w]), is_max); }
  }
  workgroupBarrier();
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn softmax_rows(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lid = lid3.x;
  let T = p.T;
  let row = wid.x + wid.y * nwg.x; // the same for the whole workgroup
  if (row >= p.B * p.H * T) { return; }
  let i = row % T;
  let b = row / (p.H * T);
  let si = seg_f[b * T + i];
  let base = row * T;
  var m = -3.0e38;
  for (var j = lid; j < T; j += WG) {
    if (j <= i && si >= 0 && seg_f[b * T + j] == si) { m = max(m, s[base + j] * p.scale); }
  }
  red[lid] = m;
  m = tree(lid, true);
  var l = 0.0;
  for (var j = lid; j < T; j += WG) {
    if (j <= i && si >= 0 && seg_f[b * T + j] == si) { l += exp(s[base + j] * p.scale - m); }
  }
  red[lid] = l;
  l = tree(lid, false);
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var j = lid; j < T; j += WG) {
    let ok = j <= i && si >= 0 && seg_f[b * T + j] == si;
    s[base + j] = select(0.0, exp(s[base + j] * p.scale - m) * inv, ok);
  }
  if (lid == 0u) { lse_out[row] = select(0.0, m + log(l), l > 0.0); }
}
