"""Turns a result file into the markdown table, the ratio tables, the targets and the chart.

    bench/.venv/bin/python bench/report.py results/FILE.json [--chart docs/benchmarks.png]
"""
import argparse
import json
import sys

ORDER = ["hello", "64k", "post-1m", "stream", "sleep", "json"]
FERRO = ("ferrocorn-sync", "ferrocorn-gthread", "ferrocorn-gevent")


def _cells(result):
    servers = list(result["servers"])
    return sorted(result["cells"], key=lambda c: (ORDER.index(c["workload"]), c["c"],
                                                  servers.index(c["server"])))


def _index(result):
    return {(c["server"], c["workload"], c["c"]): c for c in result["cells"]}


def _fmt(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


def _pct(x):
    return "-" if x is None else f"{x:.0f}%"


def _x(r):
    return "-" if r is None else f"{r:.2f}x"


def _ratio(a, b):
    return a / b if a and b else None


def _errors(cell):
    # wrk counts only finished requests: a server that never completes one shows no errors, and
    # connections it never answers only show through Little's law (rate x mean latency).
    if cell["requests"] == 0:
        return "none completed"
    text = str(cell["errors"])
    served = cell.get("served_conns")
    if served is not None and served < 0.5 * cell["c"]:
        text += f" (~{served:.0f} of {cell['c']} conns served)"
    return text


def table(result):
    notes = {name: s["note"] for name, s in result["servers"].items()}
    lines = ["| workload | c | server | req/s | p50 ms | p99 ms | errors | CPU us/req | PSS MiB "
             "| other load, server / wrk CPU |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in _cells(result):
        name = c["server"] + (f" ({notes[c['server']]})" if notes.get(c["server"]) else "")
        if c["server"].startswith("ferrocorn"):
            name = f"**{name}**"
        lines.append(f"| {c['workload']} | {c['c']} | {name} | {_fmt(c['rps'])} | "
                     f"{_fmt(c['p50_ms'], 2)} | {_fmt(c['p99_ms'], 2)} | {_errors(c)} | "
                     f"{_fmt(c['cpu_us_per_req'])} | {_fmt(c['pss_mib'], 1)} | "
                     f"{_pct(c.get('foreign_cpu_pct'))} / {_pct(c.get('foreign_cpu_wrk_pct'))} |")
    return "\n".join(lines)


def idle_table(result):
    lines = ["| server | processes | idle PSS per worker, MiB | idle PSS of the tree, MiB |",
             "|---|---:|---:|---:|"]
    for name, m in result["idle"].items():
        per = m["worker_pss_kib"]
        lines.append(f"| {name} | {m['processes']} | {_fmt(sum(per) / len(per) / 1024, 1)} | "
                     f"{_fmt(m['tree_pss_kib'] / 1024, 1)} |")
    return "\n".join(lines)


def ratio_table(result, ferro):
    idx = _index(result)
    peers = [s for s in result["servers"] if not s.startswith("ferrocorn")]
    peers = [p for p in peers if any(k[0] == p for k in idx)]
    head = "| workload | c | " + " | ".join(peers) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(peers)]
    keys = sorted({(k[1], k[2]) for k in idx if k[0] == ferro},
                  key=lambda k: (ORDER.index(k[0]), k[1]))
    for workload, c in keys:
        mine = idx[(ferro, workload, c)]["rps"]
        row = [_ratio(mine, idx.get((p, workload, c), {}).get("rps")) for p in peers]
        lines.append(f"| {workload} | {c} | " + " | ".join(_fmt(r, 2) for r in row) + " |")
    cpu = idx.get((ferro, "hello", 50), {}).get("cpu_us_per_req")
    row = [_ratio(cpu, idx.get((p, "hello", 50), {}).get("cpu_us_per_req")) for p in peers]
    lines.append("| CPU/req hello | 50 | " + " | ".join(_fmt(r, 2) for r in row) + " |")
    idle = result["idle"]

    def per_worker(name):
        m = idle.get(name)
        return sum(m["worker_pss_kib"]) / len(m["worker_pss_kib"]) if m else None
    row = [_ratio(per_worker(ferro), per_worker(p)) for p in peers]
    lines.append("| idle PSS/worker | - | " + " | ".join(_fmt(r, 2) for r in row) + " |")
    return "\n".join(lines)


def targets(result):
    """The targets of issue 6, each as (text, value shown, met or None when not measurable)."""
    idx = _index(result)

    def rps(server, workload, c):
        return idx.get((server, workload, c), {}).get("rps")

    out = []

    def ratio_target(text, ferro, peer, workload, c, want):
        r = _ratio(rps(ferro, workload, c), rps(peer, workload, c))
        out.append((text, _x(r), None if r is None else r >= want))

    f = "ferrocorn-sync"
    ratio_target("hello c=50 >= 1.3x Granian", f, "granian", "hello", 50, 1.3)
    ratio_target("hello c=50 >= 1.0x bjoern", f, "bjoern", "hello", 50, 1.0)
    ratio_target("hello c=50 >= 10x Gunicorn sync", f, "gunicorn-sync", "hello", 50, 10)
    ratio_target("hello c=50 within 2x of nginx (>= 0.5x)", f, "nginx", "hello", 50, 0.5)
    for workload in ("64k", "stream"):
        for c in (1, 50):
            for peer in ("granian", "uwsgi"):
                ratio_target(f"{workload} c={c} >= {peer}", f, peer, workload, c, 1.0)
    for c in (1, 50):
        ratio_target(f"post-1m c={c} >= uwsgi", f, "uwsgi", "post-1m", c, 1.0)
    post = idx.get((f, "post-1m", 50))
    idle = result["idle"].get(f)
    if post and idle:
        grown = post["pss_mib"] - idle["tree_pss_kib"] / 1024
        out.append(("post-1m c=50 memory bounded (tree PSS grows < 64 MiB over idle)",
                    f"+{grown:.1f} MiB", grown < 64))
    s = rps("ferrocorn-gthread", "sleep", 50)
    ideal = 50 / 0.010
    out.append(("sleep c=50, gthread 32 threads >= 0.9x ideal (5,000 req/s)",
                f"{_fmt(s)} req/s = {_fmt(s and s / ideal, 2)}x", None if s is None else s >= 0.9 * ideal))
    fg, gg = rps("ferrocorn-gevent", "sleep", 50), rps("gunicorn-gevent", "sleep", 50)
    r = _ratio(fg, gg)
    out.append(("sleep c=50, ferrocorn gevent >= 1.5x Gunicorn gevent", _x(r), None if r is None else r >= 1.5))
    cpu = idx.get((f, "hello", 50), {}).get("cpu_us_per_req")
    gcpu = idx.get(("granian", "hello", 50), {}).get("cpu_us_per_req")
    r = _ratio(cpu, gcpu)
    out.append(("CPU/request, hello c=50 <= 0.8x Granian's", _x(r),
                None if r is None else r <= 0.8))

    def per_worker(name):
        m = result["idle"].get(name)
        return sum(m["worker_pss_kib"]) / len(m["worker_pss_kib"]) / 1024 if m else None
    a, b = per_worker(f), per_worker("gunicorn-sync")
    out.append(("idle worker PSS <= Gunicorn sync's", f"{_fmt(a, 1)} vs {_fmt(b, 1)} MiB",
                None if a is None or b is None else a <= b))
    return out


def targets_md(result):
    mark = {True: "met", False: "**not met**", None: "not measured"}
    lines = ["| target | measured | |", "|---|---|---|"]
    for text, value, met in targets(result):
        lines.append(f"| {text} | {value} | {mark[met]} |")
    return "\n".join(lines)


def markdown(result):
    m, s = result["machine"], result["settings"]
    head = (f"Run {result['started']} UTC: {m['cpus']} CPUs, Linux {m['kernel']}, Python "
            f"{m['python']}; {s['duration_s']:g} s per cell after {s['warmup_s']:g} s of warm-up; "
            f"server on CPU {s['pin_server']}, wrk on CPU {s['pin_wrk']}; load average "
            f"{' '.join(m['loadavg_start'])} at the start, {' '.join(m.get('loadavg_end', []))} "
            f"at the end.")
    parts = [head, "", table(result), "", "Idle memory (after start-up and the one readiness request):", "",
             idle_table(result)]
    for ferro in FERRO:
        if any(c["server"] == ferro for c in result["cells"]):
            parts += ["", f"{ferro}, req/s as a ratio to each peer (> 1: ferrocorn is faster; "
                          "CPU and PSS rows: < 1 is better):", "", ratio_table(result, ferro)]
    parts += ["", "Targets of issue 6:", "", targets_md(result)]
    if result["skipped"]:
        parts += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in result["skipped"].items())]
    return "\n".join(parts)


