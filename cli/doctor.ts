// zpd-wgpu doctor: what this machine's WebGPU adapter is and can do, plus a matmul self-test.
import { parseArgs } from 'node:util';
import { tunedGpu } from './gpu.js';
import { describeTiles } from '../src/kernels/matmul.js';
import { matmulSelfTest, modelSelfTest } from './selftest.js';
import { decide, measureBackends } from '../src/wasm/select.js';

export const summary = 'show the WebGPU adapter, its features and limits, and a matmul self-test';
export const usage = `Usage: zpd-wgpu doctor [--json]

Prints the adapter (vendor, architecture, device, description), backend, features, the
granted limits, the matmul tile shape autotuned for this adapter, a matmul self-test (checked
against the CPU reference) with its GFLOP/s, and one LoRA training step of a tiny model checked
against the float64 reference model: every kernel family the trainer uses. Exits non-zero when
any result is wrong, or, saying what to install, when there is no adapter.

  --json   print one object: {adapter, features, limits, matmulGflops, matmulTiles, matmulTilesFrom, selfTest, backends}

It also times the wasm backend (the CPU, SIMD on every core) on the same matmul and says which
backend --backend auto would pick: a hardware GPU, else the faster of the two.`;

const SHOWN_LIMITS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage',
  'maxBindGroups', 'minStorageBufferOffsetAlignment',
];

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } } });
  const { gpu, tiles, tilesFile, tilesFrom } = await tunedGpu();
  const limits: Record<string, number> = {};
  for (const k of SHOWN_LIMITS) limits[k] = (gpu.limits as unknown as Record<string, number>)[k];
  const self = await matmulSelfTest(gpu);
  const kernels = await modelSelfTest(gpu);
  const speeds = await measureBackends(gpu); // the wasm backend beside this GPU, as --backend auto decides
  const pick = decide(gpu.info, speeds);
  const report = {
    adapter: gpu.info,
    features: [...gpu.features].sort(),
    limits,
    matmulGflops: self.gflops,
    matmulTiles: tiles,
    matmulTilesFrom: tilesFrom,
    selfTest: { shape: self.shape, maxError: self.maxError, ok: self.ok && kernels.every((k) => k.ok), clock: self.clock, kernels },
    backends: { ...speeds, auto: pick.kind, reason: pick.reason },
  };
  gpu.destroy();
  if (values.json) {
    console.log(JSON.stringify(report));
  } else {
    const a = report.adapter;
    console.log(`adapter      ${a.description || a.device || '(unnamed)'}`);
    console.log(`vendor       ${a.vendor || '?'}  architecture ${a.architecture || '?'}  backend ${a.backend}`);
    console.log(`features     ${report.features.join(', ') || '(none)'}`);
    console.log('limits');
    for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(36)} ${v}`);
    console.log(`matmul tiles ${describeTiles(tiles)} (${tilesFrom === 'cache' ? 'from the cache' : 'autotuned now'}; ${tilesFile ? `cache ${tilesFile}` : 'not cached: --no-cache'})`);
    console.log(
      `matmul       ${self.shape.join('×')} f32: ${self.gflops.toFixed(2)} GFLOP/s (${self.clock} clock), ` +
        `max |err| vs CPU reference ${self.maxError.toExponential(2)} — ${self.ok ? 'OK' : 'WRONG RESULTS'}`,
    );
    console.log('training step of a tiny model vs the float64 reference:');
    for (const k of kernels) console.log(`  ${k.ok ? 'OK   ' : 'WRONG'} ${k.name} (max |err| ${k.maxError.toExponential(2)})`);
    console.log(
      `backends     matmul ${speeds.size}³: webgpu ${speeds.webgpu!.toFixed(1)} GFLOP/s, wasm ${speeds.wasm.toFixed(1)} GFLOP/s ` +
        `(${speeds.wasmThreads} threads, ${speeds.wasmIsa}); --backend auto picks ${pick.kind}`,
    );
  }
  return report.selfTest.ok ? 0 : 1;
}
