#!/usr/bin/env python3
"""Reads PREFIX.jsonl (bench/growth.sh: one line a point) and prints the growth benchmark's
table and targets; writes PREFIX.md and PREFIX.png (gnuplot: a panel a factor, cost per message
against the factor). PG1 is the machine's one-connection PostgreSQL ceiling (msg/s), named in
the report so that its figures can be put beside another machine's."""
import json
import sys

import gnuplot

prefix, pg1 = sys.argv[1], float(sys.argv[2])
points = [json.loads(line) for line in open(f"{prefix}.jsonl") if line.strip()]
standard = next(p for p in points if p["factor"] == "devices" and p["value"] == 1000)


def cpu_us(p, key=None):
    """CPU microseconds a message: one process's (key) or the three together."""
    keys = [key] if key else ["worker_cpu_s", "nats_cpu_s", "postgres_cpu_s"]
    return 1e6 * sum(p[k] for k in keys) / p["messages"]


def per_row(p, key=None):
    return cpu_us(p, key) * p["messages"] / max(p["history_rows"], 1)


def series(factor):
    """A factor's points, the standard one first as its first value."""
    first = {"devices": 1000, "metrics": 6, "assets": 2, "history": 0}[factor]
    rest = [p for p in points if p["factor"] == factor and p["value"] != first]
    return [dict(standard, factor=factor, value=first)] + sorted(rest, key=lambda p: p["value"])


def fmt_value(factor, v):
    return f"{v / 1e6:g} M" if factor == "history" and v >= 1e6 else f"{v:,}"


table = []  # factor, value, rate, cold, warm, rows/msg, cpu/msg, worker, nats, pg, cpu/row, WAL, FPI, rss
for factor in ("devices", "metrics", "assets", "history"):
    for p in series(factor):
        table.append((factor, fmt_value(factor, p["value"]), f"{p['rate']:.0f}",
                      f"{p['cold_rate'] or 0:.0f}", f"{p['warm_rate'] or 0:.0f}",
                      f"{p['history_rows'] / p['messages']:.1f}", f"{cpu_us(p):.1f}",
                      f"{cpu_us(p, 'worker_cpu_s'):.1f}", f"{cpu_us(p, 'nats_cpu_s'):.1f}",
                      f"{cpu_us(p, 'postgres_cpu_s'):.1f}", f"{per_row(p):.2f}",
                      f"{p['wal_bytes'] / p['messages'] / 1024:.2f}",
                      f"{p['wal_fpi'] / p['messages']:.2f}", f"{p['peak_rss_mb']:.0f}"))
HEAD = ("factor", "value", "drain msg/s", "first half", "second half", "rows/msg",
        "CPU us/msg", "worker", "nats", "PostgreSQL", "CPU us/row", "WAL KiB/msg",
        "full pages/msg", "peak RSS MB")

# The targets, each against the standard point of the same run.
targets = []
dev = series("devices")
largest = dev[-1]
if largest["value"] > 1000:
    n = fmt_value("devices", largest["value"])
    warm = largest["warm_rate"] / standard["rate"]
    cold = largest["cold_rate"] / standard["rate"]
    targets += [
        (f"warm drain at {n} devices / at 1,000", f"{warm:.2f}", ">= 0.8", warm >= 0.8),
        (f"cold first pass at {n} devices / at 1,000", f"{cold:.2f}", ">= 0.5", cold >= 0.5),
        (f"peak RSS at {n} devices (MB)", f"{largest['peak_rss_mb']:.0f}", "<= 400",
         largest["peak_rss_mb"] <= 400),
    ]
hist = series("history")
if len(hist) > 1:
    r = per_row(hist[-1]) / per_row(hist[0])
    targets.append((f"CPU per history row at {fmt_value('history', hist[-1]['value'])} rows / empty",
                    f"{r:.2f}", "<= 1.15", r <= 1.15))
