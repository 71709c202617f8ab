#!/usr/bin/env python3
"""Runs every benchmark program, interleaved, and prints one side-by-side table.

    bench/run.py [--quick] [--rounds N] [--only NAME,...] [--no-lateness]

Each program prints JSON lines {"area", "op", "impl", "unit", "value"}, with
"p99" where it has one. The programs run one after another, round after
round (rust, go, c, python, node, rust, go, ...), so that a noisy stretch of
the machine hits every one of them; each value reported is the median over
rounds of the program's own median, and each p99 the worst round's.

Then lateness: every program again with `--lateness idle`, and with
`--lateness loaded` under bench/load.py's load (CPU hogs and a parallel
build, the same for every language); those rows ("area": "lateness",
"load", "value" = p50, "p99", "max") make a table of their own.

The tables are printed and written to bench/results.md. Timings are never
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import Load  # noqa: E402

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

# No program takes this long in a full run; one that does is stuck.
PROGRAM_TIMEOUT = 1800

# Which implementation is polyctx in each area, and how to compare the others.
POLYCTX = {"rust": "polyctx", "c": "polyctx", "python": "polyctx", "node": "polyctx", "memory": "polyctx", "scaling": "polyctx", "lateness": "polyctx"}


def run_program(name: str, command: list[str], quick: bool, extra: list[str] | None = None) -> list[dict]:
    # Go's flag package takes --name as well as -name.
    args = command + (["--quick"] if quick else []) + (extra or [])
    started = time.monotonic()
    try:
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=PROGRAM_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"bench: {name} ran for more than {PROGRAM_TIMEOUT} s; stopped")
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
        if ours is None:
            for peer, value in peers.items():
                lines.append(f"| {area} | {op} | — | {peer} | {fmt(value, unit)} | — |")
            continue
        ours_text = with_p99(ours, p99s.get((area, op, "polyctx", unit)), unit)
        if not peers:
            lines.append(f"| {area} | {op} | {ours_text} | — | — | — |")
        for peer, value in peers.items():
            if area == "c" and peer == "rust core":
                # The C ABI and the core it calls, interleaved in one process.
                ratio = f"{ours - value:+.1f} ns over Rust"
            elif unit == "bytes" and abs(ours) < 1:
                ratio = "polyctx keeps nothing"
            else:
                ratio = f"{value / ours:.2f}x" if ours else "—"
            peer_text = with_p99(value, p99s.get((area, op, peer, unit)), unit)
            lines.append(f"| {area} | {op} | {ours_text} | {peer} | {peer_text} | {ratio} |")
    return lines


def lateness_table(rows: list[dict]) -> list[str]:
    """One row per (waiting code, implementation): p50/p99/max idle and loaded."""
    by = defaultdict(dict)
    for row in rows:
        by[(row["op"], row["impl"])][row["load"]] = row
    lines = [
        "| waiting code | implementation | idle p50 | idle p99 | idle max | loaded p50 | loaded p99 | loaded max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (op, impl), loads in by.items():
        cells = []
        for load in ("idle", "loaded"):
            r = loads.get(load)
            cells += ["—"] * 3 if r is None else [fmt(r["value"], "ns"), fmt(r["p99"], "ns"), fmt(r["max"], "ns")]
        lines.append(f"| {op} | {impl} | " + " | ".join(cells) + " |")
    return lines


def merge_lateness(rows: list[dict]) -> list[dict]:
    """Several runs of one (op, impl, load): median p50, worst p99 and max."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["op"], row["impl"], row["load"])].append(row)
    merged = []
    for (op, impl, load), rs in groups.items():
        merged.append(
            {
                "op": op,
                "impl": impl,
                "load": load,
                "value": statistics.median(r["value"] for r in rs),
                "p99": max(r["p99"] for r in rs),
                "max": max(r["max"] for r in rs),
            }
        )
    return merged


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
    parser.add_argument("--no-lateness", action="store_true", help="skip the lateness runs")
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
                if row["area"] == "lateness":
                    continue
                key = (row["area"], row["op"], row["impl"], row["unit"])
                samples[key].append(row["value"])
                if "p99" in row:
                    p99_samples[key].append(row["p99"])
    results = {key: statistics.median(values) for key, values in samples.items()}
    # The worst round's p99: noise should show, not be averaged away.
    p99s = {key: max(values) for key, values in p99_samples.items()}
    lateness = []
    load = Load()
    if not args.no_lateness:
        print("lateness, idle and under load", file=sys.stderr)
        for name in names:
            lateness += run_program(name, PROGRAMS[name], args.quick, ["--lateness", "idle"])
        with load:
            print(f"  load: {load.describe()}", file=sys.stderr)
            for name in names:
                lateness += run_program(name, PROGRAMS[name], args.quick, ["--lateness", "loaded"])
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
    if lateness:
        table += [
            "",
            "## Deadline lateness",
            "",
            "From a context's deadline to the code waiting on it running again, over deadlines 2-4 ms"
            " ahead (300 per row in a full run; p99 by nearest rank, max the latest). Idle, then loaded with"
            f" {load.describe()} (bench/load.py), the same load for every language. Beside each"
            " polyctx wait, the floor its runtime sets: its own timer on the same thread or loop.",
            "",
        ] + lateness_table(merge_lateness([r for r in lateness if r.get("area") == "lateness"]))
    text = "\n".join(header + table) + "\n"
    print(text)
    (ROOT / "bench/results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
