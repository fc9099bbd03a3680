#!/usr/bin/env bash
# The whole test suite: every crate's unit, property and whole-model tests, then the no_std
# proof (tern-core built and run with no std and no heap).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --release
# The no_std thread pool is behind a feature that no workspace crate enables.
cargo test --release -p tern-core --features spin spin_pool
cargo build --release --manifest-path nostd-smoke/Cargo.toml
out=$(nostd-smoke/target/release/tern-nostd-smoke)
echo "$out"
# The bundled stories260K starts every story with "Once" (id 403) after BOS.
[ "$out" = "greedy token after BOS: 403" ]
