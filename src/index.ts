// zpd-wgpu public API. Node and browser builds share this entry; only src/gpu/device.ts
// knows which world it runs in.
export * from './errors.js';
export { createGpu, getGpu, type DeviceOptions } from './gpu/device.js';
export { Gpu } from './gpu/gpu.js';
export { matmul, setMatmulTiles, DEFAULT_TILES, type MatmulArgs, type MatmulTiles } from './kernels/matmul.js';
