// Non-code assets that the build (scripts/build.mjs) and vitest (vitest.config.ts) load the same way.
declare module '*.wgsl' {
  const source: string; // the WGSL text, inlined so the same code runs in a browser
  export default source;
}
declare module '*.wasm' {
  const bytes: Uint8Array; // the module's bytes, inlined
  export default bytes;
}
