// attention.wgsl — causal grouped-query attention with segment (packing/padding) masks, tiled
// with an online softmax (FlashAttention-2 style): no T×T score matrix ever reaches global
// memory; the backward recomputes scores from the saved logsumexp.
//
//   q     (B, Tq, Hq, D)                    out, dout (B, Tq, Hq, D)      dq (B, T, Hq, D)
//   k, v  (B, kv_stride, Hkv, D): a KV cache of capacity kv_stride ≥ Tk rows (= Tk in training)
//   dk, dv (B, T, Hkv, D)
//   seg   (B, kv_stride) i32: the sample each key position belongs to, −1 = padding
//   lse   (B, Hq, Tq) f32: logsumexp of each query's scaled scores (saved by the forward)
//   delta (B, Hq, T) f32: Σ_d dout·out per query (the backward's pre-pass)
//
// Query i of batch item b sits at key position q_offset + i (q_offset = Tk − Tq when decoding
// from a cache, 0 in training). Query head h reads kv head h / group, group = Hq / Hkv.
// Query i attends key j iff  j ≤ q_offset + i  and  seg[b, j] = seg[b, q_offset + i] ≥ 0.
// A query that attends nothing (a padding query) gets out = 0 and lse = 0, a finite sentinel;
// the backward masks with the same rule, so its gradients are exactly 0, never NaN.
//
//   s_ij = scale · q_i·k_j      p_ij = exp(s_ij − lse_i)      out_i = Σ_j p_ij v_j
//   backward:  dp_ij = dout_i·v_j    ds_ij = p_ij (dp_ij − delta_i)
//              dq_i = scale Σ_j ds_ij k_j    dk_j = scale Σ_i ds_ij q_i    dv_j = Σ_i p_ij dout_i
//
// Work split. Each workgroup owns ROWS rows, one per invocation, held in private memory:
// queries in attention_forward and attention_backward_dq, keys in
// attention_backward_dkv. The loop over the other operand is uniform across the workgroup
// (every invocation reads the same key / query row at the same time, a broadcast load), runs
// only as far as the causal mask needs, and masks per invocation. No workgroup memory and no
// barriers. Measured on lavapipe (bench/attention.ts, T 256, Hq 8/2, D 64): a version staging
// TILE rows of k, v in workgroup memory behind barriers ran 1.7× slower (forward 91 vs 54 ms,
// backward 263 vs 150 ms); a vec4 version of this one ran faster still but took 25–105 s per
// pipeline to compile there (LLVM unrolls the vec4 loops), so rows stay scalar. On lavapipe a
// head_dim-16 pipeline still takes ~10 s to compile the first time (short loops unrolled).
// The forward keeps a running max m and sum l per query and rescales the accumulator once per
// chunk of TILE keys. dk/dv loop over the query heads of the group and then the queries in a
// fixed order, so no atomics are needed and results are bit-identical run to run. Masked scores are NEG (finite, so no
// inf − inf); a real score is always > NEG / 2.
//
// HEAD_DIM ≤ MAX_D and TILE ≤ MAX_TILE (private array sizes); ROWS and TILE are set by
// src/kernels/attention.ts.

override HEAD_DIM: u32 = 64u;
override ROWS: u32 = 32u;
override TILE: u32 = 32u;
override WG: u32 = 64u; // attention_delta only

const MAX_D = 128u;
const MAX_TILE = 64u;
const NEG: f32 = -3.0e38;

