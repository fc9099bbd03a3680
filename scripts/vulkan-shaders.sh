#!/usr/bin/env bash
# Compiles backend-vulkan's GLSL compute shaders to the SPIR-V files committed beside them.
#
#   scripts/vulkan-shaders.sh          recompile every .spv
#   scripts/vulkan-shaders.sh --check  fail if a committed .spv differs from a fresh compile
#
# Needs glslc (Debian: apt-get install glslc). SPIR-V 1.0 for Vulkan 1.0, so any Vulkan
# driver can load the result; -O for small modules.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../backend-vulkan/shaders" && pwd)"
check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if ! command -v glslc >/dev/null; then
    echo "glslc not found (apt-get install glslc)" >&2
    exit 1
fi

# output name, source, defines
variants=(
    "matmul_f32 matmul.comp FMT_F32"
    "matmul_f16 matmul.comp FMT_F16"
    "matmul_q4_0 matmul.comp FMT_Q4_0"
    "matmul_q4_1 matmul.comp FMT_Q4_1"
    "matmul_q5_1 matmul.comp FMT_Q5_1"
    "matmul_q8_0 matmul.comp FMT_Q8_0"
    "matmul_f16_a16 matmul_a16.comp FMT_F16"
    "matmul_q4_0_a16 matmul_a16.comp FMT_Q4_0"
    "matmul_q8_0_a16 matmul_a16.comp FMT_Q8_0"
    "matmul_q4_k matmul_kquant.comp FMT_Q4_K"
    "matmul_q5_k matmul_kquant.comp FMT_Q5_K"
    "matmul_q6_k matmul_kquant.comp FMT_Q6_K"
    "embed_f32 embed.comp FMT_F32"
    "embed_f16 embed.comp FMT_F16"
    "embed_q4_0 embed.comp FMT_Q4_0"
    "embed_q8_0 embed.comp FMT_Q8_0"
    "embed_q4_k embed.comp FMT_Q4_K"
    "embed_q6_k embed.comp FMT_Q6_K"
    "round_f16 round_act.comp ACT_F16"
    "round_q8_0 round_act.comp ACT_Q8_0"
    "attention_f32 attention.comp KV_F32"
    "attention_f16 attention.comp KV_F16"
    "kv_store_f32 kv_store.comp KV_F32"
    "kv_store_f16 kv_store.comp KV_F16"
    "rms_norm rms_norm.comp -"
    "binary binary.comp -"
    "rope rope.comp -"
    "raster raster.comp -"
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
for v in "${variants[@]}"; do
    read -r name src define <<<"$v"
    args=(--target-env=vulkan1.0 -O -fshader-stage=compute -I "$dir")
    if [ "$define" != "-" ]; then
        args+=("-D$define")
    fi
    glslc "${args[@]}" -o "$tmp/$name.spv" "$dir/$src"
    if [ "$check" = 1 ]; then
        if ! cmp -s "$tmp/$name.spv" "$dir/$name.spv"; then
            echo "stale: backend-vulkan/shaders/$name.spv (run scripts/vulkan-shaders.sh)" >&2
            status=1
        fi
    else
        cp "$tmp/$name.spv" "$dir/$name.spv"
    fi
done
exit "$status"
