// ops.ts — every op of the training step and the scoring pass beside the matmul, for the wasm
// backend; the math and layouts of the WGSL kernel of the same name in shaders/ (each section
// names it), checked against src/reference/ by test/wasm-ops.test.ts. All f32, row-major.
// Every exported kernel takes (…, tid, nt) last: thread tid of nt does its share (rows, heads or
// elements) and no element is summed by more than one thread, so the result does not depend on
// nt; most take their units of work from a counter (…, ctr, tid, nt: see sched.ts), the column
// reductions split the columns evenly. Kernels without (tid, nt) are small and run on one thread.

import { nextUnit } from './sched';

// ---- helpers ------------------------------------------------------------------------------

/** [lo, hi) of n items for thread tid of nt. */
@inline function lo(n: i32, tid: i32, nt: i32): i32 {
  return <i32>((<i64>n * tid) / nt);
}
@inline function hi(n: i32, tid: i32, nt: i32): i32 {
  return <i32>((<i64>n * (tid + 1)) / nt);
}
/** Units of work (sched.ts): about 8K floats each — rows of `width` floats per unit, or elements. */
const ELEMS: i32 = 8192;
@inline function rowsPer(width: i32): i32 {
  return max(1, ELEMS / max(width, 1));
}
@inline function f(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}
@inline function setf(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}
@inline function ii(p: usize, i: i32): i32 {
  return load<i32>(p + (<usize>i << 2));
}

/** Σ x[i]·y[i] over D floats: four lanes over the first D & ~3, then the rest, lanes added last. */
@inline function dot(x: usize, y: usize, D: i32): f32 {
  let acc = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= D; d += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(x + (<usize>d << 2)), v128.load(y + (<usize>d << 2))));
  let s = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; d < D; d++) s += f(x, d) * f(y, d);
  return s;
}

/** y[i] += a·x[i] over D floats. */
@inline function axpy(y: usize, a: f32, x: usize, D: i32): void {
  const av = f32x4.splat(a);
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const o = <usize>d << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, v128.load(x + o))));
  }
  for (; d < D; d++) setf(y, d, f(y, d) + a * f(x, d));
}

/**
 * e^x on four lanes: Cephes' expf (x = n·ln2 + r, |r| ≤ ln2/2, a degree-5 polynomial, 2^n from
 * the exponent bits), within 2 ulp; x is clamped to [−87.34, 88.38] (e^x stays a normal float:
 * far-negative x gives ~1e-38, not 0). NaN stays NaN.
 */
@inline function exp4(x: v128): v128 {
  x = f32x4.max(f32x4.min(x, f32x4.splat(88.3762626647949)), f32x4.splat(-87.3365447504019));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(y, e);
}

/** exp4 on one float (the same rounding as a lane of exp4). */
@inline function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}

// ---- embedding (shaders/embedding.wgsl) ----------------------------------------------------

/** out (N, C) = weight[ids]; an id outside [0, V) gives a zero row. */
export function embedding_forward(ids: usize, weight: usize, out: usize, N: i32, C: i32, V: i32, ctr: usize, tid: i32, nt: i32): void {
  const per = rowsPer(C);
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < N; u = nextUnit(ctr, u, tid, nt)) {
    for (let n = u * per; n < min(N, (u + 1) * per); n++) {
      const id = ii(ids, n);
      const o = out + (<usize>n * C << 2);
      if (id < 0 || id >= V) zero(o, C);
      else memory.copy(o, weight + (<usize>id * C << 2), <usize>C << 2);
    }
  }
}

/** dweight (V, C) += Σ_n [ids[n] = v] dout[n]: thread t owns the columns of its share of C, tokens in order. */
export function embedding_backward(ids: usize, dout: usize, dweight: usize, N: i32, C: i32, V: i32, tid: i32, nt: i32): void {
  const c0 = lo(C, tid, nt), c1 = hi(C, tid, nt);
  for (let n = 0; n < N; n++) {
    const id = ii(ids, n);
    if (id < 0 || id >= V) continue;
    const d = dweight + (<usize>id * C << 2), s = dout + (<usize>n * C << 2);
    for (let c = c0; c < c1; c++) setf(d, c, f(d, c) + f(s, c));
  }
}

