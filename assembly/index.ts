// zpd-wgpu WebAssembly module (AssemblyScript → build/zpd.wasm): tokenizer and batcher.
// Build: node scripts/build.mjs (release), or npx asc assembly/index.ts --target debug.
export { tk_alloc, tk_init, tk_lookup, tk_input, tk_out, tk_encode, tk_dec_out, tk_decode } from './tokenizer';
export { bt_input, bt_out, bt_pack } from './batcher';
