// Batcher: per-sample prompt ids + response ids → fixed [B, T] Int32 buffers for the model.
//   ids       (B,T) token ids, padId in padding
//   targets   (B,T) ids[t+1] when token t+1 is a loss token (response or EOS) of the same sample,
//                   -1 elsewhere
//   segments  (B,T) index of the sample within this batch (in input order), -1 = padding
//   positions (B,T) position within its sample, restarting at 0 for every sample; 0 in padding
// Samples are placed in order: packed one after another into rows (a sample never straddles two
// rows), or one per row (padding mode). A sample longer than T is truncated first: the prompt's
// head and as much of the response as fits (see truncate()).

let outCap: usize = 0;
let outBuf: usize = 0; // ids | targets | segments | positions, each B·T i32
let inCap: usize = 0;
let inBuf: usize = 0;

export function bt_input(bytes: usize): usize {
  if (bytes > inCap) {
    inCap = bytes + (bytes >> 1) + 64;
    inBuf = heap.alloc(inCap);
  }
  return inBuf;
}
export function bt_out(): usize {
  return outBuf;
}

// truncate() results
let keepP: i32 = 0;
let keepR: i32 = 0;
let withEos: bool = false;

/**
 * Fit [bos] prompt response [eos] into T tokens. Keeps the whole sample when it fits; otherwise
 * keeps the prompt's head, at least minPrompt prompt tokens (or the whole prompt if shorter), then
 * as much of the response as fits, dropping EOS when the response is cut.
 */
function truncate(p: i32, r: i32, T: i32, bos: bool, eos: bool, minPrompt: i32): void {
  const budget = T - (bos ? 1 : 0);
  const e = eos ? 1 : 0;
  if (p + r + e <= budget) {
    keepP = p;
    keepR = r;
    withEos = eos;
    return;
  }
  let kp = budget - r - e;
  const floor = min(p, min(minPrompt, budget));
  if (kp < floor) kp = floor;
  if (kp > p) kp = p;
  const rest = budget - kp;
  keepP = kp;
  if (r + e <= rest) {
    keepR = r;
    withEos = eos;
  } else {
    keepR = rest;
    withEos = false;
  }
}

/**
 * Pack n samples. lens: i32[2n] (prompt length, response length); toks: i32 tokens of sample 0
 * (prompt then response), then sample 1, … Returns how many samples (from the first) were placed;
 * the rest did not fit into B rows.
 */
export function bt_pack(
  B: i32, T: i32, bos: i32, eos: i32, padId: i32, pack: bool, minPrompt: i32,
  n: i32, lensPtr: usize, toksPtr: usize,
): i32 {
  const bt = <usize>B * <usize>T;
  if (bt * 16 > outCap) {
    outCap = bt * 16;
    outBuf = heap.alloc(outCap);
  }
  const ids = outBuf;
  const tgt = ids + (bt << 2);
  const seg = tgt + (bt << 2);
  const pos = seg + (bt << 2);
  for (let i: usize = 0; i < bt; i++) {
    store<i32>(ids + (i << 2), padId);
    store<i32>(tgt + (i << 2), -1);
    store<i32>(seg + (i << 2), -1);
    store<i32>(pos + (i << 2), 0);
  }
  let row = 0;
  let col = 0;
  let tokOff: usize = 0;
  let placed = 0;
  for (let s = 0; s < n; s++) {
    const p = load<i32>(lensPtr + (<usize>s << 3));
    const r = load<i32>(lensPtr + (<usize>s << 3) + 4);
    truncate(p, r, T, bos >= 0, eos >= 0, minPrompt);
    const len = (bos >= 0 ? 1 : 0) + keepP + keepR + (withEos ? 1 : 0);
    if (!pack && s > 0) {
      row++;
      col = 0;
    } else if (col + len > T) {
      row++;
      col = 0;
    }
    if (row >= B) break;
    // write the sample: base index in the flat [B, T] arrays
    const base = <usize>row * <usize>T + <usize>col;
    let t: usize = 0;
    // first loss token's offset within the sample
    const firstLoss = <usize>((bos >= 0 ? 1 : 0) + keepP);
    if (bos >= 0) store<i32>(ids + ((base + t++) << 2), bos);
    const src = toksPtr + (tokOff << 2);
    for (let i = 0; i < keepP; i++) store<i32>(ids + ((base + t++) << 2), load<i32>(src + (<usize>i << 2)));
    for (let i = 0; i < keepR; i++) store<i32>(ids + ((base + t++) << 2), load<i32>(src + (<usize>(p + i) << 2)));
    if (withEos) store<i32>(ids + ((base + t++) << 2), eos);
    for (let q: usize = 0; q < t; q++) {
      store<i32>(seg + ((base + q) << 2), s);
      store<i32>(pos + ((base + q) << 2), <i32>q);
      if (q + 1 < t && q + 1 >= firstLoss) store<i32>(tgt + ((base + q) << 2), load<i32>(ids + ((base + q + 1) << 2)));
    }
    col += len;
    tokOff += <usize>(p + r);
    placed++;
  }
  return placed;
}