// ---- elementwise (shaders/elementwise.wgsl, shaders/swiglu.wgsl) ---------------------------

/** out = a + b over n. */
export function add(a: usize, b: usize, out: usize, n: i32, tid: i32, nt: i32): void {
  let i = lo(n >> 2, tid, nt) << 2;
  const e = tid === nt - 1 ? n : hi(n >> 2, tid, nt) << 2;
  for (; i + 4 <= e; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < e; i++) setf(out, i, f(a, i) + f(b, i));
}

/** σ(g) = 1 / (1 + e^−g) on four lanes. */
@inline function sigmoid4(g: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(g))));
}

/** out = silu(gate) · up = gate·σ(gate)·up; four at a time (the tail through a lane of the same). */
export function swiglu_forward(gate: usize, up: usize, out: usize, n: i32, ctr: usize, tid: i32, nt: i32): void {
  for (let u = nextUnit(ctr, -1, tid, nt); u * ELEMS < n; u = nextUnit(ctr, u, tid, nt)) {
    const e = min(n, (u + 1) * ELEMS);
    for (let i = u * ELEMS; i < e; i += 4) {
      const o = <usize>i << 2;
      if (i + 4 <= e) {
        const g = v128.load(gate + o);
        v128.store(out + o, f32x4.mul(f32x4.mul(g, sigmoid4(g)), v128.load(up + o)));
      } else {
        for (let j = i; j < e; j++) {
          const g = f(gate, j);
          setf(out, j, g * f32x4.extract_lane(sigmoid4(f32x4.splat(g)), 0) * f(up, j));
        }
      }
    }
  }
}

/** dup = dout·silu(gate);  dgate = dout·up·σ(gate)·(1 + gate·(1 − σ(gate))). */
export function swiglu_backward(gate: usize, up: usize, dout: usize, dgate: usize, dup: usize, n: i32, ctr: usize, tid: i32, nt: i32): void {
  const one = f32x4.splat(1);
  for (let u = nextUnit(ctr, -1, tid, nt); u * ELEMS < n; u = nextUnit(ctr, u, tid, nt)) {
    const e = min(n, (u + 1) * ELEMS);
    for (let i = u * ELEMS; i < e; i += 4) {
      const o = <usize>i << 2;
      if (i + 4 <= e) {
        const g = v128.load(gate + o), s = sigmoid4(g), d = v128.load(dout + o);
        v128.store(dup + o, f32x4.mul(f32x4.mul(d, g), s));
        const t = f32x4.add(one, f32x4.mul(g, f32x4.sub(one, s)));
        v128.store(dgate + o, f32x4.mul(f32x4.mul(f32x4.mul(d, v128.load(up + o)), s), t));
      } else {
        for (let j = i; j < e; j++) {
          const g = f(gate, j), s = f32x4.extract_lane(sigmoid4(f32x4.splat(g)), 0), d = f(dout, j);
          setf(dup, j, d * g * s);
          setf(dgate, j, d * f(up, j) * s * (1 + g * (1 - s)));
        }
      }
    }
  }
}

/** out (C) (+)= Σ_n inp[n, :] over rows (N, C): the bias gradient; thread t owns its columns. */
export function sum_rows(inp: usize, out: usize, N: i32, C: i32, accumulate: i32, tid: i32, nt: i32): void {
  for (let c = lo(C, tid, nt); c < hi(C, tid, nt); c++) {
    let s: f32 = 0;
    for (let n = 0; n < N; n++) s += f(inp, n * C + c);
    setf(out, c, accumulate ? f(out, c) + s : s);
  }
}

// ---- RMSNorm (shaders/rmsnorm.wgsl) --------------------------------------------------------

