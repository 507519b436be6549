// A run folder in the browser's Origin Private File System (navigator.storage.getDirectory()):
// the same files NodeRunFolder writes (metrics.jsonl, run.json, checkpoint/, the adapter), kept
// by the browser for this origin across reloads, so a stopped or crashed run resumes from its
// checkpoint. Works in a page and in a Web Worker (FileSystemWritableFileStream).
//
// Atomic writes: a writable stream's data replaces the file only when the stream is closed (the
// File System spec; Chromium writes a swap file and commits it on close), so a tab closed
// mid-write leaves the old file whole. Tested in Chromium (test/demo.test.ts). Folders cannot be renamed in OPFS (only files can move):
// rename() of a folder moves its files one by one, each move whole; the checkpoint's loader
// takes the newest whole state file of checkpoint/, checkpoint.tmp/ and checkpoint.old/, so
// a reload during that rename still resumes.
import { UsageError } from '../errors.js';
import type { RunFolder } from './io.js';

// The File System Access types Chromium has and TypeScript's DOM library lacks (move, entries).
type Dir = FileSystemDirectoryHandle & { entries(): AsyncIterableIterator<[string, FileSystemHandle]> };
type FileH = FileSystemFileHandle & { move(dir: FileSystemDirectoryHandle, name: string): Promise<void> };

/** The folder OPFS runs live under unless another is given. */
export const OPFS_RUNS = 'zpd-wgpu-runs';

function isNotFound(e: unknown): boolean {
  return (e as { name?: string })?.name === 'NotFoundError' || (e as { name?: string })?.name === 'TypeMismatchError';
}

export class OpfsRunFolder implements RunFolder {
  private constructor(readonly where: string, private root: Dir) {}

  /** The run `name` (a folder under `parent`, default zpd-wgpu-runs/), created when absent. */
  static async open(name: string, parent: string = OPFS_RUNS): Promise<OpfsRunFolder> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (!storage?.getDirectory) throw new UsageError('this browser has no Origin Private File System (navigator.storage.getDirectory): use a current Chrome, Edge, Firefox or Safari, over https or on localhost');
    let dir = (await storage.getDirectory()) as Dir;
    const parts = OpfsRunFolder.split(`${parent}/${name}`);
    for (const p of parts) dir = (await dir.getDirectoryHandle(p, { create: true })) as Dir;
    return new OpfsRunFolder(`opfs:/${parts.join('/')}`, dir);
  }

  /** The names of the runs under `parent` (folders), oldest name first. */
  static async list(parent: string = OPFS_RUNS): Promise<string[]> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (!storage?.getDirectory) return [];
    let dir = (await storage.getDirectory()) as Dir;
    try {
      for (const p of OpfsRunFolder.split(parent)) dir = (await dir.getDirectoryHandle(p)) as Dir;
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
    const out: string[] = [];
    for await (const [n, h] of dir.entries()) if (h.kind === 'directory') out.push(n);
    return out.sort();
  }

  /** Remove the run `name` under `parent` and everything in it. */
  static async delete(name: string, parent: string = OPFS_RUNS): Promise<void> {
    const f = await OpfsRunFolder.open('', parent);
    await f.remove(name);
  }

  private static split(path: string): string[] {
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    for (const p of parts) if (p === '..' || p.includes('\\')) throw new UsageError(`refusing a run folder path that leaves its folder: ${path}`);
    return parts;
  }

  /** The folder holding `path`'s last part (created when asked), and that part. */
  private async parent(path: string, create: boolean): Promise<[Dir, string]> {
    const parts = OpfsRunFolder.split(path);
    if (parts.length === 0) throw new UsageError(`${this.where}: an empty path`);
    let dir = this.root;
    for (const p of parts.slice(0, -1)) dir = (await dir.getDirectoryHandle(p, { create })) as Dir;
    return [dir, parts[parts.length - 1]];
  }

  private async file(path: string): Promise<FileH | null> {
    try {
      const [dir, name] = await this.parent(path, false);
      return (await dir.getFileHandle(name)) as FileH;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  private async handle(path: string): Promise<FileSystemHandle | null> {
    try {
      const [dir, name] = await this.parent(path, false);
      return await dir.getFileHandle(name).catch(async (e) => {
        if (!isNotFound(e)) throw e;
        return dir.getDirectoryHandle(name);
      });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async read(path: string): Promise<Uint8Array | null> {
    const f = await this.file(path);
    return f ? new Uint8Array(await (await f.getFile()).arrayBuffer()) : null;
  }

  private async write(path: string, edit: (w: FileSystemWritableFileStream, size: number) => Promise<void>, keep: boolean): Promise<void> {
    const [dir, name] = await this.parent(path, true);
    const h = await dir.getFileHandle(name, { create: true });
    const size = keep ? (await h.getFile()).size : 0;
    const w = await h.createWritable({ keepExistingData: keep });
    try {
      await edit(w, size);
      await w.close(); // the new contents replace the file here, whole
    } catch (e) {
      await w.abort().catch(() => {});
      throw e;
    }
  }

  writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
    return this.write(path, (w) => w.write(data as FileSystemWriteChunkType), false);
  }

  append(path: string, text: string): Promise<void> {
    return this.write(path, async (w, size) => {
      await w.seek(size);
      await w.write(text);
    }, true);
  }

  async truncate(path: string, bytes: number): Promise<void> {
    if (!(await this.file(path))) throw new UsageError(`${this.where}/${path}: cannot truncate a file that does not exist`);
    await this.write(path, (w) => w.truncate(bytes), true);
  }

  async size(path: string): Promise<number | null> {
    const h = await this.handle(path);
    if (!h) return null;
    return h.kind === 'file' ? (await (h as FileSystemFileHandle).getFile()).size : 0;
  }

  async rename(from: string, to: string): Promise<void> {
    const src = await this.handle(from);
    if (!src) throw new UsageError(`${this.where}/${from}: cannot rename what does not exist`);
    if (await this.handle(to)) throw new UsageError(`${this.where}/${to}: already exists (rename replaces nothing)`);
    if (src.kind === 'file') {
      const [dir, name] = await this.parent(to, true);
      await (src as FileH).move(dir, name);
      return;
    }
    // a folder: its files move one by one, then the emptied folder goes
    await this.mkdir(to);
    const names: string[] = [];
    for await (const [name] of (src as Dir).entries()) names.push(name);
    for (const name of names) await this.rename(`${from}/${name}`, `${to}/${name}`);
    await this.remove(from);
  }

  async remove(path: string): Promise<void> {
    try {
      const [dir, name] = await this.parent(path, false);
      await dir.removeEntry(name, { recursive: true });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async mkdir(path: string): Promise<void> {
    let dir = this.root;
    for (const p of OpfsRunFolder.split(path)) dir = (await dir.getDirectoryHandle(p, { create: true })) as Dir;
  }

  async exists(path: string): Promise<boolean> {
    return (await this.handle(path)) !== null;
  }
}
