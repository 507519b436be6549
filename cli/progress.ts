// Progress for long commands: on a terminal one line rewritten in place (stderr); otherwise a
// plain line now and then, so logs stay readable.
export class Progress {
  private last = 0;
  private shown = false;
  readonly tty: boolean;
  constructor(private every = 10_000) {
    this.tty = Boolean(process.stderr.isTTY);
  }
  /** Show `line` (on a terminal: replace the previous one; otherwise at most every `every` ms, or when `force`). */
  update(line: string, force = false): void {
    if (this.tty) {
      const w = process.stderr.columns || 120;
      process.stderr.write(`\r${line.length > w - 1 ? line.slice(0, w - 2) + '…' : line.padEnd(w - 1)}`);
      this.shown = true;
      return;
    }
    const now = Date.now();
    if (!force && now - this.last < this.every) return;
    this.last = now;
    process.stderr.write(line + '\n');
  }
  /** Print a line that stays (above the progress line on a terminal). */
  log(line: string): void {
    if (this.tty && this.shown) process.stderr.write('\r' + ' '.repeat((process.stderr.columns || 120) - 1) + '\r');
    process.stderr.write(line + '\n');
    this.shown = false;
  }
  done(): void {
    if (this.tty && this.shown) process.stderr.write('\n');
    this.shown = false;
  }
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
