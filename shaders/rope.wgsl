// rope.wgsl — rotary position embedding, rotate-half layout as in Hugging Face Llama/Qwen.
//
//   x      (N, H, D) row-major, rotated in place (N tokens, H heads, head_dim D, D even)
//   pos    (N) i32, the position of each token
//   inv_freq (D/2) f32, from ropeInvFreq (src/kernels/rope.ts): rope_theta and Llama-3 scaling
//
// With x1 = x[..., :D/2], x2 = x[..., D/2:] and, per pair i, the angle a = pos · inv_freq[i]
// rounded to f32 (HF computes freqs = inv_freq @ pos in float32, then cos/sin):
//   forward   x1' = x1·cos a − x2·sin a     x2' = x2·cos a + x1·sin a
//   inverse   x1' = x1·cos a + x2·sin a     x2' = x2·cos a − x1·sin a   (INVERSE)
// The rotation is orthogonal, so the backward of RoPE is the inverse rotation of the gradient.
//
// WGSL only bounds the error of cos/sin on [−π, π]; angles reach thousands of radians at long
// positions, so the angle is reduced by 2π first (Cody–Waite, 2π split in three parts; the
// first part has 8 significant bits so k·C1 is exact for k < 2^16).
//
// One invocation per (token, head, pair); a 2-D grid past 65535 workgroups.

override WG: u32 = 64u;
override INVERSE: bool = false;

struct Params {
  N: u32,
  H: u32,
  D: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;

const INV_TWO_PI: f32 = 0.15915494309189535;
const C1: f32 = 6.28125;
const C2: f32 = 0.0019353071693331003;  // 2π − C1, rounded to f32
const C3: f32 = 1.0253131677e-11;       // 2π − C1 − C2

fn reduce_angle(a: f32) -> f32 {
  let k = round(a * INV_TWO_PI);
  return ((a - k * C1) - k * C2) - k * C3;
}

@compute @workgroup_size(WG)
fn rope_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let half = p.D / 2u;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.N * p.H * half) { return; }
  let i = idx % half;
  let row = idx / half;          // token · H + head
  let n = row / p.H;
  let a = reduce_angle(f32(pos[n]) * inv_freq[i]);
  let c = cos(a);
  var s = sin(a);
  if (INVERSE) { s = -s; }
  let o = row * p.D + i;
  let x1 = x[o];
  let x2 = x[o + half];
  x[o] = x1 * c - x2 * s;
  x[o + half] = x2 * c + x1 * s;
}
