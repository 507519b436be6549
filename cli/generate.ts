// zpd-wgpu generate: text from a Hugging Face model folder (optionally with a PEFT adapter),
// with a KV cache, greedy or sampled, streamed to stdout as it is produced.
import { parseArgs } from 'node:util';
import { UsageError } from '../src/errors.js';
import { generate } from '../src/model/llama.js';
import { instructionPrompt } from '../src/data/read.js';
import type { TrainOptions } from '../src/train/options.js';
import { embeddedPath, openScorer } from '../src/train/train.js';
import { gpuForBackend } from './gpu.js';

export const summary = 'generate text from a model folder (and a PEFT adapter)';
export const usage = `Usage: zpd-wgpu generate --prompt TEXT [--model DIR] [--adapter DIR] [options]

  --model DIR          Hugging Face folder: config.json, *.safetensors, tokenizer.json (default:
                       the model a train run's --adapter folder was trained from, else the
                       embedded model)
  --adapter DIR        PEFT adapter folder (adapter_config.json + adapter_model.safetensors), e.g.
                       a train run's folder
  --prompt TEXT        the prompt
  --template T         how the prompt is written: chat (one user message in the chat_template),
                       instruction (as train writes an instruction record without a chat
                       template: TEXT + blank line), raw (as given), or auto [auto]: what the
                       adapter's run used when it has a run.json, else raw
  --chat               the same as --template chat
  --max-new-tokens N   default 64
  --temperature X      0 (default) is greedy
  --top-p X            nucleus sampling threshold, default 1
  --seed S             sampling seed, default 0
  --backend B          webgpu|wasm|auto: where the model runs (wasm: the CPU, no GPU needed) [webgpu]
  --json               print one object {prompt, text, ids, tokensPerSecond} instead of streaming`;

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, adapter: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'boolean' }, template: { type: 'string', default: 'auto' },
      'max-new-tokens': { type: 'string', default: '64' }, temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' }, seed: { type: 'string', default: '0' }, json: { type: 'boolean' },
      backend: { type: 'string', default: 'webgpu' },
    },
  });
  if (v.prompt === undefined) throw new UsageError('generate needs --prompt TEXT; see --help');
  if (!['auto', 'chat', 'instruction', 'raw'].includes(v.template!)) throw new UsageError(`--template must be auto, chat, instruction or raw, got '${v.template}'`);
  const backend = v.backend as 'webgpu' | 'wasm' | 'auto';
  if (!['webgpu', 'wasm', 'auto'].includes(backend)) throw new UsageError(`--backend must be one of webgpu, wasm, auto, got '${backend}'`);
  const num = (name: string, s: string, int = false) => {
    const x = Number(s);
    if (!Number.isFinite(x) || (int && !Number.isInteger(x))) throw new UsageError(`--${name} must be a${int ? 'n integer' : ' number'}, got '${s}'`);
    return x;
  };
  const maxNewTokens = num('max-new-tokens', v['max-new-tokens']!, true);
  const temperature = num('temperature', v.temperature!), topP = num('top-p', v['top-p']!), seed = num('seed', v.seed!, true);

  // a train run's folder says which model and prompt format it was trained with
  const { readFile, stat } = await import('node:fs/promises');
  const run = v.adapter ? await readFile(`${v.adapter}/run.json`, 'utf8').then((t) => JSON.parse(t) as { options?: TrainOptions }, () => null) : null;
  const modelDir = v.model ?? run?.options?.model ?? (await embeddedPath('model'));
  if (!(await stat(modelDir).catch(() => null))?.isDirectory())
    throw new UsageError(`--model ${modelDir}: no such folder (give a Hugging Face model folder: config.json, *.safetensors, tokenizer.json)`);
  const s = await openScorer({ model: modelDir, adapter: v.adapter ?? null, weights: 'auto', backend }, await gpuForBackend(backend));
  try {
    return await complete(s, v as Parameters<typeof complete>[1], run, { maxNewTokens, temperature, topP, seed });
  } finally {
    s.backend.dispose();
  }
}

async function complete(
  { tok, stopIds, model }: Awaited<ReturnType<typeof openScorer>>, v: { prompt?: string; chat?: boolean; template?: string; json?: boolean },
  run: { options?: TrainOptions } | null, sampling: { maxNewTokens: number; temperature: number; topP: number; seed: number },
): Promise<number> {
  let template = v.chat ? 'chat' : v.template!;
  if (template === 'auto') {
    const mode = run?.options?.chatTemplate;
    template = !run ? 'raw' : mode === 'on' || (mode === 'auto' && tok.chatTemplate !== null) ? 'chat' : 'instruction';
  }
  const text = template === 'raw' ? v.prompt! : instructionPrompt(v.prompt!, template === 'chat' ? (m, g) => tok.applyChatTemplate(m, { addGenerationPrompt: g }) : undefined);
  const prompt = tok.encode(text);
  const t0 = performance.now();
  let shown = '';
  const ids: number[] = [];
  const out = await generate(model, prompt, {
    ...sampling, stop: stopIds,
    onToken: (id) => {
      if (v.json) return;
      ids.push(id);
      const s = tok.decode(ids, { skipSpecialTokens: true });
      process.stdout.write(s.slice(shown.length)); // print only what is new (a UTF-8 sequence may span tokens)
      shown = s;
    },
  });
  const secs = (performance.now() - t0) / 1000;
  const result = tok.decode(out, { skipSpecialTokens: true });
  if (v.json) console.log(JSON.stringify({ prompt: text, text: result, ids: out, tokensPerSecond: out.length / secs }));
  else process.stdout.write(`${result.slice(shown.length)}\n`), console.error(`(${out.length} tokens, ${(out.length / secs).toFixed(1)} tokens/s)`);
  return 0;
}
