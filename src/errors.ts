// Typed errors. Each message says what happened and what to do about it; the CLI prints
// `message` and, when present, the `hint` lines.

export class ZpdError extends Error {
  /** What the user can try; printed by the CLI as "---> HINT: …" lines. */
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** No WebGPU adapter could be had. */
export class NoAdapterError extends ZpdError {
  constructor(detail = '') {
    super(
      `no WebGPU adapter is available${detail ? ` (${detail})` : ''}`,
      'with a GPU, install its Vulkan (Linux), Metal (macOS) or D3D12 (Windows) driver; without one, ' +
        'run scripts/ensure-webgpu.sh as root on Debian/Ubuntu (installs Mesa lavapipe, software Vulkan), ' +
        "then check with 'npx zpd-wgpu doctor'",
    );
  }
}

/** The device went away: almost always out of GPU memory, or a driver reset. */
export class DeviceLostError extends ZpdError {
  constructor(readonly reason: string, readonly detail: string) {
    super(
      `the GPU device was lost (${reason}): ${detail}`,
      'this is most likely out of GPU memory: try a smaller --batch-size or --seq-len, ' +
        'enable activation recomputation, or close other programs that use the GPU',
    );
  }
}

/** A validation, out-of-memory or internal error reported by WebGPU. */
export class GpuError extends ZpdError {
  constructor(kind: string, message: string) {
    super(
      `WebGPU ${kind} error: ${message}`,
      kind === 'out-of-memory'
        ? 'the GPU ran out of memory: try a smaller --batch-size (with --grad-accum to keep the batch) or --seq-len, --recompute, f16 weights (--weights f16), fewer --target-modules, or a smaller model'
        : 'this is a bug in zpd-wgpu or the WebGPU implementation; please report it with `npx zpd-wgpu doctor --json`',
    );
  }
}

/** A request exceeds a device limit (buffer size, binding size, workgroup storage, …). */
export class LimitError extends ZpdError {
  constructor(what: string, needed: number, limitName: string, limit: number, hint?: string) {
    super(
      `${what} needs ${needed} but the adapter's ${limitName} is ${limit}`,
      hint ?? 'use a smaller model, batch or sequence length, or a GPU with larger limits',
    );
  }
}

/** A file the user gave is malformed. Always names the file and the place. */
export class FormatError extends ZpdError {
  constructor(file: string, where: string, problem: string, hint?: string) {
    super(`${file}: ${where}: ${problem}`, hint);
  }
}

/** A command-line or API argument is wrong. */
export class UsageError extends ZpdError {}