struct Params {
  B: u32,
  Tq: u32,
  Tk: u32,
  Hq: u32,
  Hkv: u32,
  q_offset: u32,
  kv_stride: u32,
  group: u32,
  scale: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> seg: array<i32>;
// forward
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
// backward (dq, dkv)
@group(0) @binding(5) var<storage, read> lse_in: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> delta_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> dk: array<f32>;
@group(0) @binding(9) var<storage, read_write> dv: array<f32>;
// delta pre-pass
@group(0) @binding(1) var<storage, read> out_d: array<f32>;
@group(0) @binding(2) var<storage, read> dout_d: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;


// Element offset of row `t` of head `h` in a (B, rows, heads, D) tensor.
fn row_at(b: u32, rows: u32, t: u32, heads: u32, h: u32) -> u32 {
  return ((b * rows + t) * heads + h) * HEAD_DIM;
}

// One query per invocation. Grid: (ceil(Tq / ROWS), Hq, B).
@compute @workgroup_size(ROWS)
fn attention_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let hk = h / p.group;
  let i = wid.x * ROWS + lid3.x;
  let live = i < p.Tq;
  let qpos = p.q_offset + i;
  // Keys this workgroup can see: up to its last query's position (causal).
  let kend = min(p.Tk, p.q_offset + min(p.Tq, (wid.x + 1u) * ROWS));

  var sq = -1;
  var qr: array<f32, MAX_D>;
  var acc: array<f32, MAX_D>;
  if (live) {
    sq = seg[b * p.kv_stride + qpos];
    let o = row_at(b, p.Tq, i, p.Hq, h);
    for (var d = 0u; d < HEAD_DIM; d++) { qr[d] = q[o + d]; }
  }
  var m = NEG;
  var l = 0.0;
  var s: array<f32, MAX_TILE>;

  for (var j0 = 0u; j0 < kend; j0 += TILE) {
    let n = min(TILE, kend - j0);
    var tmax = NEG;
    for (var t = 0u; t < n; t++) {
      let j = j0 + t;
      s[t] = NEG;
      if (j <= qpos && seg[b * p.kv_stride + j] == sq && sq >= 0) {
        let o = row_at(b, p.kv_stride, j, p.Hkv, hk);
        var dot4 = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) { dot4 = fma(qr[d], k[o + d], dot4); }
        s[t] = dot4 * p.scale;
        tmax = max(tmax, s[t]);
      }
    }
    if (tmax > NEG * 0.5) {
      // Rescale what was summed so far to the new max, once per chunk.
      let m_new = max(m, tmax);
      let corr = exp(m - m_new);
      l *= corr;
      for (var d = 0u; d < HEAD_DIM; d++) { acc[d] *= corr; }
      for (var t = 0u; t < n; t++) {
        if (s[t] > NEG * 0.5) {
          let pt = exp(s[t] - m_new);
          l += pt;
          let o = row_at(b, p.kv_stride, j0 + t, p.Hkv, hk);
          for (var d = 0u; d < HEAD_DIM; d++) { acc[d] = fma(pt, v[o + d], acc[d]); }
        }
      }
      m = m_new;
    }
  }

  if (live) {
    let o = row_at(b, p.Tq, i, p.Hq, h);
    let seen = l > 0.0;
    let inv_l = select(0.0, 1.0 / l, seen);
    for (var d = 0u; d < HEAD_DIM; d++) { out[o + d] = acc[d] * inv_l; }
    lse[(b * p.Hq + h) * p.Tq + i] = select(0.0, m + log(l), seen);
  }
}

// delta (B, Hq, T) = Σ_d dout·out, one invocation per (b, t, h). Grid: flat over B·T·Hq.
@compute @workgroup_size(WG)
fn attention_delta(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG; // row of (B, T, Hq)
  if (r >= p.B * p.Tq * p.Hq) { return; }
  let h = r % p.Hq;
  let bt = r / p.Hq;
  let b = bt / p.Tq;
  let t = bt % p.Tq;
  var s4 = 0.0;
  for (var d = 0u; d < HEAD_DIM; d++) { s4 = fma(dout_d[r * HEAD_DIM + d], out_d[r * HEAD_DIM + d], s4); }
  delta[(b * p.Hq + h) * p.Tq + t] = s4;
}

