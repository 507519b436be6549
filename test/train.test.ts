// zpd-wgpu train / score / eval as a user runs them, on the tiny llama fixture and a graded
// data set made by the default set's generator: the curriculum's schedule checked from
// selections.jsonl, the PEFT adapter's keys, exact resume after SIGKILL and after Ctrl-C, the
// NaN watchdog, and score/eval against an independent PyTorch computation.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { peftKey } from '../src/io/peft.js';
import { LORA_MODULES } from '../src/lora.js';
import { score } from '../src/train/train.js';
import { expectClose } from './helpers/check.js';
import { cli, cliEnv, cliSpawn, gradedData, jsonl, root } from './helpers/cli.js';
import { describeGpu } from './helpers/gpu.js';

const LLAMA = join(root, 'test', 'fixtures', 'models', 'llama');
const SCORE = join(root, 'test', 'fixtures', 'score');
const data = gradedData(300, 60);
const tmp = () => mkdtempSync(join(tmpdir(), 'zpd-run-'));

type Step = { type: 'step'; step: number; loss: number; skipped?: boolean };
type Line = { type: string; step: number; loss: number; pool?: number; lo?: number; hi?: number; size?: number; skipped?: boolean };
const metrics = (dir: string) => jsonl<Line>(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'));
const selections = (dir: string) => jsonl<{ step?: number; indices?: number[]; replay?: number[]; rescore?: number; members?: number[] }>(readFileSync(join(dir, 'selections.jsonl'), 'utf8'));

function safetensorsKeys(file: string): string[] {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return Object.keys(JSON.parse(b.subarray(8, 8 + n).toString('utf8'))).filter((k) => k !== '__metadata__').sort();
}

describeGpu('zpd-wgpu train', () => {
  it('zpd on a tiny model: exits 0, PEFT keys, ≥ 3 re-scorings with windows, trains only inside them (+ replay), held-out loss falls', async () => {
    const out = tmp();
    const r = await cli('train', '--model', LLAMA, '--data', data.train, '--curriculum', 'zpd', '--steps', '24', '--rescore-every', '6', '--batch-size', '4', '--seq-len', '48', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/held-out loss after/);
    // PEFT's exact keys: every module of both layers, A and B
    const want = [0, 1].flatMap((l) => LORA_MODULES.flatMap((m) => [peftKey(l, m, 'A'), peftKey(l, m, 'B')])).sort();
    expect(safetensorsKeys(join(out, 'adapter_model.safetensors'))).toEqual(want);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, task_type: 'CAUSAL_LM', bias: 'none' });
    const m = metrics(out);
    const rescores = m.filter((x) => x.type === 'rescore');
    expect(rescores.length).toBeGreaterThanOrEqual(3);
    for (const w of rescores) expect(w.size! > 0 && w.size! <= w.pool! && w.lo! <= w.hi!).toBe(true);
    const evals = m.filter((x) => x.type === 'eval');
    expect(evals[evals.length - 1].loss).toBeLessThan(evals[0].loss);
    // every step's samples are window members, except the replay draws it names
    let window = new Set<number>(), replayed = 0, total = 0;
    for (const s of selections(out)) {
      if (s.rescore !== undefined) window = new Set(s.members);
      else {
        const replay = new Set(s.replay ?? []);
        s.indices!.forEach((i, k) => {
          total++;
          if (replay.has(k)) replayed++;
          else expect(window.has(i), `step ${s.step}: sample ${i} outside the window`).toBe(true);
        });
      }
    }
    expect(total).toBe(24 * 4);
    expect(replayed / total).toBeLessThan(0.3); // --replay 0.1
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.options).toMatchObject({ curriculum: 'zpd', steps: 24, rescoreEvery: 6 });
    expect(run.inputs.hashes.data).toMatch(/^[0-9a-f]{64}$/);
    expect(run.inputs.heldOutLines.length).toBe(15); // --eval-split 0.05 of 300
    expect(existsSync(join(out, 'checkpoint', 'state.msgpack'))).toBe(true);
  });

  it('SIGKILL in the middle, then --resume: the losses from then on equal the uninterrupted run, bit for bit', async () => {
    const args = ['train', '--model', LLAMA, '--data', data.train, '--eval-data', data.eval, '--steps', '20', '--rescore-every', '6',
      '--batch-size', '4', '--seq-len', '48', '--lr', '5e-3', '--lora-dropout', '0.1', '--save-every', '4', '--eval-every', '5'];
    const a = tmp(), b = tmp();
    expect((await cli(...args, '--out', a)).code).toBe(0);
    // kill after step 14: the last checkpoint is step 12, so a re-scoring (13) and an evaluation (15) follow the resume
    const child = cliSpawn(...args, '--out', b);
    const exited = new Promise((res) => child.on('exit', res));
    await new Promise<void>((res) => {
      const poll = setInterval(() => {
        const f = join(b, 'metrics.jsonl');
        if (existsSync(f) && metrics(b).filter((x) => x.type === 'step').length >= 14) {
          clearInterval(poll);
          child.kill('SIGKILL');
          res();
        }
      }, 50);
    });
    await exited;
    expect(metrics(b).filter((x) => x.type === 'step').length).toBeLessThan(20);
    const r = await cli(...args, '--out', b, '--resume');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming after step 12/);
    const losses = (d: string) => metrics(d).filter((x) => x.type !== 'rescore').map((x) => `${x.type} ${x.step} ${x.loss}`);
    expect(losses(b)).toEqual(losses(a));
    expect(readFileSync(join(b, 'selections.jsonl'), 'utf8')).toBe(readFileSync(join(a, 'selections.jsonl'), 'utf8'));
    expect(readFileSync(join(b, 'adapter_model.safetensors')).equals(readFileSync(join(a, 'adapter_model.safetensors')))).toBe(true);
  });

  it('Ctrl-C writes a checkpoint and exits cleanly; --resume finishes like an uninterrupted run', async () => {
    const args = ['train', '--model', LLAMA, '--data', data.train, '--eval-data', data.eval, '--curriculum', 'random', '--steps', '16',
      '--batch-size', '4', '--seq-len', '48', '--lr', '5e-3', '--eval-every', '8', '--save-every', '100'];
    const a = tmp(), b = tmp();
    expect((await cli(...args, '--out', a)).code).toBe(0);
    const child = cliSpawn(...args, '--out', b);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = new Promise<number>((res) => child.on('exit', (c) => res(c ?? -1)));
    await new Promise<void>((res) => {
      const poll = setInterval(() => {
        if (existsSync(join(b, 'metrics.jsonl')) && metrics(b).some((x) => x.type === 'step' && x.step >= 5)) {
          clearInterval(poll);
          child.kill('SIGINT');
          res();
        }
      }, 50);
    });
    expect(await code).toBe(0);
    expect(stderr).toMatch(/writing a checkpoint/);
    expect(existsSync(join(b, 'checkpoint', 'state.msgpack'))).toBe(true);
    const r = await cli(...args, '--out', b, '--resume');
    expect(r.code, r.stderr).toBe(0);
    const steps = (d: string) => metrics(d).filter((x) => x.type === 'step').map((x) => x.loss);
    expect(steps(b)).toEqual(steps(a));
  });

  it('easy2hard trains in non-decreasing order of initial difficulty, hard2easy in the reverse', async () => {
    const small = gradedData(48, 8, 9);
    const initial = await score({ model: LLAMA, data: small.train, seqLen: 48 });
    for (const c of ['easy2hard', 'hard2easy']) {
      const out = tmp();
      // 12 steps of 4 = one pass over the 48 samples
      const r = await cli('train', '--model', LLAMA, '--data', small.train, '--eval-data', small.eval, '--curriculum', c, '--steps', '12', '--batch-size', '4', '--seq-len', '48', '--out', out);
      expect(r.code, r.stderr).toBe(0);
      const order = selections(out).flatMap((s) => s.indices ?? []);
      expect([...order].sort((x, y) => x - y)).toEqual(initial.map((_, i) => i)); // each sample once
      const d = order.map((i) => initial[i].nll);
      for (let k = 1; k < d.length; k++) {
        if (c === 'easy2hard') expect(d[k]).toBeGreaterThanOrEqual(d[k - 1]);
        else expect(d[k]).toBeLessThanOrEqual(d[k - 1]);
      }
    }
  });

  it('a NaN gradient skips the step (counted); five in a row stop the run with the last good checkpoint', async () => {
    const args = ['train', '--model', LLAMA, '--data', data.train, '--curriculum', 'random', '--batch-size', '4', '--seq-len', '48', '--save-every', '2'];
    const one = tmp();
    const r = await cliEnv({ ...process.env, ZPD_WGPU_INJECT_NAN: '3' }, ...args, '--steps', '6', '--out', one, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).skippedSteps).toBe(1);
    const m = metrics(one).filter((x) => x.type === 'step');
    expect(m.map((x) => Boolean(x.skipped))).toEqual([false, false, true, false, false, false]);
    const many = tmp();
    const s = await cliEnv({ ...process.env, ZPD_WGPU_INJECT_NAN: '3-9' }, ...args, '--steps', '12', '--out', many);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/training stopped at step 7: 5 steps in a row had a NaN\/Inf/);
    expect(s.stderr).toMatch(/last good checkpoint is .*checkpoint/);
    expect(s.stderr).toMatch(/HINT: try a lower --lr/);
    expect(s.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // resuming goes on from the last checkpoint (step 6: the skipped steps 3–6 updated nothing)
    const resumed = await cli(...args, '--steps', '12', '--out', many, '--resume');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming after step 6/); // skipped steps change nothing, so their checkpoints are good
  });

  it('refuses an existing run folder without --resume or --overwrite, and --resume where there is no run', async () => {
    const out = tmp();
    const args = ['train', '--model', LLAMA, '--data', data.train, '--steps', '2', '--batch-size', '2', '--seq-len', '48', '--curriculum', 'random', '--out', out];
    expect((await cli(...args)).code).toBe(0);
    const again = await cli(...args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds a run: --resume continues it, --overwrite replaces it/);
    const none = await cli('train', '--model', LLAMA, '--data', data.train, '--resume', '--out', tmp());
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/holds no run to continue/);
  });
});

