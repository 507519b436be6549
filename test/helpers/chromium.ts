// Debian's headless Chromium for tests: where it is, and the switches every test starts it with.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Chromium's command-line switches: headless, and WebGPU on (it is off on Linux by default). */
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox', // CI runs as root, where Chromium's sandbox refuses to start
  '--enable-unsafe-webgpu',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--disable-breakpad',
  '--disable-crash-reporter',
];

export function findChromium(): string | null {
  const env = process.env.ZPD_CHROMIUM;
  if (env) return existsSync(env) ? env : null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
      const p = join(dir, name);
      if (dir && existsSync(p)) return p;
    }
  }
  return null;
}


/** The DOM of `url` after its scripts ran (chromium --dump-dom), or null when Chromium is missing. */
export function dumpDom(url: string, timeoutMs = 60_000): string | null {
  const bin = findChromium();
  if (!bin) return null;
  const profile = mkdtempSync(join(tmpdir(), 'zpd-chromium-'));
  const r = spawnSync(bin, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', url], { encoding: 'utf8', timeout: timeoutMs });
  return r.stdout ?? '';
}
