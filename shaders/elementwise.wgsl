// elementwise.wgsl — the small vector ops a transformer step needs, and a column sum.
//
//   add       out = a + b                      a, b, out (n)       residual stream
//   axpy      y  += alpha · x                  x, y (n)            gradient accumulation
//   scale     x  *= alpha                      x (n)
//   sum_rows  out[chunk, c] (+)= Σ_{r ∈ chunk} inp[r, c]
//             inp (N, C) row-major, out (ceil(N / ROWS), C): column sums over chunks of ROWS
//             rows, summed r = first..last in order; the host sums the chunk rows again (same
//             kernel) until one row is left. Bias gradients (Qwen2 q/k/v) and RMSNorm's dweight.
//
// Entry points share binding numbers (each uses its own resources 0..k-1; auto layouts only
// see the variables an entry point uses). Long vectors run on a 2-D grid of WG-wide workgroups
// (at most 65535 per dimension): element = x + y·(workgroups in x)·WG.

override WG: u32 = 256u;
override ROWS: u32 = 64u;          // sum_rows: rows per chunk
override ACCUMULATE: bool = false; // sum_rows: add into out

struct Params {
  n: u32,      // elements (add/axpy/scale); N rows (sum_rows)
  C: u32,      // sum_rows: columns
  alpha: f32,  // axpy, scale
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@group(0) @binding(1) var<storage, read_write> xs: array<f32>; // scale, in place

@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(WG)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { y[i] = fma(p.alpha, x[i], y[i]); }
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { xs[i] = p.alpha * xs[i]; }
}

// grid: (ceil(C / WG), chunks)
@compute @workgroup_size(WG)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let chunk = gid.y;
  if (c >= p.C) { return; }
  let r1 = min(p.n, (chunk + 1u) * ROWS);
  var s = 0.0;
  for (var r = chunk * ROWS; r < r1; r++) { s += inp[r * p.C + c]; }
  let o = chunk * p.C + c;
  if (ACCUMULATE) { s += sums[o]; }
  sums[o] = s;
}
