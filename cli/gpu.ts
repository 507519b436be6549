// The GPU as every command uses it: the process's device, with matmul tiles autotuned for this
// adapter once and cached (src/io/cache.ts), so later runs start at once.
import { getGpu } from '../src/gpu/device.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { defaultCacheDir } from '../src/io/cache.js';
import { autotuneMatmul, type MatmulTiles } from '../src/kernels/matmul.js';

export async function tunedGpu(): Promise<{ gpu: Gpu; tiles: MatmulTiles; tilesFile: string }> {
  const { mkdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const gpu = await getGpu();
  const dir = await defaultCacheDir();
  await mkdir(dir, { recursive: true });
  const tilesFile = join(dir, 'matmul-tiles.json');
  const tiles = await autotuneMatmul(gpu, { cacheFile: tilesFile });
  return { gpu, tiles, tilesFile };
}
