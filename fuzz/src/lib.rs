//! Shared pieces of Tern's fuzz targets: a GGUF writer and the tiny models the seed corpora
//! are made of (`make_corpus`), the tokenizers the tokenizer targets exercise, and the
//! tolerance rule the kernel target compares with.

pub mod close;
pub mod gguf_writer;
pub mod tiny_model;
pub mod tokenizers;
