// attention.wgsl — causal grouped-query attention with segment (packing/padding) masks, tiled
// with an online softmax (FlashAttention-2 style): no T×T score matrix ever reaches global
// memory; the backward recomputes scores from the saved logsumexp. Training takes this backward
// only where the T×T scores would not fit: elsewhere src/kernels/attention.ts runs the unfused one
// (attention_unfused.wgsl + matmuls), about twice as fast on lavapipe.
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
// (every invocation reads the same key / query rows at the same time, broadcast loads), runs
// only as far as the causal mask needs, and masks per invocation. No workgroup memory and no
// barriers. That loop takes the streamed rows 4 at a time (register blocking): each pass over D
// reads the private row once and updates 4 dot products held in a vec4 across the 4 rows (the
// vec4 runs across rows, never along D), and the accumulating passes add dot(p4, 4 rows). A
// masked pair inside a block gets p = 0 by select, never a branch; a block with no unmasked pair
// is skipped. Measured on lavapipe (bench/attention-dev/, v1_base → v4_block4_rtd, now this file, in one run, B1,
// ROWS 32, TILE 32): T512 Hq16/4 D128 forward 735 → 508 ms, backward 2336 → 1571 ms (dq 959 →
// 692, dk/dv 1266 → 943); T1024 Hq8/2 D64 forward 786 → 532 ms, backward 2285 → 1569 ms; each
// pipeline compiles in under 1 s at head_dim 16, 64 and 128. Blocking by 8
// (v3_block8) was no faster and compiles twice as long. Earlier: a version staging TILE rows of
// k, v in workgroup memory behind barriers ran 1.7× slower; a vec4-along-D version took 25–105 s
// per pipeline to compile (LLVM unrolls the vec4 loops), so rows stay scalar along D.
// The loops over D stop at p.head_dim, a uniform equal to HEAD_DIM, not at the override: with a
// constant bound LLVM fully unrolls short loops, and at head_dim 16 the blocked kernels took
// 3 s (forward) and 9 s (the three backward pipelines) to compile on lavapipe; with the uniform
// bound every head_dim compiles in ~0.3 s per pipeline at the same speed. HEAD_DIM still sets
// row strides.
// The forward keeps a running max m and sum l per query and rescales the accumulator once per
// chunk of TILE keys. dk/dv loop over the query heads of the group and then the queries in a
// fixed order, so no atomics are needed and results are bit-identical run to run. Masked scores
// are NEG (finite, so no inf − inf); a real score is always > NEG / 2.
//
// HEAD_DIM ≤ MAX_D and TILE ≤ MAX_TILE (private array sizes; MAX_TILE a multiple of 4; TILE
// need not be); ROWS and TILE are set by
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
  head_dim: u32, // = HEAD_DIM: the D loops run to this uniform bound (see the header)
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
// backward (dq, dkv). ld (2, B, Hq, T): the forward's lse, then delta — one binding for both, so
// that dkv binds 8 storage buffers, WebGPU's baseline maxStorageBuffersPerShaderStage
@group(0) @binding(5) var<storage, read> ld: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
// delta pre-pass: writes ld
@group(0) @binding(1) var<storage, read> out_d: array<f32>;
@group(0) @binding(2) var<storage, read> dout_d: array<f32>;
@group(0) @binding(3) var<storage, read> lse_d: array<f32>;
@group(0) @binding(4) var<storage, read_write> ld_w: array<f32>;


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
  let kend = min(p.Tk, p.q_offset + min(p.Tq, (wid.x + 1u) * ROWS));

  var sq = -1;
  var qr: array<f32, MAX_D>;
  var acc: array<f32, MAX_D>;
  if (live) {
    sq = seg[b * p.kv_stride + qpos];
    let o = row_at(b, p.Tq, i, p.Hq, h);
    for (var d = 0u; d < p.head_dim; d++) { qr[d] = q[o + d]; }
  }
  var m = NEG;
  var l = 0.0;
  var s: array<vec4<f32>, MAX_TILE / 4u>; // the chunk's scores, 4 keys per element

  for (var j0 = 0u; j0 < kend; j0 += TILE) {
    let n = min(TILE, kend - j0);
    var tmax = NEG;
    for (var t = 0u; t < n; t += 4u) {
      let j = vec4<u32>(j0 + t) + vec4<u32>(0u, 1u, 2u, 3u);
      let jc = min(j, vec4<u32>(kend - 1u));
      let sj = vec4<i32>(seg[b * p.kv_stride + jc.x], seg[b * p.kv_stride + jc.y], seg[b * p.kv_stride + jc.z], seg[b * p.kv_stride + jc.w]);
      // j < j0 + n: a TILE that is not a multiple of 4 must not reach into the next chunk.
      let ok = (j < vec4<u32>(j0 + n)) & (j <= vec4<u32>(qpos)) & (sj == vec4<i32>(sq)) & vec4<bool>(sq >= 0);
      var s4 = vec4<f32>(NEG);
      if (any(ok)) {
        let o0 = row_at(b, p.kv_stride, jc.x, p.Hkv, hk);
        let o1 = row_at(b, p.kv_stride, jc.y, p.Hkv, hk);
        let o2 = row_at(b, p.kv_stride, jc.z, p.Hkv, hk);
        let o3 = row_at(b, p.kv_stride, jc.w, p.Hkv, hk);
        var dot4 = vec4<f32>(0.0);
        for (var d = 0u; d < p.head_dim; d++) { dot4 = fma(vec4<f32>(k[o0 + d], k[o1 + d], k[o2 + d], k[o3 + d]), vec4<f32>(qr[d]), dot4); }
        s4 = select(vec4<f32>(NEG), dot4 * p.scale, ok);
        tmax = max(tmax, max(max(s4.x, s4.y), max(s4.z, s4.w)));
      }
      s[t / 4u] = s4;
    }
    if (tmax > NEG * 0.5) {
      let m_new = max(m, tmax);
      let corr = exp(m - m_new);
      l *= corr;
      for (var d = 0u; d < p.head_dim; d++) { acc[d] *= corr; }
      for (var t = 0u; t < n; t += 4u) {
        let s4 = s[t / 4u];
        let ok = s4 > vec4<f32>(NEG * 0.5);
        if (any(ok)) {
          let pt = select(vec4<f32>(0.0), exp(s4 - m_new), ok);
          l += (pt.x + pt.y) + (pt.z + pt.w);
          let jc = min(vec4<u32>(j0 + t) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(kend - 1u));
          let o0 = row_at(b, p.kv_stride, jc.x, p.Hkv, hk);
          let o1 = row_at(b, p.kv_stride, jc.y, p.Hkv, hk);
          let o2 = row_at(b, p.kv_stride, jc.z, p.Hkv, hk);
          let o3 = row_at(b, p.kv_stride, jc.w, p.Hkv, hk);
          for (var d = 0u; d < p.head_dim; d++) { acc[d] += dot(pt, vec4<f32>(v[o0 + d], v[o1 + d], v[o2 + d], v[o3 + d])); }
        }
      }
      m = m_new;
    }
  }

  if (live) {
    let o = row_at(b, p.Tq, i, p.Hq, h);
    let seen = l > 0.0;
    let inv_l = select(0.0, 1.0 / l, seen);
    for (var d = 0u; d < p.head_dim; d++) { out[o + d] = acc[d] * inv_l; }
    lse[(b * p.Hq + h) * p.Tq + i] = select(0.0, m + log(l), seen);
  }
}

