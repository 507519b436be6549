// src/io/dtype.ts against independent checks written from the IEEE 754 definitions: every f16
// bit pattern decoded by the textbook formula, and f32 → f16 rounding checked by searching the
// sorted table of all f16 values for the nearest one (ties to the even bit pattern).
import { expect, it, describe } from 'vitest';
import { bf16BitsToF16Bits, bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../src/io/dtype.js';
import { rng } from './helpers/check.js';

/** (−1)^s · 2^(E−15) · (1 + M/1024), subnormals 2^−14 · M/1024, E = 31: inf / NaN. */
function ieeeHalf(h: number): number {
  const s = h >> 15, E = (h >> 10) & 31, M = h & 1023;
  const sign = s ? -1 : 1;
  if (E === 31) return M === 0 ? sign * Infinity : NaN;
  if (E === 0) return sign * Math.pow(2, -14) * (M / 1024);
  return sign * Math.pow(2, E - 15) * (1 + M / 1024);
}

// All non-negative finite f16 values in increasing order, at index = bit pattern (0 … 0x7bff),
// then 65536 standing for the rounding boundary of inf (bit pattern 0x7c00, even).
const TABLE = Float64Array.from({ length: 0x7c01 }, (_, h) => (h === 0x7c00 ? 65536 : ieeeHalf(h)));

function nearestHalf(x: number): number {
  if (Number.isNaN(x)) return -1; // any NaN
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65536) return sign | 0x7c00;
  let lo = 0, hi = 0x7c00; // TABLE[lo] ≤ a < TABLE[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (TABLE[mid] <= a) lo = mid; else hi = mid;
  }
  const dl = a - TABLE[lo], dh = TABLE[hi] - a;
  const h = dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi;
  return sign | h;
}

function checkF32ToF16(xs: Float32Array) {
  const got = f32ToF16Bits(xs);
  let bad = 0;
  const first: string[] = [];
  for (let i = 0; i < xs.length; i++) {
    const want = nearestHalf(xs[i]);
    const ok = want === -1 ? (got[i] & 0x7c00) === 0x7c00 && (got[i] & 0x3ff) !== 0 : got[i] === want;
    if (!ok) {
      bad++;
      if (first.length < 10) first.push(`${xs[i]} → 0x${got[i].toString(16)} want 0x${want.toString(16)}`);
    }
  }
  expect(first, `${bad} wrong`).toEqual([]);
}

describe('dtype conversions', () => {
  it('f16BitsToF32 decodes every one of the 65536 bit patterns', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const got = f16BitsToF32(all);
    for (let h = 0; h < 65536; h++) {
      const want = ieeeHalf(h);
      if (Number.isNaN(want)) expect(got[h], `0x${h.toString(16)}`).toBeNaN();
      else expect(Object.is(got[h], want), `0x${h.toString(16)}: ${got[h]} vs ${want}`).toBe(true);
    }
    expect([...f16BitsToF32(new Uint16Array([0x3c00, 0x7bff, 0x0001, 0x0400, 0xc000, 0x8000]))]).toEqual([1, 65504, 2 ** -24, 2 ** -14, -2, -0]);
  });

  it('f32ToF16Bits round-trips every f16 value, and rounds halfway points to even', () => {
    const vals: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const v = ieeeHalf(h), next = h < 0x7bff ? ieeeHalf(h + 1) : 65536;
      const mid = (v + next) / 2; // exact in f32: one bit past f16's 11
      vals.push(v, -v, mid, -mid);
      // one f32 ulp either side of the midpoint
      const m32 = new Float32Array([mid]), u = new Uint32Array(m32.buffer);
      const up = new Float32Array(new Uint32Array([u[0] + 1]).buffer)[0];
      const down = mid > 0 ? new Float32Array(new Uint32Array([u[0] - 1]).buffer)[0] : 0;
      vals.push(up, down, -up, -down);
    }
    checkF32ToF16(Float32Array.from(vals));
    const round = f32ToF16Bits(Float32Array.from({ length: 0x7c00 }, (_, h) => ieeeHalf(h)));
    for (let h = 0; h < 0x7c00; h++) expect(round[h]).toBe(h);
  });

  it('f32ToF16Bits on special values: ±inf, NaN, ±0, overflow, f32 subnormals, underflow', () => {
    const cases: Array<[number, number]> = [
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [0, 0], [-0, 0x8000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00],
      [1e10, 0x7c00], [-1e10, 0xfc00], [2 ** -24, 1], [2 ** -25, 0], [2 ** -25 * 1.0001, 1], [3 * 2 ** -25, 2],
      [1e-45, 0], [-1e-45, 0x8000], [2 ** -14, 0x400], [1 / 3, 0x3555], [1, 0x3c00],
    ];
    const got = f32ToF16Bits(Float32Array.from(cases.map((c) => c[0])));
    cases.forEach(([x, want], i) => expect(got[i], `${x}`).toBe(want));
    const nan = f32ToF16Bits(new Float32Array([NaN, -NaN]));
    for (const h of nan) expect(Number.isNaN(f16BitsToF32(new Uint16Array([h]))[0])).toBe(true);
    checkF32ToF16(new Float32Array([Infinity, -Infinity, NaN, 0, -0, 1e-40, -1e-40, 65520, 65519.996]));
  });

  it('f32ToF16Bits on 300k random f32 bit patterns and 300k values in the f16 range', () => {
    const r = rng(1);
    const bits = Uint32Array.from({ length: 300_000 }, () => Math.floor(r() * 2 ** 32));
    checkF32ToF16(new Float32Array(bits.buffer));
    checkF32ToF16(Float32Array.from({ length: 300_000 }, () => (r() - 0.5) * 2 ** (Math.floor(r() * 44) - 28)));
  });

  it('bf16BitsToF32 is the high half of an f32 (all 65536 patterns), bf16 → f16 rounds', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const got = bf16BitsToF32(all);
    for (let h = 0; h < 65536; h++) {
      const s = h >> 15, E = (h >> 7) & 255, M = h & 127;
      const sign = s ? -1 : 1;
      const want = E === 255 ? (M ? NaN : sign * Infinity) : E === 0 ? sign * 2 ** -126 * (M / 128) : sign * 2 ** (E - 127) * (1 + M / 128);
      if (Number.isNaN(want)) expect(got[h]).toBeNaN();
      else expect(Object.is(got[h], want), `0x${h.toString(16)}`).toBe(true);
    }
    const f16 = bf16BitsToF16Bits(new Uint16Array([0x3f80, 0x4780 /* 65536 */, 0x3eab /* ≈ 0.333984 */]));
    expect([...f16]).toEqual([0x3c00, 0x7c00, f32ToF16Bits(new Float32Array([0.333984375]))[0]]);
  });
});
