// segment.wgsl — per-sample means of the per-token LM-head statistics: what the curriculum reads
// back after a scoring pass, (S × 8) floats instead of (N × 4).
//
//   stats    (N, 4) f32  [nll, entropy, max-probability, hit] per token (shaders/lmhead.wgsl)
//   segments (N) i32     sample index 0..S-1 of each token in the batch, -1 = ignore
//   targets  (N) i32     tokens with target -1 (no loss: prompt, padding) do not count
//   out      (S, 8) f32  [mean nll, mean entropy, mean max-probability, token accuracy (mean hit),
//                         token count, 0, 0, 0]; means are 0 for a sample without counted tokens
//
// One workgroup (WG invocations, a power of two) per sample scans all N tokens: invocation i
// sums tokens i, i+WG, … in order, then a fixed tree adds the WG partial sums. No atomics, so
// the result is bit-identical run to run and independent of how samples are packed. The cost,
// S·N reads of two i32, is small next to the forward pass that made the stats.

override WG: u32 = 256u;

struct Params {
  N: u32,
  S: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> segments: array<i32>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> red: array<vec4<f32>, WG>;
var<workgroup> cnt: array<f32, WG>;

@compute @workgroup_size(WG)
fn segment_mean(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let s = wid.x + wid.y * nwg.x;
  if (s >= p.S) { return; }
  // sums of nll, entropy, max-probability, hit; and the token count
  var acc = vec4<f32>(0.0);
  var c = 0.0;
  for (var n = lid; n < p.N; n += WG) {
    if (segments[n] == i32(s) && targets[n] >= 0) {
      acc += stats[n];
      c += 1.0;
    }
  }
  red[lid] = acc;
  cnt[lid] = c;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      red[lid] += red[lid + k];
      cnt[lid] += cnt[lid + k];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let n = cnt[0];
    var mean = vec4<f32>(0.0);
    if (n > 0.0) { mean = red[0] / n; }
    out[2u * s] = mean;
    out[2u * s + 1u] = vec4<f32>(n, 0.0, 0.0, 0.0);
  }
}