met = series("metrics")
if len(met) >= 3:
    # Cost per metric: the CPU a message costs more for each history row more (a slope between
    # neighbouring points). Roughly constant: the slope from 60 to 600 within 25% of 6 to 60.
    def slope(a, b):
        return (cpu_us(b) - cpu_us(a)) / ((b["history_rows"] / b["messages"]) -
                                         (a["history_rows"] / a["messages"]))
    s1, s2 = slope(met[0], met[1]), slope(met[1], met[2])
    targets += [
        (f"CPU per metric, {met[0]['value']} to {met[1]['value']} metrics (us)", f"{s1:.2f}", "", None),
        (f"CPU per metric, {met[1]['value']} to {met[2]['value']} metrics (us)", f"{s2:.2f}",
         "within 25%", abs(s2 / s1 - 1) <= 0.25),
    ]
redelivered = sum(p["redelivered"] for p in points)
targets.append(("messages redelivered, all points", f"{redelivered}", "0", redelivered == 0))


def verdict(ok):
    return "" if ok is None else ("ok" if ok else "MISSED")


widths = [max(len(str(r[i])) for r in table + [HEAD]) for i in range(len(HEAD))]
print()
print("  ".join(h.rjust(w) for h, w in zip(HEAD, widths)))
for row in table:
    print("  ".join(str(c).rjust(w) for c, w in zip(row, widths)))
print()
tw = max(len(t[0]) for t in targets)
for name, value, target, ok in targets:
    print(f"{name:<{tw}}  {value:>8}  {target:>10}  {verdict(ok)}")
machine = f"this machine: PostgreSQL alone COPYs {pg1:,.0f} msg/s of the standard rows on one connection"
print(machine)

with open(f"{prefix}.md", "w") as f:
    f.write(f"# Growth benchmark {prefix.split('growth-')[-1]}\n\n{machine[0].upper()}{machine[1:]}. "
            "Each point drains its backlog with one worker from a quiet machine; CPU is the worker's, "
            "nats-server's and PostgreSQL's over the drain, per message. The first and second half "
            "of the devices' backlogs are each device once: cold caches (Redis flushed, a fresh "
            "worker), then warm.\n\n")
    f.write("| " + " | ".join(HEAD) + " |\n|" + "---|" * len(HEAD) + "\n")
    for row in table:
        f.write("| " + " | ".join(str(c) for c in row) + " |\n")
    f.write("\n| target | value | bound | result |\n|---|---|---|---|\n")
    for name, value, target, ok in targets:
        f.write(f"| {name} | {value} | {target} | {verdict(ok)} |\n")
    f.write(f"\n![cost per message against each factor]({prefix.split('/')[-1]}.png)\n")

panels = []
# The metrics panel is log-log: a cost that grows in proportion to the metrics is a straight line.
for factor, title, logx in (("devices", "devices", True), ("metrics", "metrics per message", True),
                            ("assets", "assets per device", False),
                            ("history", "history rows already written", False)):
    path = f"{prefix}-{factor}.dat"
    with open(path, "w") as d:
        for p in series(factor):
            d.write(f"{p['value']} {cpu_us(p, 'worker_cpu_s'):.2f} {cpu_us(p, 'nats_cpu_s'):.2f} "
                    f"{cpu_us(p, 'postgres_cpu_s'):.2f} {cpu_us(p):.2f}\n")
    panels.append(f"""
set title 'CPU per message against {title}'
set xlabel '{title}'
{'set logscale x' if logx else 'unset logscale x'}
{'set logscale y; set yrange [1:*]' if factor == 'metrics' else 'unset logscale y; set yrange [0:*]'}
plot '{path}' using 1:5 with linespoints title 'all', '' using 1:2 with linespoints title 'worker', \\
     '' using 1:3 with linespoints title 'nats-server', '' using 1:4 with linespoints title 'PostgreSQL'
""")
plot = f"""
set terminal pngcairo size 2400,500
set output '{prefix}.png'
set multiplot layout 1,4
set ylabel 'CPU us per message'
set yrange [0:*]
{''.join(panels)}
unset multiplot
"""
gnuplot.render(plot, prefix)
