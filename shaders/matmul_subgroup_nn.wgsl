// matmul_subgroup_nn.wgsl — the dy·W layout of shaders/matmul.wgsl's matmul (neither operand
// transposed, K % 4 == 0, N % 4 == 0), for adapters with `subgroups`; same parameters and results
// (the same k order and fma chain per output, so the same bits as the other two kernels).
//
//   out[b] = alpha · a[b] · bm[b]  (+ alpha2 · a2 · bm2 when HAS_SECOND)  (+ bias)  (+ out[b] when ACCUMULATE)
//   a (batch, M, K), bm (batch, K, N) row-major; bm f32 or f16 (WT)
//
// shaders/matmul_subgroup.wgsl shares the rows of `a` through the subgroup and has each lane load
// its own columns of bm. Here it is the other way round: a workgroup's 16 columns are the same for
// every lane (they come from the workgroup id), each lane owns TM rows of its own. For four k the
// workgroup needs a 4 × 16 tile of bm — 16 vec4 along N; lane l loads tiles l and l + 8 (l = its
// index mod 8), and every lane takes each tile from its lane by subgroupBroadcast, a register move.
// Per lane and four k that is TM + 2 vec4 loads for TM · 64 fma, against 5 for 128 in the other
// kernel's 8 × 4. On lavapipe, where each lane's load in a loop is a per-lane loop of scalar loads
// and branches (see that file), timed round-robin against that kernel's 32 × 1 of 8×4 (best of 6,
// bench/matmul-dev/nn.ts): 1024³ 17–21 against 12–17.6 GFLOP/s, and 1.0–1.5× at the LoRA step's
// dy·W shapes (1024 × 128…688 × 256…688), bit for bit the same; TM = 2 was slower than 4.
//
// Needs every lane of a subgroup active and at least 8 lanes in it: the host uses this kernel only
// where the adapter's smallest subgroup has ≥ 8 lanes and WG_X is a multiple of its largest. No
// invocation returns before the broadcasts: rows past M load row M − 1 and store nothing, column
// groups past N load the last one and store nothing.
enable subgroups;

override WG_X: u32 = 8u;
override TM: u32 = 4u;     // rows per invocation, ≤ MAX_TM
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
@group(0) @binding(6) var<storage, read> bm24: array<vec4<f32>>; // HAS_SECOND: (K2, N) as vec4 along N, else a dummy

// acc[i][jj] += a[row i][k] · bm[k][col0 + 4·jj …], for k = 4·k4 + kk: called with constant kk and
// jj, so after inlining every index folds.
fn fma_tile(acc: ptr<function, array<array<vec4<f32>, 4>, MAX_TM>>, av: ptr<function, array<vec4<f32>, MAX_TM>>,
            kk: u32, jj: u32, t: vec4<f32>) {
  for (var i = 0u; i < TM; i++) { (*acc)[i][jj] = fma(vec4<f32>((*av)[i][kk]), t, (*acc)[i][jj]); }
}

@compute @workgroup_size(WG_X, 1, 1)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(subgroup_invocation_id) lane: u32) {
  let b = wid.z;
  if (b >= p.batch) { return; } // the same for the whole workgroup
  let K4 = p.K / 4u;
  let N4 = p.N / 4u;
  let g0 = wid.x * 4u; // the workgroup's first vec4 column group
  let row0 = (wid.y * WG_X + lid.x) * TM;
  let base_a = b * p.stride_a / 4u;
  let base_b = b * p.stride_b / 4u;
  // lane l's two tiles: l = 4·kk + jj (rows k + kk) and l + 8 (rows k + 2 + kk), column group g0 + jj
  let l = lane % 8u;
  let b0 = base_b + (l / 4u) * N4 + min(g0 + l % 4u, N4 - 1u);
  let b1 = b0 + 2u * N4;
  var a_row: array<u32, MAX_TM>;
  for (var i = 0u; i < TM; i++) { a_row[i] = base_a + min(row0 + i, p.M - 1u) * K4; }

  var acc: array<array<vec4<f32>, 4>, MAX_TM>;
  var av: array<vec4<f32>, MAX_TM>;
  for (var k = 0u; k < K4; k++) {
    let r = 4u * k * N4;
    let v0 = vec4<f32>(bm4[b0 + r]);
    let v1 = vec4<f32>(bm4[b1 + r]);
    for (var i = 0u; i < TM; i++) { av[i] = a4[a_row[i] + k]; }
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
  if (HAS_SECOND) {
    // + (alpha2 / alpha) · a2 · bm2 into the same accumulators, k = 0..K2−1 in order (K2 is LoRA's
    // rank: small, so each lane loads bm2's row itself)
    let f = p.alpha2 / p.alpha;
    for (var k = 0u; k < p.K2; k++) {
      for (var i = 0u; i < TM; i++) { av[i].x = f * a2[min(row0 + i, p.M - 1u) * p.K2 + k]; }
      for (var jj = 0u; jj < 4u; jj++) { fma_tile(&acc, &av, 0u, jj, bm24[k * N4 + min(g0 + jj, N4 - 1u)]); }
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
