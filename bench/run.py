#!/usr/bin/env python3
"""Runs every benchmark program, interleaved, and prints one side-by-side table.

    bench/run.py [--quick] [--rounds N] [--only NAME,...]

Each program prints JSON lines {"area", "op", "impl", "unit", "value"}. The
programs run one after another, round after round (rust, go, c, python, node,
rust, go, ...), so that a noisy stretch of the machine hits every one of them;
each value reported is the median over rounds of the program's own median.
The table is printed and written to bench/results.md. Timings are never
asserted anywhere: these machines have 2 noisy cores, so read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"

# name -> command (paths relative to the repository root). `make bench`
# builds each of them first.
PROGRAMS = {
    "rust": [str(ROOT / "target/release/polyctx-bench")],
    "go": [str(BUILD / "bench/go-bench")],
    "c": [str(BUILD / "c/bench/bench")],
    "python": [str(BUILD / "venv-py/bin/python"), str(ROOT / "py/bench/bench.py"), "--json"],
    "node": ["node", "--expose-gc", str(ROOT / "node/bench/bench.mjs"), "--json"],
}

# Which implementation is polyctx in each area, and how to compare the others.
POLYCTX = {"rust": "polyctx", "c": "polyctx", "python": "polyctx", "node": "polyctx", "memory": "polyctx", "scaling": "polyctx", "lateness": "polyctx"}


def run_program(name: str, command: list[str], quick: bool) -> list[dict]:
    args = command + (["--quick"] if quick and name != "go" else []) + (["-quick"] if quick and name == "go" else [])
    started = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    rows = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            row["program"] = name
            rows.append(row)
    print(f"  {name}: {len(rows)} results in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return rows


def fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{max(value, 0):.0f} B"
    if unit == "count":
        return f"{value:.0f}"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f} ms"
    if value >= 1_000:
        return f"{value / 1_000:.2f} µs"
    return f"{value:.1f} ns" if value >= 10 else f"{value:.2f} ns"


def with_p99(value: float, p99: float | None, unit: str) -> str:
    return fmt(value, unit) if p99 is None else f"{fmt(value, unit)} (p99 {fmt(p99, unit)})"


def build_table(results: dict, p99s: dict) -> list[str]:
    """One row per (area, op, peer): polyctx's value, the peer's, and the ratio."""
    lines = [
        "| area | operation | polyctx | peer | peer's | ratio (peer / polyctx) |",
        "|---|---|---|---|---|---|",
    ]
    by_op = defaultdict(dict)
    for (area, op, impl, unit), value in results.items():
        by_op[(area, op, unit)][impl] = value
    for (area, op, unit), impls in by_op.items():
        ours = impls.get("polyctx")
        peers = {k: v for k, v in impls.items() if k != "polyctx"}
        # The C ABI's peer is the Rust core, measured by the rust program.
        if area == "c":
            rust = results.get(("rust", op, "polyctx", unit))
            if rust is not None:
                peers["rust core (overhead)"] = rust
        if ours is None:
            for peer, value in peers.items():
                lines.append(f"| {area} | {op} | — | {peer} | {fmt(value, unit)} | — |")
            continue
        ours_text = with_p99(ours, p99s.get((area, op, "polyctx", unit)), unit)
        if not peers:
            lines.append(f"| {area} | {op} | {ours_text} | — | — | — |")
        for peer, value in peers.items():
            if peer == "rust core (overhead)":
                ratio = f"{ours - value:+.1f} ns over Rust"
            elif unit == "bytes" and abs(ours) < 1:
                ratio = "polyctx keeps nothing"
            else:
                ratio = f"{value / ours:.2f}x" if ours else "—"
            peer_text = with_p99(value, p99s.get((area, op, peer, unit)), unit)
            lines.append(f"| {area} | {op} | {ours_text} | {peer} | {peer_text} | {ratio} |")
    return lines


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repetitions")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every program (default 3)")
    parser.add_argument("--only", help="comma-separated program names")
    args = parser.parse_args()

    names = args.only.split(",") if args.only else list(PROGRAMS)
    missing = [n for n in names if not Path(PROGRAMS[n][0]).exists() and PROGRAMS[n][0] != "node"]
    if missing:
        sys.exit(f"bench: not built: {', '.join(missing)}; run `make bench`, which builds every program first")

    samples = defaultdict(list)
    p99_samples = defaultdict(list)
    load_before = os.getloadavg()
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        for name in names:
            for row in run_program(name, PROGRAMS[name], args.quick):
                key = (row["area"], row["op"], row["impl"], row["unit"])
                samples[key].append(row["value"])
                if "p99" in row:
                    p99_samples[key].append(row["p99"])
    results = {key: statistics.median(values) for key, values in samples.items()}
    # The worst round's p99: noise should show, not be averaged away.
    p99s = {key: max(values) for key, values in p99_samples.items()}
    load_after = os.getloadavg()

    header = [
        "# polyctx benchmarks",
        "",
        f"Generated by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs, {args.rounds} interleaved rounds"
        + (" (quick)" if args.quick else "")
        + f"; load average {load_before[0]:.2f} before and {load_after[0]:.2f} after"
        + ". Medians (and p99 where a program reports it); lower is better; a ratio above 1 means"
        + " polyctx is faster (or smaller).",
        "",
    ]
    table = build_table(results, p99s)
    text = "\n".join(header + table) + "\n"
    print(text)
    (ROOT / "bench/results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
