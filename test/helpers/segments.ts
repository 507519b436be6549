// Segment-id rows for batches of packed samples, as the attention and segment tests build them.
/** seg rows (B, T) from per-row descriptions: [sample length, …], padding (−1) after them. */
export function segments(T: number, rows: number[][]): Int32Array {
  const seg = new Int32Array(rows.length * T).fill(-1);
  rows.forEach((lens, b) => {
    let t = 0;
    lens.forEach((len, s) => {
      for (let n = 0; n < len; n++) seg[b * T + t++] = s;
    });
  });
  return seg;
}
