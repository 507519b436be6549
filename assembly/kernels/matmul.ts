// matmul.ts — the CPU matmul of the wasm backend, f32 with 128-bit SIMD:
//
//   out (M, N) = alpha · op(a) · op(b)  (+ bias (N))  (+ out when accumulate)
//   a (M, K) row-major, or (K, M) when transA;  b (K, N) row-major, or (N, K) when transB
//
// the same layouts and the same order of the final additions as shaders/matmul.wgsl. Two passes,
// each run by every thread at once (src/wasm/kernels.ts), the threads taking units of work from a
// shared counter (sched.ts), the second after the first has finished: mm_pack copies op(a) into panels of MR rows and op(b) into panels of NR columns,
// k-major and zero-padded, so that the micro-kernel reads both with unit stride; mm_compute runs
// the MR×NR micro-kernel over the tiles of out.
//
// The micro-kernel keeps an MR×NR = 4×8 block of out in 8 f32x4 accumulators; per k it loads 2
// vectors of b and splats 4 scalars of a: 8 + 2 + 4 = 14 vector registers, within the 15 V8 gives
// wasm SIMD (larger blocks spill and run at half the speed). Every element of out is one sum over
// k = 0..K−1 in order, computed the same way whichever thread owns its tile: the result does not
// depend on the number of threads.
//
// With the relaxed-simd build (ASC_FEATURE_RELAXED_SIMD) the multiply-add is
// f32x4.relaxed_madd — a fused multiply-add on x86 with FMA; the plain build multiplies and adds.
// Measured on a 2-core Xeon shared with other jobs (load 5–14, so ±30 %), one thread, 1024×688×256
// x·Wᵀ: about 19 GFLOP/s plain, 26 relaxed; the issue that asked for this backend measured 39 and
// 50 on the same machine idle, and 6×8, 4×12 and 5×8 blocks spilling to about 25.

import { nextUnit } from './sched';

export const MR: i32 = 4;
export const NR: i32 = 8;
/** Bytes of b panels a thread sweeps per pass over its a panels (they stay in L2). */
const L2_BLOCK: i32 = 256 * 1024;

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Floats of the packed a of (M, K): ceil(M / MR) panels of MR·K. */
export function mm_pack_a_floats(M: i32, K: i32): i32 {
  return ((M + MR - 1) / MR) * MR * K;
}
/** Floats of the packed b of (K, N): ceil(N / NR) panels of NR·K. */
export function mm_pack_b_floats(N: i32, K: i32): i32 {
  return ((N + NR - 1) / NR) * NR * K;
}

/** The 4×4 transpose of rows x0..x3: column c goes to d + c·stride bytes. */
@inline function storeTransposed(d: usize, stride: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
  const t2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
  v128.store(d, i64x2.shuffle(t0, t1, 0, 2));
  v128.store(d + stride, i64x2.shuffle(t0, t1, 1, 3));
  v128.store(d + 2 * stride, i64x2.shuffle(t2, t3, 0, 2));
  v128.store(d + 3 * stride, i64x2.shuffle(t2, t3, 1, 3));
}

function packA(a: usize, M: i32, K: i32, transA: i32, dst: usize, p: i32): void {
  const m0 = p * MR;
  let d = dst + <usize>(p * MR * K) * 4;
  if (transA) {
    // A(m, k) = a[k·M + m]: MR consecutive floats per k
    if (m0 + MR <= M) {
      for (let k = 0; k < K; k++) {
        v128.store(d, v128.load(a + (<usize>k * M + m0) * 4));
        d += 16;
      }
    } else {
      for (let k = 0; k < K; k++) {
        for (let i = 0; i < MR; i++) store<f32>(d + (i << 2), m0 + i < M ? load<f32>(a + (<usize>k * M + m0 + i) * 4) : 0);
        d += 16;
      }
    }
    return;
  }
  // A(m, k) = a[m·K + k]: one float from each of MR rows per k
  const r0 = a + <usize>m0 * K * 4;
  if (m0 + MR <= M) {
    const r1 = r0 + <usize>K * 4, r2 = r1 + <usize>K * 4, r3 = r2 + <usize>K * 4;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      // a 4×4 transpose: rows r0..r3 at k..k+3 → 4 packed columns
      const o = <usize>k * 4;
      storeTransposed(d, 16, v128.load(r0 + o), v128.load(r1 + o), v128.load(r2 + o), v128.load(r3 + o));
      d += 64;
    }
    for (; k < K; k++) {
      const o = <usize>k * 4;
      store<f32>(d, load<f32>(r0 + o));
      store<f32>(d, load<f32>(r1 + o), 4);
      store<f32>(d, load<f32>(r2 + o), 8);
      store<f32>(d, load<f32>(r3 + o), 12);
      d += 16;
    }
  } else {
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < MR; i++) store<f32>(d + (i << 2), m0 + i < M ? load<f32>(r0 + (<usize>i * K + k) * 4) : 0);
      d += 16;
    }
  }
}

