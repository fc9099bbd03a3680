//! Test support shared by the tests and fuzz targets of every crate, behind the `testing`
//! feature (it brings std and proptest; never enable it in a product build): the CPU-kernel
//! conformance suite that every ISA crate instantiates ([`conformance`], through
//! [`crate::cpu_conformance_tests!`]), the GGUF writer of tests and fuzz seeds
//! ([`gguf_writer`]), and what every device backend's tests hold their kernels and whole
//! models to: reference caches ([`dense_cache`]) and the reference backend's run of a model
//! ([`whole_model`]). The last two need only `alloc`, so a backend without std could use
//! them too.

// The conformance suite drives the CPU driver, which needs `alloc`.
#[cfg(feature = "alloc")]
pub mod conformance;
#[cfg(feature = "alloc")]
pub mod dense_cache;
pub mod gguf_writer;
#[cfg(feature = "alloc")]
pub mod whole_model;
