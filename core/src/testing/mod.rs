//! Test support shared by the tests and fuzz targets of every crate, behind the `testing`
//! feature (it brings std and proptest; never enable it in a product build): the CPU-kernel
//! conformance suite that every ISA crate instantiates ([`conformance`], through
//! [`crate::cpu_conformance_tests!`]) and the GGUF writer of tests and fuzz seeds
//! ([`gguf_writer`]).

// The conformance suite drives the CPU driver, which needs `alloc`.
#[cfg(feature = "alloc")]
pub mod conformance;
pub mod gguf_writer;
