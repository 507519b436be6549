// swiglu.wgsl — the gated MLP activation of Llama/Qwen, elementwise over n = tokens × intermediate:
//
//   out = silu(gate) · up,     silu(g) = g · σ(g),   σ(g) = 1 / (1 + e^-g)
//   dgate = dout · up · σ(g) · (1 + g · (1 − σ(g)))
//   dup   = dout · silu(g)
//
//   gate, up, out, dout, dgate, dup (n) — the (N, I) activations, flattened.
// swiglu_backward_inplace writes dgate over gate and dup over up (each element reads its own
// inputs before writing them): a training step's backward no longer needs gate and up.
// σ is formed from e^−|g| ∈ (0, 1], so no intermediate is ever inf (e^−g alone overflows f32
// for g < −88); the gates of ±1e4 in test/swiglu.test.ts give finite values and gradients.
// 2-D grid of WG-wide workgroups: element = x + y·(workgroups in x)·WG.

override WG: u32 = 256u;

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
// forward
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;
// backward in place
@group(0) @binding(1) var<storage, read_write> gate_io: array<f32>;
@group(0) @binding(2) var<storage, read_write> up_io: array<f32>;

fn sigmoid(g: f32) -> f32 {
  let e = exp(-abs(g)); // in (0, 1]
  let s = 1.0 / (1.0 + e);
  return select(e * s, s, g >= 0.0); // σ(g) for g ≥ 0; σ(g) = e^g / (1 + e^g) otherwise
}

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid(g) * up[i];
}

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let g = gate[i];
  let s = sigmoid(g);
  let d = dout[i];
  dgate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
  dup[i] = d * g * s;
}

@compute @workgroup_size(WG)
fn swiglu_backward_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let g = gate_io[i];
  let u = up_io[i];
  let s = sigmoid(g);
  let d = dout[i];
  gate_io[i] = d * u * s * (1.0 + g * (1.0 - s));
  up_io[i] = d * g * s;
}
