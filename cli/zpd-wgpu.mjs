#!/usr/bin/env node
// The zpd-wgpu command. Runs the bundled CLI (dist/cli.js); in a source checkout where it has
// not been built yet, builds it first (needs the dev dependencies: npm ci).
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli.js');
if (!existsSync(cli)) {
  if (!existsSync(join(root, 'scripts', 'build.mjs'))) {
    console.error('zpd-wgpu: dist/cli.js is missing from this installation; reinstall the package');
    process.exit(1);
  }
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
}
const { main } = await import(pathToFileURL(cli).href);
process.exitCode = await main(process.argv.slice(2));
