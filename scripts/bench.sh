#!/usr/bin/env bash
# Reproduces the tables in BENCHMARKS.md: a release build, then each
# configuration RUNS times (JSON kept in $OUT), then the median of every
# figure as Markdown tables.
#
#   scripts/bench.sh                       # every configuration, 3 runs each
#   ONLY="kv-open kv-closed" scripts/bench.sh
#   BEFORE=<git rev> scripts/bench.sh      # the same runs on <rev> too, and a
#                                          # before/after table of the medians
#   RUNS=3 DURATION=10s WARMUP=2s OUT=/tmp/runs scripts/bench.sh
#   BEFORE_SRC=… BEFORE_TARGET=…           # where <rev> is checked out and built
#
# With BEFORE, <rev> is checked out in a worktree under the target folder and
# built there, and each run of a configuration on <rev> is followed at once by
# the same run on this tree, so both see the machine in the same state.
# Redis, NATS and nginx come from `scripts/tools.sh` (sourced here); a path
# whose server is missing is skipped and the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="${OUT:-$target_dir/bench-runs}"
runs="${RUNS:-3}"
duration="${DURATION:-10s}"
warmup="${WARMUP:-2s}"
mkdir -p "$out"
# shellcheck source=tools.sh
. scripts/tools.sh >/dev/null

window=(--duration "$duration" --warmup "$warmup" --json)
kv=(kv --get-ratio 1 --value-size 1024 --keys 10000)
declare -A configs=(
  # KeyValue Get on MemStore, 1 KB, open loop at 1000 rps; and saturated.
  [kv-open]="${kv[*]} --paths proxy,proxy-traced,nginx,pattern,floor --rate 1000"
  [kv-closed]="${kv[*]} --paths proxy,proxy-traced,nginx,pattern,floor --concurrency 32 --connections 4"
  # KeyValue on Redis, the default Get 90% / Set 10% mix.
  [kv-redis-open]="kv --backend redis --value-size 1024 --keys 10000 --paths proxy,nginx,pattern,redis,floor --rate 1000"
  [kv-redis-closed]="kv --backend redis --value-size 1024 --keys 10000 --paths proxy,redis --concurrency 1000 --connections 4"
  # PubSub, 1 KB payloads, one subscriber: unary Publish at 1000 msg/s, and
  # PublishBatch of 100 saturated (4 batches in flight).
  [pubsub-open]="pubsub --rate 1000"
  [pubsub-closed]="pubsub --batch 100 --concurrency 4"
  [pubsub-nats-open]="pubsub --backend nats --rate 1000"
  [pubsub-nats-closed]="pubsub --backend nats --batch 100 --concurrency 4"
)
order=(kv-open kv-closed kv-redis-open kv-redis-closed pubsub-open pubsub-closed pubsub-nats-open pubsub-nats-closed)
only=(${ONLY:-${order[*]}})

cargo build --release --workspace
after="$target_dir/release/prism-bench"

before=""
if [[ -n "${BEFORE:-}" ]]; then
  src="${BEFORE_SRC:-$target_dir/bench-before/src}"
  before_target="${BEFORE_TARGET:-$target_dir/bench-before/target}"
  rev="$(git rev-parse "$BEFORE")"
  if [[ "$(git -C "$src" rev-parse HEAD 2>/dev/null)" != "$rev" ]]; then
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
    git worktree add --detach "$src" "$rev"
  fi
  (cd "$src" && CARGO_TARGET_DIR="$before_target" cargo build --release --workspace)
  before="$before_target/release/prism-bench"
fi

for name in "${only[@]}"; do
  args="${configs[$name]:?unknown configuration $name (one of: ${order[*]})}"
  for i in $(seq 1 "$runs"); do
    if [[ -n "$before" ]]; then
      echo "$name, run $i, before (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
      # shellcheck disable=SC2086
      "$before" $args "${window[@]}" > "$out/before-$name-$i.json"
    fi
    echo "$name, run $i (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    # shellcheck disable=SC2086
    "$after" $args "${window[@]}" > "$out/$name-$i.json"
  done
done

for name in "${only[@]}"; do
  echo
  echo "## $name: median of $runs runs (${configs[$name]})"
  python3 scripts/bench_median.py $(seq -f "$out/$name-%g.json" 1 "$runs")
done
if [[ -n "$before" ]]; then
  echo
  echo "## before ($BEFORE) and after: medians of $runs runs each, interleaved"
  python3 scripts/bench_compare.py "$out" "$runs" "${only[@]}"
fi
