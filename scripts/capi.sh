#!/usr/bin/env bash
# The C ABI on this machine: builds libtern.a and libtern.so, checks capi/include/tern.h
# against the code (cargo test -p tern-capi), compiles the C example against each library
# (its greedy text must equal `tern run`'s), and runs the example and the ABI test program
# (capi/tests/abi.c: good calls, bad input, two threads on one model) under
# AddressSanitizer. The aarch64 build of the example runs in scripts/neon.sh.
# Needs gcc; the programs go to target/c.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "== capi: $* ($(date +%T))" >&2; }

step "libraries and header"
# Built on its own, so the library has only its own features (no CLI, no GPU backends)
# rather than the union with the binary's.
cargo build -q --release -p tern --bin tern
cargo build -q --release -p tern-capi
cargo test -q --release -p tern-capi
lib=target/release
out=target/c
mkdir -p "$out"
cflags=(-std=c11 -Wall -Wextra -Werror -I capi/include)
static=("$lib/libtern.a" -lpthread -ldl -lm)

step "example against libtern.a and libtern.so"
gcc -O2 "${cflags[@]}" examples/c/generate.c "${static[@]}" -o "$out/generate"
gcc -O2 "${cflags[@]}" examples/c/generate.c -L "$lib" -ltern -o "$out/generate-shared"
expected=$("$lib/tern" run -p "Once upon a time" -n 32 --temp 0 2>/dev/null)
for program in generate generate-shared; do
    got=$(LD_LIBRARY_PATH="$lib" "$out/$program" -p "Once upon a time" -n 32 2>/dev/null)
    if [ "$got" != "$expected" ]; then
        printf 'capi: %s printed\n%s\nnot `tern run`'"'"'s\n%s\n' "$program" "$got" "$expected" >&2
        exit 1
    fi
done

step "the README's C program"
awk '/^```c$/ {on = 1; next} /^```$/ {on = 0} on' README.md >"$out/readme.c"
gcc -O2 "${cflags[@]}" "$out/readme.c" "${static[@]}" -o "$out/readme"
got=$("$out/readme" 2>/dev/null)
[ "$got" = "$(printf '%s' "$expected" | sed 's/^Once upon a time//')" ] || {
    echo "capi: the README's C program printed: $got" >&2
    exit 1
}

step "example and ABI test under AddressSanitizer"
asan=(-O1 -g -fsanitize=address -fno-omit-frame-pointer)
gcc "${asan[@]}" "${cflags[@]}" examples/c/generate.c "${static[@]}" -o "$out/generate-asan"
gcc "${asan[@]}" "${cflags[@]}" capi/tests/abi.c "${static[@]}" -o "$out/abi-asan"
got=$("$out/generate-asan" -p "Once upon a time" -n 32 2>/dev/null)
[ "$got" = "$expected" ] || { echo "capi: the ASan example differs" >&2; exit 1; }
(cd "$out" && ./abi-asan)

step "sizes (stripped)"
for f in "$lib/tern" "$lib/libtern.so" "$out/generate"; do
    strip -o "$out/stripped" "$f"
    printf '%-28s %s bytes\n' "$(basename "$f")" "$(stat -c %s "$out/stripped")" >&2
done
rm -f "$out/stripped"
