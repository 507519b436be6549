// Where zpd-wgpu keeps what it can recompute but would rather not: tokenizer binaries, matmul
// tile choices per adapter (Node only). The platform's user cache folder — $XDG_CACHE_HOME or
// ~/.cache on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows — under zpd-wgpu;
// $ZPD_WGPU_CACHE moves it; `--no-cache` (setCacheEnabled(false)) turns caching off.
import { env, isNode, nodeFs, nodeOs, nodePath, pid } from '../platform/node.js';

let enabled = true;

/** Turn the cache off (or on) for this process. */
export function setCacheEnabled(on: boolean): void {
  enabled = on;
}

/** The cache folder, or null when caching is off (or there is no file system). */
export async function defaultCacheDir(): Promise<string | null> {
  if (!enabled || !isNode) return null;
  const os = await nodeOs();
  const { join } = await nodePath();
  const moved = env('ZPD_WGPU_CACHE');
  if (moved) return moved;
  const home = os.homedir();
  if (os.platform() === 'darwin') return join(home, 'Library', 'Caches', 'zpd-wgpu');
  if (os.platform() === 'win32') return join(env('LOCALAPPDATA') ?? join(home, 'AppData', 'Local'), 'zpd-wgpu', 'Cache');
  return join(env('XDG_CACHE_HOME') || join(home, '.cache'), 'zpd-wgpu');
}

/** A small text file in the cache folder as a key's storage (read → null when absent). */
export interface TextCache {
  read(): Promise<string | null>;
  write(text: string): Promise<void>;
  /** where, for messages */
  where: string;
}

/** `name` in the cache folder, or null when caching is off. Writes are atomic (temp + rename). */
export async function cacheFile(name: string): Promise<TextCache | null> {
  const dir = await defaultCacheDir();
  if (!dir) return null;
  const fs = await nodeFs();
  const { join } = await nodePath();
  const file = join(dir, name);
  return {
    where: file,
    read: () => fs.readFile(file, 'utf8').catch(() => null),
    async write(text) {
      await fs.mkdir(dir, { recursive: true });
      const tmp = `${file}.${pid()}.tmp`;
      await fs.writeFile(tmp, text);
      await fs.rename(tmp, file);
    },
  };
}
