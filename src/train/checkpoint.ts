// Checkpoints for exact resume: the optimizer's whole state (trainable tensors, AdamW moments,
// step count), the curriculum's state and RNG, the loop's own counters, and how long the log
// files were — in one msgpack file with a SHA-256 of its payload, so a torn or foreign file is
// refused instead of half-loaded.
//
// A checkpoint is a folder, `checkpoint/`: state.msgpack (+ the PEFT adapter files, so the
// checkpoint can be evaluated or served as it is). It is written as `checkpoint.tmp/`, each file
// flushed and renamed into place; then `checkpoint/` becomes `checkpoint.old/`, the new folder
// becomes `checkpoint/`, and the old one is removed. Whatever moment a crash hits, one whole
// checkpoint remains; load() takes the newest whole one of the three names.
import { Packr } from 'msgpackr';
import { FormatError } from '../errors.js';
import type { OptimizerState } from './backend.js';
import type { RunFolder } from './io.js';

export const CHECKPOINT_DIR = 'checkpoint';
const NAMES = [CHECKPOINT_DIR, `${CHECKPOINT_DIR}.tmp`, `${CHECKPOINT_DIR}.old`];
const STATE = 'state.msgpack';
const MAGIC = 'zpd-wgpu checkpoint';
const VERSION = 1;

const packr = new Packr({ moreTypes: true, useRecords: false });

export interface CheckpointState {
  /** the run's settings that change what it computes (checked on resume) */
  settings: Record<string, unknown>;
  /** optimizer steps done */
  step: number;
  optimizer: OptimizerState;
  curriculum: unknown;
  rng: number;
  /** the loop's counters (early stopping, watchdog, timing) */
  loop: Record<string, unknown>;
  /** byte lengths of the log files when the checkpoint was taken */
  logs: Record<string, number>;
}

export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const d = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Write `state` (and `extra` files, e.g. the adapter) as the run's checkpoint. */
export async function saveCheckpoint(folder: RunFolder, state: CheckpointState, extra: Record<string, Uint8Array | string> = {}): Promise<void> {
  const [dir, tmp, old] = NAMES;
  const payload = packr.pack(state);
  const file = packr.pack({ magic: MAGIC, version: VERSION, sha256: await sha256Hex(payload), payload });
  await folder.remove(tmp);
  for (const [name, data] of Object.entries(extra)) await folder.writeAtomic(`${tmp}/${name}`, data);
  await folder.writeAtomic(`${tmp}/${STATE}`, file); // last: a tmp folder with state.msgpack is whole
  await folder.remove(old);
  if (await folder.exists(dir)) await folder.rename(dir, old);
  await folder.rename(tmp, dir);
  await folder.remove(old);
}

/**
 * The newest whole checkpoint in the folder, or null when there is none. A checkpoint that is
 * torn, not ours, or from a run with other settings is refused with the reason.
 */
export async function loadCheckpoint(folder: RunFolder, settings: Record<string, unknown>): Promise<CheckpointState | null> {
  let best: CheckpointState | null = null;
  const problems: string[] = [];
  for (const name of NAMES) {
    const bytes = await folder.read(`${name}/${STATE}`);
    if (!bytes) continue;
    try {
      const s = await decode(bytes, `${folder.where}/${name}/${STATE}`);
      if (!best || s.step > best.step) best = s;
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (!best) {
    if (problems.length) throw new FormatError(`${folder.where}/${CHECKPOINT_DIR}`, STATE, problems.join('; '), 'the checkpoint cannot be used: start afresh with --overwrite');
    return null;
  }
  const diff = Object.keys({ ...settings, ...best.settings }).filter((k) => JSON.stringify(settings[k]) !== JSON.stringify(best!.settings[k]));
  if (diff.length) {
    const show = diff.slice(0, 6).map((k) => `${k}: ${JSON.stringify(best!.settings[k])} there, ${JSON.stringify(settings[k])} now`);
    throw new FormatError(
      `${folder.where}/${CHECKPOINT_DIR}`, 'settings', `the checkpoint was made by a run with other settings (${show.join('; ')})`,
      'resume with the settings of that run (see run.json), or start afresh with --overwrite',
    );
  }
  return best;
}

async function decode(bytes: Uint8Array, file: string): Promise<CheckpointState> {
  let outer: { magic?: unknown; version?: unknown; sha256?: unknown; payload?: unknown };
  try {
    outer = packr.unpack(bytes);
  } catch {
    throw new FormatError(file, 'file', 'not a zpd-wgpu checkpoint (unreadable: torn or foreign)');
  }
  if (typeof outer !== 'object' || outer === null || outer.magic !== MAGIC) throw new FormatError(file, 'header', 'not a zpd-wgpu checkpoint');
  if (outer.version !== VERSION) throw new FormatError(file, 'version', `checkpoint format ${String(outer.version)}; this zpd-wgpu reads ${VERSION}`);
  if (!(outer.payload instanceof Uint8Array) || (await sha256Hex(outer.payload)) !== outer.sha256) throw new FormatError(file, 'payload', 'the checksum does not match (a torn or altered file)');
  const s = packr.unpack(outer.payload) as CheckpointState;
  if (typeof s?.step !== 'number' || !s.optimizer || !Array.isArray(s.optimizer.tensors)) throw new FormatError(file, 'payload', 'incomplete checkpoint state');
  return s;
}
