// A ready WebGPU device with the few helpers every kernel wrapper needs: a pipeline cache keyed
// by shader text, entry point and override constants; buffer creation and upload; bind-and-
// dispatch; asynchronous read-back. Kernel wrappers (src/kernels/) encode into a caller's
// GPUCommandEncoder so that a whole training step is one submission.
import { LimitError, ZpdError } from '../errors.js';

export type Constants = Record<string, number>;
export type Binding = GPUBuffer | GPUBufferBinding;
type TypedArray = Float32Array | Uint32Array | Int32Array | Uint16Array | Uint8Array;

export const STORAGE = 0x0080 | 0x0004 | 0x0008; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage)
const UNIFORM = 0x0040 | 0x0008; // UNIFORM | COPY_DST
const MAP_READ = 0x0001 | 0x0008; // MAP_READ | COPY_DST
const QUERY_RESOLVE = 0x0200;
const UNIFORM_CACHE = 4096; // distinct parameter blocks kept
const BIND_GROUP_CACHE = 16384; // bind groups kept
// GPUCommandEncoder methods that cannot run while a compute pass is open
const ENCODER_METHODS = ['finish', 'beginComputePass', 'beginRenderPass', 'copyBufferToBuffer', 'copyBufferToTexture', 'copyTextureToBuffer',
  'copyTextureToTexture', 'clearBuffer', 'resolveQuerySet', 'writeTimestamp', 'pushDebugGroup', 'popDebugGroup', 'insertDebugMarker'];

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  /** A software or otherwise slow adapter (lavapipe, SwiftShader, WARP). */
  fallback: boolean;
}

export class Gpu {
  readonly info: AdapterSummary;
  readonly features: Set<string>;
  readonly limits: GPUSupportedLimits;
  /** Lanes per subgroup (the smallest and largest the adapter may use) where the device has the
   *  `subgroups` feature and the adapter says its sizes; else undefined. */
  readonly subgroups: { min: number; max: number } | undefined;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly uniforms = new Map<string, GPUBuffer>();
  private readonly uniformSet = new WeakSet<GPUBuffer>();
  private readonly scratches = new Map<string, GPUBuffer>();
  private retired: GPUBuffer[] = [];
  /** The compute pass each encoder is filling now: consecutive dispatches share one pass. */
  private readonly passes = new WeakMap<GPUCommandEncoder, GPUComputePassEncoder>();
  private readonly patched = new WeakSet<GPUCommandEncoder>();
  /** Bind groups by pipeline and bound buffers (ids below), made once per fixed set of buffers. */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** The bind-group keys that name each buffer id (dropped when the buffer is destroyed), and the ids each key names. */
  private readonly groupsOf = new Map<number, Set<string>>();
  private readonly buffersOf = new Map<string, number[]>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  /** What the device has created so far (tests assert a steady-state step creates nothing). */
  readonly created = { buffers: 0, bindGroups: 0, pipelines: 0 };
  /** Bytes of every GPU buffer this device holds now, and the most it held since resetPeak(). */
  readonly memory = { live: 0, peak: 0 };
  private failure: Error | undefined;
  private listeners: Array<(e: Error) => void> = [];

