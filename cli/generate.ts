// zpd-wgpu generate: text from a Hugging Face model folder (optionally with a PEFT adapter),
// with a KV cache, greedy or sampled, streamed to stdout as it is produced.
import { parseArgs } from 'node:util';
import { UsageError } from '../src/errors.js';
import { generate } from '../src/model/llama.js';
import { loadModel, loadModelAdapter } from '../src/model/load.js';
import { loadTokenizer } from '../src/tokenizer/files.js';
import { tunedGpu } from './gpu.js';

export const summary = 'generate text from a model folder (and a PEFT adapter)';
export const usage = `Usage: zpd-wgpu generate --model DIR --prompt TEXT [options]

  --model DIR          Hugging Face folder: config.json, *.safetensors, tokenizer.json
  --adapter DIR        PEFT adapter folder (adapter_config.json + adapter_model.safetensors)
  --prompt TEXT        the prompt
  --chat               wrap the prompt as one user message with the model's chat_template
  --max-new-tokens N   default 64
  --temperature X      0 (default) is greedy
  --top-p X            nucleus sampling threshold, default 1
  --seed S             sampling seed, default 0
  --json               print one object {prompt, text, ids, tokensPerSecond} instead of streaming`;

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, adapter: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'boolean' },
      'max-new-tokens': { type: 'string', default: '64' }, temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' }, seed: { type: 'string', default: '0' }, json: { type: 'boolean' },
    },
  });
  if (!v.model) throw new UsageError('generate needs --model DIR (a Hugging Face model folder); see --help');
  if (v.prompt === undefined) throw new UsageError('generate needs --prompt TEXT; see --help');
  const num = (name: string, s: string, int = false) => {
    const x = Number(s);
    if (!Number.isFinite(x) || (int && !Number.isInteger(x))) throw new UsageError(`--${name} must be a${int ? 'n integer' : ' number'}, got '${s}'`);
    return x;
  };
  const maxNewTokens = num('max-new-tokens', v['max-new-tokens']!, true);
  const temperature = num('temperature', v.temperature!), topP = num('top-p', v['top-p']!), seed = num('seed', v.seed!, true);

  const { stat } = await import('node:fs/promises');
  if (!(await stat(v.model).catch(() => null))?.isDirectory())
    throw new UsageError(`--model ${v.model}: no such folder (give a Hugging Face model folder: config.json, *.safetensors, tokenizer.json)`);
  const tok = await loadTokenizer(v.model);
  const { gpu } = await tunedGpu();
  const model = await loadModel(gpu, v.model);
  if (v.adapter) await loadModelAdapter(model, v.adapter);
  const text = v.chat ? tok.applyChatTemplate([{ role: 'user', content: v.prompt }], { addGenerationPrompt: true }) : v.prompt;
  const prompt = tok.encode(text);
  const t0 = performance.now();
  let shown = '';
  const ids: number[] = [];
  const out = await generate(model, prompt, {
    maxNewTokens, temperature, topP, seed,
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
