#!/usr/bin/env bash
# The aarch64 build and its tests under qemu: cross-compiles the workspace for
# aarch64-unknown-linux-gnu and runs tern-core's CPU tests, tern-backend-neon's tests and the
# stories260K whole-model test once per emulated CPU, so every dispatch path runs:
#
#   qemu -cpu max         dotprod, i8mm, fp16   -> neon-i8mm+fp16
#   qemu -cpu cortex-a76  dotprod, fp16         -> neon-dotprod+fp16
#   qemu -cpu cortex-a53  neither               -> neon
#
# (TERN_NEON_EXPECT names the path each CPU must take; a test in tern-backend-neon compares
# it with what detection picked, and `tern run` must report it too.) Then it runs the aarch64
# `tern run` and `tern bench` on the bundled model, checks that the release binary holds the
# sdot, smmla and fp16 fmla instructions, builds the C example against the aarch64
# libtern.a and compares its text with `tern run`'s, and builds the no_std smoke program for
# aarch64 with tern-backend-neon and runs it.
#
# Needs Debian 12 (bookworm) on x86_64 with bookworm-security in its apt sources; installs
# what is missing with apt (as root, or through sudo; see scripts/debian-cross.sh): Debian's
# rustc-web 1.96 with the arm64 std, the aarch64 GNU toolchain and qemu-user-static.
#
# NEON_FIXTURES says which of the fixture models' tests (tests/fixtures.rs) run:
#
#   bash scripts/neon.sh                        # everything above, and the fixtures' greedy
#                                               # ids against llama.cpp's under -cpu max and
#                                               # cortex-a53 (about 2 min per CPU)
#   NEON_FIXTURES=0 bash scripts/neon.sh        # no fixture tests
#   NEON_FIXTURES=1 bash scripts/neon.sh        # every fixture test under all three CPUs
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
# A target dir of its own: the Debian compiler's artifacts would otherwise evict rustup's.
export CARGO_TARGET_DIR="${NEON_TARGET_DIR:-$PWD/target/neon}"

source scripts/apt.sh
source scripts/debian-cross.sh
debian_cross neon arm64 aarch64-linux-gnu "$TARGET"
# No `-L /usr/aarch64-linux-gnu` for qemu: the multiarch libc6:arm64 provides the loader, and
# mixing the cross loader with it hangs the first thread spawn.
qemu() { qemu-aarch64-static -cpu "$1" "${@:2}"; }

step() { echo "== neon: $* ($(date +%T))" >&2; }

step "toolchain: $($RUSTC -V); $(qemu-aarch64-static --version | head -1)"
# Release builds throughout, so the tests and the `tern` binary share one compilation of the
# dependencies.
for pair in max:neon-i8mm+fp16 cortex-a76:neon-dotprod+fp16 cortex-a53:neon; do
    cpu=${pair%%:*}
    export TERN_NEON_EXPECT=${pair#*:}
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu $cpu"
    step "tests under -cpu $cpu (expecting $TERN_NEON_EXPECT)"
    cargo test -q --release --target "$TARGET" -p tern-core --lib cpu::
    cargo test -q --release --target "$TARGET" -p tern-backend-neon
    cargo test -q --release --target "$TARGET" -p tern --test stories260k
    case "${NEON_FIXTURES:-greedy}:$cpu" in
        1:*) cargo test -q --release --target "$TARGET" -p tern --test fixtures ;;
        greedy:max | greedy:cortex-a53)
            cargo test -q --release --target "$TARGET" -p tern --test fixtures \
                -- --exact greedy_ids_equal_llama_cpp
            ;;
    esac
done

step "release tern"
cargo build -q --release --target "$TARGET" -p tern --bin tern
tern="$CARGO_TARGET_DIR/$TARGET/release/tern"

step "tern run and tern bench under -cpu max"
out=$(qemu max "$tern" run -p "Once upon a time" -n 24 --temp 0 2>&1)
echo "$out"
grep -q "backend cpu (neon-i8mm+fp16)" <<<"$out"
# The bundled stories260K continues greedily with "there was a little girl".
grep -q "Once upon a time, there was a little girl" <<<"$out"
qemu max "$tern" bench -p 16 -n 8 -r 1 -t 2

step "instructions in the release binary"
dis=$(mktemp)
aarch64-linux-gnu-objdump -d "$tern" >"$dis"
for insn in '\ssdot\s' '\ssmmla\s' '\sfmla\s+v[0-9]+\.8h'; do
    n=$(grep -cE "$insn" "$dis" || true)
    echo "$insn: $n"
    [ "$n" -gt 0 ] || { echo "neon: no $insn in $tern" >&2; exit 1; }
done
rm -f "$dis"

# The C example against the aarch64 libtern.a (scripts/capi.sh runs it on x86): its greedy
# text must equal the aarch64 `tern run`'s.
step "C example against libtern.a under -cpu max"
cargo build -q --release --target "$TARGET" -p tern-capi
example="$CARGO_TARGET_DIR/generate-aarch64"
aarch64-linux-gnu-gcc -O2 -std=c11 -Wall -Wextra -Werror -I capi/include \
    examples/c/generate.c "$CARGO_TARGET_DIR/$TARGET/release/libtern.a" -lpthread -ldl -lm \
    -o "$example"
expected=$(qemu max "$tern" run -p "Once upon a time" -n 32 --temp 0 2>/dev/null)
got=$(qemu max "$example" -p "Once upon a time" -n 32 2>/dev/null)
echo "$got"
[ "$got" = "$expected" ] || { echo "neon: the C example differs from tern run" >&2; exit 1; }
for f in "$tern" "$CARGO_TARGET_DIR/$TARGET/release/libtern.so" "$example"; do
    aarch64-linux-gnu-strip -o "$CARGO_TARGET_DIR/stripped" "$f"
    printf '%-28s %s bytes stripped\n' "$(basename "$f")" "$(stat -c %s "$CARGO_TARGET_DIR/stripped")"
done

# Without std the kernels are those the target features allow: the baseline, then (as
# firmware for a known core would build) everything, which `-cpu max` runs.
step "no_std smoke program with tern-backend-neon"
smoke() {
    local dir=$1 cpu=$2 want=$3 out
    out=$(qemu "$cpu" "$dir/$TARGET/release/tern-nostd-smoke" 2>&1)
    echo "-cpu $cpu: $out"
    grep -qx "tern-nostd-smoke: CPU backend with $want" <<<"$out"
    grep -qx "greedy token after BOS: 403" <<<"$out"
}
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/nostd" \
    cargo build -q --release --target "$TARGET" --manifest-path nostd-smoke/Cargo.toml
smoke "$CARGO_TARGET_DIR/nostd" cortex-a53 neon
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/nostd-features" \
    RUSTFLAGS="-C target-feature=+dotprod,+i8mm,+fp16" \
    cargo build -q --release --target "$TARGET" --manifest-path nostd-smoke/Cargo.toml
smoke "$CARGO_TARGET_DIR/nostd-features" max neon-i8mm+fp16
step "all green"