def chart(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    idx = _index(result)
    keys = sorted({(c["workload"], c["c"]) for c in result["cells"]},
                  key=lambda k: (ORDER.index(k[0]), k[1]))
    servers = list(result["servers"])
    cols = 4
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (workload, c) in zip(axes.flat, keys):
        names = [s for s in servers if (s, workload, c) in idx]
        values = [idx[(s, workload, c)]["rps"] for s in names]
        colors = ["#c0392b" if s.startswith("ferrocorn") else
                  "#7f8c8d" if s == "nginx" else "#5d8aa8" for s in names]
        bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
        # Hatched: most connections were never answered (Little's law), so the rate is not
        # what c clients would see.
        for bar, s in zip(bars, names[::-1]):
            served = idx[(s, workload, c)].get("served_conns")
            if served is not None and served < 0.5 * c:
                bar.set_hatch("///")
                bar.set_edgecolor("white")
        ax.set_title(f"{workload}, c={c}", fontsize=10)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0"))
        ax.set_xlabel("req/s", fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"ferrocorn (red) and peers, requests per second, run {result['started']} UTC; "
                 "hatched: most connections starved")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result")
    p.add_argument("--chart", help="write the PNG chart here")
    args = p.parse_args()
    with open(args.result) as f:
        result = json.load(f)
    print(markdown(result))
    if args.chart:
        chart(result, args.chart)
        print(f"\nchart: {args.chart}", file=sys.stderr)


if __name__ == "__main__":
    main()
