import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autotuneMatmul, checkTiles, DEFAULT_TILES, getMatmulTiles, matmul, matmulKernel, setMatmulTiles, SUBGROUP_CANDIDATES, TILE_CANDIDATES, tileCandidates, type MatmulTiles } from '../src/kernels/matmul.js';
import { createGpu } from '../src/gpu/device.js';
import { matmulRef } from '../src/reference/matmul.js';
import { checkOp, expectClose, randn } from './helpers/check.js';
import { describeGpu } from './helpers/gpu.js';

const TOL = { atol: 1e-4, rtol: 1e-4 };

describeGpu('matmul', (gpu) => {
  async function run(o: {
    M: number; N: number; K: number; batch?: number; transA?: boolean; transB?: boolean;
    bias?: boolean; accumulate?: boolean; alpha?: number; tiles?: MatmulTiles; seed?: number; K2?: number;
  }) {
    const batch = o.batch ?? 1, seed = o.seed ?? 1;
    const a = randn(batch * o.M * o.K, seed);
    const bm = randn(batch * o.K * o.N, seed + 1);
    const bias = o.bias ? randn(o.N, seed + 2) : undefined;
    const prev = o.accumulate ? randn(batch * o.M * o.N, seed + 3) : undefined;
    // the second product (LoRA's low-rank term), alpha2 = 0.75: a2 (M, K2), bm2 (K2, N) or (N, K2)
    const a2 = o.K2 ? randn(o.M * o.K2, seed + 4) : undefined, bm2 = o.K2 ? randn(o.K2 * o.N, seed + 5) : undefined;
    const out = prev ? gpu.buffer(prev) : gpu.buffer(batch * o.M * o.N * 4);
    gpu.submit((enc) =>
      matmul(gpu, enc, {
        a: gpu.buffer(a), bm: gpu.buffer(bm), out, bias: bias && gpu.buffer(bias),
        M: o.M, N: o.N, K: o.K, batch, transA: o.transA, transB: o.transB,
        accumulate: o.accumulate, alpha: o.alpha, tiles: o.tiles,
        second: a2 && bm2 && { a: gpu.buffer(a2), bm: gpu.buffer(bm2), K: o.K2!, alpha: 0.75 },
      }),
    );
    const got = await gpu.readF32(out, batch * o.M * o.N);
    const ref = matmulRef({ a, bm, bias, out: prev, M: o.M, N: o.N, K: o.K, batch, transA: o.transA, transB: o.transB, alpha: o.alpha });
    if (a2 && bm2) matmulRef({ a: a2, bm: bm2, M: o.M, N: o.N, K: o.K2!, batch: 1, transB: o.transB, alpha: 0.75 }).forEach((v, i) => (ref[i] += v));
    return { got, ref };
  }

  for (const [name, transA, transB] of [['NN', false, false], ['NT', false, true], ['TN', true, false], ['TT', true, true]] as const) {
    it(`${name} at odd shapes 45×65×77`, async () => {
      const { got, ref } = await run({ M: 45, N: 65, K: 77, transA, transB });
      expectClose(`${name} 45x65x77`, got, ref, TOL);
    });
  }

  it('1×4096×1 and 4096×1×1 (degenerate edges)', async () => {
    for (const [M, N, K] of [[1, 4096, 1], [4096, 1, 1], [1, 1, 4096]]) {
      const { got, ref } = await run({ M, N, K, transB: true });
      expectClose(`${M}x${N}x${K}`, got, ref, { atol: 1e-3, rtol: 1e-4 });
    }
  });

  it('spans many workgroups in every dimension (300×260×130, batch 3)', async () => {
    const { got, ref } = await run({ M: 300, N: 260, K: 130, batch: 3, transB: true });
    expectClose('batched', got, ref, TOL);
  });

  it('bias, alpha and accumulate', async () => {
    const { got, ref } = await run({ M: 33, N: 17, K: 9, transB: true, bias: true, alpha: 0.37, accumulate: true });
    expectClose('bias+alpha+acc', got, ref, TOL);
  });

  // LoRA's low-rank term in the base matmul's pass: out = alpha·a·op(bm) + alpha2·a2·op(bm2) (+ bias) (+ out)
  it.each([
    ['NT (y = x·Wᵀ + s·u·Bᵀ), bias, accumulate, vec4 path', { M: 45, N: 65, K: 76, K2: 8, transB: true, bias: true, accumulate: true }],
    ['NT, odd K (scalar path), alpha 0.5', { M: 33, N: 40, K: 77, K2: 3, transB: true, alpha: 0.5 }],
    ['NN (dx = dy·W + s·g·A), accumulate, vec4 NN path, a partial column tile', { M: 45, N: 68, K: 76, K2: 8, accumulate: true }],
    ['NN, odd shapes (scalar path)', { M: 45, N: 65, K: 77, K2: 5 }],
  ] as const)('a second product in the same pass: %s, three tile shapes', async (_name, o) => {
    const alpha = 'alpha' in o ? o.alpha : 1, alpha2 = 0.75;
    const a = randn(o.M * o.K, 1), bm = randn(o.K * o.N, 2), a2 = randn(o.M * o.K2, 3), bm2 = randn(o.K2 * o.N, 4);
    const bias = 'bias' in o ? randn(o.N, 5) : undefined;
    const prev = 'accumulate' in o ? randn(o.M * o.N, 6) : undefined;
    const transB = 'transB' in o && o.transB;
    const low = matmulRef({ a: a2, bm: bm2, M: o.M, N: o.N, K: o.K2, batch: 1, transB, alpha: alpha2 });
    const ref = matmulRef({ a, bm, bias, out: prev, M: o.M, N: o.N, K: o.K, batch: 1, transB, alpha }).map((v, i) => v + low[i]);
    for (const tiles of [DEFAULT_TILES, { WG_X: 8, WG_Y: 8, TM: 8, TN: 8 }, { WG_X: 16, WG_Y: 16, TM: 2, TN: 2 }]) {
      const out = prev ? gpu.buffer(prev) : gpu.buffer(o.M * o.N * 4);
      gpu.submit((enc) =>
        matmul(gpu, enc, {
          a: gpu.buffer(a), bm: gpu.buffer(bm), out, bias: bias && gpu.buffer(bias), M: o.M, N: o.N, K: o.K, transB, alpha,
          accumulate: 'accumulate' in o, tiles, second: { a: gpu.buffer(a2), bm: gpu.buffer(bm2), K: o.K2, alpha: alpha2 },
        }),
      );
      expectClose(`second product ${JSON.stringify(tiles)}`, await gpu.readF32(out, o.M * o.N), ref, TOL);
    }
    expect(() => gpu.submit((enc) => matmul(gpu, enc, { a: gpu.buffer(a), bm: gpu.buffer(bm), out: gpu.buffer(16), M: 1, N: 1, K: 1, transA: true, second: { a: gpu.buffer(a2), bm: gpu.buffer(bm2), K: 1 } })))
      .toThrow(/second product is supported without transA/);
  });

  it('every tile shape the autotuner may pick gives the same answer', async () => {
    const shapes: MatmulTiles[] = [
      { WG_X: 8, WG_Y: 8, TM: 4, TN: 4 }, { WG_X: 16, WG_Y: 16, TM: 1, TN: 1 },
      { WG_X: 16, WG_Y: 4, TM: 8, TN: 2 }, { WG_X: 4, WG_Y: 16, TM: 3, TN: 5 }, { WG_X: 8, WG_Y: 8, TM: 8, TN: 8 },
    ];
    for (const tiles of shapes) {
      const { got, ref } = await run({ M: 45, N: 65, K: 77, transB: true, tiles });
      expectClose(`tiles ${JSON.stringify(tiles)}`, got, ref, TOL);
    }
  });

  it('x·Wᵀ with K a multiple of 4 takes the vec4 path: 45×65×76, batch 2, bias, alpha, accumulate, every tile shape', async () => {
    for (const tiles of [DEFAULT_TILES, ...TILE_CANDIDATES]) {
      const { got, ref } = await run({ M: 45, N: 65, K: 76, batch: 2, transB: true, bias: true, alpha: 0.7, accumulate: true, tiles });
      expectClose(`vec4 NT ${JSON.stringify(tiles)}`, got, ref, TOL);
    }
    const { got, ref } = await run({ M: 1, N: 4096, K: 4, transB: true });
    expectClose('vec4 NT K=4', got, ref, TOL);
  });

  it('dy·W with K and N multiples of 4 takes the vec4 NN path: 45×68×76 (a partial column tile), batch 2, bias, alpha, accumulate, every tile shape', async () => {
    for (const tiles of [DEFAULT_TILES, ...TILE_CANDIDATES]) {
      const { got, ref } = await run({ M: 45, N: 68, K: 76, batch: 2, bias: true, alpha: 0.7, accumulate: true, tiles });
      expectClose(`vec4 NN ${JSON.stringify(tiles)}`, got, ref, TOL);
    }
    const { got, ref } = await run({ M: 3, N: 4, K: 4096 });
    expectClose('vec4 NN N=4', got, ref, TOL);
  });

  // shaders/matmul_subgroup.wgsl. Where the adapter has no subgroups (or too few lanes) its shapes
  // are refused, with the reason, and that is what is tested instead: the test never skips.
  describe('the subgroup kernel', () => {
    const sg = gpu.subgroups;
    const runnable = SUBGROUP_CANDIDATES.filter((t) => { try { checkTiles(gpu, t); return true; } catch { return false; } });
    // the shapes that take different paths through the shader: TN 4 (vec4 columns) and 2, TM 8 and 4
    const paths = runnable.filter((t) => t.WG_X === 32);
    const cases = [
      ['x·Wᵀ 45×65×76, batch 2, bias, alpha, accumulate', { M: 45, N: 65, K: 76, batch: 2, transB: true, bias: true, alpha: 0.7, accumulate: true }],
      ['dy·W 45×68×76 (vec4 columns, a partial column tile), batch 2, bias, alpha, accumulate', { M: 45, N: 68, K: 76, batch: 2, bias: true, alpha: 0.7, accumulate: true }],
      ['dy·W 45×65×76 (N odd: element loads)', { M: 45, N: 65, K: 76 }],
      ['x·Wᵀ + s·u·Bᵀ (the second product), 45×65×76, K2 8, bias', { M: 45, N: 65, K: 76, K2: 8, transB: true, bias: true }],
      ['dy·W + s·g·A (the second product), 45×68×76, K2 8, accumulate', { M: 45, N: 68, K: 76, K2: 8, accumulate: true }],
      ['narrow outputs (LoRA rank r): x·Aᵀ 300×8×76, g = dy·B 300×8×76, 300×3×76, 7×1×4', { M: 300, N: 8, K: 76, transB: true }],
      ['', { M: 300, N: 8, K: 76 }], ['', { M: 300, N: 3, K: 76 }], ['', { M: 7, N: 1, K: 4, transB: true }],
      ['one k per step: dW = dyᵀ·x (N odd, and N % 4 == 0: vec4 columns), TT, odd K, batch 2, bias, accumulate', { M: 45, N: 65, K: 77, transA: true }],
      ['', { M: 45, N: 68, K: 77, transA: true, batch: 2, accumulate: true }], ['', { M: 45, N: 65, K: 77, transA: true, transB: true, bias: true }],
      ['', { M: 45, N: 65, K: 77, transB: true }], ['', { M: 45, N: 68, K: 77, alpha: 0.7 }], ['', { M: 300, N: 8, K: 70, transA: true }],
      ['', { M: 45, N: 65, K: 77, K2: 5, transB: true }],
      ['x·Wᵀ and dy·W on shaders/matmul_subgroup_w.wgsl: N 68, 16 and 20 (partial and whole column tiles), M 1 and 33, batch, bias, alpha, accumulate, the second product', { M: 45, N: 68, K: 76, batch: 2, transB: true, bias: true, alpha: 0.7, accumulate: true }],
      ['', { M: 45, N: 68, K: 76, K2: 8, transB: true, bias: true }], ['', { M: 33, N: 20, K: 4, K2: 3, transB: true, alpha: 0.5, accumulate: true }],
      ['', { M: 33, N: 20, K: 8, batch: 3, bias: true }], ['', { M: 33, N: 20, K: 8, batch: 3, transB: true }],
      ['', { M: 1, N: 16, K: 4 }], ['', { M: 1, N: 16, K: 4, transB: true }], ['', { M: 33, N: 20, K: 4, K2: 3, alpha: 0.5 }],
    ] as const;

    it('is runnable where the adapter has subgroups of at least 8 lanes (lavapipe: 8), refused with the reason elsewhere', () => {
      if (sg && sg.min >= 8) expect(runnable).toEqual(SUBGROUP_CANDIDATES);
      else expect(() => checkTiles(gpu, SUBGROUP_CANDIDATES[0])).toThrow(/subgroup/);
      expect(tileCandidates(gpu)).toEqual([...TILE_CANDIDATES, ...runnable]);
      expect(getMatmulTiles(gpu)).toEqual(runnable[0] ?? DEFAULT_TILES);
    });

    it('every shape it may run gives the reference and, bit for bit, the regular kernel: partial tiles, batch, bias, alpha, accumulate, the second product, narrow outputs, every layout, odd K', async () => {
      let n = 0;
      for (const [, o] of cases) {
        const regular = await run({ ...o, tiles: DEFAULT_TILES });
        expectClose(`regular ${JSON.stringify(o)}`, regular.got, regular.ref, TOL);
        for (const tiles of paths) {
          const { got, ref } = await run({ ...o, tiles });
          expectClose(`${JSON.stringify(tiles)} ${JSON.stringify(o)}`, got, ref, TOL);
          expect(Buffer.from(got.buffer).equals(Buffer.from(regular.got.buffer)), `${JSON.stringify(tiles)} ${JSON.stringify(o)} bit for bit`).toBe(true);
          n++;
        }
      }
      expect(n).toBe(cases.length * paths.length);
    });

    it('x·Wᵀ and dy·W (K and N multiples of 4, N ≥ 16) run shaders/matmul_subgroup_w.wgsl where subgroups have ≥ 8 lanes; other layouts and shapes the subgroup kernel', () => {
      const w = sg && sg.min >= 8 ? 'subgroup-w' : 'subgroup';
      for (const tiles of runnable) {
        for (const transB of [false, true]) {
          expect(matmulKernel(gpu, { N: 68, K: 76, transB }, tiles)).toBe(w);
          expect(matmulKernel(gpu, { N: 16, K: 4, transB }, tiles)).toBe(w);
        }
        for (const o of [{ N: 68, K: 76, transA: true }, { N: 68, K: 76, transA: true, transB: true }, { N: 65, K: 76 }, { N: 65, K: 76, transB: true }, { N: 68, K: 77, transB: true }, { N: 8, K: 76 }, { N: 8, K: 76, transB: true }])
          expect(matmulKernel(gpu, o, tiles), JSON.stringify(o)).toBe('subgroup');
      }
      expect(matmulKernel(gpu, { N: 68, K: 76 }, DEFAULT_TILES)).toBe('regular');
    });

    it('refuses shapes it cannot run, saying why', async () => {
      const t = { WG_X: 32, WG_Y: 1, TM: 8, TN: 4, subgroup: true } as const;
      if (sg) {
        expect(() => checkTiles(gpu, { ...t, WG_Y: 2 })).toThrow(/WG_Y = 1/);
        expect(() => checkTiles(gpu, { ...t, TM: sg.min * 2 > 8 ? 9 : sg.min * 2 })).toThrow(/TM/);
        if (sg.max > 1) expect(() => checkTiles(gpu, { ...t, WG_X: sg.max + 1 })).toThrow(/multiple of the adapter's largest subgroup/);
      }
      const plain = await createGpu({ disableFeatures: ['subgroups'] });
      try {
        expect(plain.subgroups).toBeUndefined();
        expect(() => checkTiles(plain, t)).toThrow(/needs the adapter feature 'subgroups'/);
        expect(getMatmulTiles(plain)).toEqual(DEFAULT_TILES);
        expect(matmulKernel(plain, { N: 68, K: 76 })).toBe('regular');
        expect(tileCandidates(plain)).toEqual(TILE_CANDIDATES);
      } finally {
        plain.destroy();
      }
    });
  });

  it('narrow outputs (N below the tile width) on the regular kernel: three tile shapes, x·Wᵀ, dy·W and dW = dyᵀ·x', async () => {
    for (const tiles of [DEFAULT_TILES, { WG_X: 8, WG_Y: 8, TM: 4, TN: 4 }, { WG_X: 16, WG_Y: 16, TM: 2, TN: 2 }])
      for (const o of [{ M: 70, N: 8, K: 76, transB: true }, { M: 70, N: 8, K: 76 }, { M: 300, N: 8, K: 70, transA: true }, { M: 9, N: 3, K: 33, transA: true }]) {
        const { got, ref } = await run({ ...o, tiles });
        expectClose(`narrow ${JSON.stringify(tiles)} ${JSON.stringify(o)}`, got, ref, TOL);
      }
  });

  it('the three matmul shaders declare the one Params block src/kernels/matmul.ts writes for all of them', () => {
    const block = (f: string) => /struct Params \{[^}]*\}/.exec(readFileSync(join(__dirname, '..', 'shaders', f), 'utf8'))?.[0];
    const [first, ...rest] = ['matmul.wgsl', 'matmul_subgroup.wgsl', 'matmul_subgroup_w.wgsl'].map(block);
    expect(first).toMatch(/M: u32, N: u32, K: u32, batch: u32/);
    for (const b of rest) expect(b).toBe(first);
  });

  it('is bit-identical when run twice', async () => {
    const x = await run({ M: 64, N: 48, K: 200, transB: true, seed: 9 });
    const y = await run({ M: 64, N: 48, K: 200, transB: true, seed: 9 });
    expect(Buffer.from(x.got.buffer).equals(Buffer.from(y.got.buffer))).toBe(true);
  });

  it('linear layer y = x·Wᵀ: forward and gradients (dx = dy·W, dW = dyᵀ·x) at 45×65 with K 77', async () => {
    const [T, N, K] = [45, 65, 77];
    const run = async (fn: (enc: GPUCommandEncoder, out: GPUBuffer) => void, n: number) => {
      const out = gpu.buffer(n * 4);
      gpu.submit((enc) => fn(enc, out));
      return gpu.readF32(out);
    };
    await checkOp({
      name: 'linear',
      inputs: { x: randn(T * K, 11), w: randn(N * K, 12) },
      ref: ({ x, w }) => ({ y: matmulRef({ a: x, bm: w, M: T, N, K, transB: true }) }),
      gpu: async ({ x, w }) => ({
        y: await run((enc, out) => matmul(gpu, enc, { a: gpu.buffer(x), bm: gpu.buffer(w), out, M: T, N, K, transB: true }), T * N),
      }),
      backward: {
        dout: { y: randn(T * N, 13) },
        wrt: ['x', 'w'],
        ref: ({ x, w }, { y: dy }) => ({
          dx: matmulRef({ a: dy, bm: w, M: T, N: K, K: N }),
          dw: matmulRef({ a: dy, bm: x, M: N, N: K, K: T, transA: true }),
        }),
        gpu: async ({ x, w }, { y: dy }) => ({
          dx: await run((enc, out) => matmul(gpu, enc, { a: gpu.buffer(dy), bm: gpu.buffer(w), out, M: T, N: K, K: N }), T * K),
          dw: await run((enc, out) => matmul(gpu, enc, { a: gpu.buffer(dy), bm: gpu.buffer(x), out, M: N, N: K, K: T, transA: true }), N * K),
        }),
      },
      tol: { atol: 1e-4, rtol: 1e-4 },
    });
  });

  it('autotuneMatmul picks one of its candidates, installs it, and caches it per adapter (memory and file)', async () => {
    const candidates: MatmulTiles[] = [{ WG_X: 16, WG_Y: 16, TM: 1, TN: 1 }, { WG_X: 8, WG_Y: 8, TM: 4, TN: 4 }];
    const file = join(mkdtempSync(join(tmpdir(), 'zpd-autotune-')), 'tiles.json');
    const cache = { where: file, read: async () => (existsSync(file) ? readFileSync(file, 'utf8') : null), write: async (t: string) => writeFileSync(file, t) };
    const warnings: string[] = [];
    const from: string[] = [];
    const opts = { sizes: [96], candidates, reps: 1, cache, warn: (m: string) => warnings.push(m), source: (s: string) => from.push(s) };
    try {
      const best = await autotuneMatmul(gpu, opts);
      expect(candidates).toContainEqual(best);
      expect(getMatmulTiles(gpu)).toEqual(best);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, MatmulTiles>;
      expect(Object.values(saved)).toEqual([best]);
      const key = Object.keys(saved)[0];
      expect(key).toContain(gpu.info.description);
      setMatmulTiles(gpu, DEFAULT_TILES);
      expect(await autotuneMatmul(gpu, { ...opts, sizes: [96] })).toEqual(best); // from memory
      const { got, ref } = await run({ M: 45, N: 65, K: 77, transB: true });
      expectClose('after autotune', got, ref, TOL);
      // a valid entry in the file is used without timing; a corrupt file, and an entry the
      // shader cannot run, are ignored with a warning, and the file rewritten
      const keyOf = (n: number) => key.replace(/\|96$/, `|${n}`);
      writeFileSync(file, JSON.stringify({ [keyOf(95)]: candidates[1] }));
      expect(await autotuneMatmul(gpu, { ...opts, sizes: [95] })).toEqual(candidates[1]);
      for (const [bad, n] of [['{"truncated', 97], [JSON.stringify({ [keyOf(98)]: { WG_X: 16, WG_Y: 16, TM: 16, TN: 16 } }), 98]] as const) {
        writeFileSync(file, bad);
        warnings.length = 0;
        const t = await autotuneMatmul(gpu, { ...opts, sizes: [n] });
        expect(candidates).toContainEqual(t);
        expect(warnings.join('\n')).toMatch(/not a readable tile cache|not a shape the shader supports/);
        expect(JSON.parse(readFileSync(file, 'utf8'))[keyOf(n)]).toEqual(t);
      }
      expect(from).toEqual(['timed', 'memory', 'cache', 'timed', 'timed']);
    } finally {
      setMatmulTiles(gpu, DEFAULT_TILES);
    }
  });

  it('setMatmulTiles and per-call tiles refuse shapes the shader cannot run (16×16 register tiles gave wrong results)', () => {
    expect(() => setMatmulTiles(gpu, { WG_X: 8, WG_Y: 8, TM: 16, TN: 16 })).toThrow(/TM and TN must be at most the shader's MAX_T = 8/);
    expect(() => setMatmulTiles(gpu, { WG_X: 64, WG_Y: 64, TM: 1, TN: 1 })).toThrow(/maxComputeInvocationsPerWorkgroup/);
    expect(() => setMatmulTiles(gpu, { WG_X: 8, WG_Y: 0, TM: 1, TN: 1 })).toThrow(/WG_Y must be a positive integer/);
    expect(getMatmulTiles(gpu)).toEqual(DEFAULT_TILES);
  });
});