// ld = [lse (B, Hq, T) | delta (B, Hq, T)], delta = Σ_d dout·out, one invocation per (b, t, h).
// Grid: flat over B·T·Hq.
@compute @workgroup_size(WG)
fn attention_delta(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.B * p.Tq * p.Hq) { return; }
  let h = r % p.Hq;
  let bt = r / p.Hq;
  let b = bt / p.Tq;
  let t = bt % p.Tq;
  var s4 = 0.0;
  for (var d = 0u; d < p.head_dim; d++) { s4 = fma(dout_d[r * HEAD_DIM + d], out_d[r * HEAD_DIM + d], s4); }
  let at = (b * p.Hq + h) * p.Tq + t;
  ld_w[at] = lse_d[at];
  ld_w[p.B * p.Hq * p.Tq + at] = s4;
}

// dq, one query per invocation, keys 4 at a time in order. Grid: (ceil(T / ROWS), Hq, B).
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
    for (var d = 0u; d < p.head_dim; d++) {
      qr[d] = q[o + d];
      dor[d] = dout[o + d];
    }
    lse_i = ld[(b * p.Hq + h) * p.Tq + i];
    delta_i = ld[p.B * p.Hq * p.Tq + (b * p.Hq + h) * p.Tq + i];
  }

  for (var j0 = 0u; j0 < kend; j0 += 4u) {
    let j = vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u);
    let jc = min(j, vec4<u32>(kend - 1u));
    let sj = vec4<i32>(seg[b * p.kv_stride + jc.x], seg[b * p.kv_stride + jc.y], seg[b * p.kv_stride + jc.z], seg[b * p.kv_stride + jc.w]);
    let ok = (j < vec4<u32>(kend)) & (j <= vec4<u32>(i)) & (sj == vec4<i32>(sq)) & vec4<bool>(sq >= 0);
    if (any(ok)) {
      let o0 = row_at(b, p.kv_stride, jc.x, p.Hkv, hk);
      let o1 = row_at(b, p.kv_stride, jc.y, p.Hkv, hk);
      let o2 = row_at(b, p.kv_stride, jc.z, p.Hkv, hk);
      let o3 = row_at(b, p.kv_stride, jc.w, p.Hkv, hk);
      var dot4 = vec4<f32>(0.0);
      var dp4 = vec4<f32>(0.0);
      for (var d = 0u; d < p.head_dim; d++) {
        dot4 = fma(vec4<f32>(k[o0 + d], k[o1 + d], k[o2 + d], k[o3 + d]), vec4<f32>(qr[d]), dot4);
        dp4 = fma(vec4<f32>(v[o0 + d], v[o1 + d], v[o2 + d], v[o3 + d]), vec4<f32>(dor[d]), dp4);
      }
      let pt = select(vec4<f32>(0.0), exp(dot4 * p.scale - lse_i), ok);
      let ds = pt * (dp4 - delta_i);
      for (var d = 0u; d < p.head_dim; d++) { acc[d] += dot(ds, vec4<f32>(k[o0 + d], k[o1 + d], k[o2 + d], k[o3 + d])); }
    }
  }

  if (live) {
    let o = row_at(b, p.Tq, i, p.Hq, h);
    for (var d = 0u; d < p.head_dim; d++) { dq[o + d] = acc[d] * p.scale; }
  }
}