/** out = weight · inp · rstd, rstd = 1/sqrt(mean(inp²) + eps), per row of (N, C). */
export function rmsnorm_forward(inp: usize, weight: usize, out: usize, rstd: usize, N: i32, C: i32, eps: f32, ctr: usize, tid: i32, nt: i32): void {
  const per = rowsPer(C);
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < N; u = nextUnit(ctr, u, tid, nt)) {
    for (let n = u * per; n < min(N, (u + 1) * per); n++) {
      const x = inp + (<usize>n * C << 2), y = out + (<usize>n * C << 2);
      const r: f32 = <f32>1 / Mathf.sqrt(dot(x, x, C) / <f32>C + eps);
      setf(rstd, n, r);
      for (let c = 0; c < C; c++) setf(y, c, f(weight, c) * (f(x, c) * r));
    }
  }
}

/** dinp (+)= r·w·dout − inp·r³·(Σ w·dout·inp)/C per row. */
export function rmsnorm_backward(inp: usize, weight: usize, rstd: usize, dout: usize, dinp: usize, N: i32, C: i32, accumulate: i32, ctr: usize, tid: i32, nt: i32): void {
  const per = rowsPer(C);
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < N; u = nextUnit(ctr, u, tid, nt)) {
    for (let n = u * per; n < min(N, (u + 1) * per); n++) {
      const x = inp + (<usize>n * C << 2), dy = dout + (<usize>n * C << 2), dx = dinp + (<usize>n * C << 2);
      const r = f(rstd, n);
      let s: f32 = 0;
      for (let c = 0; c < C; c++) s += f(weight, c) * f(dy, c) * f(x, c);
      const k = (r * r * r * s) / <f32>C;
      for (let c = 0; c < C; c++) {
        const v = r * f(weight, c) * f(dy, c) - f(x, c) * k;
        setf(dx, c, accumulate ? f(dx, c) + v : v);
      }
    }
  }
}

/** dweight (C) (+)= Σ_n dout·inp·rstd; thread t owns its columns, rows in order. */
export function rmsnorm_dweight(inp: usize, dout: usize, rstd: usize, dweight: usize, N: i32, C: i32, accumulate: i32, tid: i32, nt: i32): void {
  for (let c = lo(C, tid, nt); c < hi(C, tid, nt); c++) {
    let s: f32 = 0;
    for (let n = 0; n < N; n++) s += f(dout, n * C + c) * f(inp, n * C + c) * f(rstd, n);
    setf(dweight, c, accumulate ? f(dweight, c) + s : s);
  }
}

// ---- RoPE (shaders/rope.wgsl) --------------------------------------------------------------

/**
 * In place on x (N, H, D), rotate-half: per pair i the angle pos·inv_freq[i] rounded to f32 (as
 * Hugging Face computes it), cos and sin of it in f64 rounded to f32; inverse rotates by −angle.
 */
export function rope(x: usize, pos: usize, invFreq: usize, N: i32, H: i32, D: i32, inverse: i32, ctr: usize, tid: i32, nt: i32): void {
  const half = D >> 1;
  const per = rowsPer(H * D);
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < N; u = nextUnit(ctr, u, tid, nt)) {
    for (let n = u * per; n < min(N, (u + 1) * per); n++) {
      const p = <f32>ii(pos, n);
      for (let i = 0; i < half; i++) {
        const a = <f64>(p * f(invFreq, i));
        const c = <f32>Math.cos(a);
        let s = <f32>Math.sin(a);
        if (inverse) s = -s;
        for (let h = 0; h < H; h++) {
          const o = x + (<usize>((n * H + h) * D + i) << 2);
          const x1 = load<f32>(o), x2 = load<f32>(o + (<usize>half << 2));
          store<f32>(o, x1 * c - x2 * s);
          store<f32>(o + (<usize>half << 2), x2 * c + x1 * s);
        }
      }
    }
  }
}

// ---- attention (shaders/attention.wgsl) ----------------------------------------------------
//   q, out, dout, dq (B, Tq, Hq, D)   k, v (B, cap, Hkv, D)   dk, dv (B, T, Hkv, D)
//   seg (B, cap) i32   lse (B, Hq, Tq)
// Query i attends key j iff j ≤ qOff + i and seg[b, j] = seg[b, qOff + i] ≥ 0; one that attends
// nothing gets out = 0, lse = 0 and zero gradients.

