// matmul_subgroup_w.wgsl — the two layouts of a linear layer's big products, x·Wᵀ (TRANS_B) and
// dy·W (neither transposed), of shaders/matmul.wgsl's matmul, with K % 4 == 0 and N % 4 == 0, for
// adapters with `subgroups`; same parameters and results (the same k order and fma chain per
// output, so the same bits as the other two kernels).
//
//   out[b] = alpha · a[b] · op(bm[b])  (+ alpha2 · a2 · op(bm2) when HAS_SECOND)  (+ bias)  (+ out[b] when ACCUMULATE)
//   a (batch, M, K) row-major; bm (batch, K, N) row-major, or (batch, N, K) when TRANS_B; f32 or f16 (WT)
//
// shaders/matmul_subgroup.wgsl shares the rows of `a` through the subgroup and has each lane load
// its own columns of bm. Here it is the other way round: the workgroup's 16 columns are the same
// for every lane (they come from the workgroup id) and each lane owns TM rows of its own. For four
// k the workgroup needs sixteen vec4 of bm — dy·W: rows k…k+3 × four groups of 4 columns, along N;
// x·Wᵀ: one per column, along K. Lane l loads tiles l and l + 8 (l = its index mod 8), and every
// lane takes each tile from its lane by subgroupBroadcast, a register move. Per lane and four k
// that is TM + 2 vec4 loads for 64·TM fma, against 5 for 128 in the other kernel's 8 × 4.
// On lavapipe, where each lane's load in a loop is a per-lane loop of scalar loads and branches
// (see that file), timed round-robin against that kernel's 32 × 1 of 8×4 (bench/matmul-dev/w.ts,
// best of 6–9, four runs) at 1024³ and the LoRA step's shapes (1024 × 128…688 × 256…688): dy·W
// 1.0–1.5×, x·Wᵀ 1.05–1.6× (but 0.7–1.6× at N = 128, k and v); bit for bit the same. With x·Wᵀ
// here too (dy·W here in both), the whole step was 9 % faster (bench/profile-dev/ab.ts, 3.78
// against 4.14 s, median of 9 interleaved). TM = 4 beat 2.
//
// Needs every lane of a subgroup active and at least 8 lanes in it: the host uses this kernel only
// where the adapter's smallest subgroup has ≥ 8 lanes and WG_X is a multiple of its largest. No
// invocation returns before the broadcasts: rows past M load row M − 1 and store nothing, columns
// past N load the last one and store nothing.
enable subgroups;

override WG_X: u32 = 8u;
override TM: u32 = 4u;     // rows per invocation, ≤ MAX_TM
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override HAS_SECOND: bool = false; // host guarantees batch == 1

const MAX_TM = 4u;

alias WT = f32; // element type of `bm`; the only templated line (src/kernels/template.ts)

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  stride_a: u32, stride_b: u32, stride_out: u32, // elements between batch items
  alpha: f32,
  K2: u32, alpha2: f32, _p0: u32, _p1: u32, // the second product (HAS_SECOND)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bm4: array<vec4<WT>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>; // a dummy when !HAS_BIAS
@group(0) @binding(5) var<storage, read> a2: array<f32>;  // HAS_SECOND: (M, K2) row-major, else a dummy
@group(0) @binding(6) var<storage, read> bm24: array<vec4<f32>>; // HAS_SECOND && !TRANS_B: (K2, N) as vec4 along N, else a dummy
@group(0) @binding(7) var<storage, read> bm2: array<f32>; // HAS_SECOND && TRANS_B: (N, K2), else a dummy

alias Acc = array<array<vec4<f32>, 4>, MAX_TM>; // acc[i][jj]: row i, columns 4·jj … 4·jj + 3
alias Rows = array<vec4<f32>, MAX_TM>;          // av[i]: row i's four k

// acc[i][jj] += a[row i][k + kk] · t, t the columns 4·jj … of bm's row k + kk. Called with constant
// kk and jj, so after inlining every index folds.
fn fma_tile(acc: ptr<function, Acc>, av: ptr<function, Rows>, kk: u32, jj: u32, t: vec4<f32>) {
  for (var i = 0u; i < TM; i++) { (*acc)[i][jj] = fma(vec4<f32>((*av)[i][kk]), t, (*acc)[i][jj]); }
}

