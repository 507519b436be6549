// The README's library sample, run as a user would: the ```js block of "## The library", as an ES module in
// the repository root, importing the package by its name (the built dist/node, made by npm test).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { describeGpu } from './helpers/gpu.js';

const root = join(import.meta.dirname, '..');

describeGpu('README', () => {
  it('the library sample runs: the loss falls and an adapter is written', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const code = /## The library[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code, 'README has a ```js block').toBeTruthy();
    const file = join(root, `.readme-sample-${process.pid}.mjs`);
    writeFileSync(file, code!);
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: root, timeout: 120_000 });
      const losses = [...stdout.matchAll(/step \d+ loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
      expect(losses.length).toBe(5);
      expect(losses[4]).toBeLessThan(losses[0]);
      const [before, after] = /held-out loss (\d+\.\d+) → (\d+\.\d+)/.exec(stdout)!.slice(1).map(Number);
      expect(after).toBeLessThan(before);
      expect(JSON.parse(readFileSync(join(root, 'runs/readme-adapter/adapter_config.json'), 'utf8')).peft_type).toBe('LORA');
    } finally {
      rmSync(file, { force: true });
    }
  });
});
