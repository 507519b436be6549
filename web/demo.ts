// The demo page (web/index.html): the trainer runs in a Web Worker (dist/browser/worker.js) and
// this script only draws — the settings, live charts of the training and held-out loss and of
// the curriculum's window, the adapter's download links, a prompt box, and errors in words.
// Built by scripts/build.mjs to dist/web/demo.js; `npm run demo` serves it.
import { lineChart, type Series } from '../src/compare/svg.js';
import { STRATEGIES } from '../src/curriculum/strategies.js';
import type { ProgressEvent, TrainSummary, WindowInfo } from '../src/train/loop.js';
import { parseTrainArgs, type TrainOptions } from '../src/train/options.js';
import { TrainerWorker } from '../src/worker/client.js';
import type { DataSpec, ModelSpec, RunInfo, TrainRequest } from '../src/worker/protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const params = new URLSearchParams(location.search);

/** What the page saw, for people reading the console and for the browser test. */
const log = { events: [] as ProgressEvent[], summaries: [] as TrainSummary[], errors: [] as { name: string; message: string }[], runs: [] as RunInfo[] };
(globalThis as { zpdDemo?: unknown }).zpdDemo = log;

const EMBEDDED_MODEL = new URL('../default/model/', location.href).href;
const EMBEDDED_TRAIN = new URL('../default/data/train.jsonl', location.href).href;
const EMBEDDED_EVAL = new URL('../default/data/eval.jsonl', location.href).href;

// ---------------------------------------------------------------- errors a person understands

const NO_WEBGPU_HINT =
  'WebGPU is in Chrome and Edge 113+ (Windows, macOS, ChromeOS; Android 121+), Safari 26+ (macOS, iOS), and Firefox 141+ on Windows. ' +
  'On Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu (and a Vulkan driver), or start it with --enable-unsafe-webgpu --enable-features=Vulkan; ' +
  'Firefox elsewhere: set dom.webgpu.enabled in about:config (Nightly). The page must come from https:// or localhost.';

function showError(e: unknown, context = '') {
  const name = (e as { name?: string })?.name ?? 'Error';
  const message = (e as { message?: string })?.message ?? String(e);
  const hint = (e as { hint?: string })?.hint;
  log.errors.push({ name, message });
  let title = 'Something went wrong', extra = '';
  if (name === 'NoAdapterError' || /navigator\.gpu|no WebGPU/i.test(message)) (title = 'This browser has no WebGPU'), (extra = NO_WEBGPU_HINT);
  else if (name === 'LimitError') (title = "The GPU's limits are too small for this"), (extra = 'Choose a smaller model, or lower --batch-size / --seq-len in "more options"; the limits this device got are listed under "Runs in this browser".');
  else if (name === 'DeviceLostError') (title = 'The GPU device was lost'), (extra = 'Nothing after the last checkpoint was kept. Select the run under "Runs in this browser" and press Resume to continue from its checkpoint (with smaller --batch-size or --seq-len if the GPU ran out of memory).');
  else if (/not a model folder|safetensors|config\.json|tokenizer\.json/.test(message) && /FormatError|UsageError/.test(name)) title = 'That is not a model zpd-wgpu can read';
  else if (name === 'FormatError') title = 'A file could not be read';
  else if (name === 'DivergenceError') title = 'Training stopped: the loss diverged';
  $('error-title').textContent = context ? `${title} (${context})` : title;
  $('error-message').textContent = message;
  $('error-hint').textContent = [hint, extra].filter(Boolean).join(' — ');
  $('error').classList.add('show');
  console.error(e);
}

function clearError() {
  $('error').classList.remove('show');
}

// ---------------------------------------------------------------- the worker

