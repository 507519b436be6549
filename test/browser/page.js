// Runs in the browser: the built bundle (dist/browser/index.js) on navigator.gpu. A matmul
// against a JS loop, then the tiny Llama fixture's greedy generation and first-step logits,
// which test/browser.test.ts compares with the same calls made in Node. Every outcome, errors
// included, is POSTed to /result so the test never waits for a page that died quietly.
const report = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });
window.addEventListener('error', (e) => report({ error: `page error: ${e.message}` }));
window.addEventListener('unhandledrejection', (e) => report({ error: `unhandled rejection: ${e.reason?.stack ?? e.reason}` }));

async function main() {
  const out = { steps: [] };
  const t0 = performance.now();
  const lap = (name) => out.steps.push([name, Math.round(performance.now() - t0)]);
  if (!navigator.gpu) return { ...out, noWebgpu: 'navigator.gpu is missing (WebGPU off in this browser)' };
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { ...out, noWebgpu: 'navigator.gpu.requestAdapter() returned null' };

  const z = await import('/dist/browser/index.js');
  lap('import');
  const gpu = await z.createGpu();
  out.adapter = { ...gpu.info, features: [...gpu.features].sort() };
  lap('createGpu');

  // matmul 37×29 · 29×41 (odd sizes: partial tiles) against a float64 JS loop
  const M = 37, K = 29, N = 41;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
  const c = gpu.buffer(M * N * 4);
  gpu.submit((enc) => z.matmul(gpu, enc, { a: gpu.buffer(a), bm: gpu.buffer(b), out: c, M, N, K }));
  const got = await gpu.readF32(c, M * N);
  let maxErr = 0;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      maxErr = Math.max(maxErr, Math.abs(s - got[i * N + j]));
    }
  out.matmul = { M, N, K, maxErr };
  lap('matmul');

  // the tiny Llama fixture, loaded the way a browser app would: fetch + bytesSource
  const dir = '/test/fixtures/models/llama';
  const cfg = z.configFromJson(await (await fetch(`${dir}/config.json`)).json());
  const bytes = new Uint8Array(await (await fetch(`${dir}/model.safetensors`)).arrayBuffer());
  const store = await z.SafetensorsFile.open(z.bytesSource(bytes, 'model.safetensors'));
  const model = await z.modelFromStore(gpu, cfg, store, { weights: 'f32' });
  lap('load');
  const prompt = [1, 2, 3];
  const kv = model.newKvCache(prompt.length);
  out.logits = Array.from(await model.decode(kv, Int32Array.from(prompt)));
  out.ids = await z.generate(model, prompt, { maxNewTokens: 3 });
  lap('generate');
  gpu.check();
  return out;
}

main().then(report, (e) => report({ error: String(e?.stack ?? e) }));
