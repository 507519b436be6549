// matmul_subgroup.wgsl — shaders/matmul.wgsl's matmul (same parameters, layouts and results: the
// same k order and fma chain per output), for adapters with `subgroups`.
//
//   out[b] = alpha · op(a[b]) · op(bm[b])  (+ alpha2 · a2 · op(bm2) when HAS_SECOND)  (+ bias)
//            (+ out[b] when ACCUMULATE)
//   a    (batch, M, K) row-major, or (batch, K, M) when TRANS_A
//   bm   (batch, K, N) row-major, or (batch, N, K) when TRANS_B; f32 or f16 (WT)
// VEC4_A (x·Wᵀ and dy·W with K % 4 == 0, a training step's big products): four k per step, `a` and
// a TRANS_B `bm` read as vec4 along K, an untransposed `bm` as vec4 along N when VEC4_B. Otherwise
// one k per step, any layout.
//
// Why: on a software GPU (lavapipe) an invocation's load from a storage buffer, inside a loop, is a
// loop over the SIMD lanes — one scalar load and two branches per lane and component. The regular
// kernel has every lane load its own copy of the rows of `a` it needs, although all lanes of a
// subgroup need the same ones. Here a workgroup is one row of WG_X invocations whose TM rows come
// from the workgroup id alone (the same for every lane); lane i loads row i's next four k (or next k), and every
// lane takes row i from lane i by subgroupBroadcast — a register move. One lane-load of `a` per
// four k (or k) instead of TM. Measured on lavapipe (2 cores), x·Wᵀ 512³: 9–12 GFLOP/s here, 3–4.4 with
// the regular kernel's best tiles (bench/matmul-dev/sg.ts).
// Where shaders/matmul_subgroup_w.wgsl can run — x·Wᵀ and dy·W with K and N multiples of 4 and
// N ≥ 16, which share W's tile instead, faster still — the host runs that; this kernel takes the
// rest: dW = dyᵀ·x, LoRA's narrow products, odd shapes.
//
// Needs every lane of a subgroup active and at least TM lanes in it: the host uses this kernel only
// where the adapter's smallest subgroup has ≥ TM lanes and WG_X is a multiple of its largest; no
// invocation returns before the broadcasts (the guard below depends on the workgroup id only).
enable subgroups;

override WG_X: u32 = 32u;
override TM: u32 = 8u;      // rows per workgroup, ≤ MAX_T and ≤ the subgroup size
override TN: u32 = 2u;      // columns per invocation, ≤ MAX_T
override TRANS_A: bool = false;
override TRANS_B: bool = true;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override VEC4_A: bool = true;  // host guarantees !TRANS_A and K % 4 == 0: four k per step, vec4 loads along K
override VEC4_B: bool = false; // !TRANS_B: host guarantees TN % 4 == 0 and N % 4 == 0
override HAS_SECOND: bool = false; // host guarantees batch == 1

const MAX_T = 8u;

alias WT = f32; // element type of `bm`; the only templated line (src/kernels/template.ts)

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  stride_a: u32, stride_b: u32, stride_out: u32, // elements between batch items
  alpha: f32,
  K2: u32, alpha2: f32, _p0: u32, _p1: u32, // the second product (HAS_SECOND)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>; // VEC4_A; else a dummy
@group(0) @binding(2) var<storage, read> bm4: array<vec4<WT>>; // (VEC4_A && TRANS_B) or VEC4_B; else a dummy
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>; // a dummy when !HAS_BIAS
@group(0) @binding(5) var<storage, read> bm: array<WT>; // (!VEC4_A && TRANS_B) or (!TRANS_B && !VEC4_B); else a dummy
@group(0) @binding(6) var<storage, read> a2: array<f32>; // HAS_SECOND: (M, K2) row-major, else a dummy
@group(0) @binding(7) var<storage, read> bm2: array<f32>; // HAS_SECOND: (K2, N), or (N, K2) when TRANS_B; else a dummy
@group(0) @binding(8) var<storage, read> a: array<f32>; // !VEC4_A; else a dummy

// Lane r's value in every lane. subgroupBroadcast takes a constant lane: r is one of the unrolled
// row loop's constants, so each switch folds to its one case.
fn row4(v: vec4<f32>, r: u32) -> vec4<f32> {
  switch r {
    case 0u: { return subgroupBroadcast(v, 0u); }
    case 1u: { return subgroupBroadcast(v, 1u); }
    case 2u: { return subgroupBroadcast(v, 2u); }
    case 3u: { return subgroupBroadcast(v, 3u); }
    case 4u: { return subgroupBroadcast(v, 4u); }
    case 5u: { return subgroupBroadcast(v, 5u); }
    case 6u: { return subgroupBroadcast(v, 6u); }
    default: { return subgroupBroadcast(v, 7u); }
  }
}
fn row1(v: f32, r: u32) -> f32 {
  return row4(vec4<f32>(v, 0.0, 0.0, 0.0), r).x; // the unused lanes of the broadcast fold away
}

