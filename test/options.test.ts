// train's options: one table gives the parser, config files and --help.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfigFile } from '../cli/config-file.js';
import { parseTrainArgs, TRAIN_DEFAULTS, TRAIN_SPECS, trainHelp } from '../src/train/options.js';
import { learningRate } from '../src/train/loop.js';

describe('train options', () => {
  it('--help lists every option with its default', () => {
    const h = trainHelp();
    for (const s of TRAIN_SPECS) {
      expect(h).toContain(`--${s.flag}`);
      const d = TRAIN_DEFAULTS[s.key];
      if (s.kind !== 'bool' && d !== null) expect(h).toContain(`[${Array.isArray(d) ? d.join(',') : d}]`);
    }
  });

  it('flags: values, booleans, --no-…, lists and pairs, with the errors a user sees', () => {
    const { options, json } = parseTrainArgs(['--steps', '30', '--lr=1e-3', '--rslora', '--no-skip-bad', '--target-modules', 'v_proj,q_proj', '--zpd-band', '0.2,0.9', '--json']);
    expect(options).toMatchObject({ steps: 30, lr: 1e-3, rslora: true, skipBad: false, targetModules: ['q_proj', 'v_proj'], zpdBand: [0.2, 0.9] });
    expect(json).toBe(true);
    expect(() => parseTrainArgs(['--steps', '2.5'])).toThrow(/--steps: expected an integer, got "2.5"/);
    expect(() => parseTrainArgs(['--curriculum', 'magic'])).toThrow(/--curriculum: expected one of random, easy2hard/);
    expect(() => parseTrainArgs(['--zpd-band', '0.8,0.3'])).toThrow(/LO must be below HI/);
    expect(() => parseTrainArgs(['--target-modules', 'q_proj,wq'])).toThrow(/'wq' is not one of/);
    expect(() => parseTrainArgs(['--frobnicate'])).toThrow(/unknown option --frobnicate/);
    expect(() => parseTrainArgs(['--lr'])).toThrow(/--lr needs a value/);
    expect(() => parseTrainArgs(['--replay', '1.5'])).toThrow(/--replay: must be ≤ 1/);
  });

  it('a YAML or JSON config file, with flags taking precedence', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zpd-config-'));
    writeFileSync(join(dir, 'c.yaml'), 'lr: 0.003\nbatch-size: 2\ncurriculum: random\ntargetModules: [q_proj, v_proj]\n');
    const base = await readConfigFile(join(dir, 'c.yaml'));
    const { options } = parseTrainArgs(['--batch-size', '6'], base);
    expect(options).toMatchObject({ lr: 0.003, batchSize: 6, curriculum: 'random', targetModules: ['q_proj', 'v_proj'] });
    writeFileSync(join(dir, 'c.json'), '{"steps": 5, "colour": "red"}');
    await expect(readConfigFile(join(dir, 'c.json'))).rejects.toThrow(/c\.json: unknown option 'colour'/);
    writeFileSync(join(dir, 'd.json'), '{"steps": ');
    await expect(readConfigFile(join(dir, 'd.json'))).rejects.toThrow(/d\.json: not valid JSON/);
  });

  it('learning rate: linear warm-up, then cosine to lr·min-lr-ratio, or constant', () => {
    const o = { lr: 1, warmup: 10, schedule: 'cosine' as const, minLrRatio: 0.1 };
    expect(learningRate(o, 5, 110)).toBeCloseTo(0.5, 12);
    expect(learningRate(o, 10, 110)).toBeCloseTo(1, 12);
    expect(learningRate(o, 60, 110)).toBeCloseTo(0.55, 12);
    expect(learningRate(o, 110, 110)).toBeCloseTo(0.1, 12);
    expect(learningRate({ ...o, warmup: 0.1 }, 11, 110)).toBeCloseTo(1, 12); // a fraction of the steps
    expect(learningRate({ ...o, schedule: 'constant' }, 100, 110)).toBe(1);
  });
});