// dq, one query per invocation, keys in order as in the forward. Grid: (ceil(T / ROWS), Hq, B).
@compute @workgroup_size(ROWS)
fn attention_backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let hk = h / p.group;
  let i = wid.x * ROWS + lid3.x;
  let live = i < p.Tq;
  let kend = min(p.Tk, min(p.Tq, (wid.x + 1u) * ROWS));

  var sq = -1;
  var qr: array<f32, MAX_D>;
  var dor: array<f32, MAX_D>;
  var acc: array<f32, MAX_D>;
  var lse_i = 0.0;
  var delta_i = 0.0;
  if (live) {
    sq = seg[b * p.kv_stride + i];
    let o = row_at(b, p.Tq, i, p.Hq, h);
    for (var d = 0u; d < HEAD_DIM; d++) {
      qr[d] = q[o + d];
      dor[d] = dout[o + d];
    }
    lse_i = lse_in[(b * p.Hq + h) * p.Tq + i];
    delta_i = delta_in[(b * p.Hq + h) * p.Tq + i];
  }

  for (var j = 0u; j < kend; j++) {
    if (j <= i && seg[b * p.kv_stride + j] == sq && sq >= 0) {
      let o = row_at(b, p.kv_stride, j, p.Hkv, hk);
      var dot4 = 0.0;
      var dp4 = 0.0;
      for (var d = 0u; d < HEAD_DIM; d++) {
        dot4 = fma(qr[d], k[o + d], dot4);
        dp4 = fma(dor[d], v[o + d], dp4);
      }
      let pt = exp(dot4 * p.scale - lse_i);
      let ds = pt * (dp4 - delta_i);
      for (var d = 0u; d < HEAD_DIM; d++) { acc[d] = fma(ds, k[o + d], acc[d]); }
    }
  }

  if (live) {
    let o = row_at(b, p.Tq, i, p.Hq, h);
    for (var d = 0u; d < HEAD_DIM; d++) { dq[o + d] = acc[d] * p.scale; }
  }
}

// dk and dv, one key per invocation; for each query head of the group (in order), queries from
// the workgroup's first key onwards (causal), in order. Grid: (ceil(T / ROWS), Hkv, B).
@compute @workgroup_size(ROWS)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let b = wid.z;
  let hk = wid.y;
  let T = p.Tq;
  let j = wid.x * ROWS + lid3.x;
  let live = j < T;
  let first = wid.x * ROWS; // queries before the workgroup's first key see none of its keys

  var sk = -1;
  var kr: array<f32, MAX_D>;
  var vr: array<f32, MAX_D>;
  var dka: array<f32, MAX_D>;
  var dva: array<f32, MAX_D>;
  if (live) {
    sk = seg[b * p.kv_stride + j];
    let o = row_at(b, p.kv_stride, j, p.Hkv, hk);
    for (var d = 0u; d < HEAD_DIM; d++) {
      kr[d] = k[o + d];
      vr[d] = v[o + d];
    }
  }

  for (var g = 0u; g < p.group; g++) {
    let h = hk * p.group + g;
    for (var i = first; i < T; i++) {
      if (i >= j && seg[b * p.kv_stride + i] == sk && sk >= 0) {
        let o = row_at(b, T, i, p.Hq, h);
        let r = (b * p.Hq + h) * T + i;
        var dot4 = 0.0;
        var dp4 = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
          dot4 = fma(q[o + d], kr[d], dot4);
          dp4 = fma(dout[o + d], vr[d], dp4);
        }
        let pt = exp(dot4 * p.scale - lse_in[r]);
        let ds = pt * (dp4 - delta_in[r]);
        for (var d = 0u; d < HEAD_DIM; d++) {
          dva[d] = fma(pt, dout[o + d], dva[d]);
          dka[d] = fma(ds, q[o + d], dka[d]);
        }
      }
    }
  }

  if (live) {
    let o = row_at(b, T, j, p.Hkv, hk);
    for (var d = 0u; d < HEAD_DIM; d++) {
      dk[o + d] = dka[d] * p.scale;
      dv[o + d] = dva[d];
    }
  }
}
