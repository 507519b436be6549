// The zpd-wgpu WebAssembly module (assembly/ → build/zpd.wasm), compiled once per process and
// instantiated once per tokenizer or batcher: each instance has its own memory and globals.
import wasmBytes from '../../build/zpd.wasm';

export interface ZpdExports {
  memory: WebAssembly.Memory;
  tk_alloc(n: number): number;
  tk_init(mode: number, pretok: number, flags: number, unk: number, n: number, offs: number, bytes: number, kinds: number, m: number, merges: number): void;
  tk_lookup(p: number, n: number): number;
  tk_input(n: number): number;
  tk_out(): number;
  tk_encode(n: number, splitAdded: number): number;
  tk_dec_out(): number;
  tk_decode(n: number, skipSpecial: number): number;
  bt_input(bytes: number): number;
  bt_out(): number;
  bt_pack(B: number, T: number, bos: number, eos: number, padId: number, pack: number, minPrompt: number, n: number, lens: number, toks: number): number;
}

let compiled: Promise<WebAssembly.Module> | undefined;

/** A fresh instance of the module (compiled asynchronously once: browsers refuse large sync compiles). */
export async function instantiateZpd(): Promise<ZpdExports> {
  compiled ??= WebAssembly.compile(wasmBytes as Uint8Array<ArrayBuffer>);
  const mod = await compiled;
  const inst = await WebAssembly.instantiate(mod, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`zpd.wasm aborted at ${line}:${col}`);
      },
    },
  });
  return inst.exports as unknown as ZpdExports;
}

/** Copy bytes into freshly allocated wasm memory; returns the pointer. */
export function putBytes(w: ZpdExports, data: Uint8Array): number {
  const p = w.tk_alloc(data.byteLength);
  new Uint8Array(w.memory.buffer, p, data.byteLength).set(data);
  return p;
}
