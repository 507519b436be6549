import { defineConfig } from 'vitest/config';
// @ts-expect-error plain ESM helper shared with the esbuild build
import { viteAssets } from './scripts/assets.mjs';

export default defineConfig({
  plugins: [viteAssets],
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
  },
});