// x·Wᵀ: the columns 4·jj … 4·jj + 3, each a vec4 of four k (c0 … c3), turned into four rows of k.
fn fma_columns(acc: ptr<function, Acc>, av: ptr<function, Rows>, jj: u32, c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>) {
  fma_tile(acc, av, 0u, jj, vec4<f32>(c0.x, c1.x, c2.x, c3.x));
  fma_tile(acc, av, 1u, jj, vec4<f32>(c0.y, c1.y, c2.y, c3.y));
  fma_tile(acc, av, 2u, jj, vec4<f32>(c0.z, c1.z, c2.z, c3.z));
  fma_tile(acc, av, 3u, jj, vec4<f32>(c0.w, c1.w, c2.w, c3.w));
}

@compute @workgroup_size(WG_X, 1, 1)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(subgroup_invocation_id) lane: u32) {
  let b = wid.z;
  if (b >= p.batch) { return; } // the same for the whole workgroup
  let K4 = p.K / 4u;
  let N4 = p.N / 4u;
  let g0 = wid.x * 4u; // the workgroup's first group of 4 columns
  let row0 = (wid.y * WG_X + lid.x) * TM;
  let base_a = b * p.stride_a / 4u;
  let base_b = b * p.stride_b / 4u;
  let l = lane % 8u;
  // lane l's two tiles (vec4 indices at k = 0, and how far they move per four k):
  //   dy·W  tile l = rows kk = l / 4 and 2 + l / 4, column group g0 + l % 4
  //   x·Wᵀ  columns 4·g0 + l and 4·g0 + l + 8
  var b0: u32; var b1: u32; var step: u32;
  if (TRANS_B) {
    b0 = base_b + min(4u * g0 + l, p.N - 1u) * K4;
    b1 = base_b + min(4u * g0 + l + 8u, p.N - 1u) * K4;
    step = 1u;
  } else {
    b0 = base_b + (l / 4u) * N4 + min(g0 + l % 4u, N4 - 1u);
    b1 = b0 + 2u * N4;
    step = 4u * N4;
  }
  var a_row: array<u32, MAX_TM>;
  for (var i = 0u; i < TM; i++) { a_row[i] = base_a + min(row0 + i, p.M - 1u) * K4; }

  var acc: Acc;
  var av: Rows;
  for (var k = 0u; k < K4; k++) {
    let v0 = vec4<f32>(bm4[b0 + step * k]);
    let v1 = vec4<f32>(bm4[b1 + step * k]);
    for (var i = 0u; i < TM; i++) { av[i] = a4[a_row[i] + k]; }
    if (TRANS_B) {
      fma_columns(&acc, &av, 0u, subgroupBroadcast(v0, 0u), subgroupBroadcast(v0, 1u), subgroupBroadcast(v0, 2u), subgroupBroadcast(v0, 3u));
      fma_columns(&acc, &av, 1u, subgroupBroadcast(v0, 4u), subgroupBroadcast(v0, 5u), subgroupBroadcast(v0, 6u), subgroupBroadcast(v0, 7u));
      fma_columns(&acc, &av, 2u, subgroupBroadcast(v1, 0u), subgroupBroadcast(v1, 1u), subgroupBroadcast(v1, 2u), subgroupBroadcast(v1, 3u));
      fma_columns(&acc, &av, 3u, subgroupBroadcast(v1, 4u), subgroupBroadcast(v1, 5u), subgroupBroadcast(v1, 6u), subgroupBroadcast(v1, 7u));
    } else {
      fma_tile(&acc, &av, 0u, 0u, subgroupBroadcast(v0, 0u));
      fma_tile(&acc, &av, 0u, 1u, subgroupBroadcast(v0, 1u));
      fma_tile(&acc, &av, 0u, 2u, subgroupBroadcast(v0, 2u));
      fma_tile(&acc, &av, 0u, 3u, subgroupBroadcast(v0, 3u));
      fma_tile(&acc, &av, 1u, 0u, subgroupBroadcast(v0, 4u));
      fma_tile(&acc, &av, 1u, 1u, subgroupBroadcast(v0, 5u));
      fma_tile(&acc, &av, 1u, 2u, subgroupBroadcast(v0, 6u));
      fma_tile(&acc, &av, 1u, 3u, subgroupBroadcast(v0, 7u));
      fma_tile(&acc, &av, 2u, 0u, subgroupBroadcast(v1, 0u));
      fma_tile(&acc, &av, 2u, 1u, subgroupBroadcast(v1, 1u));
      fma_tile(&acc, &av, 2u, 2u, subgroupBroadcast(v1, 2u));
      fma_tile(&acc, &av, 2u, 3u, subgroupBroadcast(v1, 3u));
      fma_tile(&acc, &av, 3u, 0u, subgroupBroadcast(v1, 4u));
      fma_tile(&acc, &av, 3u, 1u, subgroupBroadcast(v1, 5u));
      fma_tile(&acc, &av, 3u, 2u, subgroupBroadcast(v1, 6u));
      fma_tile(&acc, &av, 3u, 3u, subgroupBroadcast(v1, 7u));
    }
  }
  if (HAS_SECOND) {
    // + (alpha2 / alpha) · a2 · op(bm2) into the same accumulators, k = 0..K2−1 in order. K2 is
    // LoRA's rank, small: for dy·W each lane loads bm2's row itself; for x·Wᵀ (bm2 (N, K2)) lane l
    // loads columns l and l + 8, shared as above.
    let f = p.alpha2 / p.alpha;
    let c0 = min(4u * g0 + l, p.N - 1u) * p.K2;
    let c1 = min(4u * g0 + l + 8u, p.N - 1u) * p.K2;
    for (var k = 0u; k < p.K2; k++) {
      for (var i = 0u; i < TM; i++) { av[i].x = f * a2[min(row0 + i, p.M - 1u) * p.K2 + k]; }
      if (TRANS_B) {
        let s0 = bm2[c0 + k];
        let s1 = bm2[c1 + k];
        fma_tile(&acc, &av, 0u, 0u, vec4<f32>(subgroupBroadcast(s0, 0u), subgroupBroadcast(s0, 1u), subgroupBroadcast(s0, 2u), subgroupBroadcast(s0, 3u)));
        fma_tile(&acc, &av, 0u, 1u, vec4<f32>(subgroupBroadcast(s0, 4u), subgroupBroadcast(s0, 5u), subgroupBroadcast(s0, 6u), subgroupBroadcast(s0, 7u)));
        fma_tile(&acc, &av, 0u, 2u, vec4<f32>(subgroupBroadcast(s1, 0u), subgroupBroadcast(s1, 1u), subgroupBroadcast(s1, 2u), subgroupBroadcast(s1, 3u)));
        fma_tile(&acc, &av, 0u, 3u, vec4<f32>(subgroupBroadcast(s1, 4u), subgroupBroadcast(s1, 5u), subgroupBroadcast(s1, 6u), subgroupBroadcast(s1, 7u)));
      } else {
        for (var jj = 0u; jj < 4u; jj++) { fma_tile(&acc, &av, 0u, jj, bm24[k * N4 + min(g0 + jj, N4 - 1u)]); }
      }
    }
  }

  let base_o = b * p.stride_out;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= p.M) { break; }
    for (var jj = 0u; jj < 4u; jj++) {
      let g = g0 + jj;
      if (g >= N4) { break; }
      let o = base_o + row * p.N + 4u * g;
      var v = p.alpha * acc[i][jj];
      if (HAS_BIAS) { v += vec4<f32>(bias[4u * g], bias[4u * g + 1u], bias[4u * g + 2u], bias[4u * g + 3u]); }
      if (ACCUMULATE) { v += vec4<f32>(out[o], out[o + 1u], out[o + 2u], out[o + 3u]); }
      out[o] = v.x; out[o + 1u] = v.y; out[o + 2u] = v.z; out[o + 3u] = v.w;
    }
  }
}
