// lmhead.wgsl — the per-token softmax reduction of the fused LM head, one vocabulary chunk at a
// time, so that a (N × V) logits matrix never exists: the host (src/kernels/lmhead.ts) computes
// logits = hidden · W[v0 : v0+width]ᵀ into a (N × width) scratch with matmul.wgsl, then runs one
// of these entry points over it; chunks go in order v0 = 0, chunk, 2·chunk, … (deterministic).
//
//   logits  (N, width)  chunk of the logits, columns v0 .. v0+width-1 (in place → dlogits)
//   targets (N) i32     target id, or -1 (no loss at this token; ids outside [0, V) count as -1)
//   run     (N) Run     running state across chunks (scratch)
//   stats   (N, 4)      [nll of target (0 without target), entropy, max-probability, argmax == target]
//   lse     (N)         logsumexp over the whole vocabulary, saved for the backward
//   gscale  (N)         per-token gradient weight (backward)
//
// Forward (lmhead_forward_chunk), per token, with the running max m over the chunks seen so far:
//   s = Σ e^(z−m),   t = Σ e^(z−m)·(z−m)   (t ≤ 0, relative to m: no cancellation at ±1e4)
//   merging a chunk with max m' ≥ m rescales by a = e^(m−m'):  s ← a·s,  t ← a·(t + (m−m')·s)
//   lse = m + log s,  entropy H = log s − t/s,  max-probability = e^(best−m)/s = 1/s,
//   nll = (m − z_target) + log s.
// Every exponent is ≤ 0, so logits of ±1e4 give neither inf nor NaN. argmax is the first index of
// the maximum (ties go to the lower id).
//
// Backward (lmhead_backward_chunk), in place over the recomputed chunk:
//   dlogits[n, j] = gscale[n] · (e^(z − lse[n]) − 1[v0+j = target[n]]),  0 for tokens without target.
// The host then forms dhidden += dlogits · W_chunk and dweight_chunk (+)= dlogitsᵀ · hidden.
//
// Forward with the gradient (GRAD, for a frozen head: shaders/lmhead_grad.wgsl and the host do
// the rest), per chunk with chunk max mc, merged into the running max m_k:
//   logits[n, j] ← e^(z − mc) in place (the exponentials the sums above take anyway),
//   run.a = e^(m_{k−1} − m_k) (0 on the first chunk), run.b = e^(mc − m_k) (both ≤ 1), and run
//   is written at every chunk (the last one too: s is the final normaliser). The host forms
//   P = E · W_chunk and acc ← a·acc + b·P, so acc = Σ_v e^(z_v − m_k)·W[v, :] throughout, and
//   dhidden = gscale · (acc / s − W[target]) — no second pass over the vocabulary.
//
// One workgroup (WG invocations, a power of two) per token row, rows on a 2-D grid past 65535;
// in-row reductions are fixed trees in workgroup memory: no atomics, bit-identical reruns.

override WG: u32 = 256u;
override GRAD: bool = false;

struct Params {
  N: u32,
  V: u32,
  v0: u32,     // first vocabulary id of this chunk
  width: u32,  // columns in this chunk
  is_first: u32,  // 1: initialise the running state instead of merging
  is_last: u32,   // 1: write stats and lse
  _pad0: u32,
  _pad1: u32,
}

struct Run {
  m: f32,      // running max
  s: f32,      // Σ e^(z−m)
  t: f32,      // Σ e^(z−m)·(z−m)
  arg: u32,    // id of the first maximum
  zt: f32,     // logit of the target (when seen)
  a: f32,      // GRAD: the factor this chunk rescales the host's accumulator by
  b: f32,      // GRAD: the factor of this chunk's exponentials (relative to its own max)
  _pad: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
// forward
@group(0) @binding(3) var<storage, read_write> run: array<Run>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> lse_in: array<f32>;
@group(0) @binding(4) var<storage, read> gscale: array<f32>;

var<workgroup> red: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> target_logit: f32;

fn workgroup_max(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] = max(red[lid], red[lid + k]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn workgroup_min_u32(lid: u32, v: u32) -> u32 {
  red_i[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red_i[lid] = min(red_i[lid], red_i[lid + k]); }
    workgroupBarrier();
  }
  let r = red_i[0];
  workgroupBarrier();
  return r;
}

fn target_of(row: u32) -> i32 {
  let t = targets[row];
  if (t < 0 || u32(t) >= p.V) { return -1; }
  return t;
}

@compute @workgroup_size(WG)
fn lmhead_forward_chunk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.width;