let trainer: TrainerWorker | null = null;
function start(): boolean {
  trainer = new TrainerWorker(new Worker(new URL('../browser/worker.js', import.meta.url), { type: 'module' }));
  trainer.gpu().then(
    (a) => ($('gpu').textContent = `GPU: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ')}${a.fallback ? ' (software)' : ''}; features ${a.features.join(', ') || 'none'}; max storage buffers per stage ${a.limits.maxStorageBuffersPerShaderStage}, max buffer ${(a.limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB`),
    (e) => {
      // without WebGPU the worker trains and generates on the wasm backend (the CPU)
      if ((e as { name?: string }).name === 'NoAdapterError') $('gpu').textContent = `No WebGPU in this browser (${(e as Error).message}): training and generation run on the CPU (the wasm backend). ${NO_WEBGPU_HINT}`;
      else showError(e, 'starting WebGPU');
    },
  );
  return true;
}

// ---------------------------------------------------------------- inputs

let droppedModel: File[] | null = null;

function modelSpec(): { spec: ModelSpec; embedded: boolean } {
  const kind = (document.querySelector('input[name=model]:checked') as HTMLInputElement).value;
  if (kind === 'default') return { spec: { kind: 'url', url: EMBEDDED_MODEL }, embedded: true };
  if (kind === 'url') {
    const url = input('model-url').value.trim();
    if (!url) throw Object.assign(new Error('give the model folder URL (e.g. https://huggingface.co/ORG/NAME/resolve/main/)'), { name: 'UsageError' });
    return { spec: { kind: 'url', url: new URL(url, location.href).href }, embedded: false };
  }
  const files = droppedModel ?? [...(input('model-folder').files ?? [])];
  if (files.length === 0) throw Object.assign(new Error('pick a model folder (or drop one on the box)'), { name: 'UsageError' });
  const rel = (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath;
  return { spec: { kind: 'files', files, name: rel ? rel.split('/')[0] : undefined }, embedded: false };
}

function dataSpecs(): { data: DataSpec; evalData: DataSpec | null; embedded: boolean } {
  const kind = (document.querySelector('input[name=data]:checked') as HTMLInputElement).value;
  if (kind === 'default') return { data: { kind: 'url', url: EMBEDDED_TRAIN }, evalData: { kind: 'url', url: EMBEDDED_EVAL }, embedded: true };
  const f = input('data-file').files?.[0];
  if (!f) throw Object.assign(new Error('pick a data file (.jsonl or .parquet)'), { name: 'UsageError' });
  const e = input('eval-file').files?.[0];
  return { data: { kind: 'file', file: f }, evalData: e ? { kind: 'file', file: e } : null, embedded: false };
}

function options(): Partial<TrainOptions> {
  const o: Partial<TrainOptions> = { curriculum: $<HTMLSelectElement>('curriculum').value as TrainOptions['curriculum'] };
  const steps = Number(input('steps').value), lr = Number(input('lr').value);
  if (Number.isInteger(steps) && steps > 0) o.steps = steps;
  if (Number.isFinite(lr) && lr > 0) o.lr = lr;
  const flags = input('flags').value.trim();
  return flags ? parseTrainArgs(flags.split(/\s+/), o).options : o;
}

// ---------------------------------------------------------------- charts and status

interface Point { x: number; y: number; lo?: number; hi?: number }
let trainPts: Point[] = [], evalPts: Point[] = [], windowPts: Point[] = [];
let currentRun = '', currentModel: ModelSpec | null = null;

function resetCharts() {
  trainPts = [], evalPts = [], windowPts = [];
  draw();
}

function upsert(list: Point[], p: Point) {
  const i = list.findIndex((q) => q.x === p.x);
  if (i >= 0) list[i] = p;
  else list.push(p), list.sort((a, b) => a.x - b.x);
}

function addWindow(step: number, w: WindowInfo | null) {
  if (w && Number.isFinite(w.lo) && Number.isFinite(w.hi)) upsert(windowPts, { x: step, y: (w.lo + w.hi) / 2, lo: w.lo, hi: w.hi });
}

function draw() {
  const chart = (id: string, title: string, yLabel: string, series: Series[]) => {
    const live = series.filter((s) => s.points.length > 0);
    if (live.length === 0) return;
    $(id).innerHTML = lineChart({ title, xLabel: 'step', yLabel, series: live });
  };
  chart('loss-chart', 'Loss', 'loss (nats per token)', [{ name: 'training', points: trainPts }, { name: 'held-out', points: evalPts }]);
  chart('window-chart', 'ZPD window (difficulty of the samples trained on)', 'difficulty signal', [{ name: 'window (lo–hi)', points: windowPts }]);
  if (trainPts.length === 0 && evalPts.length === 0) $('loss-chart').innerHTML = '<div class="chart-empty">training and held-out loss appear here</div>';
  if (windowPts.length === 0) $('window-chart').innerHTML = '<div class="chart-empty">the curriculum\'s current window appears here (zpd, self-paced: after the first scoring)</div>';
}

function history(metrics: Record<string, unknown>[]) {
  for (const m of metrics) {
    const step = m.step as number;
    if (m.type === 'step' && Number.isFinite(m.loss)) upsert(trainPts, { x: step, y: m.loss as number });
    if (m.type === 'eval') upsert(evalPts, { x: step, y: m.loss as number });
    if (m.type === 'rescore') addWindow(step, m as unknown as WindowInfo);
  }
  draw();
}

const fmt = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

function onProgress(e: ProgressEvent) {
  log.events.push(e);
  const st = $('status');
  switch (e.type) {
    case 'start':
      st.textContent = `${e.resumedAt ? `resumed at step ${e.resumedAt}` : 'started'} on ${e.backend}: ${e.steps} steps, ${e.trainSamples} training and ${e.evalSamples} held-out samples, run folder ${e.folder}`;
      break;
    case 'scoring':
      st.textContent = `step ${e.step}: scoring ${e.pool} samples to choose the window…`;
      break;
    case 'rescore':
      addWindow(e.step, e.window);
      draw();
      break;
    case 'eval':
      upsert(evalPts, { x: e.step, y: e.loss });
      draw();
      break;
    case 'step':
      if (!e.skipped) upsert(trainPts, { x: e.step, y: e.loss });
      draw();
      st.textContent =
        `step ${e.step}/${e.steps}   loss ${fmt(e.loss)}   held-out ${fmt(e.evalLoss)}   ` +
        `window ${e.window ? `${fmt(e.window.lo, 2)}–${fmt(e.window.hi, 2)} (${e.window.size} of ${e.window.pool})` : '–'}   ` +
        `${e.tokensPerSecond.toFixed(0)} tokens/s   lr ${e.lr.toExponential(2)}   ${e.etaSeconds > 0 ? `about ${Math.ceil(e.etaSeconds)} s left` : ''}`;
      break;
    case 'saving':
      break;
    case 'checkpoint':
      st.textContent += `   (checkpoint at step ${e.step})`;
      break;
    case 'end':
      break;
  }
}

// ---------------------------------------------------------------- actions

function setBusy(busy: boolean) {
  $<HTMLButtonElement>('train').disabled = busy;
  $<HTMLButtonElement>('stop').disabled = !busy;
  $<HTMLButtonElement>('generate').disabled = busy;
  $<HTMLButtonElement>('delete').disabled = busy || !selectedRun();
  $<HTMLButtonElement>('resume').disabled = busy || !resumable();
}

async function run(req: TrainRequest) {
  if (!trainer) return;
  clearError();
  currentRun = req.run;
  currentModel = req.model;
  setBusy(true);
  const prog = $<HTMLProgressElement>('load-progress');
  const started = performance.now();
  try {
    const summary = await trainer.train(req, {
      onProgress,
      onHistory: history,
      onBytes: (file, bytes, total, fromCache) => {
        prog.hidden = false;
        prog.max = total || 1;
        prog.value = bytes;
        $('load-status').textContent = `${file}: ${(bytes / 2 ** 20).toFixed(1)} of ${(total / 2 ** 20).toFixed(1)} MiB${fromCache ? ' (from the cache)' : ''}`;
      },
      onTensor: (name, done, total) => {
        $('load-status').textContent = `weights on the GPU: ${done} of ${total} (${name})`;
        if (done === total) prog.hidden = true;
      },
    });
    log.summaries.push(summary);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    $('status').textContent +=
      `\n${summary.status === 'interrupted' ? `stopped at step ${summary.steps} (checkpoint kept: Resume continues)` : `${summary.status}: ${summary.steps} steps`}` +
      `${summary.after ? `, held-out loss ${fmt(summary.before?.loss)} → ${fmt(summary.after.loss)}` : ''} in ${secs} s`;
    await showDownloads(req.run);
  } catch (e) {
    showError(e, 'training');
  } finally {
    setBusy(false);
    await refreshRuns();
  }
}

async function showDownloads(runName: string) {
  if (!trainer) return;
  const box = $('downloads');
  const found = await trainer.adapter(runName);
  if (!found) return;
  box.classList.remove('muted');
  box.innerHTML = '';
  for (const f of found.files) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(f.blob);
    a.download = f.name;
    a.textContent = `⬇ ${f.name} (${(f.blob.size / 1024).toFixed(0)} KiB)`;
    a.className = 'download';
    box.append(a);
  }
  const note = document.createElement('div');
  note.className = 'muted';
  note.textContent = `run “${runName}”, ${found.from === 'final' ? 'the final adapter' : "the last checkpoint's adapter"} — load it with PEFT, or zpd-wgpu generate --adapter`;
  box.append(note);
}

