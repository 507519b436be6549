// Where zpd-wgpu keeps what it can recompute but would rather not: tokenizer binaries, matmul
// tile choices per adapter. $ZPD_WGPU_CACHE, else <os tmpdir>/zpd-wgpu-cache (Node only).
export async function defaultCacheDir(): Promise<string> {
  const os = await import('node:os');
  const { join } = await import('node:path');
  return process.env.ZPD_WGPU_CACHE ?? join(os.tmpdir(), 'zpd-wgpu-cache');
}