// Keys go four at a time where head_dim is a multiple of 4 (every real model): dot4 shares the
// loads of one row across four key rows (four independent accumulators — one accumulator chain
// is latency-bound), and one pass over the output row adds four keys' contributions. A masked
// key inside a block (another sample's) gets p = 0 by select; keys past the block structure
// (the last < 4 before the query's position) take the one-key path.

/** [x·y0, x·y1, x·y2, x·y3] over D floats (D a multiple of 4). */
@inline function dot4(x: usize, y0: usize, y1: usize, y2: usize, y3: usize, D: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let d = 0; d < D; d += 4) {
    const o = <usize>d << 2;
    const xv = v128.load(x + o);
    a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(y0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(y1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(y2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(y3 + o)));
  }
  const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 2, 6), v128.shuffle<f32>(a0, a1, 1, 5, 3, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 2, 6), v128.shuffle<f32>(a2, a3, 1, 5, 3, 7));
  return f32x4.add(v128.shuffle<f32>(s01, s23, 0, 1, 4, 5), v128.shuffle<f32>(s01, s23, 2, 3, 6, 7));
}

/** y += Σ_l c[l]·x_l over D floats (D a multiple of 4), the four terms added in order. */
@inline function axpy4(y: usize, c: v128, x0: usize, x1: usize, x2: usize, x3: usize, D: i32): void {
  const c0 = f32x4.splat(f32x4.extract_lane(c, 0)), c1 = f32x4.splat(f32x4.extract_lane(c, 1));
  const c2 = f32x4.splat(f32x4.extract_lane(c, 2)), c3 = f32x4.splat(f32x4.extract_lane(c, 3));
  for (let d = 0; d < D; d += 4) {
    const o = <usize>d << 2;
    let acc = v128.load(y + o);
    acc = f32x4.add(acc, f32x4.mul(c0, v128.load(x0 + o)));
    acc = f32x4.add(acc, f32x4.mul(c1, v128.load(x1 + o)));
    acc = f32x4.add(acc, f32x4.mul(c2, v128.load(x2 + o)));
    acc = f32x4.add(acc, f32x4.mul(c3, v128.load(x3 + o)));
    v128.store(y + o, acc);
  }
}

/** The first key position ≤ qpos of segment sq (the rows of a packed sample are contiguous, but any mask works). */
@inline function firstKey(seg: usize, row: i32, qpos: i32, sq: i32): i32 {
  let j = 0;
  while (j < qpos && ii(seg, row + j) !== sq) j++;
  return j;
}