@compute @workgroup_size(WG_X, 1, 1)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = wid.y * TM;
  let b = wid.z;
  if (row0 >= p.M || b >= p.batch) { return; } // the same for the whole workgroup
  // Invocations past the last column load the first columns' values and store nothing.
  let inside = gid.x * TN < p.N;
  let col0 = select(0u, gid.x * TN, inside);
  let cols = min(TN, p.N - col0);
  let rows = min(TM, p.M - row0);
  let base_o = b * p.stride_out;
  // this lane's row of `a` (lane i ↦ row i; lanes past TM or past the matrix repeat a row)
  let row_lane = row0 + min(lane % TM, rows - 1u);
  let base_a = b * p.stride_a;
  let base_b = b * p.stride_b;
  let jn = (cols + 3u) / 4u; // VEC4_B: vec4 groups of this tile inside the matrix (N % 4 == 0: all or none of a group)
  let TN4 = TN / 4u;

  var acc: array<array<f32, MAX_T>, MAX_T>;
  var bv4: array<vec4<f32>, MAX_T>;
  if (VEC4_A && TRANS_B) {
    let K4 = p.K / 4u;
    let a_lane = (base_a + row_lane * p.K) / 4u;
    let b_row = (base_b + col0 * p.K) / 4u; // vec4 index of bm[col0][0]
    for (var k = 0u; k < K4; k++) {
      let av = a4[a_lane + k];
      for (var j = 0u; j < TN; j++) { bv4[j] = vec4<f32>(bm4[b_row + min(j, cols - 1u) * K4 + k]); }
      for (var i = 0u; i < TM; i++) {
        let x = row4(av, i);
        for (var j = 0u; j < TN; j++) {
          var s = fma(x.x, bv4[j].x, acc[i][j]);
          s = fma(x.y, bv4[j].y, s);
          s = fma(x.z, bv4[j].z, s);
          acc[i][j] = fma(x.w, bv4[j].w, s);
        }
      }
    }
  } else if (VEC4_A) {
    let K4 = p.K / 4u;
    let a_lane = (base_a + row_lane * p.K) / 4u;
    let b_col = base_b + col0; // element index of bm[0][col0]
    for (var k = 0u; k < K4; k++) {
      let av = a4[a_lane + k];
      // bv4[kk · TN4 + jj] (VEC4_B): row 4k + kk, columns col0 + 4·jj … + 3; else bv4[j][kk]
      for (var kk = 0u; kk < 4u; kk++) {
        let r = (4u * k + kk) * p.N;
        if (VEC4_B) {
          for (var jj = 0u; jj < TN4; jj++) { bv4[kk * TN4 + jj] = vec4<f32>(bm4[(r + b_col) / 4u + min(jj, jn - 1u)]); }
        } else {
          for (var j = 0u; j < TN; j++) { bv4[j][kk] = f32(bm[r + b_col + min(j, cols - 1u)]); }
        }
      }
      for (var i = 0u; i < TM; i++) {
        let x = row4(av, i);
        for (var kk = 0u; kk < 4u; kk++) {
          for (var j = 0u; j < TN; j++) {
            var bkj: f32;
            if (VEC4_B) { bkj = bv4[kk * TN4 + j / 4u][j % 4u]; } else { bkj = bv4[j][kk]; }
            acc[i][j] = fma(x[kk], bkj, acc[i][j]);
          }
        }
      }
    }
  } else {
    // one k per step: the transposed `a` (dW = dyᵀ·x, the attention's Pᵀ·dO), and odd K
    var bv: array<f32, MAX_T>;
    for (var k = 0u; k < p.K; k++) {
      var av: f32;
      if (TRANS_A) { av = a[base_a + k * p.M + row_lane]; } else { av = a[base_a + row_lane * p.K + k]; }
      if (TRANS_B) {
        for (var j = 0u; j < TN; j++) { bv[j] = f32(bm[base_b + (col0 + min(j, cols - 1u)) * p.K + k]); }
      } else if (VEC4_B) {
        for (var jj = 0u; jj < TN4; jj++) {
          let v = vec4<f32>(bm4[(base_b + k * p.N + col0) / 4u + min(jj, jn - 1u)]);
          bv[4u * jj] = v.x; bv[4u * jj + 1u] = v.y; bv[4u * jj + 2u] = v.z; bv[4u * jj + 3u] = v.w;
        }
      } else {
        for (var j = 0u; j < TN; j++) { bv[j] = f32(bm[base_b + k * p.N + col0 + min(j, cols - 1u)]); }
      }
      for (var i = 0u; i < TM; i++) {
        let x = row1(av, i);
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(x, bv[j], acc[i][j]); }
      }
    }
  }
  if (HAS_SECOND) {
    // + (alpha2 / alpha) · a2 · op(bm2) into the same accumulators, k = 0..K2−1 in order
    let f = p.alpha2 / p.alpha;
    let a2_lane = row_lane * p.K2;
    for (var k = 0u; k < p.K2; k++) {
      let av = f * a2[a2_lane + k];
      var bv: array<f32, MAX_T>;
      for (var j = 0u; j < TN; j++) {
        let n = col0 + min(j, cols - 1u);
        if (TRANS_B) { bv[j] = bm2[n * p.K2 + k]; } else { bv[j] = bm2[k * p.N + n]; }
      }
      for (var i = 0u; i < TM; i++) {
        let x = row1(av, i);
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(x, bv[j], acc[i][j]); }
      }
    }
  }

  if (!inside) { return; }
  for (var i = 0u; i < rows; i++) {
    for (var j = 0u; j < cols; j++) {
      let o = base_o + (row0 + i) * p.N + col0 + j;
      var v = p.alpha * acc[i][j];
      if (HAS_BIAS) { v += bias[col0 + j]; }
      if (ACCUMULATE) { v += out[o]; }
      out[o] = v;
    }
  }
}
