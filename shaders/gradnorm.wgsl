// gradnorm.wgsl — global L2 norm of a list of gradient tensors and the clip factor that
// shaders/adamw.wgsl multiplies the gradients by, torch.nn.utils.clip_grad_norm_ semantics:
//
//   norm  = sqrt(Σ_tensors Σ_i g_i²)
//   scale = min(1, max_norm / (norm + 1e-6))
//   bad   = 1 when norm is NaN or ±Inf (some gradient is not finite), else 0; adamw.wgsl then
//           leaves the parameters and moments as they are (the step is skipped)
//   out (4) f32 = [norm, scale, bad, 0]
//
// Two stages, both in a fixed order (no atomics: bit-identical reruns):
//   gradnorm_partial  one dispatch per tensor; workgroup w sums the squares of its block of
//                     WG·PER elements (invocation i takes i, i+WG, …; then a fixed tree) into
//                     partials[offset + w]. grad (n) f32; partials (Σ blocks) f32
//   gradnorm_final    one workgroup adds all partials (tensor by tensor, block by block, strided
//                     over WG invocations, then a fixed tree) and writes out.

override WG: u32 = 256u;
override PER: u32 = 16u;   // elements per invocation in gradnorm_partial

struct Params {
  n: u32,          // partial: elements of this tensor; final: number of partials
  offset: u32,     // partial: where this tensor's block sums go
  row: u32,        // partial: workgroups per row of the 2-D grid
  max_norm: f32,   // final
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
// final
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, WG>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn gradnorm_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * p.row;
  let base = w * WG * PER;
  var s = 0.0;
  for (var k = 0u; k < PER; k++) {
    let i = base + k * WG + lid;
    if (i < p.n) { let g = grad[i]; s = fma(g, g, s); }
  }
  let total = workgroup_sum(lid, s);
  if (lid == 0u && base < p.n) { partials[p.offset + w] = total; }
}

@compute @workgroup_size(WG)
fn gradnorm_final(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += WG) { s += partials_in[i]; }
  let total = workgroup_sum(lid, s);
  if (lid == 0u) {
    let norm = sqrt(total);
    // NaN/Inf test on the bits: WGSL lets compilers assume floats are finite in comparisons
    let bad = (bitcast<u32>(total) & 0x7f800000u) == 0x7f800000u;
    out[0] = norm;
    out[1] = min(1.0, p.max_norm / (norm + 1e-6));
    out[2] = select(0.0, 1.0, bad);
    out[3] = 0.0;
  }
}
