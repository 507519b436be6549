// adamw.wgsl — one AdamW step on an f32 tensor, torch.optim.AdamW semantics (amsgrad off,
// maximize off), with the gradient scaled by the clip factor of shaders/gradnorm.wgsl read from
// the GPU (no read-back between the grad norm and the update):
//
//   g = grad · clip[1]                      (clip = [norm, scale, bad, 0]; scale 1 without HAS_CLIP)
//   nothing changes when clip[2] = 1        (a NaN/Inf gradient: the step is skipped)
//   param ← param · (1 − lr·wd)             decoupled weight decay
//   m ← m + (1 − β1)·(g − m)                torch's exp_avg.lerp_(grad, 1 − β1)
//   v ← β2·v + (1 − β2)·g²
//   param ← param − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
//
//   param, grad, m, v (n) f32; clip (4) f32
// The scalars that depend on the step t (1 − lr·wd, lr / (1 − β1^t), sqrt(1 − β2^t)) are computed
// by the host in float64 (src/kernels/adamw.ts): in the uniform block, or (HAS_STEP) in a small
// storage buffer `sc` = [decay, step_size, bc2_sqrt, 0] the host rewrites each step, so that a
// training step's uniforms and bind groups stay the same from step to step. Elementwise: WG
// elements per workgroup, on a 2-D grid past 65535 workgroups.

override WG: u32 = 256u;
override HAS_CLIP: bool = false;
override HAS_STEP: bool = false;

struct Params {
  n: u32,
  row: u32,          // invocations per row of the 2-D grid (num_workgroups.x · WG)
  _pad0: u32,
  _pad1: u32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  decay: f32,        // 1 − lr·weight_decay
  step_size: f32,    // lr / (1 − β1^t)
  bc2_sqrt: f32,     // sqrt(1 − β2^t)
  _pad2: f32,
  _pad3: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> clip: array<f32>; // a dummy when !HAS_CLIP
@group(0) @binding(6) var<storage, read> sc: array<f32>;   // a dummy when !HAS_STEP

@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row;
  if (i >= p.n) { return; }
  var g = grad[i];
  if (HAS_CLIP) {
    if (clip[2] != 0.0) { return; }
    g *= clip[1];
  }
  var decay = p.decay;
  var step_size = p.step_size;
  var bc2_sqrt = p.bc2_sqrt;
  if (HAS_STEP) {
    decay = sc[0];
    step_size = sc[1];
    bc2_sqrt = sc[2];
  }
  let mi = m[i] + (1.0 - p.beta1) * (g - m[i]);
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / bc2_sqrt + p.eps;
  param[i] = param[i] * decay - step_size * (mi / denom);
}
