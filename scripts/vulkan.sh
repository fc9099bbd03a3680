#!/usr/bin/env bash
# The Vulkan backend on a machine without a GPU: installs Mesa's lavapipe (a conformant
# Vulkan implementation on the CPU) and glslc with apt where missing (as root, or through
# sudo), checks that the committed SPIR-V matches its GLSL sources, then runs every test that
# touches Vulkan with a device required (TERN_VULKAN_TESTS=1): the kernels against the
# reference backend, whole models against the reference, run.c and llama.cpp, and the CLI's
# fallbacks.
#
#   scripts/vulkan.sh           set up, check the shaders, run the Vulkan tests
#   scripts/vulkan.sh --setup   set up and check the shaders only (CI then runs the whole
#                               suite with TERN_VULKAN_TESTS=1)
#
# lavapipe is right for correctness and meaningless for speed.
set -euo pipefail
cd "$(dirname "$0")/.."

setup_only=0
case "${1:-}" in
    --setup) setup_only=1 ;;
    "") ;;
    *) echo "usage: $0 [--setup]" >&2; exit 2 ;;
esac

source scripts/apt.sh
apt_install_missing vulkan mesa-vulkan-drivers libvulkan1 glslc

bash scripts/vulkan-shaders.sh --check
[ "$setup_only" = 1 ] && exit 0

export TERN_VULKAN_TESTS=1
cargo test --release -p tern-backend-vulkan
cargo test --release -p tern --test vulkan --test stories260k --test fixtures
