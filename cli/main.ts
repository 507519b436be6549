// zpd-wgpu command dispatcher. Each command lives in cli/<name>.ts and exports
// `summary` (one line), `usage` (its --help text) and `run(argv) → exit code`.
import { ZpdError } from '../src/errors.js';
import { setCacheEnabled } from '../src/io/cache.js';

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  train: () => import('./train.js'),
  score: () => import('./score.js'),
  eval: () => import('./eval.js'),
  compare: () => import('./compare.js'),
  generate: () => import('./generate.js'),
  tokenize: () => import('./tokenize.js'),
  doctor: () => import('./doctor.js'),
  bench: () => import('./bench.js'),
};

async function help(): Promise<string> {
  const lines = await Promise.all(Object.entries(commands).map(async ([n, load]) => `  ${n.padEnd(10)} ${(await load()).summary}`));
  return [
    'zpd-wgpu — fine-tune and run small Llama-family models on any WebGPU device',
    '',
    'Usage: zpd-wgpu <command> [options]     (zpd-wgpu <command> --help for its options)',
    '',
    'Caches (tokenizers, matmul tiles) live in the user cache folder (~/.cache/zpd-wgpu on Linux);',
    'ZPD_WGPU_CACHE=DIR moves it, --no-cache turns it off.',
    '',
    'Commands:',
    ...lines,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // --no-cache, before or after the command: nothing is read from or written to the cache folder
  if (argv.includes('--no-cache') && argv[0] !== 'tokenize') {
    setCacheEnabled(false);
    argv = argv.filter((a) => a !== '--no-cache');
  }
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return name ? 0 : 1;
  }
  const load = commands[name];
  if (!load) {
    console.error(`zpd-wgpu: unknown command '${name}'\n\n${await help()}`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    return reportError(e);
  }
}

/** Print an error the way every command does: the message, then what to do. */
export function reportError(e: unknown): number {
  if (e instanceof ZpdError) {
    console.error(`zpd-wgpu: ${e.message}`);
    if (e.hint) console.error(`---> HINT: ${e.hint}`);
    return 1;
  }
  if (e instanceof Error && (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`zpd-wgpu: ${e.message} (see --help)`);
    return 2;
  }
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return 1;
}
