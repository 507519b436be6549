// train's --config FILE: JSON or YAML (a kept YAML library), keys as flags or camelCase.
import { UsageError } from '../src/errors.js';
import { optionsFromConfig, type TrainOptions } from '../src/train/options.js';

/** Read a JSON or YAML config file (Node). */
export async function readConfigFile(file: string): Promise<Partial<TrainOptions>> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`--config ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  let obj: unknown;
  try {
    if (/\.ya?ml$/i.test(file)) obj = (await import('yaml')).parse(text);
    else obj = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'} (${(e as Error).message.split('\n')[0]})`);
  }
  return optionsFromConfig(obj, file);
}
