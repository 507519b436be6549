// Runs bench/torch_step.py (the same LoRA step in PyTorch) with the first python3 that imports
// torch: $ZPD_WGPU_PYTHON, python3 on the PATH, then /usr/bin/python3 (Debian's python3-torch
// when the PATH's python is another one). OMP_WAIT_POLICY=PASSIVE keeps OpenMP's idle threads
// from spinning on a machine the GPU work shares.
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import script from './torch_step.py';
import type { StepSpec } from './model.js';

const run = promisify(execFile);

export interface TorchResult {
  stepMs: number;
  scoreMs: number;
  losses: number[];
  torch: string;
  device: string;
  threads: number;
  dtype: string;
  attention: string;
  peakBytes: number | null;
  /** f32 1024³ matmul GFLOP/s on the same device */
  matmulGflops: number;
}

const env = () => ({ ...process.env, OMP_WAIT_POLICY: 'PASSIVE' });
let found: Promise<{ python: string | null; why: string }> | undefined;

/** The python3 that has torch (and, for 'cuda', a CUDA device), or why there is none. */
export function findTorch(device: 'cpu' | 'cuda'): Promise<{ python: string | null; why: string }> {
  found ??= (async () => {
    const tried: string[] = [];
    for (const py of [process.env.ZPD_WGPU_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => Boolean(p))) {
      try {
        const check = device === 'cuda' ? 'import torch; assert torch.cuda.is_available(), "no CUDA device"' : 'import torch';
        await run(py, ['-c', check], { env: env(), timeout: 120_000 });
        return { python: py, why: '' };
      } catch (e) {
        const msg = String((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').pop();
        tried.push(`${py}: ${msg}`);
      }
    }
    return { python: null, why: `no python3 with torch${device === 'cuda' ? ' and CUDA' : ''} (${tried.join('; ')})` };
  })();
  return found;
}

export async function runTorch(python: string, spec: StepSpec, o: { device: 'cpu' | 'cuda'; dtype: 'float32' | 'bfloat16'; lr: number; maxGradNorm: number }): Promise<TorchResult> {
  const threads = o.device === 'cpu' ? cpus().length : 0;
  const args = { config: spec.config, B: spec.B, T: spec.T, r: spec.r, alpha: spec.alpha, steps: spec.steps, lr: o.lr, maxGradNorm: o.maxGradNorm, device: o.device, dtype: o.dtype, threads };
  const { stdout } = await run(python, ['-c', script, JSON.stringify(args)], { env: env(), timeout: 1_200_000, maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as TorchResult;
}
