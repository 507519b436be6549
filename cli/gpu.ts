// The GPU as every command uses it: the process's device, with matmul tiles autotuned for this
// adapter once and cached (src/io/cache.ts), so later runs start at once.
import { getGpu } from '../src/gpu/device.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { cacheFile } from '../src/io/cache.js';
import { autotuneMatmul, type MatmulTiles } from '../src/kernels/matmul.js';

export async function tunedGpu(): Promise<{ gpu: Gpu; tiles: MatmulTiles; tilesFile: string | null; tilesFrom: string }> {
  const gpu = await getGpu();
  const cache = await cacheFile('matmul-tiles.json');
  let tilesFrom = '';
  const tiles = await autotuneMatmul(gpu, { cache: cache ?? undefined, warn: (m) => console.error(`zpd-wgpu: warning: ${m}`), source: (s) => (tilesFrom = s) });
  return { gpu, tiles, tilesFile: cache?.where ?? null, tilesFrom };
}

/**
 * The GPU a command needs for --backend `backend`: none for wasm; for auto, none when there is no
 * WebGPU adapter (auto then takes the wasm backend, and says why); for webgpu, the GPU or its error.
 */
export async function gpuForBackend(backend: 'webgpu' | 'wasm' | 'auto' | undefined): Promise<Gpu | undefined> {
  if (backend === 'wasm') return undefined;
  if (backend === 'auto') return tunedGpu().then((t) => t.gpu, () => undefined);
  return (await tunedGpu()).gpu;
}