/** Forward: a unit of work is one (b, h) pair (see nextUnit). scr: cap floats per thread (the scores). */
export function attention_forward(q: usize, k: usize, v: usize, seg: usize, out: usize, lse: usize, B: i32, Tq: i32, Tk: i32, Hq: i32, Hkv: i32, D: i32, qOff: i32, cap: i32, scale: f32, scr: usize, ctr: usize, tid: i32, nt: i32): void {
  const group = Hq / Hkv;
  const sc = scr + (<usize>tid * cap << 2);
  const P = B * Hq;
  const krow = <usize>(Hkv * D) << 2; // bytes between consecutive key positions
  const vec = (D & 3) === 0;
  for (let bh = nextUnit(ctr, -1, tid, nt); bh < P; bh = nextUnit(ctr, bh, tid, nt)) {
    const b = bh / Hq, h = bh % Hq, hk = h / group;
    const kb = k + (<usize>((b * cap) * Hkv + hk) * D << 2), vb = v + (<usize>((b * cap) * Hkv + hk) * D << 2);
    for (let i = 0; i < Tq; i++) {
      const qpos = qOff + i;
      const o = out + (<usize>((b * Tq + i) * Hq + h) * D << 2);
      const sq = ii(seg, b * cap + qpos);
      zero(o, D);
      if (sq < 0) {
        setf(lse, (b * Hq + h) * Tq + i, 0);
        continue;
      }
      const qi = q + (<usize>((b * Tq + i) * Hq + h) * D << 2);
      const j0 = firstKey(seg, b * cap, qpos, sq);
      const jv = vec ? j0 + ((qpos + 1 - j0) & ~3) : j0; // blocks of 4 in [j0, jv), one at a time in [jv, qpos]
      const sqv = i32x4.splat(sq);
      // scores (masked: −∞) and their max
      let mv = f32x4.splat(-Infinity);
      for (let j = j0; j < jv; j += 4) {
        const kj = kb + <usize>j * krow;
        let s4 = f32x4.mul(dot4(qi, kj, kj + krow, kj + 2 * krow, kj + 3 * krow, D), f32x4.splat(scale));
        s4 = v128.bitselect(s4, f32x4.splat(-Infinity), i32x4.eq(v128.load(seg + (<usize>(b * cap + j) << 2)), sqv));
        v128.store(sc + (<usize>j << 2), s4);
        mv = f32x4.max(mv, s4);
      }
      let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (let j = jv; j <= qpos; j++) {
        const s = ii(seg, b * cap + j) === sq ? dot(qi, kb + <usize>j * krow, D) * scale : -Infinity;
        setf(sc, j, s);
        if (s > m) m = s;
      }
      // p ∝ e^(s − m); out = Σ p·v / Σ p
      const m4 = f32x4.splat(m);
      let sv = f32x4.splat(0);
      for (let j = j0; j < jv; j += 4) {
        const s4 = v128.load(sc + (<usize>j << 2));
        const e4 = v128.bitselect(exp4(f32x4.sub(s4, m4)), f32x4.splat(0), f32x4.ne(s4, f32x4.splat(-Infinity)));
        sv = f32x4.add(sv, e4);
        const vj = vb + <usize>j * krow;
        axpy4(o, e4, vj, vj + krow, vj + 2 * krow, vj + 3 * krow, D);
      }
      let sum = hsum(sv);
      for (let j = jv; j <= qpos; j++) {
        const s = f(sc, j);
        if (s === -Infinity) continue;
        const e = exp1(s - m);
        sum += e;
        axpy(o, e, vb + <usize>j * krow, D);
      }
      const inv: f32 = 1 / sum;
      for (let d = 0; d < D; d++) setf(o, d, f(o, d) * inv);
      setf(lse, (b * Hq + h) * Tq + i, m + Mathf.log(sum));
    }
  }
}

/**
 * Backward for training shapes (Tq = Tk = T): a unit of work is one (b, kv head) pair with every
 * query head of its group and every query in order, so dq, dk and dv
 * each get their sums in one fixed order (no atomics, no partial sums across threads).
 *   p = e^(scale·q·k − lse),  ds = p·(dout·v − delta),  delta = dout·out
 *   dq += scale·ds·k,  dk += scale·ds·q,  dv += p·dout
 */
