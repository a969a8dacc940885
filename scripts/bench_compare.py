#!/usr/bin/env python3
"""Before/after medians of the same configurations (used by scripts/bench.sh
with BEFORE=<rev>): `bench_compare.py DIR RUNS NAME…` reads DIR/before-NAME-i.json
and DIR/NAME-i.json and prints, per configuration, the proxy's own figures
and its comparisons with each baseline, before and after."""

import json
import statistics
import sys

folder, runs, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def load(prefix, name):
    return [json.load(open(f"{folder}/{prefix}{name}-{i}.json")) for i in range(1, runs + 1)]


def time(us):
    return f"{us:.0f} µs" if abs(us) < 1000 else f"{us / 1000:.2f} ms"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def figures(reports):
    """(label, kind, median) for the proxy paths and their comparisons."""
    found = []
    first = reports[0]
    for path in first["paths"]:
        name = path["path"]
        if not name.startswith("proxy"):
            continue
        same = [next(p for p in r["paths"] if p["path"] == name) for r in reports]
        if path.get("pubsub"):
            found.append((f"{name} publish→deliver p50", "us", med(p["pubsub"]["deliver_latency_us"]["p50_us"] for p in same)))
            found.append((f"{name} publish→deliver p99", "us", med(p["pubsub"]["deliver_latency_us"]["p99_us"] for p in same)))
            found.append((f"{name} delivered/s", "rate", med(p["pubsub"]["delivered_per_s"] for p in same)))
            found.append((f"{name} lost", "count", med(p["pubsub"]["lost"] for p in same)))
        else:
            found.append((f"{name} p50", "us", med(p["latency_us"]["p50_us"] for p in same)))
            found.append((f"{name} p99", "us", med(p["latency_us"]["p99_us"] for p in same)))
            found.append((f"{name} req/s", "rate", med(p["throughput_rps"] for p in same)))
        cpu = [next((c["cpu_percent"] for c in p["processes"] if c["role"] == "proxy"), None) for p in same]
        found.append((f"{name} proxy CPU (% of a core)", "pct", med(cpu)))
    for c in first["comparisons"]:
        if not c["path"].startswith("proxy"):
            continue
        key = (c["path"], c["baseline"])
        same = [next(x for x in r["comparisons"] if (x["path"], x["baseline"]) == key) for r in reports]
        label = f"{c['path']} vs {c['baseline']}"
        found.append((f"{label}: added p50", "signed", med(x["added_p50_us"] for x in same)))
        found.append((f"{label}: added p99", "signed", med(x["added_p99_us"] for x in same)))
        ratio = "delivered_ratio" if c.get("delivered_ratio") is not None else "throughput_ratio"
        found.append((f"{label}: {'delivered' if ratio == 'delivered_ratio' else 'throughput'} ratio", "ratio",
                      med(x.get(ratio) for x in same)))
        found.append((f"{label}: server CPU per call", "ratio", med(x.get("server_cpu_ratio") for x in same)))
    return found


def show(kind, value):
    if value is None:
        return "-"
    if kind == "us":
        return time(value)
    if kind == "signed":
        return ("+" if value >= 0 else "-") + time(abs(value))
    if kind == "rate":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{value:.0f}%"
    if kind == "ratio":
        return f"{value:.2f}×"
    return f"{value:.0f}"


print("| configuration | figure | before | after |")
print("|---|---|---:|---:|")
for name in names:
    before = dict((label, (kind, v)) for label, kind, v in figures(load("before-", name)))
    for label, kind, value in figures(load("", name)):
        old = before.get(label, (kind, None))[1]
        print(f"| {name} | {label} | {show(kind, old)} | {show(kind, value)} |")
