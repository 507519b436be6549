// Wrapper for shaders/swiglu.wgsl: out = silu(gate) · up, elementwise over n. All buffers (n) f32.
// The backward may write in place: dgate = gate and dup = up (the same buffers) overwrites them.
import shader from '../../shaders/swiglu.wgsl';
import type { Gpu } from '../gpu/gpu.js';
import { grid1d } from './elementwise.js';

const WG = 256;

export function swigluForward(gpu: Gpu, encoder: GPUCommandEncoder, a: { gate: GPUBuffer; up: GPUBuffer; out: GPUBuffer; n: number }): void {
  const p = gpu.pipeline(shader, 'swiglu_forward', { WG });
  gpu.dispatch(encoder, p, [gpu.uniform(new Uint32Array([a.n, 0, 0, 0])), a.gate, a.up, a.out], grid1d(gpu, a.n, WG));
}

export function swigluBackward(
  gpu: Gpu,
  encoder: GPUCommandEncoder,
  a: { gate: GPUBuffer; up: GPUBuffer; dout: GPUBuffer; dgate: GPUBuffer; dup: GPUBuffer; n: number },
): void {
  const u = gpu.uniform(new Uint32Array([a.n, 0, 0, 0]));
  if (a.dgate === a.gate && a.dup === a.up) {
    gpu.dispatch(encoder, gpu.pipeline(shader, 'swiglu_backward_inplace', { WG }), [u, a.gate, a.up, a.dout], grid1d(gpu, a.n, WG));
    return;
  }
  const p = gpu.pipeline(shader, 'swiglu_backward', { WG });
  gpu.dispatch(encoder, p, [u, a.gate, a.up, a.dout, a.dgate, a.dup], grid1d(gpu, a.n, WG));
}