export function attention_backward(q: usize, k: usize, v: usize, out: usize, lse: usize, dout: usize, seg: usize, dq: usize, dk: usize, dv: usize, B: i32, T: i32, Hq: i32, Hkv: i32, D: i32, scale: f32, ctr: usize, tid: i32, nt: i32): void {
  const group = Hq / Hkv;
  const P = B * Hkv;
  const krow = <usize>(Hkv * D) << 2;
  const vec = (D & 3) === 0;
  const scv = f32x4.splat(scale);
  for (let bk = nextUnit(ctr, -1, tid, nt); bk < P; bk = nextUnit(ctr, bk, tid, nt)) {
    const b = bk / Hkv, hk = bk % Hkv;
    const base = <usize>((b * T) * Hkv + hk) * D << 2;
    const kb = k + base, vb = v + base, dkb = dk + base, dvb = dv + base;
    for (let j = 0; j < T; j++) {
      zero(dkb + <usize>j * krow, D);
      zero(dvb + <usize>j * krow, D);
    }
    for (let h = hk * group; h < (hk + 1) * group; h++) {
      for (let i = 0; i < T; i++) {
        const qr = <usize>((b * T + i) * Hq + h) * D << 2;
        const dqi = dq + qr;
        zero(dqi, D);
        const sq = ii(seg, b * T + i);
        if (sq < 0) continue;
        const qi = q + qr, doi = dout + qr;
        const l = f(lse, (b * Hq + h) * T + i);
        const delta = dot(doi, out + qr, D);
        const j0 = firstKey(seg, b * T, i, sq);
        const jv = vec ? j0 + ((i + 1 - j0) & ~3) : j0;
        const lv = f32x4.splat(l), dlv = f32x4.splat(delta), sqv = i32x4.splat(sq);
        for (let j = j0; j < jv; j += 4) {
          const kj = kb + <usize>j * krow, vj = vb + <usize>j * krow;
          const keep = i32x4.eq(v128.load(seg + (<usize>(b * T + j) << 2)), sqv);
          const s4 = f32x4.sub(f32x4.mul(dot4(qi, kj, kj + krow, kj + 2 * krow, kj + 3 * krow, D), scv), lv);
          const p4 = v128.bitselect(exp4(s4), f32x4.splat(0), keep);
          const dp4 = dot4(doi, vj, vj + krow, vj + 2 * krow, vj + 3 * krow, D);
          const ds4 = f32x4.mul(f32x4.mul(p4, f32x4.sub(dp4, dlv)), scv);
          axpy4(dqi, ds4, kj, kj + krow, kj + 2 * krow, kj + 3 * krow, D);
          const dkj = dkb + <usize>j * krow, dvj = dvb + <usize>j * krow;
          axpy(dkj, f32x4.extract_lane(ds4, 0), qi, D);
          axpy(dkj + krow, f32x4.extract_lane(ds4, 1), qi, D);
          axpy(dkj + 2 * krow, f32x4.extract_lane(ds4, 2), qi, D);
          axpy(dkj + 3 * krow, f32x4.extract_lane(ds4, 3), qi, D);
          axpy(dvj, f32x4.extract_lane(p4, 0), doi, D);
          axpy(dvj + krow, f32x4.extract_lane(p4, 1), doi, D);
          axpy(dvj + 2 * krow, f32x4.extract_lane(p4, 2), doi, D);
          axpy(dvj + 3 * krow, f32x4.extract_lane(p4, 3), doi, D);
        }
        for (let j = jv; j <= i; j++) {
          if (ii(seg, b * T + j) !== sq) continue;
          const kr = <usize>j * krow;
          const p = exp1(dot(qi, kb + kr, D) * scale - l);
          const ds = p * (dot(doi, vb + kr, D) - delta) * scale;
          axpy(dqi, ds, kb + kr, D);
          axpy(dkb + kr, ds, qi, D);
          axpy(dvb + kr, p, doi, D);
        }
      }
    }
  }
}

// ---- LoRA dropout (shaders/lora.wgsl: the same counter-based hash, bit for bit) ------------

@inline function pcg(v: u32): u32 {
  const state = v * 747796405 + 2891336453;
  const word = ((state >> ((state >> 28) + 4)) ^ state) * 277803737;
  return (word >> 22) ^ word;
}

/** xd[i] = keep(i) ? x[i]·inv : 0 over n, keep(i) = uniform(seed, i) ≥ p. */
export function lora_dropout(x: usize, xd: usize, n: i32, seed: u32, p: f32, inv: f32, ctr: usize, tid: i32, nt: i32): void {
  const k0 = pcg(seed), k1 = pcg(k0 ^ 0x9e3779b9);
  const per = ELEMS;
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < n; u = nextUnit(ctr, u, tid, nt)) {
    for (let i = u * per; i < min(n, (u + 1) * per); i++) {
      const h = pcg(pcg(<u32>i ^ k0) + k1);
      setf(xd, i, <f32>(h >> 8) * (1.0 / 16777216.0) >= p ? f(x, i) * inv : 0);
    }
  }
}

