#!/usr/bin/env bash
# Reproduces the "Clusters" figures in BENCHMARKS.md: one Redis vs a Redis
# Cluster (three masters, three replicas) for KeyValue, one nats-server vs a
# three-node NATS cluster for PubSub, each configuration $RUNS times (default
# 3), consecutive runs, the load average noted before and after each; JSON
# kept in $OUT, then the median of every figure side by side. Takes about
# fifteen minutes after the build with RUNS=3 (a cluster starts per run).
#   scripts/bench-cluster.sh
#   RUNS=1 OUT=/tmp/runs scripts/bench-cluster.sh
# Needs redis-server, redis-cli and nats-server: `source scripts/tools.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="${OUT:-$target_dir/bench-cluster-runs}"
runs="${RUNS:-3}"
mkdir -p "$out"

cargo build --release -p prism-bench -p prism-proxy -p prism-redis -p prism-nats -p prism-memstore
bench="$target_dir/release/prism-bench"

common=(--duration 10s --warmup 2s --json)
# KeyValue, default mix (Get 90% / Set 10%), 1 KB values, 10 000 keys.
kv=(kv --paths proxy,pattern,redis --value-size 1024 --keys 10000 "${common[@]}")
kv_open=(--rate 1000)
kv_closed=(--concurrency 32 --connections 4)
# PubSub, 1 KB messages, one subscriber, core NATS.
ps=(pubsub --paths proxy,pattern,nats --payload-size 1024 "${common[@]}")
ps_unary=(--rate 1000)
ps_batch=(--batch 100 --concurrency 4)

measure() { # name, then prism-bench's arguments
  local name="$1"
  shift
  for i in $(seq 1 "$runs"); do
    local before
    before="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$name, run $i (load before: $before)" >&2
    "$bench" "$@" > "$out/$name-$i.json"
    echo "$before -> $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/$name-$i.load"
  done
}

# Single server and cluster one after the other, for each load.
measure kv-open-redis "${kv[@]}" "${kv_open[@]}" --backend redis
measure kv-open-cluster "${kv[@]}" "${kv_open[@]}" --backend redis-cluster
measure kv-closed-redis "${kv[@]}" "${kv_closed[@]}" --backend redis
measure kv-closed-cluster "${kv[@]}" "${kv_closed[@]}" --backend redis-cluster
measure ps-unary-nats "${ps[@]}" "${ps_unary[@]}" --backend nats
measure ps-unary-cluster "${ps[@]}" "${ps_unary[@]}" --backend nats-cluster
measure ps-batch-nats "${ps[@]}" "${ps_batch[@]}" --backend nats
measure ps-batch-cluster "${ps[@]}" "${ps_batch[@]}" --backend nats-cluster

for load in kv-open kv-closed ps-unary ps-batch; do
  echo
  echo "## $load: median of $runs run(s)"
  python3 scripts/bench_cluster_median.py "$out/$load" "$runs"
done
