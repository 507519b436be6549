// Choosing the next token from logits (V): greedy, temperature and nucleus (top-p) sampling,
// with a seeded generator (src/rng.ts) so that the same seed gives the same text.

export interface SamplingOptions {
  temperature: number; // 0: greedy
  topP: number; // 1: no nucleus cut
  seed: number;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The next token id. `rand` comes from makeRng(seed). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rand: () => number): number {
  if (o.temperature <= 0) return argmax(logits);
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  const p = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += p[i] = Math.exp((logits[i] - max) / o.temperature);
  // nucleus: the smallest set of most likely tokens whose probability reaches topP
  let order: number[] | Int32Array = Int32Array.from({ length: V }, (_, i) => i);
  let mass = sum;
  if (o.topP < 1) {
    order = Array.from(order).sort((a, b) => p[b] - p[a] || a - b);
    let acc = 0, k = 0;
    while (k < V && acc < o.topP * sum) acc += p[order[k++]];
    order = order.slice(0, Math.max(1, k));
    mass = acc;
  }
  let r = rand() * mass;
  for (const i of order) {
    r -= p[i];
    if (r <= 0) return i;
  }
  return order[order.length - 1];
}
