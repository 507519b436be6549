// probe-adapter.mjs — exit 0 when Node can get a WebGPU adapter through Dawn, else 1.
// Plain JS so that it runs before anything is built. Used by scripts/ensure-webgpu.sh.
import { create } from 'webgpu';

const gpu = create([]); // keep this reference alive while the adapter lives (Dawn crashes otherwise)
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('probe-adapter: navigator.gpu.requestAdapter() returned null');
  process.exit(1);
}
const info = adapter.info ?? {};
console.log(`${info.vendor ?? '?'} ${info.architecture ?? ''} ${info.description ?? ''}`.trim());
process.exit(0);
