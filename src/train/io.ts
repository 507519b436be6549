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
