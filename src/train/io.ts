// The run folder as the training loop sees it: a few file operations on paths relative to the
// folder, so that the same loop writes to a Node file system (NodeRunFolder) or, in a browser,
// to OPFS or IndexedDB. Nothing else in src/train/ touches files.
import { UsageError } from '../errors.js';
import { nodeFs, nodePath, pid } from '../platform/node.js';

export interface RunFolder {
  /** Where the folder is, for messages (a path, or e.g. 'opfs:/runs/x'). */
  readonly where: string;
  /** The file's bytes, or null when it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  /** Write under a temporary name, flush it, then rename it over `path`: never a torn file. */
  writeAtomic(path: string, data: Uint8Array | string): Promise<void>;
  append(path: string, text: string): Promise<void>;
  /** Cut the file to `bytes` (it must exist). */
  truncate(path: string, bytes: number): Promise<void>;
  /** Size in bytes, or null when absent. */
  size(path: string): Promise<number | null>;
  /** Rename a file or folder (replacing nothing: `to` must not exist). */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file or a folder with everything in it; nothing happens when it is absent. */
  remove(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

/** A run folder on the Node file system. Paths may not leave the folder. */
export class NodeRunFolder implements RunFolder {
  private constructor(readonly where: string, private fs: Awaited<ReturnType<typeof nodeFs>>, private path: Awaited<ReturnType<typeof nodePath>>) {}

  static async open(dir: string): Promise<NodeRunFolder> {
    const fs = await nodeFs();
    const path = await nodePath();
    const root = path.resolve(dir);
    await fs.mkdir(root, { recursive: true });
    // what a killed process left half-written (writeAtomic's temporary files) is removed
    for (const sub of ['', 'checkpoint', 'checkpoint.old', 'best']) {
      const names = await fs.readdir(path.join(root, sub)).catch(() => [] as string[]);
      for (const n of names) if (/\.tmp-\d+$/.test(n)) await fs.rm(path.join(root, sub, n), { force: true });
    }
    return new NodeRunFolder(root, fs, path);
  }

  private abs(p: string): string {
    const full = this.path.resolve(this.where, p);
    if (full !== this.where && !full.startsWith(this.where + this.path.sep)) throw new UsageError(`refusing to write outside the run folder ${this.where}: ${p}`);
    return full;
  }

  async read(p: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await this.fs.readFile(this.abs(p)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async writeAtomic(p: string, data: Uint8Array | string): Promise<void> {
    const full = this.abs(p);
    await this.fs.mkdir(this.path.dirname(full), { recursive: true });
    const tmp = `${full}.tmp-${pid()}`;
    const fh = await this.fs.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.fs.rename(tmp, full);
    await this.syncDir(this.path.dirname(full));
  }

  /** Make a rename durable: flush the folder's entry list (where the platform allows it). */
  private async syncDir(dir: string): Promise<void> {
    const fh = await this.fs.open(dir, 'r').catch(() => null);
    if (!fh) return;
    await fh.sync().catch(() => {});
    await fh.close();
  }

  async append(p: string, text: string): Promise<void> {
    const full = this.abs(p);
    await this.fs.mkdir(this.path.dirname(full), { recursive: true });
    await this.fs.appendFile(full, text);
  }

  async truncate(p: string, bytes: number): Promise<void> {
    await this.fs.truncate(this.abs(p), bytes);
  }

  async size(p: string): Promise<number | null> {
    const st = await this.fs.stat(this.abs(p)).catch(() => null);
    return st ? st.size : null;
  }

  async rename(from: string, to: string): Promise<void> {
    await this.fs.rename(this.abs(from), this.abs(to));
    await this.syncDir(this.path.dirname(this.abs(to)));
  }

  async remove(p: string): Promise<void> {
    await this.fs.rm(this.abs(p), { recursive: true, force: true });
  }

  async mkdir(p: string): Promise<void> {
    await this.fs.mkdir(this.abs(p), { recursive: true });
  }

  async exists(p: string): Promise<boolean> {
    return (await this.size(p)) !== null;
  }
}

/**
 * A run folder in memory (tests, a page that keeps nothing): files by path, folders implied by
 * their files or made by mkdir. Gone with the object.
 */
export class MemoryRunFolder implements RunFolder {
  private files = new Map<string, Uint8Array>();
  private dirs = new Set<string>();

  constructor(readonly where = 'memory') {}

  private static norm(p: string): string {
    const parts = p.split('/').filter((x) => x !== '' && x !== '.');
    if (parts.includes('..')) throw new UsageError(`refusing a path that leaves the run folder: ${p}`);
    return parts.join('/');
  }

  /** Every file's path, sorted. */
  list(): string[] {
    return [...this.files.keys()].sort();
  }

  private isDir(p: string): boolean {
    if (this.dirs.has(p)) return true;
    for (const f of this.files.keys()) if (f.startsWith(`${p}/`)) return true;
    return false;
  }

  async read(p: string): Promise<Uint8Array | null> {
    const b = this.files.get(MemoryRunFolder.norm(p));
    return b ? b.slice() : null;
  }

  async writeAtomic(p: string, data: Uint8Array | string): Promise<void> {
    this.files.set(MemoryRunFolder.norm(p), typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
  }

  async append(p: string, text: string): Promise<void> {
    const k = MemoryRunFolder.norm(p), old = this.files.get(k) ?? new Uint8Array(0), add = new TextEncoder().encode(text);
    const out = new Uint8Array(old.length + add.length);
    out.set(old);
    out.set(add, old.length);
    this.files.set(k, out);
  }

  async truncate(p: string, bytes: number): Promise<void> {
    const k = MemoryRunFolder.norm(p), b = this.files.get(k);
    if (!b) throw new UsageError(`${this.where}/${k}: cannot truncate a file that does not exist`);
    this.files.set(k, b.slice(0, bytes));
  }

  async size(p: string): Promise<number | null> {
    const k = MemoryRunFolder.norm(p);
    return this.files.get(k)?.length ?? (this.isDir(k) ? 0 : null);
  }

  async rename(from: string, to: string): Promise<void> {
    const a = MemoryRunFolder.norm(from), b = MemoryRunFolder.norm(to);
    if (!(await this.exists(a))) throw new UsageError(`${this.where}/${a}: cannot rename what does not exist`);
    if (await this.exists(b)) throw new UsageError(`${this.where}/${b}: already exists (rename replaces nothing)`);
    const under = (x: string) => x === a || x.startsWith(`${a}/`);
    for (const [k, v] of [...this.files]) if (under(k)) this.files.delete(k), this.files.set(b + k.slice(a.length), v);
    for (const d of [...this.dirs]) if (under(d)) this.dirs.delete(d), this.dirs.add(b + d.slice(a.length));
  }

  async remove(p: string): Promise<void> {
    const k = MemoryRunFolder.norm(p);
    for (const f of [...this.files.keys()]) if (f === k || f.startsWith(`${k}/`)) this.files.delete(f);
    for (const d of [...this.dirs]) if (d === k || d.startsWith(`${k}/`)) this.dirs.delete(d);
  }

  async mkdir(p: string): Promise<void> {
    const parts = MemoryRunFolder.norm(p).split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) this.dirs.add(parts.slice(0, i).join('/'));
  }

  async exists(p: string): Promise<boolean> {
    return (await this.size(p)) !== null;
  }
}
