// A short matmul self-test used by `zpd-wgpu doctor`: correctness against the CPU reference
// on a small problem, then speed on a larger one.
import { matmul } from '../src/kernels/matmul.js';
import { matmulRef } from '../src/reference/matmul.js';
import type { Gpu } from '../src/gpu/gpu.js';

function pseudoRandom(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

export async function matmulSelfTest(gpu: Gpu, size = 512, reps = 3) {
  // correctness: 45×65×77 in the forward layout x·Wᵀ
  const [M, N, K] = [45, 65, 77];
  const a = pseudoRandom(M * K, 1), b = pseudoRandom(N * K, 2);
  const out = gpu.buffer(M * N * 4);
  gpu.submit((enc) => matmul(gpu, enc, { a: gpu.buffer(a), bm: gpu.buffer(b), out, M, N, K, transB: true }));
  const got = await gpu.readF32(out);
  const ref = matmulRef({ a, bm: b, M, N, K, transB: true });
  let maxError = 0;
  for (let i = 0; i < ref.length; i++) maxError = Math.max(maxError, Math.abs(got[i] - ref[i]) || (Number.isNaN(got[i]) ? Infinity : 0));

  // speed: size³, best of `reps`
  const x = gpu.buffer(pseudoRandom(size * size, 3)), w = gpu.buffer(pseudoRandom(size * size, 4));
  const y = gpu.buffer(size * size * 4);
  const enc = (e: GPUCommandEncoder) => matmul(gpu, e, { a: x, bm: w, out: y, M: size, N: size, K: size, transB: true });
  await gpu.time(enc); // warm-up: pipeline compile
  let best = Infinity, clock: 'gpu' | 'wall' = 'wall';
  for (let r = 0; r < reps; r++) {
    const t = await gpu.time(enc);
    best = Math.min(best, t.ms);
    clock = t.clock;
  }
  return { shape: [size, size, size], gflops: (2 * size ** 3) / (best * 1e6), maxError, ok: maxError < 1e-3, clock };
}
