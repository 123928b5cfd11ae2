#!/usr/bin/env python3
"""Samples, every half second until killed, the CPU (in cores) of each part of the benchmark:
the worker, nats-server, PostgreSQL's backends and helpers, its autovacuum workers apart, the
benchmark's own load generator, and everything else; and the share of the time every task that
wanted to run was stalled on I/O (the kernel's pressure stall information, "full"). Writes CSV
to OUT; the latency tail of the steady phase is read against it (bench/report.py plots both).

usage: cpu_sampler.py OUT WORKER_PID"""
import os
import signal
import sys
import time

out_path, worker_pid = sys.argv[1], sys.argv[2]
hz = os.sysconf("SC_CLK_TCK")
groups = ("worker", "nats", "postgres", "autovacuum", "bench", "other")


def io_stalled_us():
    """Microseconds, since boot, during which all non-idle tasks were stalled on I/O."""
    try:
        with open("/proc/pressure/io") as f:
            for line in f:
                if line.startswith("full"):
                    return int(line.rsplit("total=", 1)[1])
    except OSError:
        pass
    return 0


def group_of(pid, comm):
    if pid == worker_pid:
        return "worker"
    if comm == "nats-server":
        return "nats"
    if comm == "atw-bench":
        return "bench"
    if comm == "postgres":
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return "autovacuum" if b"autovacuum worker" in f.read() else "postgres"
        except OSError:
            return "postgres"
    return "other"


def ticks():
    """Per group, the CPU ticks of the processes alive now (threads included)."""
    total = dict.fromkeys(groups, 0)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        total[group_of(pid, comm)] += int(fields[11]) + int(fields[12])
    return total


stopped = False


def stop(*_):
    global stopped
    stopped = True


signal.signal(signal.SIGTERM, stop)
with open(out_path, "w") as out:
    out.write("seconds," + ",".join(groups) + ",io_stalled\n")
    start = time.monotonic()
    prev, prev_t, prev_io = ticks(), start, io_stalled_us()
    while not stopped:
        time.sleep(0.5)
        now, t, io = ticks(), time.monotonic(), io_stalled_us()
        # A process that ended between samples takes its ticks with it: never below zero.
        cores = [max(now[g] - prev[g], 0) / hz / (t - prev_t) for g in groups]
        stalled = (io - prev_io) / 1e6 / (t - prev_t)
        out.write(f"{t - start:.1f}," + ",".join(f"{c:.2f}" for c in cores + [stalled]) + "\n")
        out.flush()
        prev, prev_t, prev_io = now, t, io
