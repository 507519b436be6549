// embedding.wgsl — token embedding gather, and its deterministic scatter-add backward.
//
//   out[n, c] = weight[ids[n], c]            ids (N) i32; weight, dweight (V, C); out, dout (N, C)
//   dweight[v, c] (+)= Σ_{n : ids[n] = v} dout[n, c]   summed in token order n = 0, 1, …
//
// An id outside [0, V) (e.g. −1 for padding) gives a zero row and no gradient.
// `weight` is WT: f32 as written, f16 when the host templates the module (withElementType in
// src/kernels/template.ts) for a frozen table stored in f16; dweight is always f32.
//
// Backward without atomics. Scanning every token for every (v, c) costs N·V·C — hopeless at
// V = 152k — so the backward first links equal ids, then sums along the links:
//   1. embedding_link, one invocation per token n: links[n] = the next token m > n with the
//      same id (N if none), links[N + n] = 1 if n is the first token with its id (its "head").
//      N² integer compares in total, tiled through workgroup memory (N = 8192 tokens: 67M
//      compares, ~nothing on a GPU); no dependence on V.
//   2. embedding_backward, one invocation per (head token, c): walks its chain in token order
//      and writes (or adds to) dweight[id, c]. N·C work. Rows of ids that do not occur are
//      left alone: the host clears dweight first unless accumulating (V·C bytes of clear).
// The order of every sum is fixed, so the result is bit-identical run to run. A long chain (one
// id repeated over the whole batch, e.g. a padding id) is summed serially by C invocations;
// give padding −1 to leave it out.

override WG: u32 = 256u;
override ACCUMULATE: bool = false;

alias WT = f32; // element type of `weight`; the only templated line

struct Params {
  N: u32,
  C: u32,
  V: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
// forward
@group(0) @binding(2) var<storage, read> weight: array<WT>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// link pass
@group(0) @binding(2) var<storage, read_write> links_w: array<u32>; // (2N): next (N), head (N)
// backward
@group(0) @binding(2) var<storage, read> links: array<u32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;

var<workgroup> tile: array<i32, WG>;

fn valid(id: i32) -> bool {
  return id >= 0 && u32(id) < p.V;
}

// grid: 2-D over N·C elements
@compute @workgroup_size(WG)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i % p.C;
  let id = ids[n];
  var v = 0.0;
  if (valid(id)) { v = f32(weight[u32(id) * p.C + c]); }
  out[i] = v;
}

// grid: ceil(N / WG) workgroups (1-D; N ≤ 65535·WG)
@compute @workgroup_size(WG)
fn embedding_link(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = gid.x;
  var mine = -1;
  if (n < p.N) { mine = ids[n]; }
  let ok = n < p.N && valid(mine);
  var next = p.N;
  var head = 1u;
  for (var t0 = 0u; t0 < p.N; t0 += WG) {
    let m = t0 + lid;
    var v = -1;
    if (m < p.N) { v = ids[m]; }
    tile[lid] = v;
    workgroupBarrier();
    let end = min(WG, p.N - t0);
    for (var j = 0u; j < end; j++) {
      let mj = t0 + j;
      if (tile[j] == mine) {
        if (mj < n) { head = 0u; }
        if (mj > n && next == p.N) { next = mj; }
      }
    }
    workgroupBarrier();
  }
  if (n < p.N) {
    links_w[n] = next;
    links_w[p.N + n] = select(0u, head, ok);
  }
}

// grid: 2-D over N·C elements; only head tokens work
@compute @workgroup_size(WG)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i % p.C;
  if (links[p.N + n] == 0u) { return; }
  var s = 0.0;
  var m = n;
  loop {
    s += dout[m * p.C + c];
    m = links[m];
    if (m >= p.N) { break; }
  }
  let o = u32(ids[n]) * p.C + c;
  if (ACCUMULATE) { s += dweight[o]; }
  dweight[o] = s;
}
