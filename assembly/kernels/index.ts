// The wasm backend's kernel module (AssemblyScript → build/kernels.wasm, and the relaxed-simd
// build → build/kernels-relaxed.wasm): the matmul and every other op of the training step and
// the scoring pass, on pointers into one memory that the host (src/wasm/) imports — shared
// between threads where SharedArrayBuffer exists. No allocation happens here: the host owns the
// memory above heap_base(). Build: node scripts/build.mjs.
export { mm_pack, mm_compute, mm_pack_a_floats, mm_pack_b_floats } from './matmul';
export {
  embedding_forward, embedding_backward, add, swiglu_forward, swiglu_backward, sum_rows,
  rmsnorm_forward, rmsnorm_backward, rmsnorm_dweight, rope, attention_forward, attention_backward,
  lora_dropout, lora_dropout_backward, lmhead_forward_chunk, lmhead_backward_chunk, segment_means,
  sum_squares, adamw,
} from './ops';

/** The first byte the host may use. */
export function heap_base(): usize {
  return __heap_base;
}