/** dx[i] += keep(i) ? t[i]·inv : 0. */
export function lora_dropout_backward(t: usize, dx: usize, n: i32, seed: u32, p: f32, inv: f32, ctr: usize, tid: i32, nt: i32): void {
  const k0 = pcg(seed), k1 = pcg(k0 ^ 0x9e3779b9);
  const per = ELEMS;
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < n; u = nextUnit(ctr, u, tid, nt)) {
    for (let i = u * per; i < min(n, (u + 1) * per); i++) {
      const h = pcg(pcg(<u32>i ^ k0) + k1);
      if (<f32>(h >> 8) * (1.0 / 16777216.0) >= p) setf(dx, i, f(t, i) * inv + f(dx, i));
    }
  }
}

// ---- LM head reduction (shaders/lmhead.wgsl) -----------------------------------------------
// Per token over one chunk of logits (N, width), columns v0..v0+width−1, merged into a running
// state run (N × 6: m, s, t, arg, zt, 0): s = Σ e^(z−m), t = Σ e^(z−m)(z−m), lse = m + log s,
// entropy = log s − t/s, max-probability = 1/s, nll = (m − z_target) + log s.

/** Forward over one chunk; last: write stats (N, 4) and lse (N). */
export function lmhead_forward_chunk(logits: usize, targets: usize, run: usize, stats: usize, lse: usize, N: i32, V: i32, v0: i32, width: i32, first: i32, last: i32, ctr: usize, tid: i32, nt: i32): void {
  const per = rowsPer(width);
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < N; u = nextUnit(ctr, u, tid, nt)) {
    for (let n = u * per; n < min(N, (u + 1) * per); n++) {
      const z = logits + (<usize>n * width << 2);
      // the chunk's max (four lanes, then the first index holding it), then s and t relative to it
      let mv = f32x4.splat(-3.4028234663852886e38);
      let j = 0;
      for (; j + 4 <= width; j += 4) mv = f32x4.max(mv, v128.load(z + (<usize>j << 2)));
      let mc = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (; j < width; j++) mc = max(mc, f(z, j));
      let arg = 0;
      while (arg < width - 1 && f(z, arg) !== mc) arg++;
      const mcv = f32x4.splat(mc);
      let sv = f32x4.splat(0), tv = f32x4.splat(0);
      for (j = 0; j + 4 <= width; j += 4) {
        const d = f32x4.sub(v128.load(z + (<usize>j << 2)), mcv);
        const e = exp4(d);
        sv = f32x4.add(sv, e);
        tv = f32x4.add(tv, f32x4.mul(e, d));
      }
      let s = hsum(sv), t = hsum(tv);
      for (; j < width; j++) {
        const d = f(z, j) - mc;
        const e = exp1(d);
        s += e;
        t += e * d;
      }
      let tg = ii(targets, n);
      if (tg >= V) tg = -1;
      const st = run + (<usize>n * 6 << 2);
      let m: f32, S: f32, Tt: f32, A: i32, zt: f32;
      if (first) {
        m = mc; S = s; Tt = t; A = v0 + arg; zt = 0;
      } else {
        m = f(st, 0); S = f(st, 1); Tt = f(st, 2); A = load<i32>(st + 12); zt = f(st, 4);
        if (mc > m) {
          const dm = m - mc, a = Mathf.exp(dm);
          Tt = a * (Tt + dm * S) + t;
          S = a * S + s;
          m = mc;
          A = v0 + arg;
        } else {
          const dm = mc - m, a = Mathf.exp(dm);
          Tt = Tt + a * (t + dm * s);
          S = S + a * s;
        }
      }
      if (tg >= v0 && tg < v0 + width) zt = f(z, tg - v0);
      if (last) {
        const ls = Mathf.log(S);
        setf(lse, n, m + ls);
        const so = stats + (<usize>n * 4 << 2);
        setf(so, 0, tg >= 0 ? m - zt + ls : 0);
        setf(so, 1, ls - Tt / S);
        setf(so, 2, 1 / S);
        setf(so, 3, tg >= 0 && A === tg ? 1 : 0);
      } else {
        setf(st, 0, m); setf(st, 1, S); setf(st, 2, Tt); store<i32>(st + 12, A); setf(st, 4, zt);
      }
    }
  }
}

