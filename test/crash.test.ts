// Nothing lost on a crash: one short run killed with SIGKILL at 20+ points — at random moments,
// and at the start of checkpoint writes and of re-scorings (ZPD_WGPU_TRACE=1 announces those) —
// and resumed each time, ends with the losses, selections and adapter of a run never killed.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { CLI, cli, gradedData, jsonl, root } from './helpers/cli.js';
import { describeGpu } from './helpers/gpu.js';

const LLAMA = join(root, 'test', 'fixtures', 'models', 'llama');
const KILLS = 20;

describeGpu('crash safety', () => {
  it(`${KILLS} SIGKILLs (random moments, checkpoint writes, re-scorings), each resumed: the same losses bit for bit`, async () => {
    const data = gradedData(200, 40, 11);
    const args = ['train', '--model', LLAMA, '--data', data.train, '--eval-data', data.eval, '--steps', '40', '--rescore-every', '4',
      '--batch-size', '4', '--seq-len', '48', '--lr', '5e-3', '--lora-dropout', '0.1', '--save-every', '1', '--eval-every', '7', '--eval-samples', '16'];
    const a = mkdtempSync(join(tmpdir(), 'zpd-crash-a-')), b = mkdtempSync(join(tmpdir(), 'zpd-crash-b-'));
    expect((await cli(...args, '--out', a)).code).toBe(0);

    const rng = new Rng(2024);
    const kinds: string[] = [];
    let finished = false;
    for (let k = 0; k < KILLS + 10 && !finished; k++) {
      const resume = ['checkpoint', 'checkpoint.old', 'checkpoint.tmp'].some((c) => existsSync(join(b, c, 'state.msgpack')));
      const child = spawn(process.execPath, [CLI, ...args, '--out', b, ...(resume ? ['--resume'] : ['--overwrite'])], { cwd: root, env: { ...process.env, ZPD_WGPU_TRACE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      // a third of the kills at the start of a checkpoint write, a third at a re-scoring, the rest at random
      const kind = kinds.length >= KILLS ? 'none' : ['saving', 'scoring', 'random'][k % 3];
      const after = 5 + rng.int(40); // ms into the phase, or into the run
      let armed = false;
      const kill = () => {
        if (!armed && child.exitCode === null) {
          armed = true;
          setTimeout(() => child.kill('SIGKILL'), after);
        }
      };
      // within about the first half of the run: faster steps (the subgroup matmul) let a later kill land after the end
      const wait = rng.int(1200);
      let started = false;
      child.stderr!.on('data', (d: Buffer) => {
        err += d;
        if (kind === 'random' && !started && /training: /.test(err)) (started = true), setTimeout(kill, wait);
        if ((kind === 'saving' || kind === 'scoring') && err.includes(`trace: ${kind} `)) kill();
      });
      const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
      if (code === 0) finished = true;
      else if (armed) kinds.push(kind);
      else expect.fail(`run ${k} ended with ${code} without being killed:\n${err.slice(-2000)}`);
    }
    expect(finished).toBe(true);
    expect(kinds.length).toBeGreaterThanOrEqual(KILLS);
    expect(kinds.filter((x) => x === 'saving').length).toBeGreaterThanOrEqual(6);
    expect(kinds.filter((x) => x === 'scoring').length).toBeGreaterThanOrEqual(6);

    const losses = (d: string) => jsonl<{ type: string; step: number; loss: number }>(readFileSync(join(d, 'metrics.jsonl'), 'utf8')).filter((x) => x.type !== 'rescore').map((x) => `${x.type} ${x.step} ${x.loss}`);
    expect(losses(b)).toEqual(losses(a));
    expect(readFileSync(join(b, 'selections.jsonl'), 'utf8')).toBe(readFileSync(join(a, 'selections.jsonl'), 'utf8'));
    expect(readFileSync(join(b, 'adapter_model.safetensors')).equals(readFileSync(join(a, 'adapter_model.safetensors')))).toBe(true);
    // nothing half-written is left behind
    for (const f of readdirSync(b)) expect(f).not.toMatch(/\.tmp/);
    expect(existsSync(join(b, 'checkpoint.old'))).toBe(false);
  }, 600_000); // about a minute alone; 21 process starts take longer on a busy machine

  it('a second Ctrl-C quits at once (exit 130), without waiting for the step or the checkpoint', async () => {
    const data = gradedData(60, 10, 12);
    const out = mkdtempSync(join(tmpdir(), 'zpd-sigint-'));
    const child = spawn(process.execPath, [CLI, 'train', '--model', LLAMA, '--data', data.train, '--steps', '500', '--batch-size', '4', '--seq-len', '48', '--out', out], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
      if (/training: /.test(err) && !child.killed) {
        child.kill('SIGINT');
        setTimeout(() => child.kill('SIGINT'), 30);
      }
    });
    const t0 = performance.now();
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(code).toBe(130);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});
