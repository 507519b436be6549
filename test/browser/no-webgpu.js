// Runs in a browser without WebGPU: the built bundle (dist/browser/index.js) trains the tiny
// Llama fixture through trainInBrowser with the default backend ('webgpu'), which falls back to
// the wasm backend, into an in-memory run folder; then, with navigator.gpu removed altogether,
// generates with the run's adapter through loadTuned; then the training Web Worker
// (dist/browser/worker.js, as the demo page uses it) makes the same run into OPFS and generates
// with it. test/browser.test.ts makes the same run and
// generation in Node on the wasm backend and compares. The options and the prompt come in the
// page's query string (?options=JSON&prompt=…&maxNewTokens=N); the data files from the test's
// server (/gen/train.jsonl, /gen/eval.jsonl). Every outcome, errors included, is POSTed to /result.
const report = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });
window.addEventListener('error', (e) => report({ error: `page error: ${e.message}` }));
window.addEventListener('unhandledrejection', (e) => report({ error: `unhandled rejection: ${e.reason?.stack ?? e.reason}` }));

const b64 = (bytes) => {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

async function main() {
  const q = new URLSearchParams(location.search);
  const out = { steps: [] };
  const t0 = performance.now();
  const lap = (name) => out.steps.push([name, Math.round(performance.now() - t0)]);
  // what this browser offers: the test expects navigator.gpu without an adapter
  out.navigatorGpu = 'gpu' in navigator;
  out.adapter = navigator.gpu ? ((await navigator.gpu.requestAdapter()) === null ? null : 'an adapter') : undefined;
  out.isolated = self.crossOriginIsolated === true;

  const z = await import('/dist/browser/index.js');
  lap('import');
  const model = await z.openModelFiles(await z.modelFilesFromUrl('/test/fixtures/models/llama/'));
  const [data, evalData] = await Promise.all([z.dataFromUrl('/gen/train.jsonl'), z.dataFromUrl('/gen/eval.jsonl')]);
  const folder = new z.MemoryRunFolder('memory:/no-webgpu');
  const events = [];
  const summary = await z.trainInBrowser({ model, data, evalData }, JSON.parse(q.get('options')), { folder, onProgress: (e) => events.push(e) });
  lap('train');
  const text = async (f) => new TextDecoder().decode(await folder.read(f));
  const metrics = (await text('metrics.jsonl')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const run = JSON.parse(await text('run.json'));
  out.train = {
    status: summary.status,
    losses: metrics.filter((m) => m.type === 'step').map((m) => m.loss),
    evalLosses: metrics.filter((m) => m.type === 'eval').map((m) => m.loss),
    startBackend: events.find((e) => e.type === 'start')?.backend,
    backend: run.backend,
    backendChoice: run.inputs.backendChoice,
    wasm: run.inputs.wasm ?? null,
    gpuAdapter: run.inputs.adapter ?? null,
    files: folder.list(),
    adapter: b64(await folder.read('adapter_model.safetensors')),
  };

  // 'auto' where there is no adapter
  const auto = await z.resolveBrowserBackend('auto');
  out.auto = { kind: auto.kind, reason: auto.reason };

  // generation with navigator.gpu gone entirely (a browser without WebGPU at all)
  delete Navigator.prototype.gpu;
  out.navigatorGpuAfterDelete = 'gpu' in navigator;
  const pick = await z.resolveBrowserBackend('webgpu');
  const tuned = await z.loadTuned(pick.gpu, model, folder);
  const g = await z.generateText(tuned, q.get('prompt'), { maxNewTokens: Number(q.get('maxNewTokens')) });
  tuned.dispose();
  out.generate = { reason: pick.reason, backend: g.backend, template: tuned.template, from: tuned.adapter, prompt: g.prompt, ids: g.ids, text: g.text };
  lap('generate');

  // the same through the training worker, whose navigator.gpu (a WorkerNavigator's) gives no adapter either
  const trainer = new z.TrainerWorker(new Worker('/dist/browser/worker.js', { type: 'module' }));
  const model2 = { kind: 'url', url: '/test/fixtures/models/llama/' }, run2 = 'no-webgpu';
  const gpuInfo = await trainer.gpu().then(() => 'an adapter', (e) => e.name);
  const wEvents = [];
  const ws = await trainer.train(
    { model: model2, data: { kind: 'url', url: '/gen/train.jsonl' }, evalData: { kind: 'url', url: '/gen/eval.jsonl' }, options: JSON.parse(q.get('options')), run: run2 },
    { onProgress: (e) => wEvents.push(e) },
  );
  const wg = await trainer.generate({ model: model2, run: run2, prompt: q.get('prompt'), maxNewTokens: Number(q.get('maxNewTokens')) });
  out.worker = {
    gpu: gpuInfo, status: ws.status, startBackend: wEvents.find((e) => e.type === 'start')?.backend,
    losses: wEvents.filter((e) => e.type === 'step').map((e) => e.loss), ids: wg.ids, backend: wg.backend,
  };
  trainer.worker.terminate();
  lap('worker');
  return out;
}

main().then(report, (e) => report({ error: String(e?.stack ?? e) }));