// dk and dv, one key per invocation; for each query head of the group (in order), queries from
// the workgroup's first key onwards, 4 at a time, in order. Grid: (ceil(T / ROWS), Hkv, B).
@compute @workgroup_size(ROWS)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let b = wid.z;
  let hk = wid.y;
  let T = p.Tq;
  let j = wid.x * ROWS + lid3.x;
  let live = j < T;
  let first = wid.x * ROWS;

  var sk = -1;
  var kr: array<f32, MAX_D>;
  var vr: array<f32, MAX_D>;
  var dka: array<f32, MAX_D>;
  var dva: array<f32, MAX_D>;
  if (live) {
    sk = seg[b * p.kv_stride + j];
    let o = row_at(b, p.kv_stride, j, p.Hkv, hk);
    for (var d = 0u; d < p.head_dim; d++) {
      kr[d] = k[o + d];
      vr[d] = v[o + d];
    }
  }

  for (var g = 0u; g < p.group; g++) {
    let h = hk * p.group + g;
    for (var i0 = first; i0 < T; i0 += 4u) {
      let i = vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u);
      let ic = min(i, vec4<u32>(T - 1u));
      let si = vec4<i32>(seg[b * p.kv_stride + ic.x], seg[b * p.kv_stride + ic.y], seg[b * p.kv_stride + ic.z], seg[b * p.kv_stride + ic.w]);
      let ok = (i < vec4<u32>(T)) & (i >= vec4<u32>(j)) & (si == vec4<i32>(sk)) & vec4<bool>(sk >= 0);
      if (any(ok)) {
        let o0 = row_at(b, T, ic.x, p.Hq, h);
        let o1 = row_at(b, T, ic.y, p.Hq, h);
        let o2 = row_at(b, T, ic.z, p.Hq, h);
        let o3 = row_at(b, T, ic.w, p.Hq, h);
        let r = (b * p.Hq + h) * T;
        let rd = p.B * p.Hq * T + r;
        let lse4 = vec4<f32>(ld[r + ic.x], ld[r + ic.y], ld[r + ic.z], ld[r + ic.w]);
        let del4 = vec4<f32>(ld[rd + ic.x], ld[rd + ic.y], ld[rd + ic.z], ld[rd + ic.w]);
        var dot4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        for (var d = 0u; d < p.head_dim; d++) {
          dot4 = fma(vec4<f32>(q[o0 + d], q[o1 + d], q[o2 + d], q[o3 + d]), vec4<f32>(kr[d]), dot4);
          dp4 = fma(vec4<f32>(dout[o0 + d], dout[o1 + d], dout[o2 + d], dout[o3 + d]), vec4<f32>(vr[d]), dp4);
        }
        let pt = select(vec4<f32>(0.0), exp(dot4 * p.scale - lse4), ok);
        let ds = pt * (dp4 - del4);
        for (var d = 0u; d < p.head_dim; d++) {
          dva[d] += dot(pt, vec4<f32>(dout[o0 + d], dout[o1 + d], dout[o2 + d], dout[o3 + d]));
          dka[d] += dot(ds, vec4<f32>(q[o0 + d], q[o1 + d], q[o2 + d], q[o3 + d]));
        }
      }
    }
  }

  if (live) {
    let o = row_at(b, T, j, p.Hkv, hk);
    for (var d = 0u; d < p.head_dim; d++) {
      dk[o + d] = dka[d] * p.scale;
      dv[o + d] = dva[d];
    }
  }
}
