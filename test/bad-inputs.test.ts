// Bad inputs through `zpd-wgpu train --steps 1`, as a user meets them: each must end with one
// clear error line naming the file and the place, a non-zero exit below 128, within seconds, no
// stack trace and no adapter — and a good control must train.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cli, root } from './helpers/cli.js';
import { describeGpu } from './helpers/gpu.js';

const LLAMA = join(root, 'test', 'fixtures', 'models', 'llama');
const GOOD = ['{"instruction":"Add: 1+2","output":"3"}', '{"instruction":"Reverse: a b","output":"b a"}', '{"text":"In the beginning."}'].join('\n') + '\n';

interface Case {
  name: string;
  /** what to break: returns extra CLI args */
  setup(dir: string, model: string, data: string): string[] | void;
  /** the error line must match */
  error: RegExp;
  /** and the hint, when given */
  hint?: RegExp;
}

const cfgWith = (model: string, patch: Record<string, unknown>) => {
  const f = join(model, 'config.json');
  writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), ...patch }));
};

const CASES: Case[] = [
  { name: 'data: invalid UTF-8', setup: (_d, _m, data) => writeFileSync(data, Buffer.concat([Buffer.from(GOOD), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a])])), error: /data\.jsonl: line 4: not valid UTF-8 text/ },
  { name: 'data: a NUL byte', setup: (_d, _m, data) => writeFileSync(data, GOOD + '{"text":"a\u0000b"}\n'.replace('\\u0000', '\u0000')), error: /data\.jsonl: line 4: not valid JSON/ },
  { name: 'data: missing field', setup: (_d, _m, data) => writeFileSync(data, GOOD + '{"instruction":"x"}\n'), error: /data\.jsonl: line 4: missing field "output"/, hint: /--skip-bad/ },
  { name: 'data: a field of the wrong type', setup: (_d, _m, data) => writeFileSync(data, '{"instruction":"x","output":7}\n' + GOOD), error: /data\.jsonl: line 1: field "output" must be a string/ },
  { name: 'data: an empty response', setup: (_d, _m, data) => writeFileSync(data, GOOD + '{"instruction":"x","output":"  "}\n'), error: /data\.jsonl: line 4: field "output" is empty/ },
  { name: 'data: many bad lines are counted', setup: (_d, _m, data) => writeFileSync(data, GOOD + 'x\ny\n{"a":1}\n'), error: /line 4: not valid JSON.*\(3 of 6 lines are bad\)/ },
  { name: 'data: a 5 MB line', setup: (_d, _m, data) => writeFileSync(data, GOOD + JSON.stringify({ text: 'a'.repeat(5 << 20) }) + '\n'), error: /data\.jsonl: line 4: 5\.0 MB on one line/ },
  { name: 'data: an empty file', setup: (_d, _m, data) => writeFileSync(data, '\n\n'), error: /data\.jsonl: no records/ },
  { name: 'data: one JSON array', setup: (_d, _m, data) => writeFileSync(data, `[${GOOD.trim().split('\n').join(',')}]`), error: /data\.jsonl: line 1: a JSON array, where JSON Lines has one object per line/ },
  { name: 'data: a .parquet that is not Parquet', setup: (d) => (writeFileSync(join(d, 'x.parquet'), 'not parquet'), ['--data', join(d, 'x.parquet')]), error: /x\.parquet: file: not a readable Parquet file/ },
  { name: 'data: no such file', setup: (d) => ['--data', join(d, 'missing.jsonl')], error: /cannot read .*missing\.jsonl: no such file/ },
  { name: 'config.json: hidden_size 0', setup: (_d, m) => cfgWith(m, { hidden_size: 0 }), error: /config\.json: hidden_size: expected a positive integer, found 0/ },
  { name: 'config.json: vocab 10^12', setup: (_d, m) => cfgWith(m, { vocab_size: 1e12 }), error: /config\.json: vocab_size: 1000000000000 is absurd/ },
  { name: 'config.json: heads that do not divide', setup: (_d, m) => cfgWith(m, { num_key_value_heads: 3 }), error: /config\.json: num_key_value_heads: 3 does not divide num_attention_heads 4/ },
  { name: 'config.json: a negative layer count', setup: (_d, m) => cfgWith(m, { num_hidden_layers: -2 }), error: /config\.json: num_hidden_layers: expected a positive integer, found -2/ },
  { name: 'model: a truncated safetensors file', setup: (_d, m) => writeFileSync(join(m, 'model.safetensors'), readFileSync(join(m, 'model.safetensors')).subarray(0, 5000)), error: /model\.safetensors: .*(truncated|past the end)/ },
  { name: 'model: a shard index naming a missing shard', setup: (_d, m) => writeFileSync(join(m, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model-00009-of-00009.safetensors' } })), error: /model-00009-of-00009\.safetensors/ },
  { name: 'tokenizer.json: an unknown model type', setup: (_d, m) => { const f = join(m, 'tokenizer.json'); const j = JSON.parse(readFileSync(f, 'utf8')); j.model.type = 'Unigram'; writeFileSync(f, JSON.stringify(j)); }, error: /tokenizer\.json: model\.type/ },
  { name: 'chat template: a runaway loop', setup: (_d, m) => { const f = join(m, 'tokenizer_config.json'); const j = JSON.parse(readFileSync(f, 'utf8')); j.chat_template = '{% for i in range(100000000) %}x{% endfor %}'; writeFileSync(f, JSON.stringify(j)); return ['--chat-template', 'on']; }, error: /tokenizer_config\.json: chat_template: range\(\) asked for more than/ },
  { name: 'resume: a torn checkpoint', setup: (d) => { mkdirSync(join(d, 'out', 'checkpoint'), { recursive: true }); writeFileSync(join(d, 'out', 'run.json'), '{}'); writeFileSync(join(d, 'out', 'checkpoint', 'state.msgpack'), readFileSync(join(LLAMA, 'config.json'))); return ['--resume']; }, error: /checkpoint: state\.msgpack: .*(torn|not a zpd-wgpu checkpoint)/ },
];

describeGpu('bad inputs through zpd-wgpu train --steps 1', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'zpd-bad-'));
      const model = join(dir, 'model'), data = join(dir, 'data.jsonl'), out = join(dir, 'out');
      cpSync(LLAMA, model, { recursive: true });
      writeFileSync(data, GOOD);
      const extra = c.setup(dir, model, data) ?? [];
      const args = ['train', '--model', model, '--data', data, '--steps', '1', '--batch-size', '2', '--seq-len', '32', '--eval-samples', '1', '--out', out];
      // later flags win: a case may replace --data
      const t0 = performance.now();
      const r = await cli(...args, ...extra);
      const seconds = (performance.now() - t0) / 1000;
      expect(r.code, r.stdout + r.stderr).toBeGreaterThan(0);
      expect(r.code).toBeLessThan(128);
      expect(seconds).toBeLessThan(60);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('zpd-wgpu: ') && !l.startsWith('zpd-wgpu: warning'));
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(c.error);
      if (c.hint) expect(r.stderr).toMatch(new RegExp(`---> HINT: .*${c.hint.source}`));
      expect(r.stderr).not.toMatch(/\n\s+at .*\(/); // no stack trace
      expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(false);
    });
  }

  it('the good control trains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zpd-good-'));
    writeFileSync(join(dir, 'data.jsonl'), GOOD);
    const r = await cli('train', '--model', LLAMA, '--data', join(dir, 'data.jsonl'), '--steps', '1', '--batch-size', '2', '--seq-len', '32', '--eval-samples', '1', '--out', join(dir, 'out'));
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(dir, 'out', 'adapter_model.safetensors'))).toBe(true);
  });
});
