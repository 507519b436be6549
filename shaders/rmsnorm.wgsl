// rmsnorm.wgsl — RMSNorm as in Hugging Face Llama/Qwen, in f32, over rows of length C:
//
//   rstd[n]   = 1 / sqrt(mean_c(inp[n, c]²) + eps)
//   out[n, c] = weight[c] · (inp[n, c] · rstd[n])
//
//   inp, out, dout, dinp (N, C) row-major; weight, dweight (C); rstd (N), saved by the forward.
//   Generic over rows: the model's norms have N = tokens, C = hidden; Qwen3's q_norm/k_norm have
//   N = tokens · heads, C = head_dim.
//
// Backward, with g = weight ⊙ dout and r = rstd[n]:
//   dinp[n, c]  (+)= r · g[c] − inp[n, c] · r³ · (1/C) · Σ_c' g[c'] · inp[n, c']
//   dweight[c]   = Σ_n dout[n, c] · inp[n, c] · r[n]
// dinp is added into when ACCUMULATE (the residual stream's gradient). dweight is reduced over
// rows in chunks of ROWS, in order (rmsnorm_dweight), then over chunks by sum_rows in
// elementwise.wgsl: deterministic, no atomics.
//
// One workgroup (WG invocations, a power of two) per row; rows run on a 2-D grid past 65535.
// The in-row reduction is a fixed tree in workgroup memory.

override WG: u32 = 256u;
override ROWS: u32 = 64u;
override ACCUMULATE: bool = false;

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
// forward
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
// dweight: chunk sums (ceil(N / ROWS), C)
@group(0) @binding(2) var<storage, read> dout_w: array<f32>;
@group(0) @binding(3) var<storage, read> rstd_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

var<workgroup> red: array<f32, WG>;

// Sum of `v` over the workgroup, in a fixed tree order; every invocation gets the result.
// Once per kernel: there is no barrier after the final read of red[0].
fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) { let v = inp[base + c]; s = fma(v, v, s); }
  let r = 1.0 / sqrt(workgroup_sum(lid, s) / f32(p.C) + p.eps);
  if (lid == 0u) { rstd[row] = r; }
  for (var c = lid; c < p.C; c += WG) { out[base + c] = weight[c] * (inp[base + c] * r); }
}

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  let r = rstd_in[row];
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) { s = fma(weight[c] * dout[base + c], inp[base + c], s); }
  let k = workgroup_sum(lid, s) * r * r * r / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    var d = r * weight[c] * dout[base + c] - inp[base + c] * k;
    if (ACCUMULATE) { d += dinp[base + c]; }
    dinp[base + c] = d;
  }
}

// grid: (ceil(C / WG), chunks); partial[chunk, c] = Σ_{n ∈ chunk} dout·inp·rstd, n in order
@compute @workgroup_size(WG)
fn rmsnorm_dweight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let chunk = gid.y;
  if (c >= p.C) { return; }
  let n1 = min(p.N, (chunk + 1u) * ROWS);
  var s = 0.0;
  for (var n = chunk * ROWS; n < n1; n++) { s = fma(dout_w[n * p.C + c] * inp[n * p.C + c], rstd_w[n], s); }
  let o = chunk * p.C + c;
  if (ACCUMULATE) { s += partial[o]; }
  partial[o] = s;
}
