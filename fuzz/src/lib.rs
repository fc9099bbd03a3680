//! Shared pieces of Tern's fuzz targets: the tiny models the seed corpora are made of
//! (`make_corpus`, written with `tern_core::testing::gguf_writer`), the tokenizers the
//! tokenizer targets exercise, and the tolerance rule the kernel target compares with.

pub mod close;
pub mod tiny_model;
pub mod tokenizers;
