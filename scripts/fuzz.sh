#!/usr/bin/env bash
# Fuzzing: builds the cargo-fuzz targets of fuzz/ and runs each for FUZZ_SECONDS (default 60)
# from the committed corpora and seeds. Fails on any crash, timeout (a hang: 10 s for one
# input), leak or out-of-memory (one allocation or the whole process past 2 GiB); libFuzzer
# leaves the reproducer in fuzz/artifacts/<target>/. Needs the nightly toolchain.
#
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh              # longer
#   FUZZ_TARGETS="gguf_reader" bash scripts/fuzz.sh    # some targets only
#
# New inputs the runs find go to a scratch folder, not into the committed corpora; to keep
# them, minimize with `cargo +nightly fuzz cmin <target>` and commit fuzz/corpus/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-gguf_reader model_load tokenizer_encode tokenizer_decode sampling region_fusion cpu_kernels}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

target_dir=${CARGO_TARGET_DIR:-fuzz/target}
scratch_root=$target_dir/fuzz-scratch
cargo +nightly fuzz build -O

failed=()
for t in $targets; do
    # Seeds: what the runs kept, the hand-made files, and for the GGUF reader the bundled
    # models (all read-only: libFuzzer writes new inputs into the first folder only).
    seeds=()
    for dir in "fuzz/corpus/$t" "fuzz/seeds/$t"; do
        [ -d "$dir" ] && seeds+=("$dir")
    done
    case $t in
        gguf_reader) seeds+=(fuzz/seeds/gguf models) ;;
        # Without the bundled models: a mutated 1 MB model loads at a third of the speed.
        model_load) seeds+=(fuzz/seeds/gguf) ;;
    esac
    scratch=$scratch_root/$t
    rm -rf "$scratch"
    mkdir -p "$scratch" "fuzz/artifacts/$t"
    echo "== $t: ${seconds}s from ${seeds[*]}"
    if cargo +nightly fuzz run -O "$t" "$scratch" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch_root/$t.log" 2>&1; then
        # The last status line: executions, coverage (cov: edges, ft: features), corpus.
        grep -E '^#[0-9]+' "$scratch_root/$t.log" | tail -n 1
        grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$scratch_root/$t.log"
    else
        tail -n 40 "$scratch_root/$t.log"
        echo "== $t FAILED: reproducer in fuzz/artifacts/$t/"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]}"
    exit 1
fi
