#!/usr/bin/env bash
# The 32-bit ARM build (armv7-unknown-linux-gnueabihf: boards such as the Raspberry Pi 2 or
# an i.MX6) and its tests under qemu-arm: cross-compiles the workspace's CPU path with the
# portable kernels (NEON intrinsics for 32-bit ARM are not stable in Rust), runs tern-core's
# CPU tests and the stories260K whole-model test, the armv7 `tern run`, and the C example
# against the armv7 libtern.a, whose greedy text must equal `tern run`'s.
#
# Needs Debian 12 (bookworm) on x86_64; installs what is missing with apt (as root, or
# through sudo; see scripts/debian-cross.sh): Debian's rustc-web 1.96 with the armhf std,
# the armhf GNU toolchain and qemu-user-static.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=armv7-unknown-linux-gnueabihf
# A target dir of its own: the Debian compiler's artifacts would otherwise evict rustup's.
export CARGO_TARGET_DIR="${ARMV7_TARGET_DIR:-$PWD/target/armv7}"

source scripts/apt.sh
source scripts/debian-cross.sh
debian_cross armv7 armhf arm-linux-gnueabihf "$TARGET"
# The multiarch libc6:armhf provides the loader, as for aarch64 in scripts/neon.sh.
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm-static -cpu cortex-a7"
qemu() { qemu-arm-static -cpu cortex-a7 "$@"; }

step() { echo "== armv7: $* ($(date +%T))" >&2; }

step "toolchain: $($RUSTC -V); $(qemu-arm-static --version | head -1)"
# The CPU path only: the GPU backends are for the 64-bit boards their drivers ship on.
features=(--no-default-features --features cli)
step "tests under qemu-arm"
cargo test -q --release --target "$TARGET" -p tern-core --lib cpu::
cargo test -q --release --target "$TARGET" -p tern "${features[@]}" --test stories260k

step "release tern"
cargo build -q --release --target "$TARGET" -p tern "${features[@]}" --bin tern
tern="$CARGO_TARGET_DIR/$TARGET/release/tern"
out=$(qemu "$tern" run -p "Once upon a time" -n 24 --temp 0 2>&1)
echo "$out"
grep -q "Once upon a time, there was a little girl" <<<"$out"

step "C example against libtern.a"
cargo build -q --release --target "$TARGET" -p tern-capi --no-default-features
example="$CARGO_TARGET_DIR/generate-armv7"
arm-linux-gnueabihf-gcc -O2 -std=c11 -Wall -Wextra -Werror -I capi/include \
    examples/c/generate.c "$CARGO_TARGET_DIR/$TARGET/release/libtern.a" -lpthread -ldl -lm \
    -o "$example"
expected=$(qemu "$tern" run -p "Once upon a time" -n 32 --temp 0 2>/dev/null)
got=$(qemu "$example" -p "Once upon a time" -n 32 2>/dev/null)
echo "$got"
[ "$got" = "$expected" ] || { echo "armv7: the C example differs from tern run" >&2; exit 1; }
for f in "$tern" "$CARGO_TARGET_DIR/$TARGET/release/libtern.so" "$example"; do
    arm-linux-gnueabihf-strip -o "$CARGO_TARGET_DIR/stripped" "$f"
    printf '%-28s %s bytes stripped\n' "$(basename "$f")" "$(stat -c %s "$CARGO_TARGET_DIR/stripped")"
done
step "all green"
