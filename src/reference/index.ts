// zpd-wgpu/reference: the float64 CPU implementation of every op and of the whole model — the
// oracle the tests compare the GPU against. Not part of the main entry (nor of the browser
// bundle); import it as 'zpd-wgpu/reference' to check a kernel or a model of your own.
export * from './adamw.js';
export * from './attention.js';
export * from './embedding.js';
export * from './lmhead.js';
export * from './lora.js';
export * from './matmul.js';
export * from './model.js';
export * from './rmsnorm.js';
export * from './rope.js';
export * from './segment.js';
export * from './swiglu.js';
