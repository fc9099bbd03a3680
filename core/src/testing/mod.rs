//! Test support shared by the tests and fuzz targets of every crate, behind the `testing`
//! feature (it brings std and proptest; never enable it in a product build).

pub mod conformance;
