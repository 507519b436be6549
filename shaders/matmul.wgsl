// matmul.wgsl — batched matrix multiply with the operand layouts a transformer needs, f32
// accumulation. `bm` is stored as WT: f32 as written, f16 when the host templates the module with
// withElementType(src, 'f16') (src/kernels/template.ts) — frozen base weights kept in f16 where
// the adapter has shader-f16. Every other operand and the accumulator stay f32.
//
//   out[b] = alpha · op(a[b]) · op(bm[b])  (+ alpha2 · a2 · op(bm2) when HAS_SECOND)  (+ bias)
//            (+ out[b] when ACCUMULATE)
//   — the second product is LoRA's low-rank term (x·Wᵀ + s·u·Bᵀ, dy·W + s·g·A) in the base
//   matmul's pass, rather than a K = r matmul of its own that reads and writes `out` again.
//
//   out  (batch, M, N) row-major
//   a    (batch, M, K) row-major, or (batch, K, M) when TRANS_A
//   bm   (batch, K, N) row-major, or (batch, N, K) when TRANS_B; f32 or f16 (WT)
//   bias (N)
//
// The three layouts of a linear layer y = x·Wᵀ with W (N, K):
//   forward   y  = x · Wᵀ     TRANS_B            (NT)
//   backward  dx = dy · W     neither            (NN)
//   backward  dW = dyᵀ · x    TRANS_A            (TN)
//
// Register tiling: each invocation computes a TM×TN block of `out` and keeps it in registers;
// a workgroup is WG_X×WG_Y invocations, so it covers (WG_Y·TM) rows × (WG_X·TN) columns.
// There is no workgroup memory: on a software GPU (lavapipe, 2 cores) this shape measured
// ~6.5 GFLOP/s against ~3 for a 64×64 shared-memory tile. The best shape differs per GPU, so
// every size here is an override constant chosen by the host (src/kernels/matmul.ts).
// Reductions run k = 0..K-1 in order: the result is deterministic.
//
// VEC4: the x·Wᵀ forward (TRANS_B, not TRANS_A) with K % 4 == 0 reads both operands as vec4
// along K, through a4 and bm4 — second, vec4-typed views of the buffers bound as a and bm (the
// host binds them only then; 6 storage buffers in all, within the default limit of 8). Four k
// per load: on lavapipe each per-invocation load is a gather across the SIMD lanes, and this is
// ~1.6× faster at 1024–2048 (bench/matmul-dev/v4_vec4k.wgsl); the sums still run in k order.
// VEC4_NN: the dy·W backward (neither transposed) with K and N multiples of 4 and TN a multiple
// of 4 reads a as vec4 along K (four k per load) and bm as vec4 along N (a row's TN columns in
// TN/4 loads), through the same second bindings; the sums again run k = 0, 1, 2, … in order.

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
override TM: u32 = 4u;      // rows per invocation, ≤ MAX_T
override TN: u32 = 4u;      // columns per invocation, ≤ MAX_T
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override VEC4: bool = false; // host guarantees TRANS_B && !TRANS_A && K % 4 == 0
override VEC4_NN: bool = false; // host guarantees !TRANS_A && !TRANS_B && K % 4 == 0 && N % 4 == 0 && TN % 4 == 0
override HAS_SECOND: bool = false; // host guarantees !TRANS_A && batch == 1

const MAX_T = 8u;

