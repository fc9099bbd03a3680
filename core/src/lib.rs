//! tern-core: the `no_std` heart of Tern.
//!
//! Everything here runs without an operating system and without a heap: block formats and
//! their reference decoders, the GGUF reader, tensor layouts and strided regions, the arena
//! planner, model configurations and their op plans, the backend / parallel / KV-cache traits,
//! sampling, and the scalar reference backend that every other backend is tested against.
//! The `alloc` feature adds the CPU driver ([`cpu`]: repacked weights live in heap buffers)
//! and conveniences; the reference path runs without it.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(test, feature = "testing"))]
extern crate std;

pub mod arena;
pub mod backend;
#[cfg(feature = "alloc")]
pub mod cpu;
pub mod dtype;
pub mod exec;
pub mod gguf;
pub mod hash;
pub mod kv;
pub mod model;
pub mod numerics;
pub mod plan;
pub mod quant;
pub mod region;
pub mod sample;
pub mod tensor;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use dtype::DType;
