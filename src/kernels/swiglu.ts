// Wrapper for shaders/swiglu.wgsl: out = silu(gate) · up, elementwise over n. All buffers (n) f32.
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
  const p = gpu.pipeline(shader, 'swiglu_backward', { WG });
  gpu.dispatch(encoder, p, [gpu.uniform(new Uint32Array([a.n, 0, 0, 0])), a.gate, a.up, a.dout, a.dgate, a.dup], grid1d(gpu, a.n, WG));
}
