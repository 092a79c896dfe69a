#!/usr/bin/env python3
"""Turn a pv_bench JSON run (--benchmark_format=json / --benchmark_out) into the matvec table:
time, weight GB/s, and the ratio to the memcpy and memory-read baselines measured in the same
run at the same thread count. With --benchmark_repetitions the medians are used.

usage: kernels/cpu/matmul_bench_report.py RUN.json [--markdown]
"""
import json
import re
import sys


def main():
    path = sys.argv[1]
    with open(path) as f:
        run = json.load(f)
    rows = {}
    have_aggregates = any(b.get("run_type") == "aggregate" for b in run["benchmarks"])
    for b in run["benchmarks"]:
        if have_aggregates and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        rows[name] = b
    base = {}
    for name, b in rows.items():
        m = re.match(r"(Memcpy|MemRead)/(\d+)/", name)
        if m:
            key = "copy_GBps" if m.group(1) == "Memcpy" else "read_GBps"
            base[(m.group(1), int(m.group(2)))] = b[key] / 1e9
    print(f"# {run['context'].get('host_name', '')} {run['context'].get('num_cpus')} CPUs, "
          f"load avg {run['context'].get('load_avg')}, repetitions: "
          f"{'median' if have_aggregates else 'single'}")
    for (kind, th), v in sorted(base.items()):
        print(f"# {kind} {th} thread(s): {v:.2f} GB/s")
    print("# GB/s per CPU-s: weight bytes / process CPU time (all threads): per-core efficiency")
    print("| benchmark | threads | ms | weight GB/s | / memcpy | / memread | GB/s per CPU-s |")
    print("|---|---|---|---|---|---|---|")
    for name, b in rows.items():
        m = re.match(r"(Matvec\w*|Matmul\d+)/(\w+)/(in\d+_out\d+)/threads:(\d+)", name)
        if not m:
            continue
        th = int(m.group(4))
        gbps = b["weight_GBps"] / 1e9
        unit = {"ms": 1.0, "us": 1e-3, "ns": 1e-6}[b["time_unit"]]
        ms = b["real_time"] * unit
        cpu_ms = b["cpu_time"] * unit
        nbytes = gbps * ms / 1e3  # GB per iteration
        cp = base.get(("Memcpy", th))
        rd = base.get(("MemRead", th))
        extra = f" ({b['tokens_per_s']:.0f} tok/s)" if "tokens_per_s" in b else ""
        print(f"| {m.group(1)} {m.group(2)} {m.group(3)}{extra} | {th} | {ms:.3f} | {gbps:.2f} | "
              f"{gbps / cp if cp else float('nan'):.2f} | {gbps / rd if rd else float('nan'):.2f} | "
              f"{nbytes / (cpu_ms / 1e3):.1f} |")


if __name__ == "__main__":
    main()