describeGpu('zpd-wgpu score and eval', () => {
  const expected = JSON.parse(readFileSync(join(SCORE, 'expected.json'), 'utf8'));
  const keys = ['nll', 'ppl', 'confidence', 'entropy', 'accuracy'] as const;

  it('score matches an independent PyTorch computation on a checkpoint no other test uses, with and without an adapter', async () => {
    for (const [which, adapter] of [['base', null], ['adapter', join(SCORE, 'adapter')]] as const) {
      const r = await cli('score', '--model', join(SCORE, 'model'), '--data', join(SCORE, 'data.jsonl'), ...(adapter ? ['--adapter', adapter] : []));
      expect(r.code, r.stderr).toBe(0);
      const rows = jsonl<Record<string, number>>(r.stdout);
      expect(rows.length).toBe(expected[which].length);
      rows.forEach((row, i) => {
        const want = expected[which][i];
        expect(row.tokens).toBe(want.tokens);
        expectClose(`${which} sample ${i}`, keys.map((k) => row[k]), keys.map((k) => want[k]), { atol: 2e-5, rtol: 2e-5 });
      });
    }
  });

  it('score run twice gives identical output; its NLL equals eval\'s loss on a one-sample file', async () => {
    const dir = tmp();
    const a = await cli('score', '--model', LLAMA, '--data', data.eval, '--out', join(dir, 'a.jsonl'));
    const b = await cli('score', '--model', LLAMA, '--data', data.eval, '--out', join(dir, 'b.jsonl'));
    expect(a.code + b.code).toBe(0);
    expect(readFileSync(join(dir, 'a.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'b.jsonl'), 'utf8'));
    const one = join(dir, 'one.jsonl');
    writeFileSync(one, readFileSync(data.eval, 'utf8').split('\n')[3] + '\n');
    const s = jsonl<{ nll: number }>((await cli('score', '--model', LLAMA, '--data', one)).stdout);
    const e = await cli('eval', '--model', LLAMA, '--data', one, '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).loss).toBe(s[0].nll);
  });

  it('eval: multiple choice by log-likelihood, and exact match by bucket and level', async () => {
    const dir = tmp();
    const mc = join(dir, 'mc.jsonl');
    writeFileSync(mc, ['{"question":"2+2=?","choices":["3","4","5"],"answer":1}', '{"question":"Sky?","choices":["blue","green"],"answer":"A"}', '{"question":"x","choices":["p","q"],"answer":"q"}'].join('\n') + '\n');
    const r = await cli('eval', '--model', LLAMA, '--data', mc, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'multiple-choice', questions: 3 });
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"question":"q","choices":["a","b"],"answer":7}\n');
    const b = await cli('eval', '--model', LLAMA, '--data', bad);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/bad\.jsonl: line 1: field "answer" 7 names none of the 2 choices/);
    const em = await cli('eval', '--model', LLAMA, '--data', gradedData(10, 12, 3).eval, '--exact-match', '--json', '--seq-len', '64');
    expect(em.code, em.stderr).toBe(0);
    const j = JSON.parse(em.stdout);
    expect(j.exactMatch.count).toBe(12);
    expect(Object.keys(j.exactMatch.groups)).toContain('addition');
    expect(j.exactMatch.rate).toBe(0); // a random model gets nothing right
  });
});

describeGpu('device loss', () => {
  it('the device lost mid-run: the error says where the last checkpoint is, and --resume continues', async () => {
    const out = tmp();
    const args = ['train', '--model', LLAMA, '--data', data.train, '--curriculum', 'random', '--steps', '8', '--save-every', '2', '--batch-size', '4', '--seq-len', '48', '--out', out];
    const r = await cliEnv({ ...process.env, ZPD_WGPU_INJECT_LOST: '5' }, ...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the GPU device was lost .* during step 5; the last checkpoint \(step 4\) is in .*checkpoint: the same command with --resume continues from it/);
    expect(r.stderr).toMatch(/HINT: this is most likely out of GPU memory/);
    const resumed = await cli(...args, '--resume');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming after step 4/);
  });
});