alias WT = f32; // element type of `bm`; the only templated line (see header)

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  stride_a: u32, stride_b: u32, stride_out: u32, // elements between batch items
  alpha: f32,
  K2: u32, alpha2: f32, _p0: u32, _p1: u32, // the second product (HAS_SECOND)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<WT>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>; // bound to a dummy when !HAS_BIAS
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>; // a again when VEC4 or VEC4_NN, else a dummy
@group(0) @binding(6) var<storage, read> bm4: array<vec4<WT>>; // bm again when VEC4 or VEC4_NN, else a dummy
@group(0) @binding(7) var<storage, read> a2: array<f32>; // HAS_SECOND: (M, K2) row-major, else a dummy
@group(0) @binding(8) var<storage, read> bm2: array<f32>; // HAS_SECOND: (K2, N), or (N, K2) when TRANS_B; else a dummy

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A) { return a[base + k * p.M + m]; }
  return a[base + m * p.K + k];
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (TRANS_B) { return f32(bm[base + n * p.K + k]); }
  return f32(bm[base + k * p.N + n]);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * TM;
  let col0 = gid.x * TN;
  let b = gid.z;
  if (row0 >= p.M || col0 >= p.N || b >= p.batch) { return; }
  let base_a = b * p.stride_a;
  let base_b = b * p.stride_b;
  let base_o = b * p.stride_out;
  // Clamp loads to the matrix edge; the stores below skip the out-of-range part.
  let rows = min(TM, p.M - row0);
  let cols = min(TN, p.N - col0);

  var acc: array<array<f32, MAX_T>, MAX_T>;
  var av: array<f32, MAX_T>;
  var bv: array<f32, MAX_T>;
  var k0 = 0u;
  if (VEC4) {
    var av4: array<vec4<f32>, MAX_T>;
    var bv4: array<vec4<f32>, MAX_T>;
    let K4 = p.K / 4u;
    let a_row = (base_a + row0 * p.K) / 4u; // vec4 index of a[row0][0]
    let b_row = (base_b + col0 * p.K) / 4u; // vec4 index of bm[col0][0]
    for (var k = 0u; k < K4; k++) {
      for (var i = 0u; i < TM; i++) { av4[i] = a4[a_row + min(i, rows - 1u) * K4 + k]; }
      for (var j = 0u; j < TN; j++) { bv4[j] = vec4<f32>(bm4[b_row + min(j, cols - 1u) * K4 + k]); }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          var s = fma(av4[i].x, bv4[j].x, acc[i][j]);
          s = fma(av4[i].y, bv4[j].y, s);
          s = fma(av4[i].z, bv4[j].z, s);
          acc[i][j] = fma(av4[i].w, bv4[j].w, s);
        }
      }
    }
    k0 = p.K;
  }
  if (VEC4_NN) {
    var av4: array<vec4<f32>, MAX_T>;
    var bv4: array<vec4<f32>, 8>; // [kk · 2 + jj]: row k0 + kk, columns col0 + 4·jj … + 3 (TN ≤ MAX_T = 8)
    let K4 = p.K / 4u;
    let N4 = p.N / 4u;
    let TN4 = TN / 4u;
    let jn = (cols + 3u) / 4u; // vec4 groups of this tile inside the matrix (N % 4 == 0: all or none of a group)
    let a_row = (base_a + row0 * p.K) / 4u;
    let b_col = (base_b + col0) / 4u;
    for (var k = 0u; k < K4; k++) {
      for (var i = 0u; i < TM; i++) { av4[i] = a4[a_row + min(i, rows - 1u) * K4 + k]; }
      for (var kk = 0u; kk < 4u; kk++) {
        for (var jj = 0u; jj < TN4; jj++) { bv4[kk * 2u + jj] = vec4<f32>(bm4[b_col + (4u * k + kk) * N4 + min(jj, jn - 1u)]); }
      }
      for (var i = 0u; i < TM; i++) {
        for (var kk = 0u; kk < 4u; kk++) {
          let x = av4[i][kk];
          for (var jj = 0u; jj < TN4; jj++) {
            let b4 = bv4[kk * 2u + jj];
            let j = 4u * jj;
            acc[i][j] = fma(x, b4.x, acc[i][j]);
            acc[i][j + 1u] = fma(x, b4.y, acc[i][j + 1u]);
            acc[i][j + 2u] = fma(x, b4.z, acc[i][j + 2u]);
            acc[i][j + 3u] = fma(x, b4.w, acc[i][j + 3u]);
          }
        }
      }
    }
    k0 = p.K;
  }
  for (var k = k0; k < p.K; k++) {
    for (var i = 0u; i < TM; i++) { av[i] = load_a(base_a, row0 + min(i, rows - 1u), k); }
    for (var j = 0u; j < TN; j++) { bv[j] = load_b(base_b, k, col0 + min(j, cols - 1u)); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(av[i], bv[j], acc[i][j]);
      }
    }
  }
  if (HAS_SECOND) {
    // + (alpha2 / alpha) · a2 · op(bm2) into the same accumulators, k = 0..K2−1 in order
    let f = p.alpha2 / p.alpha;
    for (var k = 0u; k < p.K2; k++) {
      for (var i = 0u; i < TM; i++) { av[i] = f * a2[(row0 + min(i, rows - 1u)) * p.K2 + k]; }
      for (var j = 0u; j < TN; j++) {
        let n = col0 + min(j, cols - 1u);
        if (TRANS_B) { bv[j] = bm2[n * p.K2 + k]; } else { bv[j] = bm2[k * p.N + n]; }
      }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
      }
    }
  }

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
