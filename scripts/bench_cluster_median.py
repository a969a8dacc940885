#!/usr/bin/env python3
"""Median of each figure over the runs of one load in scripts/bench-cluster.sh,
the single server beside the cluster, as Markdown tables.

Usage: bench_cluster_median.py PREFIX RUNS, reading PREFIX-{redis,nats,cluster}-N.json
and the matching .load files (load average before -> after each run)."""

import json
import os
import statistics
import sys

prefix, runs = sys.argv[1], int(sys.argv[2])


def load(kind):
    reports, loads = [], []
    for i in range(1, runs + 1):
        path = f"{prefix}-{kind}-{i}.json"
        if not os.path.exists(path):
            return None
        reports.append(json.load(open(path)))
        with open(f"{prefix}-{kind}-{i}.load") as f:
            loads.append(f.read().strip())
    return reports, loads


def time(us):
    return f"{us:.0f} µs" if abs(us) < 1000 else f"{us / 1000:.2f} ms"


def med(values):
    return statistics.median(list(values))


def cpu(paths):
    """Median CPU per role (summed over a cluster's nodes), % of one core."""
    roles = {}
    for path in paths:
        per_run = {}
        for p in path["processes"]:
            if p["cpu_percent"] is not None:
                per_run[p["role"]] = per_run.get(p["role"], 0) + p["cpu_percent"]
        for role, value in per_run.items():
            roles.setdefault(role, []).append(value)
    return ", ".join(f"{role} {med(v):.0f}" for role, v in roles.items())


groups = [(kind, load(kind)) for kind in ("redis", "nats", "cluster")]
groups = [(kind, g) for kind, g in groups if g is not None]
pubsub = groups[0][1][0][0]["target"] == "pubsub"

if pubsub:
    print("| backend | path | deliver p50 | deliver p99 | publish p50 | published/s | delivered/s | lost | errors | CPU (% of a core) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
else:
    print("| backend | path | p50 | p90 | p99 | p99.9 | throughput (req/s) | errors | CPU (% of a core) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
for kind, (reports, _) in groups:
    backend = reports[0]["settings"]["backend"]
    for i, first in enumerate(reports[0]["paths"]):
        same = [r["paths"][i] for r in reports]
        errors = sum(p["error_count"] for p in same)
        if pubsub:
            ps = [p["pubsub"] for p in same]
            print(f"| {backend} | {first['path']} "
                  f"| {time(med(s['deliver_latency_us']['p50_us'] for s in ps))} "
                  f"| {time(med(s['deliver_latency_us']['p99_us'] for s in ps))} "
                  f"| {time(med(p['latency_us']['p50_us'] for p in same))} "
                  f"| {med(s['published_per_s'] for s in ps):,.0f} "
                  f"| {med(s['delivered_per_s'] for s in ps):,.0f} "
                  f"| {med(s['lost'] for s in ps):,.0f} | {errors} | {cpu(same)} |")
        else:
            q = {k: time(med(p["latency_us"][k] for p in same))
                 for k in ("p50_us", "p90_us", "p99_us", "p999_us")}
            print(f"| {backend} | {first['path']} | {q['p50_us']} | {q['p90_us']} | {q['p99_us']} "
                  f"| {q['p999_us']} | {med(p['throughput_rps'] for p in same):,.0f} | {errors} | {cpu(same)} |")

print()
for kind, (reports, loads) in groups:
    print(f"- {reports[0]['settings']['backend']}: load average (1/5/15 min) before -> after each run: "
          + "; ".join(loads))
