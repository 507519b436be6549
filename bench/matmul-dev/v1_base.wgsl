// matmul.wgsl — batched matrix multiply with the operand layouts a transformer needs, f32
// accumulation. `bm` is stored as WT: f32 as written, f16 when the host templates the module with
// withElementType(src, 'f16') (src/kernels/template.ts) — frozen base weights kept in f16 where
// the adapter has shader-f16. Every other operand and the accumulator stay f32.
//
//   out[b] = alpha · op(a[b]) · op(bm[b])  (+ bias)  (+ out[b] when ACCUMULATE)
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

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
override TM: u32 = 4u;      // rows per invocation, ≤ MAX_T
override TN: u32 = 4u;      // columns per invocation, ≤ MAX_T
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

const MAX_T = 8u;

alias WT = f32; // element type of `bm`; the only templated line (see header)

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  stride_a: u32, stride_b: u32, stride_out: u32, // elements between batch items
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<WT>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>; // bound to a dummy when !HAS_BIAS

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
  for (var k = 0u; k < p.K; k++) {
    for (var i = 0u; i < TM; i++) { av[i] = load_a(base_a, row0 + min(i, rows - 1u), k); }
    for (var j = 0u; j < TN; j++) { bv[j] = load_b(base_b, k, col0 + min(j, cols - 1u)); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(av[i], bv[j], acc[i][j]);
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
