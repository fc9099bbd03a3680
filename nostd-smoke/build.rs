//! Debian's prebuilt aarch64 `compiler_builtins` refers to glibc's `__stack_chk_guard`, which
//! the dynamic loader defines. libc's linker script links the loader only as needed, and the
//! link names libc before the Rust libraries, so on aarch64 glibc it is named again after
//! them.

fn main() {
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_ARCH") == "aarch64" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-lc");
    }
}
