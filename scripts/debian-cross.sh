# Sourced by the cross-build scripts (neon.sh, armv7.sh), after apt.sh.
#
# debian_cross NAME DEB_ARCH GNU_TRIPLE RUST_TARGET: installs what is missing of Debian's
# Rust toolchain with the standard library for DEB_ARCH (rustup cannot download targets
# here, so the Debian compiler builds both the target's code and the build scripts), the
# GNU cross toolchain GNU_TRIPLE-* and qemu-user-static; checks that the compiler and the
# foreign standard library are the same version; and points cargo at them for RUST_TARGET.
debian_cross() {
    local name=$1 arch=$2 gnu=$3 target=$4
    apt_install_missing "$name" \
        rustc-web cargo-web "libstd-rust-web-dev:$arch" "libc6:$arch" \
        "gcc-$gnu" "libc6-dev-$arch-cross" "binutils-$gnu" \
        qemu-user-static
    local host_v std_v
    host_v=$(dpkg-query -W -f='${Version}' rustc-web)
    std_v=$(dpkg-query -W -f='${Version}' "libstd-rust-web-dev:$arch")
    if [ "$host_v" != "$std_v" ]; then
        echo "$name: rustc-web $host_v and libstd-rust-web-dev:$arch $std_v differ" >&2
        return 1
    fi
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    local upper=${target^^} lower=$target
    upper=${upper//-/_}
    lower=${lower//-/_}
    export "CARGO_TARGET_${upper}_LINKER=$gnu-gcc"
    export "CC_${lower}=$gnu-gcc"
    export "AR_${lower}=$gnu-ar"
}
