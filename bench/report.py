#!/usr/bin/env python3
"""Reads the pieces bench/run.sh wrote under PREFIX and prints the benchmark's table; writes
PREFIX.md and PREFIX.png (gnuplot). Processing latency comes from the worker's own histogram
(asset_worker_processing_duration_seconds), as the difference between the scrapes before and
after each steady phase, interpolated within buckets as Prometheus' histogram_quantile does.
The steady phases: `steady` at the fixed rate RATE, `half` at half the drain rate measured in
the same run (its latency targets hold at a share of the machine's capacity)."""
import json
import re
import sys

import gnuplot

prefix, backlog, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def load(name):
    with open(f"{prefix}-{name}.json") as f:
        return json.loads(f.read().strip().splitlines()[-1])


def buckets(phase, when):
    out = {}
    with open(f"{prefix}-metrics-{phase}-{when}.txt") as f:
        for line in f:
            m = re.match(r'asset_worker_processing_duration_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
            if m:
                out[float("inf") if m[1] == "+Inf" else float(m[1])] = int(m[2])
    return out


def histogram_quantile(q, cumulative):
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    if total == 0:
        return float("nan")
    rank = q * total
    prev_bound, prev_count = 0.0, 0
    for b in bounds:
        c = cumulative[b]
        if c >= rank:
            if b == float("inf"):
                return prev_bound
            return prev_bound + (b - prev_bound) * (rank - prev_count) / max(c - prev_count, 1)
        prev_bound, prev_count = b, c
    return bounds[-1]


def processing(phase):
    """p50, p95, p99 (ms) and the upper bound of the slowest bucket hit (ms) of a phase."""
    before, after = buckets(phase, "before"), buckets(phase, "after")
    window = {b: after[b] - before.get(b, 0) for b in after}
    bounds = sorted(window)
    slowest = float("nan")
    for i, b in enumerate(bounds):
        if window[b] > (window[bounds[i - 1]] if i else 0):
            slowest = b
    p = {q: histogram_quantile(q, window) * 1000 for q in (0.5, 0.95, 0.99)}
    return p, slowest * 1000

js, pg, pg1, drain = load("ceiling-js"), load("ceiling-pg"), load("ceiling-pg1"), load("drain")
# The one-connection ceiling, measured before the drain and again after it (bench/run.sh); the
# target compares the drain with their mean.
try:
    pg1_after = load("ceiling-pg1-after")
except FileNotFoundError:
    pg1_after = pg1
pg1_rate = (pg1["rate"] + pg1_after["rate"]) / 2
dproc, check = load("drain-proc"), load("check")


def phase_rows(phase, label, proc_p99_target, e2e_p99_target):
    """The rows of one steady phase: CPU, memory, latency against its targets (None: none)."""
    st, pr = load(phase), load(f"{phase}-proc")
    p, slowest = processing(phase)

    def target(value, bound):
        return ("", None) if bound is None else (f"<= {bound}", value <= bound)

    return [
        (f"CPU share at {label}: worker / nats-server / PostgreSQL (cores)",
         "/".join(f"{float(pr.get(k, 'nan')) / float(st['seconds']):.2f}" for k in ("cpu_seconds", "nats_cpu_seconds", "postgres_cpu_seconds")), "", None),
        (f"peak RSS (MB, {label})", f"{pr['peak_rss_mb']}", "<= 100", float(pr["peak_rss_mb"]) <= 100),
        (f"processing p50 at {label} (ms)", f"{p[0.5]:.1f}", "", None),
        (f"processing p95 at {label} (ms)", f"{p[0.95]:.1f}", "", None),
        (f"processing p99 at {label} (ms)", f"{p[0.99]:.1f}", *target(p[0.99], proc_p99_target)),
        (f"processing max at {label} (ms)", f"<= {slowest:.0f}", "", None),
        (f"end-to-end p50 at {label} (ms)", f"{st['e2e_p50_ms']:.1f}", "", None),
        (f"end-to-end p95 at {label} (ms)", f"{st['e2e_p95_ms']:.1f}", "", None),
        (f"end-to-end p99 at {label} (ms)", f"{st['e2e_p99_ms']:.1f}", *target(st["e2e_p99_ms"], e2e_p99_target)),
        (f"end-to-end max at {label} (ms)", f"{st['e2e_max_ms']:.1f}", "", None),
        (f"events received / expected ({label})", f"{st['events']}/{st['expected_events']}", "all", st["events"] >= st["expected_events"]),
    ]


half_rate = load("half-proc")["rate"]

rows = [
    ("drain rate (msg/s)", f"{drain['rate']:.0f}", ">= 10000", drain["rate"] >= 10000),
    # Information: PostgreSQL alone on as many connections as the worker has writers uses both
    # cores, which the worker shares with nats-server; the target is held against one COPY
    # stream (docs/benchmarks.md).
    (f"drain / PostgreSQL ceiling, {pg['connections']} connections", f"{drain['rate'] / pg['rate']:.2f}", "", None),
    ("drain / PostgreSQL ceiling, 1 connection (mean of before and after)", f"{drain['rate'] / pg1_rate:.2f}", ">= 0.6", drain["rate"] / pg1_rate >= 0.6),
    ("drain / JetStream ceiling", f"{drain['rate'] / js['rate']:.2f}", "", None),
    (f"PostgreSQL ceiling, {pg['connections']} connections (msg/s)", f"{pg['rate']:.0f}", "", None),
    ("PostgreSQL ceiling, 1 connection, before / after the drain (msg/s)", f"{pg1['rate']:.0f}/{pg1_after['rate']:.0f}", "", None),
    ("JetStream ceiling (msg/s)", f"{js['rate']:.0f}", "", None),
    ("worker CPU seconds (drain)", f"{dproc['cpu_seconds']}", "", None),
    ("worker CPU per message (us)", f"{1e6 * float(dproc['cpu_seconds']) / backlog:.1f}", "", None),
    ("nats-server CPU per message, drain (us)", f"{1e6 * float(dproc.get('nats_cpu_seconds', 'nan')) / backlog:.1f}", "", None),
    ("PostgreSQL CPU per message, drain (us)", f"{1e6 * float(dproc.get('postgres_cpu_seconds', 'nan')) / backlog:.1f}", "", None),
    ("peak RSS (MB, drain)", f"{dproc['peak_rss_mb']}", "<= 100", float(dproc["peak_rss_mb"]) <= 100),
    *phase_rows("steady", f"{rate}/s", 100, None),
    *phase_rows("half", f"50% of capacity, {half_rate}/s", 100, 250),
    ("redelivered during drain", f"{drain['redelivered']}", "0", drain["redelivered"] == 0),
    ("duplicate history rows", f"{check['duplicate_rows']}", "0", check["duplicate_rows"] == 0),
]


def verdict(ok):
    return "" if ok is None else ("ok" if ok else "MISSED")


width = max(len(r[0]) for r in rows)
print()
print(f"{'figure':<{width}}  {'value':>12}  {'target':>8}  result")
for name, value, target, ok in rows:
    print(f"{name:<{width}}  {value:>12}  {target:>8}  {verdict(ok)}")
NOTE = ("The ratio's target is held against one COPY stream: PostgreSQL alone on the worker's "
        "number of connections uses both cores, which the worker shares with nats-server.")
print(NOTE)

with open(f"{prefix}.md", "w") as f:
    f.write(f"# Benchmark {prefix.split('bench-')[-1]}\n\n")
    f.write(f"Backlog {backlog} messages; steady loads {rate} msg/s and half the drain rate ({half_rate} msg/s); 1,000 devices, 4 organizations, "
            "2 assets each (7 history rows, 2 score updates, 2 events per message).\n\n")
    f.write("| figure | value | target | result |\n|---|---|---|---|\n")
    for name, value, target, ok in rows:
        f.write(f"| {name} | {value} | {target} | {verdict(ok)} |\n")
    f.write(f"\n{NOTE}\n")
    f.write(f"\n![throughput and latency]({prefix.split('/')[-1]}.png)\n")

plot = f"""
set terminal pngcairo size 2400,500
set output '{prefix}.png'
set datafile separator ','
set multiplot layout 1,4
set title 'drain: acked messages/s'
set xlabel 'seconds'
set ylabel 'messages/s'
plot '{prefix}-drain.csv' using 1:3 every ::1 with lines title 'rate'
set title 'steady {rate}/s: end-to-end latency'
set ylabel 'ms'
plot '{prefix}-steady.csv' using 1:3 every ::1 with lines title 'p50', '' using 1:4 every ::1 with lines title 'p99'
set title '50% of capacity, {half_rate}/s: end-to-end latency'
plot '{prefix}-half.csv' using 1:3 every ::1 with lines title 'p50', '' using 1:4 every ::1 with lines title 'p99'
set title '50% of capacity: CPU by process (2 cores), time stalled on I/O'
set ylabel 'cores; share of time'
set yrange [0:2]
set key autotitle columnhead
plot for [c=2:8] '{prefix}-cpu-half.csv' using 1:c with lines
unset multiplot
"""
gnuplot.render(plot, prefix)
