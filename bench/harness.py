"""Drives the benchmark matrix: every server x workload x concurrency, one wrk run per cell.

Started by bench/run inside bench/.venv; `bench/run --help` lists the options. For each server
and workload it starts the server afresh (so memory and caches of one workload don't leak into
the next), waits until it answers, measures idle memory, then for each concurrency runs a wrk
warm-up and a measured run, reading the server's CPU time before and after and its PSS at the end.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import procstat
import report
from servers import SERVERS, Running

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_DIR = os.path.join(HERE, "wrk")
RESULTS = os.path.join(HERE, "results")


@dataclass
class Workload:
    name: str
    module: str
    path: str
    concurrency: tuple
    script: str = "get.lua"
    static: bool = False      # nginx can serve it as a file


WORKLOADS = [
    Workload("hello", "hello", "/", (1, 50), static=True),
    Workload("64k", "body64k", "/", (1, 50), static=True),
    Workload("post-1m", "echo", "/", (1, 50), script="post.lua"),
    Workload("stream", "stream", "/", (1, 50)),
    Workload("sleep", "sleep", "/", (1, 50, 500)),
    Workload("json", "render_json", "/", (1, 50)),
]


def parse_args():
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 6)),
                   help="seconds per measured cell (default 6, or $BENCH_DURATION)")
    p.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 1)),
                   help="seconds of unmeasured load before each cell (default 1)")
    p.add_argument("--smoke", action="store_true", help="1 s cells after 1 s of warm-up")
    p.add_argument("--servers", default=os.environ.get("BENCH_SERVERS", ""),
                   help="comma-separated server names (default: all); "
                        + ", ".join(s.name for s in SERVERS))
    p.add_argument("--workloads", default=os.environ.get("BENCH_WORKLOADS", ""),
                   help="comma-separated workloads (default: all); "
                        + ", ".join(w.name for w in WORKLOADS))
    p.add_argument("--concurrency", default="", help="only these concurrencies, e.g. 50")
    p.add_argument("--no-pin", action="store_true",
                   help="don't pin the server to CPU 0 and wrk to CPU 1")
    p.add_argument("--out", default="", help="result file (default results/YYYYmmdd-HHMMSS.json)")
    p.add_argument("--skip-file", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.smoke:
        args.duration, args.warmup = 1.0, 1.0
    return args


def pick(items, wanted, what):
    if not wanted:
        return list(items)
    names = wanted.split(",")
    unknown = set(names) - {i.name for i in items}
    if unknown:
        sys.exit(f"bench/run: unknown {what}: {', '.join(sorted(unknown))}")
    return [i for i in items if i.name in names]


def wrk(port, workload, conns, seconds, pin):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "5s", "-s", workload.script, f"http://127.0.0.1:{port}{workload.path}"]
    if pin:
        argv = ["taskset", "-c", pin] + argv
    out = subprocess.run(argv, cwd=WRK_DIR, capture_output=True, text=True,
                         timeout=seconds + 30)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"wrk printed no report: {out.stdout[-500:]} {out.stderr[-500:]}")


def _children_cpu():
    """CPU seconds of the harness's finished children (the wrk runs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure_cell(run, workload, conns, args, pins):
    wrk(run.port, workload, conns, args.warmup, pins[1])
    pids = procstat.tree(run.pid)
    cpu0 = procstat.cpu_seconds(pids)
    core0 = procstat.cpu_busy(pins[0]) if pins[0] else 0
    wrk_core0 = procstat.cpu_busy(pins[1]) if pins[1] else 0
    wrk_cpu0 = _children_cpu()
    w = wrk(run.port, workload, conns, args.duration, pins[1])
    wrk_cpu1 = _children_cpu()
    wrk_core1 = procstat.cpu_busy(pins[1]) if pins[1] else 0
    cpu1 = procstat.cpu_seconds(procstat.tree(run.pid))
    core1 = procstat.cpu_busy(pins[0]) if pins[0] else 0
    mem = procstat.memory(run.pid)
    seconds = w["duration_us"] / 1e6
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    return {
        "rps": w["requests"] / seconds if seconds else 0.0,
        "requests": w["requests"],
        "seconds": seconds,
        "p50_ms": w["p50_us"] / 1000, "p90_ms": w["p90_us"] / 1000,
        "p99_ms": w["p99_us"] / 1000, "max_ms": w["max_us"] / 1000,
        "errors": errors,
        "served_conns": w["requests"] / seconds * w["mean_us"] / 1e6 if seconds else 0.0,
        "error_kinds": {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]},
        "mib_per_s": w["bytes"] / seconds / 2**20 if seconds else 0.0,
        "cpu_s": cpu1 - cpu0,
        "cpu_us_per_req": (cpu1 - cpu0) / w["requests"] * 1e6 if w["requests"] else None,
        "pss_mib": mem["tree_pss_kib"] / 1024,
        "processes": mem["processes"],
        # How much of the server's core went to other processes during the cell (colleagues'
        # compilers on a shared machine): the noise indicator for this row.
        "foreign_cpu_pct": (max(0.0, (core1 - core0) / procstat.CLK_TCK - (cpu1 - cpu0))
                            / seconds * 100 if pins[0] and seconds else None),
        # The same for wrk's core: a load generator that loses its core sends fewer requests.
        "foreign_cpu_wrk_pct": (max(0.0, (wrk_core1 - wrk_core0) / procstat.CLK_TCK
                                    - (wrk_cpu1 - wrk_cpu0)) / seconds * 100
                                if pins[1] and seconds else None),
        "loadavg_1m": float(open("/proc/loadavg").read().split()[0]),
    }


