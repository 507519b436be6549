// The one place that knows which world we run in: a browser (navigator.gpu) or Node, where
// Dawn comes from the `webgpu` package. Everything else receives a ready `Gpu`.
import { DeviceLostError, GpuError, NoAdapterError } from '../errors.js';
import { Gpu } from './gpu.js';
import { dawn } from '../platform/node.js';

/** Optional features we use when the adapter has them. */
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

export interface DeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Features to leave off even when present (e.g. to test the f32 path on an f16 GPU). */
  disableFeatures?: string[];
  /** Dawn toggles / options for Node, e.g. ['backend=vulkan']. */
  dawnOptions?: string[];
  /** 'adapter' (default): every limit the adapter offers; 'baseline': WebGPU's defaults, as the
   *  smallest conformant device has them (to test that training still works there). */
  limits?: 'adapter' | 'baseline';
}

// In Node the object that webgpu's create() returns must stay referenced as long as any adapter
// or device made from it lives: if it is garbage collected, the process crashes at random
// (measured: SIGSEGV, futex or pthread assertions). It lives here, for the life of the process.
let nodeGpu: GPU | undefined;

async function navigatorGpu(dawnOptions: string[]): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new NoAdapterError('this browser has no navigator.gpu; use a browser with WebGPU enabled');
  }
  if (!nodeGpu) {
    const webgpu = await dawn();
    // Dawn's Node bindings need the WebGPU globals (GPUBufferUsage, …) installed once.
    Object.assign(globalThis, webgpu.globals);
    nodeGpu = webgpu.create(dawnOptions) as GPU;
  }
  return nodeGpu;
}

/** Request an adapter and a device with the adapter's real limits and our wanted features. */
export async function createGpu(opts: DeviceOptions = {}): Promise<Gpu> {
  const navGpu = await navigatorGpu(opts.dawnOptions ?? []);
  const adapter = await navGpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError('requestAdapter() returned null');

  const features = WANTED_FEATURES.filter(
    (f) => adapter.features.has(f) && !(opts.disableFeatures ?? []).includes(f),
  ) as GPUFeatureName[];
  // The default limits are far below what hardware offers: ask for everything the adapter has.
  const requiredLimits: Record<string, number> = {};
  if (opts.limits !== 'baseline') for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  const gpu = new Gpu(navGpu, adapter, device, backendName(navGpu));

  device.lost.then((info) => {
    if (info.reason !== 'destroyed') gpu.fail(new DeviceLostError(info.reason, info.message));
  });
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    const kind = err instanceof GPUOutOfMemoryError ? 'out-of-memory' : err instanceof GPUValidationError ? 'validation' : 'internal';
    gpu.fail(new GpuError(kind, err.message));
  });
  return gpu;
}

/** Dawn picks Vulkan on Linux, Metal on macOS and D3D12 on Windows; a browser does not say. */
function backendName(navGpu: GPU): string {
  if (navGpu !== nodeGpu) return 'browser';
  return { linux: 'vulkan', darwin: 'metal', win32: 'd3d12' }[process.platform as string] ?? 'unknown';
}

let shared: Promise<Gpu> | undefined;
/** One device per process for the CLI and tests; created on first use. */
export function getGpu(opts?: DeviceOptions): Promise<Gpu> {
  shared ??= createGpu(opts).catch((e) => {
    shared = undefined;
    throw e;
  });
  return shared;
}
