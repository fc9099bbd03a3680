#!/usr/bin/env bash
# The OpenCL backend on a machine without a GPU: installs two conformant OpenCL
# implementations that run on the CPU, PoCL and Mesa's rusticl on llvmpipe, with the ICD
# loader and clinfo, with apt where missing (as root, or through sudo), then runs the OpenCL
# tests once under each implementation with a device required (TERN_OPENCL_TESTS=1): the
# backend's kernel and whole-model tests against the reference, and the host's whole-model
# tests against run.c and llama.cpp with the OpenCL backend only (TERN_TEST_BACKENDS).
#
#   scripts/opencl.sh           set up, then test under PoCL and under rusticl
#   scripts/opencl.sh --setup   set up only
#
# Both are right for correctness and meaningless for speed. Neither has cl_khr_fp16.
set -euo pipefail
cd "$(dirname "$0")/.."

setup_only=0
case "${1:-}" in
    --setup) setup_only=1 ;;
    "") ;;
    *) echo "usage: $0 [--setup]" >&2; exit 2 ;;
esac

source scripts/apt.sh
apt_install_missing opencl pocl-opencl-icd mesa-opencl-icd ocl-icd-libopencl1 clinfo
[ "$setup_only" = 1 ] && exit 0

# One implementation per run: the ICD loader reads only the vendor file named.
for vendor in pocl rusticl; do
    echo "== opencl: $vendor" >&2
    OCL_ICD_VENDORS=/etc/OpenCL/vendors/$vendor.icd RUSTICL_ENABLE=llvmpipe clinfo -l >&2
    export OCL_ICD_VENDORS=/etc/OpenCL/vendors/$vendor.icd RUSTICL_ENABLE=llvmpipe \
        TERN_OPENCL_TESTS=1 TERN_TEST_BACKENDS=opencl
    cargo test --release -p tern-backend-opencl
    cargo test --release -p tern --test opencl --test stories260k --test fixtures
    unset OCL_ICD_VENDORS RUSTICL_ENABLE TERN_OPENCL_TESTS TERN_TEST_BACKENDS
done