  // This chunk's max, then its first position, then s and t relative to the chunk max.
  var mx = -0x1.fffffep+127f;
  for (var j = lid; j < p.width; j += WG) { mx = max(mx, logits[base + j]); }
  let mc = workgroup_max(lid, mx);
  var pos = 0xffffffffu;
  var s = 0.0;
  var t = 0.0;
  let tcol = u32(target_of(row)) - p.v0; // wraps past width when the target is elsewhere (or −1)
  for (var j = lid; j < p.width; j += WG) {
    let z = logits[base + j];
    let d = z - mc;
    if (d == 0.0) { pos = min(pos, j); }
    let e = exp(d);
    s += e;
    t = fma(e, d, t);
    if (GRAD) {
      if (j == tcol) { target_logit = z; } // read by lane 0 after the barriers below
      logits[base + j] = e;
    }
  }
  let argc = workgroup_min_u32(lid, pos);
  let sc = workgroup_sum(lid, s);
  let tc = workgroup_sum(lid, t);
  if (lid == 0u) { merge_chunk(row, base, mc, argc, sc, tc); }
}

fn merge_chunk(row: u32, base: u32, mc: f32, argc: u32, sc: f32, tc: f32) {
  let tgt = target_of(row);
  var st: Run;
  if (p.is_first == 1u) {
    st = Run(mc, sc, tc, p.v0 + argc, 0.0, 0.0, 1.0, 0.0);
  } else {
    st = run[row];
    st.a = 1.0;
    if (mc > st.m) {
      // The new chunk holds the max: rescale the old sums to it.
      let dm = st.m - mc;
      let a = exp(dm);
      st.t = a * (st.t + dm * st.s) + tc;
      st.s = a * st.s + sc;
      st.m = mc;
      st.arg = p.v0 + argc;
      st.a = a;
    } else {
      let dm = mc - st.m;
      let a = exp(dm);
      st.t = st.t + a * (tc + dm * sc);
      st.s = st.s + a * sc;
    }
  }
  if (tgt >= 0 && u32(tgt) >= p.v0 && u32(tgt) < p.v0 + p.width) {
    st.zt = select(logits[base + u32(tgt) - p.v0], target_logit, GRAD);
  }
  if (GRAD) {
    st.b = exp(mc - st.m);
    run[row] = st;
  }
  if (p.is_last == 1u) {
    let ls = log(st.s);
    lse[row] = st.m + ls;
    var nll = 0.0;
    var hit = 0.0;
    if (tgt >= 0) {
      nll = (st.m - st.zt) + ls;
      hit = select(0.0, 1.0, st.arg == u32(tgt));
    }
    stats[row * 4u + 0u] = nll;
    stats[row * 4u + 1u] = ls - st.t / st.s;
    stats[row * 4u + 2u] = 1.0 / st.s;
    stats[row * 4u + 3u] = hit;
  } else if (!GRAD) {
    run[row] = st;
  }
}

@compute @workgroup_size(WG)
fn lmhead_backward_chunk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.width;
  let tgt = target_of(row);
  if (tgt < 0) {
    for (var j = lid; j < p.width; j += WG) { logits[base + j] = 0.0; }
    return;
  }
  let l = lse_in[row];
  let g = gscale[row];
  let tj = u32(tgt) - p.v0; // wraps to a huge value when the target is in an earlier chunk
  for (var j = lid; j < p.width; j += WG) {
    let y = select(0.0, 1.0, j == tj);
    logits[base + j] = g * (exp(logits[base + j] - l) - y);
  }
}