def save(result, path):
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)


def main():
    args = parse_args()
    skipped = set()
    if args.skip_file and os.path.exists(args.skip_file):
        skipped = set(open(args.skip_file).read().split())
    servers = pick(SERVERS, args.servers, "servers")
    workloads = pick(WORKLOADS, args.workloads, "workloads")
    only_c = {int(c) for c in args.concurrency.split(",") if c}
    pins = (None, None) if args.no_pin or os.cpu_count() < 2 else ("0", "1")

    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(RESULTS, f"{stamp}.json")
    log_path = os.path.join(RESULTS, f"{stamp}-servers.log")
    result = {
        "started": stamp,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version(),
                    "loadavg_start": open("/proc/loadavg").read().split()[:3]},
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup,
                     "pin_server": pins[0], "pin_wrk": pins[1], "wrk": "-t1 --timeout 5s"},
        "servers": {s.name: {"note": s.note} for s in servers},
        "skipped": {},
        "idle": {},
        "cells": [],
    }
    t_start = time.monotonic()
    for server in servers:
        if server.package in skipped:
            result["skipped"][server.name] = "did not install"
            print(f"-- {server.name}: skipped (did not install)", flush=True)
    # Workload by workload, every server in turn: the figures compared with each other are
    # taken minutes apart at most, so a change in background load moves them together.
    for workload in workloads:
        for server in servers:
            if server.package in skipped or (server.static and not workload.static):
                continue
            try:
                run = Running(server, workload.module, pins[0], log_path)
            except RuntimeError as e:
                result["skipped"].setdefault(server.name, str(e))
                print(f"-- {server.name} {workload.name}: {e}", flush=True)
                continue
            try:
                time.sleep(0.5)
                if server.name not in result["idle"]:
                    result["idle"][server.name] = procstat.memory(run.pid)
                for conns in workload.concurrency:
                    if only_c and conns not in only_c:
                        continue
                    try:
                        cell = measure_cell(run, workload, conns, args, pins)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        print(f"-- {server.name} {workload.name} c={conns}: {e}", flush=True)
                        continue
                    cell.update(server=server.name, workload=workload.name, c=conns)
                    result["cells"].append(cell)
                    print(f"{server.name:18} {workload.name:8} c={conns:<4} "
                          f"{cell['rps']:9.0f} req/s  p50 {cell['p50_ms']:7.2f} ms  "
                          f"p99 {cell['p99_ms']:7.2f} ms  err {cell['errors']:<5} "
                          f"cpu {cell['cpu_us_per_req'] or 0:6.0f} us/req  "
                          f"pss {cell['pss_mib']:6.1f} MiB  "
                          f"other {cell['foreign_cpu_pct'] or 0:3.0f}% / "
                          f"{cell['foreign_cpu_wrk_pct'] or 0:3.0f}%", flush=True)
            finally:
                run.stop()
            save(result, out)  # after every server, so an interrupted run keeps what it measured
    result["elapsed_s"] = round(time.monotonic() - t_start, 1)
    result["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    save(result, out)
    chart = os.path.splitext(out)[0] + ".png"
    report.chart(result, chart)
    print(f"\nresults: {os.path.relpath(out)}, chart: {os.path.relpath(chart)} "
          f"({result['elapsed_s']:.0f} s)\n")
    print(report.markdown(result))


if __name__ == "__main__":
    main()
