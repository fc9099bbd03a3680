#!/usr/bin/env bash
# Runs tern-core's tests of its unsafe code (the CPU driver's shared slices and byte views,
# the arena, tensor casts) under Miri; `scripts/miri.sh spin_pool` runs the no_std thread
# pool's (a few minutes). Needs a nightly toolchain with the miri component:
#   rustup toolchain install nightly --component miri
# libm's x86 square root is inline assembly, which Miri cannot run, so libm computes in
# software here; proptest needs the current directory, so isolation is off; two cases per
# property keep it to minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}" PROPTEST_CASES="${PROPTEST_CASES:-2}"
cargo +nightly miri test -p tern-core --features libm/force-soft-floats,spin --lib "${@:-cpu::}"
