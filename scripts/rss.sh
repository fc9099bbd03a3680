#!/usr/bin/env bash
# Runs a command and prints the most anonymous and file-backed memory it held (sampled from
# /proc every 50 ms) and its peak RSS (VmHWM), so Tern and llama.cpp can be compared on the
# same model file:
#
#   bash scripts/rss.sh target/release/tern bench -m MODEL.gguf -p 0 -n 32 -t 2
#   bash scripts/rss.sh llama-bench -m MODEL.gguf -p 0 -n 32 -t 2
#
# The command's own output goes to stderr; the summary is the last line on stdout.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

"$@" >&2 &
pid=$!
max_anon=0 max_file=0 hwm=0
while kill -0 "$pid" 2>/dev/null; do
    if status=$(cat "/proc/$pid/status" 2>/dev/null); then
        anon=$(awk '/^RssAnon:/ {print $2}' <<<"$status")
        file=$(awk '/^RssFile:/ {print $2}' <<<"$status")
        peak=$(awk '/^VmHWM:/ {print $2}' <<<"$status")
        [ -n "$anon" ] && [ "$anon" -gt "$max_anon" ] && max_anon=$anon
        [ -n "$file" ] && [ "$file" -gt "$max_file" ] && max_file=$file
        [ -n "$peak" ] && [ "$peak" -gt "$hwm" ] && hwm=$peak
    fi
    sleep 0.05
done
wait "$pid"
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }
echo "max RssAnon $(mib "$max_anon"), max RssFile $(mib "$max_file"), peak RSS $(mib "$hwm")"
