// lora.wgsl — dropout on the LoRA branch, with a counter-based RNG so the backward regenerates
// exactly the forward's mask instead of storing it.
//
//   keep(i)   = uniform(seed, i) ≥ P,  uniform = top 24 bits of a PCG hash of (seed, i) / 2^24
//   forward   xd[i]  = keep(i) ? x[i] / (1 − P) : 0          x, xd (N, in), i = n·in + k
//   backward  dx[i] += keep(i) ? t[i] / (1 − P) : 0          t = s·(dy·B)·A (N, in), dx (N, in)
//
// The mask depends only on (seed, element index), never on the values or the launch shape: the
// same seed gives the same mask on every adapter; the host passes a different seed per module
// and step. src/reference/lora.ts mirrors the hash bit for bit.
// The matmuls of the LoRA linear itself are shaders/matmul.wgsl (composed in src/kernels/lora.ts).

override WG: u32 = 256u;

struct Params {
  n: u32,       // elements, N · in
  seed: u32,
  p: f32,       // dropout probability, in [0, 1)
  inv_keep: f32, // 1 / (1 − p)
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xd: array<f32>;

@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// PCG-RXS-M-XS 32-bit output of one LCG step (Jarzynski & Olano, "Hash Functions for GPU
// Rendering", 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn keep(i: u32) -> bool {
  let k0 = pcg(prm.seed);
  let k1 = pcg(k0 ^ 0x9e3779b9u);
  let h = pcg(pcg(i ^ k0) + k1);
  return f32(h >> 8u) * (1.0 / 16777216.0) >= prm.p;
}

@compute @workgroup_size(WG)
fn lora_dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.n) { return; }
  xd[i] = select(0.0, x[i] * prm.inv_keep, keep(i));
}

@compute @workgroup_size(WG)
fn lora_dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.n) { return; }
  if (keep(i)) { dx[i] = fma(t[i], prm.inv_keep, dx[i]); }
}