/** Backward over one chunk, in place: dlogits = gscale·(e^(z − lse) − 1[v = target]); 0 without target. */
export function lmhead_backward_chunk(logits: usize, targets: usize, lse: usize, gscale: usize, N: i32, V: i32, v0: i32, width: i32, ctr: usize, tid: i32, nt: i32): void {
  const per = rowsPer(width);
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < N; u = nextUnit(ctr, u, tid, nt)) {
    for (let n = u * per; n < min(N, (u + 1) * per); n++) {
      const z = logits + (<usize>n * width << 2);
      const tg = ii(targets, n);
      if (tg < 0 || tg >= V) {
        zero(z, width);
        continue;
      }
      const l = f(lse, n), g = f(gscale, n);
      const tj = tg - v0; // the target's column when it is in this chunk
      const zt = tj >= 0 && tj < width ? f(z, tj) : 0;
      const lv = f32x4.splat(l), gv = f32x4.splat(g);
      let j = 0;
      for (; j + 4 <= width; j += 4) {
        const o = z + (<usize>j << 2);
        v128.store(o, f32x4.mul(gv, exp4(f32x4.sub(v128.load(o), lv))));
      }
      for (; j < width; j++) setf(z, j, g * exp1(f(z, j) - l));
      if (tj >= 0 && tj < width) setf(z, tj, g * (exp1(zt - l) - 1));
    }
  }
}

// ---- per-sample means (shaders/segment.wgsl) — one thread ----------------------------------

/** out (S, 8) = [mean nll, entropy, max-probability, hit, count, 0, 0, 0] over tokens with a target. */
export function segment_means(stats: usize, segments: usize, targets: usize, out: usize, N: i32, S: i32): void {
  zero(out, S * 8);
  for (let n = 0; n < N; n++) {
    const s = ii(segments, n);
    if (s < 0 || s >= S || ii(targets, n) < 0) continue;
    const o = out + (<usize>s * 8 << 2);
    for (let q = 0; q < 4; q++) setf(o, q, f(o, q) + f(stats, n * 4 + q));
    setf(o, 4, f(o, 4) + 1);
  }
  for (let s = 0; s < S; s++) {
    const o = out + (<usize>s * 8 << 2);
    const c = f(o, 4);
    for (let q = 0; q < 4; q++) setf(o, q, c > 0 ? f(o, q) / c : 0);
  }
}

// ---- grad norm and AdamW (shaders/gradnorm.wgsl, shaders/adamw.wgsl) -----------------------

/** Σ g² over n floats, in f64 and in order (one thread: the host adds the tensors in order). */
export function sum_squares(g: usize, n: i32): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const x = <f64>f(g, i);
    s += x * x;
  }
  return s;
}

/**
 * One torch.optim.AdamW step with the gradient times clip:
 *   m ← m + (1 − β1)(g − m);  v ← β2·v + (1 − β2)·g²;
 *   param ← param·decay − stepSize · m / (sqrt(v)/bc2sqrt + eps)
 */
export function adamw(param: usize, grad: usize, m: usize, v: usize, n: i32, beta1: f32, beta2: f32, eps: f32, decay: f32, stepSize: f32, bc2sqrt: f32, clip: f32, ctr: usize, tid: i32, nt: i32): void {
  const per = ELEMS;
  for (let u = nextUnit(ctr, -1, tid, nt); u * per < n; u = nextUnit(ctr, u, tid, nt)) {
    for (let i = u * per; i < min(n, (u + 1) * per); i++) {
      const g = f(grad, i) * clip;
      const mi = f(m, i) + (1 - beta1) * (g - f(m, i));
      const vi = beta2 * f(v, i) + (1 - beta2) * g * g;
      setf(m, i, mi);
      setf(v, i, vi);
      setf(param, i, f(param, i) * decay - stepSize * (mi / (Mathf.sqrt(vi) / bc2sqrt + eps)));
    }
  }
}
