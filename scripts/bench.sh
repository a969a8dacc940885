#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md: a release build, then each
# configuration three times (JSON kept in $OUT), then the median of every
# figure as Markdown tables. Takes about five minutes after the build.
#   scripts/bench.sh            # both configurations
#   OUT=/tmp/runs scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="${OUT:-$target_dir/bench-runs}"
mkdir -p "$out"

cargo build --release --workspace
bench="$target_dir/release/prism-bench"

# KeyValue Get, 1 KB values, open loop at 1000 rps: proxy (export off and 100%
# exported) vs nginx vs pattern vs floor.
open=(kv --paths proxy,proxy-traced,nginx,pattern,floor --rate 1000 --get-ratio 1 --value-size 1024 --keys 10000 --duration 10s --warmup 2s --json)
# The same, saturated: a closed loop of 32 in flight over 4 connections.
closed=(kv --paths proxy,proxy-traced,nginx,pattern,floor --concurrency 32 --connections 4 --get-ratio 1 --value-size 1024 --keys 10000 --duration 10s --warmup 2s --json)

for i in 1 2 3; do
  echo "open loop, run $i (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$bench" "${open[@]}" > "$out/open-$i.json"
done
for i in 1 2 3; do
  echo "closed loop, run $i (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$bench" "${closed[@]}" > "$out/closed-$i.json"
done

for mode in open closed; do
  echo
  echo "## $mode loop: median of 3 runs"
  python3 scripts/bench_median.py "$out/$mode"-{1,2,3}.json
done
