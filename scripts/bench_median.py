#!/usr/bin/env python3
"""Median of each figure over several `prism-bench --json` reports of the same
configuration, printed as Markdown tables (used by scripts/bench.sh)."""

import json
import statistics
import sys

runs = [json.load(open(path)) for path in sys.argv[1:]]
median = statistics.median


def time(us):
    return f"{us:.0f} µs" if abs(us) < 1000 else f"{us / 1000:.2f} ms"


def signed(us):
    return ("+" if us >= 0 else "-") + time(abs(us))


def mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f} MiB"


def med(values):
    values = list(values)
    return None if any(v is None for v in values) else median(values)


print("| path | p50 | p90 | p99 | p99.9 | max | throughput (req/s) | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for i, first in enumerate(runs[0]["paths"]):
    same = [run["paths"][i] for run in runs]
    q = {k: time(med(p["latency_us"][k] for p in same))
         for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")}
    print(f"| {first['path']} | {q['p50_us']} | {q['p90_us']} | {q['p99_us']} | {q['p999_us']} "
          f"| {q['max_us']} | {med(p['throughput_rps'] for p in same):.0f} "
          f"| {sum(p['error_count'] for p in same)} |")

print()
print("| path | process | CPU (% of one core) | idle RSS | peak RSS | end RSS |")
print("|---|---|---:|---:|---:|---:|")
for i, first in enumerate(runs[0]["paths"]):
    for j, process in enumerate(first["processes"]):
        same = [run["paths"][i]["processes"][j] for run in runs]
        cpu = med(p["cpu_percent"] for p in same)
        print(f"| {first['path']} | {process['role']} | {'-' if cpu is None else f'{cpu:.0f}%'} "
              f"| {mib(med(p['idle_rss_kb'] for p in same))} | {mib(med(p['peak_rss_kb'] for p in same))} "
              f"| {mib(med(p['end_rss_kb'] for p in same))} |")

print()
print("| comparison | added p50 | added p99 | throughput ratio | server CPU per call |")
print("|---|---:|---:|---:|---:|")
for i, first in enumerate(runs[0]["comparisons"]):
    same = [run["comparisons"][i] for run in runs]
    ratio = med(c["throughput_ratio"] for c in same)
    cpu = med(c.get("server_cpu_ratio") for c in same)
    print(f"| {first['path']} vs {first['baseline']} | {signed(med(c['added_p50_us'] for c in same))} "
          f"| {signed(med(c['added_p99_us'] for c in same))} | {'-' if ratio is None else f'{ratio:.2f}×'} "
          f"| {'-' if cpu is None else f'{cpu:.2f}×'} |")

if any(p.get("pubsub") for p in runs[0]["paths"]):
    print()
    print("| path | publish→deliver p50 | p90 | p99 | p99.9 | published msg/s | delivered msg/s | lost | dropped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, first in enumerate(runs[0]["paths"]):
        same = [run["paths"][i]["pubsub"] for run in runs]
        q = {k: time(med(p["deliver_latency_us"][k] for p in same))
             for k in ("p50_us", "p90_us", "p99_us", "p999_us")}
        print(f"| {first['path']} | {q['p50_us']} | {q['p90_us']} | {q['p99_us']} | {q['p999_us']} "
              f"| {med(p['published_per_s'] for p in same):,.0f} | {med(p['delivered_per_s'] for p in same):,.0f} "
              f"| {med(p['lost'] for p in same):.0f} | {med(p['dropped_before'] for p in same):.0f} |")
