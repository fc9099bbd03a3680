//! FEAT_FP16 kernels: attention's dot products of a query with f16 cache rows, multiplied
//! and summed in f16 (`fmla` on `.8h`) as llama.cpp's `ggml_vec_dot_f16` does on such CPUs.
//! Softmax, norms and every accumulator across rows stay in f32.

pub(crate) mod dot_rows;
