// Host-side conversions between f32 and the 16-bit float formats of checkpoints and GPU storage.
// f16 = IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits); bf16 = the top 16 bits of an
// f32 (1, 8, 7). Frozen base weights are converted to f16 on load where the GPU has shader-f16.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** One f32 → f16 bits, round to nearest, ties to even; overflow → ±inf; NaN stays NaN. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf, or a quiet NaN
  const e = exp - 127 + 15; // the f16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal (or zero): value = half · 2^-24, half = m · 2^(e - 14) with the implicit bit
    if (e < -10) return sign; // below half the smallest subnormal (2^-25): rounds to ±0
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half; // a carry out of the mantissa makes the smallest normal, correctly
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry may reach inf: correct
  return sign | half;
}

/** One f16 bit pattern → its value. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** f32 values → f16 bits (round to nearest even). */
export function f32ToF16Bits(x: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16(x[i]);
  return out;
}

/** f16 bits → f32 values (exact). */
export function f16BitsToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = f16ToF32(h[i]);
  return out;
}

/** bf16 bits → f32 values (exact: a bf16 is the high half of an f32). */
export function bf16BitsToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
  return out;
}

/** bf16 bits → f16 bits (round to nearest even), for loading bf16 checkpoints into f16 storage. */
export function bf16BitsToF16Bits(h: Uint16Array): Uint16Array {
  return f32ToF16Bits(bf16BitsToF32(h));
}

/** round to nearest even, f32 → bf16 bits (NaN kept quiet). */
export function f32ToBf16Bits(x: ArrayLike<number>): Uint16Array {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const b = u[i];
    if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}
