// Run the zpd-wgpu command as a user does (the built CLI through cli/zpd-wgpu.mjs; `npm test`
// builds dist/ before vitest), and small data sets for it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeDefaultData, toJsonl } from '../../scripts/make-default-data.mjs';

export const root = join(import.meta.dirname, '..', '..');
export const CLI = join(root, 'cli', 'zpd-wgpu.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(...args: string[]): Promise<CliResult> {
  return cliEnv(process.env, ...args);
}

export async function cliEnv(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: root, timeout: 840_000, env, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** Start the CLI without waiting for it (to signal or kill it mid-run). */
export function cliSpawn(...args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A temporary folder with train.jsonl / eval.jsonl from the default set's generator (graded buckets). */
export function gradedData(train: number, evalN: number, seed = 5): { dir: string; train: string; eval: string } {
  const dir = mkdtempSync(join(tmpdir(), 'zpd-data-'));
  const d = makeDefaultData({ seed, train, eval: evalN });
  writeFileSync(join(dir, 'train.jsonl'), toJsonl(d.train));
  writeFileSync(join(dir, 'eval.jsonl'), toJsonl(d.eval));
  return { dir, train: join(dir, 'train.jsonl'), eval: join(dir, 'eval.jsonl') };
}

/** The JSON lines of a file. */
export function jsonl<T = Record<string, unknown>>(text: string): T[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}
