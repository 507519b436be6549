// v3_klanes — lanes along K. A workgroup is KL × WG_X × WG_Y invocations; the KL invocations that
// share (lid.y, lid.z) own one TM×TN block of `out` and split the K loop among themselves
// (invocation l takes k ≡ l mod KL), so adjacent invocations read adjacent addresses whenever
// the operand is K-contiguous (a, and bm when TRANS_B: the x·Wᵀ forward). The KL partial blocks
// are summed through workgroup memory in a fixed order: deterministic.
// Same bindings and overrides as shaders/matmul.wgsl, plus KL.
override KL: u32 = 8u;
override WG_X: u32 = 4u;
override WG_Y: u32 = 4u;
override TM: u32 = 4u;
override TN: u32 = 4u;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

const MAX_T = 8u;
alias WT = f32;

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  stride_a: u32, stride_b: u32, stride_out: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<WT>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// red[(block · TM·TN + e) · KL + l]: partial sums of entry e of a block, from lane l.
var<workgroup> red: array<f32, KL * WG_X * WG_Y * TM * TN>;

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A) { return a[base + k * p.M + m]; }
  return a[base + m * p.K + k];
}
fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (TRANS_B) { return f32(bm[base + n * p.K + k]); }
  return f32(bm[base + k * p.N + n]);
}

@compute @workgroup_size(KL, WG_X, WG_Y)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let l = lid.x;
  let row0 = (wid.y * WG_Y + lid.z) * TM;
  let col0 = (wid.x * WG_X + lid.y) * TN;
  let b = wid.z;
  let live = row0 < p.M && col0 < p.N;
  let base_a = b * p.stride_a;
  let base_b = b * p.stride_b;
  let base_o = b * p.stride_out;
  let rows = select(1u, min(TM, p.M - row0), live);
  let cols = select(1u, min(TN, p.N - col0), live);
  let r0 = select(0u, row0, live);
  let c0 = select(0u, col0, live);

  var acc: array<array<f32, MAX_T>, MAX_T>;
  var av: array<f32, MAX_T>;
  var bv: array<f32, MAX_T>;
  for (var k = l; k < p.K; k += KL) {
    for (var i = 0u; i < TM; i++) { av[i] = load_a(base_a, r0 + min(i, rows - 1u), k); }
    for (var j = 0u; j < TN; j++) { bv[j] = load_b(base_b, k, c0 + min(j, cols - 1u)); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(av[i], bv[j], acc[i][j]);
      }
    }
  }
  let blk = (lid.z * WG_X + lid.y) * TM * TN;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      red[(blk + i * TN + j) * KL + l] = acc[i][j];
    }
  }
  workgroupBarrier();
  if (!live) { return; }
  for (var e = l; e < TM * TN; e += KL) {
    let i = e / TN;
    let j = e % TN;
    if (i < rows && j < cols) {
      var s = 0.0;
      for (var q = 0u; q < KL; q++) { s += red[(blk + e) * KL + q]; }
      let o = base_o + (row0 + i) * p.N + col0 + j;
      var v = p.alpha * s;
      if (HAS_BIAS) { v += bias[col0 + j]; }
      if (ACCUMULATE) { v += out[o]; }
      out[o] = v;
    }
  }
}