function packB(b: usize, N: i32, K: i32, transB: i32, dst: usize, q: i32): void {
  const n0 = q * NR;
  let d = dst + <usize>(q * NR * K) * 4;
  if (!transB) {
    // B(k, n) = b[k·N + n]: NR consecutive floats per k
    if (n0 + NR <= N) {
      for (let k = 0; k < K; k++) {
        const s = b + (<usize>k * N + n0) * 4;
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        d += 32;
      }
    } else {
      for (let k = 0; k < K; k++) {
        for (let j = 0; j < NR; j++) store<f32>(d + (j << 2), n0 + j < N ? load<f32>(b + (<usize>k * N + n0 + j) * 4) : 0);
        d += 32;
      }
    }
    return;
  }
  // B(k, n) = b[n·K + k]: one float from each of NR rows of b per k; 4×4 transposes
  const r = b + <usize>n0 * K * 4;
  if (n0 + NR <= N) {
    const s = <usize>K * 4;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const o = r + <usize>k * 4;
      for (let h = 0; h < 2; h++) {
        const base = o + <usize>(h * 4) * s;
        storeTransposed(d + <usize>(h * 16), 32, v128.load(base), v128.load(base + s), v128.load(base + 2 * s), v128.load(base + 3 * s));
      }
      d += 128;
    }
    for (; k < K; k++) {
      for (let j = 0; j < NR; j++) store<f32>(d + (j << 2), load<f32>(r + (<usize>j * K + k) * 4));
      d += 32;
    }
  } else {
    for (let k = 0; k < K; k++) {
      for (let j = 0; j < NR; j++) store<f32>(d + (j << 2), n0 + j < N ? load<f32>(r + (<usize>j * K + k) * 4) : 0);
      d += 32;
    }
  }
}

/** Pass 1: pack op(a) into pa and op(b) into pb, a panel per unit of work. */
export function mm_pack(a: usize, b: usize, M: i32, N: i32, K: i32, transA: i32, transB: i32, pa: usize, pb: usize, ctr: usize, tid: i32, nt: i32): void {
  const mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;
  for (let p = nextUnit(ctr, -1, tid, nt); p < mp + np; p = nextUnit(ctr, p, tid, nt)) {
    if (p < mp) packA(a, M, K, transA, pa, p);
    else packB(b, N, K, transB, pb, p - mp);
  }
}

/** One MR×NR tile of out from panels a (MR·K) and b (NR·K); edge tiles through tmp (MR·NR floats). */
@inline function tile(a: usize, b: usize, K: i32, out: usize, m0: i32, n0: i32, M: i32, N: i32, alpha: f32, accumulate: i32, bias: usize, tmp: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(a, 4);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(a, 8);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(a, 12);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    a += 16;
    b += 32;
  }
  const al = f32x4.splat(alpha);
  if (m0 + MR <= M && n0 + NR <= N) {
    const bv0 = bias ? v128.load(bias + <usize>n0 * 4) : f32x4.splat(0);
    const bv1 = bias ? v128.load(bias + <usize>n0 * 4, 16) : f32x4.splat(0);
    const rowStride = <usize>N * 4;
    let o = out + (<usize>m0 * N + n0) * 4;
    storeRow(o, c00, c01, al, bv0, bv1, bias, accumulate);
    o += rowStride;
    storeRow(o, c10, c11, al, bv0, bv1, bias, accumulate);
    o += rowStride;
    storeRow(o, c20, c21, al, bv0, bv1, bias, accumulate);
    o += rowStride;
    storeRow(o, c30, c31, al, bv0, bv1, bias, accumulate);
    return;
  }
  v128.store(tmp, c00); v128.store(tmp, c01, 16);
  v128.store(tmp, c10, 32); v128.store(tmp, c11, 48);
  v128.store(tmp, c20, 64); v128.store(tmp, c21, 80);
  v128.store(tmp, c30, 96); v128.store(tmp, c31, 112);
  for (let i = 0; i < MR && m0 + i < M; i++) {
    for (let j = 0; j < NR && n0 + j < N; j++) {
      const o = out + (<usize>(m0 + i) * N + n0 + j) * 4;
      let v = load<f32>(tmp + <usize>(i * NR + j) * 4) * alpha;
      if (bias) v += load<f32>(bias + <usize>(n0 + j) * 4);
      if (accumulate) v += load<f32>(o);
      store<f32>(o, v);
    }
  }
}

@inline function storeRow(o: usize, c0: v128, c1: v128, al: v128, bv0: v128, bv1: v128, bias: usize, accumulate: i32): void {
  let v0 = f32x4.mul(c0, al), v1 = f32x4.mul(c1, al);
  if (bias) {
    v0 = f32x4.add(v0, bv0);
    v1 = f32x4.add(v1, bv1);
  }
  if (accumulate) {
    v0 = f32x4.add(v0, v128.load(o));
    v1 = f32x4.add(v1, v128.load(o, 16));
  }
  v128.store(o, v0);
  v128.store(o, v1, 16);
}

/**
 * Pass 2: the tiles of out from the packed pa, pb. A unit of work is a group of GA a panels ×
 * a block of b panels that fits L2 (b blocks outermost, so the threads share a block while it is
 * hot); units come from the counter at ctr (see nextUnit). tmp: MR·NR floats per thread.
 */
export function mm_compute(pa: usize, pb: usize, out: usize, bias: usize, M: i32, N: i32, K: i32, alpha: f32, accumulate: i32, tmp: usize, ctr: usize, tid: i32, nt: i32): void {
  const mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;
  const blk = max(1, L2_BLOCK / (NR * max(K, 1) * 4));
  const ga = 4;
  const na = (mp + ga - 1) / ga, nb = (np + blk - 1) / blk;
  const t = tmp + <usize>tid * (MR * NR * 4);
  const pstrideA = <usize>MR * K * 4, pstrideB = <usize>NR * K * 4;
  for (let u = nextUnit(ctr, -1, tid, nt); u < na * nb; u = nextUnit(ctr, u, tid, nt)) {
    const jb = (u / na) * blk, je = min(jb + blk, np);
    const ib = (u % na) * ga, ie = min(ib + ga, mp);
    for (let i = ib; i < ie; i++) {
      const a = pa + <usize>i * pstrideA;
      for (let j = jb; j < je; j++) tile(a, pb + <usize>j * pstrideB, K, out, i * MR, j * NR, M, N, alpha, accumulate, bias, t);
    }
  }
}