  constructor(
    /** navigator.gpu, or Dawn's GPU object in Node: held here so it outlives the device. */
    readonly navigatorGpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    /** The native API underneath, as far as the caller knows it (device.ts decides). */
    backend = 'unknown',
  ) {
    const i = adapter.info;
    this.info = {
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      backend,
      fallback: Boolean((i as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    };
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.limits = device.limits;
    const sg = i as { subgroupMinSize?: number; subgroupMaxSize?: number };
    this.subgroups = this.features.has('subgroups') && (sg.subgroupMinSize ?? 0) > 0 && (sg.subgroupMaxSize ?? 0) >= (sg.subgroupMinSize ?? 0)
      ? { min: sg.subgroupMinSize!, max: sg.subgroupMaxSize! }
      : undefined;
    this.trackMemory();
  }

  /** Count the bytes of every buffer the device creates until it is destroyed. */
  private trackMemory(): void {
    const dev = this.device, mem = this.memory;
    const create = dev.createBuffer.bind(dev);
    dev.createBuffer = (d: GPUBufferDescriptor) => {
      const b = create(d);
      this.created.buffers++;
      mem.live += d.size;
      mem.peak = Math.max(mem.peak, mem.live);
      const destroy = b.destroy.bind(b);
      let gone = false;
      b.destroy = () => {
        if (!gone) (mem.live -= d.size), (gone = true), this.forgetBindGroups(b);
        destroy();
      };
      return b;
    };
  }

  /** A small integer naming `o` (a pipeline or buffer) for cache keys. */
  private id(o: object): number {
    let i = this.ids.get(o);
    if (i === undefined) this.ids.set(o, (i = this.nextId++));
    return i;
  }

  private forgetBindGroups(b: GPUBuffer): void {
    const i = this.ids.get(b);
    if (i === undefined) return;
    for (const key of this.groupsOf.get(i) ?? []) this.dropBindGroup(key);
    this.groupsOf.delete(i);
  }

  private dropBindGroup(key: string): void {
    this.bindGroups.delete(key);
    for (const i of this.buffersOf.get(key) ?? []) this.groupsOf.get(i)?.delete(key);
    this.buffersOf.delete(key);
  }

  resetPeak(): void {
    this.memory.peak = this.memory.live;
  }

  get hasF16(): boolean {
    return this.features.has('shader-f16');
  }

  /** Record a device loss or uncaptured error; the next read() or check() throws it. */
  fail(e: Error): void {
    this.failure ??= e;
    for (const l of this.listeners) l(e);
  }
  onFailure(l: (e: Error) => void): void {
    this.listeners.push(l);
  }
  /** Throw the first asynchronous device error, if any. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  // ---- pipelines -------------------------------------------------------------------------

  /** A compute pipeline for `entryPoint` of `code` with override `constants`, compiled once. */
  pipeline(code: string, entryPoint: string, constants: Constants = {}): GPUComputePipeline {
    const keys = Object.keys(constants).sort();
    const key = `${entryPoint}|${keys.map((k) => `${k}=${constants[k]}`).join(',')}|${code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(code);
      if (!module) {
        module = this.device.createShaderModule({ code });
        this.modules.set(code, module);
      }
      this.created.pipelines++;
      p = this.device.createComputePipeline({
        label: entryPoint,
        layout: 'auto',
        compute: { module, entryPoint, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Compile a pipeline and surface WGSL errors synchronously-ish (for tests and doctor). */
  async pipelineChecked(code: string, entryPoint: string, constants: Constants = {}): Promise<GPUComputePipeline> {
    this.device.pushErrorScope('validation');
    const p = this.pipeline(code, entryPoint, constants);
    const err = await this.device.popErrorScope();
    if (err) throw new ZpdError(`shader ${entryPoint} failed to compile: ${err.message}`);
    return p;
  }

  // ---- buffers ---------------------------------------------------------------------------

  /** A storage buffer of `bytes` (rounded up to 4), or holding `data`. */
  buffer(bytesOrData: number | TypedArray, label?: string, usage = STORAGE): GPUBuffer {
    const bytes = typeof bytesOrData === 'number' ? bytesOrData : bytesOrData.byteLength;
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    this.checkSize(size, label ?? 'a buffer');
    if (typeof bytesOrData === 'number') return this.device.createBuffer({ size, usage, label });
    const buf = this.device.createBuffer({ size, usage, label, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(new Uint8Array(bytesOrData.buffer, bytesOrData.byteOffset, bytesOrData.byteLength));
    buf.unmap();
    return buf;
  }

  /** Refuse, with the limit's name, a buffer larger than the device allows. */
  checkSize(bytes: number, what: string): void {
    if (bytes > this.limits.maxBufferSize) throw new LimitError(what, bytes, 'maxBufferSize', this.limits.maxBufferSize);
    if (bytes > this.limits.maxStorageBufferBindingSize)
      throw new LimitError(what, bytes, 'maxStorageBufferBindingSize', this.limits.maxStorageBufferBindingSize);
  }

  /**
   * A small uniform buffer holding `data` (kernel parameters: sizes, scales). Uniform buffers are
   * never written after creation, so equal contents share one buffer: a training step's
   * dispatches mostly repeat the last step's parameters and allocate nothing.
   */
  uniform(data: TypedArray | ArrayBuffer): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const key = String.fromCharCode(...bytes);
    let buf = this.uniforms.get(key);
    if (buf) return buf;
    const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
    buf = this.device.createBuffer({ size, usage: UNIFORM, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    this.uniformSet.add(buf);
    // Bounded: the oldest entry is retired (an encoder being built may still hold it).
    if (this.uniforms.size >= UNIFORM_CACHE) {
      const oldest = this.uniforms.keys().next().value as string;
      this.retire(this.uniforms.get(oldest)!);
      this.uniforms.delete(oldest);
    }
    this.uniforms.set(key, buf);
    return buf;
  }

  /**
   * A device buffer of at least `bytes`, named `name`, reused across calls (it grows, never
   * shrinks). An op uses its scratch only within its own passes, so ops sharing one encoder may
   * reuse names; an op must not hand a scratch to a later op. A smaller old buffer is retired:
   * destroyed once the next submission has finished, since an encoder being built may use it.
   */
  scratch(name: string, bytes: number): GPUBuffer {
    let b = this.scratches.get(name);
    if (!b || b.size < bytes) {
      if (b) this.retire(b);
      this.scratches.set(name, (b = this.buffer(bytes, `scratch.${name}`)));
    }
    return b;
  }

  /** Destroy `buf` once the work of the next submission (finish/submit) has completed. */
  retire(buf: GPUBuffer): void {
    this.retired.push(buf);
  }

  /**
   * Destroy the cached scratch and uniform buffers (they are made again when next needed).
   * Call when no encoder is being built, e.g. after disposing a model.
   */
  async releaseCaches(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    for (const b of [...this.scratches.values(), ...this.uniforms.values(), ...this.retired]) b.destroy();
    this.scratches.clear();
    this.uniforms.clear();
    this.retired = [];
  }

  write(buf: GPUBuffer, data: TypedArray, byteOffset = 0): void {
    this.device.queue.writeBuffer(buf, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  // ---- dispatch --------------------------------------------------------------------------

  /**
   * Bind `bindings` to @group(0) @binding(0..n-1) of `pipeline`, in order, and dispatch
   * `workgroups` into `encoder` (in the compute pass it has open; see pass()).
   */
  dispatch(
    encoder: GPUCommandEncoder,
    pipeline: GPUComputePipeline,
    bindings: Binding[],
    workgroups: [number, number?, number?],
  ): void {
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    const [x, y = 1, z = 1] = workgroups;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new LimitError(`a dispatch of ${x}×${y}×${z} workgroups (${pipeline.label})`, Math.max(x, y, z), 'maxComputeWorkgroupsPerDimension', maxWg);
    if (x === 0 || y === 0 || z === 0) return;
    // a kernel binding more storage buffers than the device allows is refused with the limit's name
    // (else WebGPU reports it later, asynchronously, as a validation error)
    let storage = 0;
    for (const b of bindings) if (!this.uniformSet.has('buffer' in b ? b.buffer : b)) storage++;
    if (storage > this.limits.maxStorageBuffersPerShaderStage)
      throw new LimitError(`the kernel ${pipeline.label || 'pipeline'}`, storage, 'maxStorageBuffersPerShaderStage', this.limits.maxStorageBuffersPerShaderStage, 'this device offers fewer storage buffers per shader stage than the kernel needs: use a device (or browser) with higher limits');
    const pass = this.pass(encoder);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(pipeline, bindings));
    pass.dispatchWorkgroups(x, y, z);
  }

  /**
   * The bind group of `bindings` for `pipeline`, made once: a training step binds the same
   * buffers every time. Forgotten when one of its buffers is destroyed; bounded in number.
   */
  private bindGroup(pipeline: GPUComputePipeline, bindings: Binding[]): GPUBindGroup {
    let key = String(this.id(pipeline));
    for (const b of bindings) key += 'buffer' in b ? `,${this.id(b.buffer)}@${b.offset ?? 0}+${b.size ?? ''}` : `,${this.id(b)}`;
    let g = this.bindGroups.get(key);
    if (g) return g;
    this.created.bindGroups++;
    g = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((b, i) => ({ binding: i, resource: 'buffer' in b ? b : { buffer: b } })),
    });
    if (this.bindGroups.size >= BIND_GROUP_CACHE) this.dropBindGroup(this.bindGroups.keys().next().value as string);
    this.bindGroups.set(key, g);
    const ids = bindings.map((b) => this.id('buffer' in b ? b.buffer : b));
    this.buffersOf.set(key, ids);
    for (const i of ids) {
      const set = this.groupsOf.get(i);
      if (set) set.add(key);
      else this.groupsOf.set(i, new Set([key]));
    }
    return g;
  }

  /**
   * The compute pass `encoder` is filling, begun on the first dispatch. WebGPU orders the
   * dispatches of one pass (each is its own usage scope, with the barriers that implies), so a
   * whole step's kernels share passes; any other use of the encoder (a copy, a clear, another
   * pass, finish) ends the pass first — the encoder's methods are wrapped to do that.
   */
  private pass(encoder: GPUCommandEncoder): GPUComputePassEncoder {
    let p = this.passes.get(encoder);
    if (p) return p;
    if (!this.patched.has(encoder)) {
      this.patched.add(encoder);
      const e = encoder as unknown as Record<string, unknown>;
      for (const name of ENCODER_METHODS) {
        const f = e[name];
        if (typeof f !== 'function') continue;
        e[name] = (...args: unknown[]) => {
          this.endPass(encoder);
          return (f as (...a: unknown[]) => unknown).apply(encoder, args);
        };
      }
    }
    p = encoder.beginComputePass();
    this.passes.set(encoder, p);
    return p;
  }

  /** End the compute pass the dispatches into `encoder` have open, if any. */
  endPass(encoder: GPUCommandEncoder): void {
    const p = this.passes.get(encoder);
    if (!p) return;
    this.passes.delete(encoder);
    p.end();
  }

  /** Encode with `fn` and submit once. */
  submit(fn: (encoder: GPUCommandEncoder) => void): void {
    const encoder = this.device.createCommandEncoder();
    fn(encoder);
    this.finish(encoder);
  }

  /** Submit `encoder`; buffers retired so far are destroyed when this work has completed. */
  finish(encoder: GPUCommandEncoder): void {
    this.endPass(encoder);
    this.device.queue.submit([encoder.finish()]);
    if (this.retired.length === 0) return;
    const done = this.retired;
    this.retired = [];
    this.device.queue.onSubmittedWorkDone().then(() => done.forEach((b) => b.destroy()));
  }

  // ---- read-back -------------------------------------------------------------------------

  /** A buffer the GPU copies results into inside a submission, read later with readStaging. */
  staging(bytes: number, label?: string): GPUBuffer {
    return this.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: MAP_READ, label });
  }

  /** The contents of a staging buffer once the GPU has written it; the buffer is destroyed, unless `keep`. */
  async readStaging(staging: GPUBuffer, bytes = staging.size, keep = false): Promise<ArrayBuffer> {
    await staging.mapAsync(0x0001 /* GPUMapMode.READ */, 0, Math.ceil(bytes / 4) * 4);
    const out = staging.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
    staging.unmap();
    if (!keep) staging.destroy();
    this.check();
    return out;
  }

  /** Copy `bytes` of `src` (from `offset`) to a staging buffer and return them; never blocks JS. */
  async readBytes(src: GPUBuffer, bytes = src.size, offset = 0): Promise<ArrayBuffer> {
    const staging = this.staging(bytes);
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(src, offset, staging, 0, Math.ceil(bytes / 4) * 4);
    this.finish(encoder);
    return this.readStaging(staging, bytes);
  }

  async readF32(src: GPUBuffer, count?: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(src, (count ?? (src.size - offset) / 4) * 4, offset));
  }
  async readU32(src: GPUBuffer, count?: number, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(src, (count ?? (src.size - offset) / 4) * 4, offset));
  }
  async readI32(src: GPUBuffer, count?: number, offset = 0): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(src, (count ?? (src.size - offset) / 4) * 4, offset));
  }

  /** Resolves when all submitted work has finished; throws a pending device error. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  // ---- timing ----------------------------------------------------------------------------

  /**
   * Time `fn`'s GPU work: with `timestamp-query`, the span between a timestamp written before
   * and after (nanoseconds of GPU time); otherwise wall time around submit → done.
   * Returns milliseconds and which clock measured them.
   */
  async time(fn: (encoder: GPUCommandEncoder) => void): Promise<{ ms: number; clock: 'gpu' | 'wall' }> {
    if (!this.features.has('timestamp-query')) {
      const t0 = performance.now();
      this.submit(fn);
      await this.sync();
      return { ms: performance.now() - t0, clock: 'wall' };
    }
    const qs = this.device.createQuerySet({ type: 'timestamp', count: 2 });
    const resolve = this.device.createBuffer({ size: 16, usage: QUERY_RESOLVE | 0x0004 });
    const encoder = this.device.createCommandEncoder();
    // An empty pass carries each timestamp: writes at pass boundaries are the portable form.
    encoder.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0 } }).end();
    fn(encoder);
    encoder.beginComputePass({ timestampWrites: { querySet: qs, endOfPassWriteIndex: 1 } }).end();
    encoder.resolveQuerySet(qs, 0, 2, resolve, 0);
    this.finish(encoder);
    const t = new BigUint64Array(await this.readBytes(resolve, 16));
    qs.destroy();
    resolve.destroy();
    return { ms: Number(t[1] - t[0]) / 1e6, clock: 'gpu' };
  }

  destroy(): void {
    this.device.destroy();
  }
}
