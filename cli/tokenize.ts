// zpd-wgpu tokenize: what the tokenizer makes of some text, for people debugging their data.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { UsageError } from '../src/errors.js';
import { loadTokenizer } from '../src/tokenizer/files.js';

export const summary = 'show the token ids (and tokens) a tokenizer.json gives for some text';
export const usage = `Usage: zpd-wgpu tokenize --tokenizer PATH [--text T | --file F] [--json] [--no-special]

PATH is a tokenizer.json or a model folder holding one (tokenizer_config.json beside it gives
BOS/EOS). Without --text or --file, reads standard input. Each input line is encoded on its own.

  --json          one object {"ids": [...]} per input line
  --no-special    do not add BOS/EOS
  --cache-dir D   where the parsed tokenizer is cached (default: $ZPD_WGPU_CACHE, else the user cache folder, e.g. ~/.cache/zpd-wgpu)
  --no-cache      parse tokenizer.json every time

Without --json each line prints as: id<TAB>token, then the decoded text.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tokenizer: { type: 'string' }, text: { type: 'string' }, file: { type: 'string' }, json: { type: 'boolean' },
      'no-special': { type: 'boolean' }, 'cache-dir': { type: 'string' }, 'no-cache': { type: 'boolean' },
    },
  });
  if (!values.tokenizer) throw new UsageError('--tokenizer PATH is required (a tokenizer.json or a model folder)');
  if (values.text !== undefined && values.file !== undefined) throw new UsageError('give --text or --file, not both');
  const tok = await loadTokenizer(values.tokenizer, { cacheDir: values['no-cache'] ? false : values['cache-dir'] });
  let input: string;
  if (values.text !== undefined) input = values.text;
  else if (values.file !== undefined) input = await readFile(values.file, 'utf8').catch(() => { throw new UsageError(`cannot read ${values.file}`); });
  else input = await readStdin();
  const lines = input.split('\n');
  if (lines.length > 1 && lines.at(-1) === '') lines.pop(); // a final newline ends the last line
  for (const line of lines) {
    const ids = tok.encode(line, { addSpecialTokens: !values['no-special'] });
    if (values.json) {
      console.log(JSON.stringify({ ids: Array.from(ids) }));
    } else {
      for (const id of ids) console.log(`${String(id).padStart(7)}\t${JSON.stringify(tok.idToToken(id) ?? '?')}`);
      console.log(`(${ids.length} tokens) ${JSON.stringify(tok.decode(ids))}`);
    }
  }
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