// ---------------------------------------------------------------- runs kept in OPFS

function selectedRun(): RunInfo | undefined {
  const name = (document.querySelector('input[name=run]:checked') as HTMLInputElement | null)?.value;
  return log.runs.find((r) => r.name === name);
}

function resumable(): boolean {
  const r = selectedRun();
  return !!r && r.checkpoint && r.status !== 'done' && r.status !== 'early-stopped';
}

async function refreshRuns() {
  if (!trainer) return;
  const keep = selectedRun()?.name ?? currentRun;
  log.runs = await trainer.runs().catch(() => []);
  const body = $('runs');
  body.innerHTML = '';
  for (const r of log.runs) {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td><input type="radio" name="run"></td><td></td><td></td><td></td>`;
    const radio = tr.querySelector('input')!;
    radio.value = r.name;
    radio.checked = r.name === keep;
    radio.addEventListener('change', () => setBusy(false));
    tr.children[1].textContent = r.name;
    tr.children[2].textContent = r.status === 'incomplete' ? (r.checkpoint ? 'interrupted (checkpoint kept)' : 'incomplete') : r.status;
    tr.children[3].textContent = `${r.step}${r.steps ? ` / ${r.steps}` : ''}`;
    body.append(tr);
  }
  setBusy(false);
}

function resumeSelected() {
  const r = selectedRun();
  if (!r || !r.options) return;
  try {
    const embedded = !!r.inputs?.embedded;
    let model: ModelSpec, data: DataSpec, evalData: DataSpec | null;
    if (embedded) {
      model = { kind: 'url', url: EMBEDDED_MODEL };
      data = { kind: 'url', url: EMBEDDED_TRAIN };
      evalData = { kind: 'url', url: EMBEDDED_EVAL };
    } else {
      // a URL model comes back from its URL; picked files must be picked again (their hashes are checked)
      model = /^https?:/.test(r.inputs?.model ?? '') ? { kind: 'url', url: r.inputs!.model! } : modelSpec().spec;
      ({ data, evalData } = dataSpecs());
    }
    resetCharts();
    // the fields show the run being resumed (its own options are what it continues with)
    input('run-name').value = r.name;
    if (r.options.steps) input('steps').value = String(r.options.steps);
    if (r.options.curriculum) $<HTMLSelectElement>('curriculum').value = r.options.curriculum;
    if (r.options.lr) input('lr').value = String(r.options.lr);
    void run({ model, data, evalData, embedded, options: { ...r.options, resume: true, overwrite: false }, run: r.name, loseDeviceAt: testFault() });
  } catch (e) {
    showError(e, 'resume');
  }
}

/** Tests only: ?lose-device-at=N reports the GPU lost at step N of the session. */
function testFault(): number | undefined {
  const n = Number(params.get('lose-device-at'));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

// ---------------------------------------------------------------- wiring

function init() {
  const cur = $<HTMLSelectElement>('curriculum');
  for (const s of STRATEGIES) cur.append(new Option(s, s, s === 'zpd', s === 'zpd'));
  const d = new Date(), p = (n: number) => String(n).padStart(2, '0');
  input('run-name').value = `run-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;

  const drop = $('model-drop');
  drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void filesFromDrop(e.dataTransfer!).then((files) => {
      droppedModel = files;
      (document.querySelector('input[name=model][value=folder]') as HTMLInputElement).checked = true;
      $('load-status').textContent = `${files.length} files dropped: ${files.map((f) => f.name).join(', ')}`;
    });
  });
  input('model-folder').addEventListener('change', () => {
    droppedModel = null;
    (document.querySelector('input[name=model][value=folder]') as HTMLInputElement).checked = true;
  });
  input('model-url').addEventListener('input', () => ((document.querySelector('input[name=model][value=url]') as HTMLInputElement).checked = true));
  input('data-file').addEventListener('change', () => ((document.querySelector('input[name=data][value=file]') as HTMLInputElement).checked = true));

  $('train').addEventListener('click', () => {
    try {
      const m = modelSpec(), dsp = dataSpecs();
      const o = options();
      resetCharts();
      void run({
        model: m.spec, data: dsp.data, evalData: dsp.evalData, embedded: m.embedded && dsp.embedded,
        options: { ...o, overwrite: input('overwrite').checked }, run: input('run-name').value.trim() || 'run', loseDeviceAt: testFault(),
      });
    } catch (e) {
      showError(e, 'settings');
    }
  });
  $('stop').addEventListener('click', () => {
    trainer?.stop();
    $('status').textContent += '\nstopping after this step…';
  });
  $('resume').addEventListener('click', resumeSelected);
  $('delete').addEventListener('click', async () => {
    const r = selectedRun();
    if (r && trainer) await trainer.deleteRun(r.name).catch((e) => showError(e, 'delete'));
    await refreshRuns();
  });
  $('generate').addEventListener('click', async () => {
    if (!trainer) return;
    clearError();
    const out = $('output');
    out.textContent = '…';
    const runName = selectedRun()?.name ?? (currentRun || null);
    let model = currentModel;
    try {
      model ??= modelSpec().spec;
      const r = await trainer.generate({ model, run: runName, prompt: $<HTMLTextAreaElement>('prompt').value, maxNewTokens: 32 }, (t) => (out.textContent = t));
      out.textContent = r.text || '(the model ended its answer at once)';
      $('gen-info').textContent = `${r.ids.length} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s on ${r.backend}${runName ? `, adapter of “${runName}”` : ', base model'}`;
      (globalThis as { zpdDemo?: { generated?: unknown } }).zpdDemo!.generated = r;
    } catch (e) {
      out.textContent = '';
      showError(e, 'generation');
    }
  });
  if (start()) void refreshRuns().then(() => {
    const r = selectedRun() ?? log.runs.find((x) => x.checkpoint && x.status !== 'done');
    if (r && r.step > 0) void showDownloads(r.name);
  });
}

/** The files of a dropped folder (its top level), through the entries API. */
async function filesFromDrop(dt: DataTransfer): Promise<File[]> {
  const out: File[] = [];
  const items = [...dt.items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  for (const entry of items) {
    if (entry.isFile) out.push(await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const e of batch) if (e.isFile) out.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)));
      }
    }
  }
  return out;
}

init();
