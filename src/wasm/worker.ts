// The wasm backend's worker thread, as source text: src/wasm/kernels.ts starts it with
// worker_threads' `eval` in Node, or from a Blob URL as a Web Worker in a browser, so the bundle
// needs no second file; its last line (WORKER_BOOT) comes from src/platform/. It instantiates the kernel module on the shared memory, says it is ready,
// then loops: wait for the control block's sequence number to change, run its share of the op
// (…args, tid, nt), count itself done. Layout of the control block: see Pool in kernels.ts.
import { WORKER_BOOT } from '../platform/node.js';

export const WORKER_SOURCE = `
'use strict';
function start(d, ready) {
  const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory, abort() { throw new Error('kernels.wasm aborted'); } } });
  const fns = d.names.map((n) => inst.exports[n]);
  const ctrl = new Int32Array(d.ctrl, 0, 16);
  const args = new Float64Array(d.ctrl, 64, 32);
  let seen = Atomics.load(ctrl, 0);
  ready();
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctrl, 0) === seen) {
      if (++spins > d.spin) { Atomics.wait(ctrl, 0, seen, 1000); spins = 0; }
    }
    seen = Atomics.load(ctrl, 0);
    const op = ctrl[1];
    if (op < 0) return;
    const a = Array.from(args.subarray(0, ctrl[2]));
    try {
      fns[op](...a, d.tid, d.nt);
    } catch (e) {
      console.error('zpd-wgpu wasm worker ' + d.tid + ': ' + (e && e.stack || e));
      Atomics.store(ctrl, 4, 1);
    }
    Atomics.add(ctrl, 3, 1);
    Atomics.notify(ctrl, 3);
  }
}
${WORKER_BOOT}
`;
