#!/usr/bin/env python3
"""Run a conformance runner over every scenario and compare it with Go.

    check.py --lang NAME -- CMD ARGS...   compare a runner's output with expected.txt
    check.py --verify-go -- CMD ARGS...   fail unless the Go runner still prints expected.txt
    check.py --regen -- CMD ARGS...       rewrite expected.txt from the Go runner

CMD ARGS... is run once with every scenario path appended, in file-name order.
Python 3.9+, standard library only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
EXPECTED = HERE / "expected.txt"

# A runner stuck in a wait must fail the build rather than hang it.
TIMEOUT_SECONDS = 300

SCENARIO_NAME = re.compile(r"^(\d{3})-[a-z0-9]+(?:-[a-z0-9]+)*\.ctx$")
OUTPUT_LINE = re.compile(r"^(\S+:\d+) (.+?) => (.*)$")


class Failure(Exception):
    """Something other than a divergence: report it and exit 2."""


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    cmd = argv[split + 1 :]
    parser = argparse.ArgumentParser(usage=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--lang", metavar="NAME", help="the language whose runner CMD is")
    mode.add_argument("--verify-go", action="store_true")
    mode.add_argument("--regen", action="store_true")
    opts = parser.parse_args(argv[:split])
    if not cmd:
        parser.error("no runner command after --")
    try:
        files = scenario_files()
        output = run(cmd, files)
        if opts.lang:
            return compare(opts.lang, files, output, read_expected())
        check_reference(output, files)
        if opts.regen:
            EXPECTED.write_text(output)
            print(f"wrote {EXPECTED.name}: {observations(output)} observations in {len(files)} scenarios")
            return 0
        if output == EXPECTED.read_text():
            print(f"conformance[go]: {observations(output)} observations in {len(files)} scenarios match {EXPECTED.name}")
            return 0
        compare("go", files, output, read_expected())
        print(
            f"{EXPECTED.name} is not what Go prints. If the scenarios changed on purpose, run:\n"
            f"  python3 {sys.argv[0]} --regen -- {' '.join(cmd)}",
            file=sys.stderr,
        )
        return 1
    except Failure as e:
        print(f"check.py: {e}", file=sys.stderr)
        return 2


def scenario_files() -> list[Path]:
    files = sorted(SCENARIOS.glob("*.ctx"))
    if not files:
        raise Failure(f"no scenarios in {SCENARIOS}")
    numbers = set()
    for f in files:
        m = SCENARIO_NAME.match(f.name)
        if not m:
            raise Failure(f"{f.name}: scenario files are named NNN-slug.ctx")
        if m.group(1) in numbers:
            raise Failure(f"{f.name}: number {m.group(1)} is used twice")
        numbers.add(m.group(1))
        if not f.read_text().startswith("# "):
            raise Failure(f"{f.name}: the first line must be a comment describing the scenario")
    return files


def run(cmd: list[str], files: list[Path]) -> str:
    if shutil.which(cmd[0]) is None:
        if cmd[0] == "go":
            raise Failure("Go is not installed (no `go` on PATH); the reference runner needs Go 1.21 or newer")
        raise Failure(f"command not found: {cmd[0]}")
    try:
        proc = subprocess.run(
            cmd + [str(f) for f in files],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise Failure(f"runner still running after {TIMEOUT_SECONDS}s: {' '.join(cmd)}") from None
    if proc.returncode != 0:
        raise Failure(f"runner exited with status {proc.returncode}:\n{proc.stderr}")
    return proc.stdout


def read_expected() -> dict[str, str]:
    return parse(EXPECTED.read_text(), EXPECTED.name)


def parse(output: str, origin: str) -> dict[str, str]:
    """Map `scenario:line` to the rest of each output line."""
    lines: dict[str, str] = {}
    for text in output.splitlines():
        m = OUTPUT_LINE.match(text)
        if not m:
            raise Failure(f"{origin}: not an output line: {text!r}")
        if m.group(1) in lines:
            raise Failure(f"{origin}: {m.group(1)} printed twice")
        lines[m.group(1)] = text
    return lines


def observations(output: str) -> int:
    return len(output.splitlines())


def check_reference(output: str, files: list[Path]) -> None:
    """Go is the reference, so anything odd in its output is a broken scenario."""
    lines = parse(output, "go runner")
    errors = [text for text in lines.values() if " => error:" in text]
    if errors:
        raise Failure("the Go runner could not perform these steps:\n  " + "\n  ".join(errors))
    seen = {key.rsplit(":", 1)[0] for key in lines}
    silent = [f.stem for f in files if f.stem not in seen]
    if silent:
        raise Failure("scenarios without observations: " + ", ".join(silent))


def compare(lang: str, files: list[Path], output: str, expected: dict[str, str]) -> int:
    got = parse(output, f"{lang} runner")
    sources = {f.stem: f.read_text().splitlines() for f in files}
    differ = missing = extra = 0
    by_scenario: dict[str, list[str]] = {}
    for key in sorted(expected.keys() | got.keys(), key=line_order):
        by_scenario.setdefault(line_order(key)[0], []).append(key)
    for scenario, keys in by_scenario.items():
        stopped = False  # the runner reported an error; it skips the rest of the scenario
        skipped = 0
        for key in keys:
            want, have = expected.get(key), got.get(key)
            if want == have:
                continue
            if have is None:
                missing += 1
                if stopped:
                    skipped += 1
                    continue
            elif want is None:
                extra += 1
            else:
                differ += 1
            stopped = stopped or (have is not None and " => error:" in have)
            print(divergence(key, lang, sources, want, have))
        if skipped:
            print(f"{scenario} [{lang}]: the {skipped} expected lines after the error are missing\n")
    if differ == missing == extra == 0:
        print(f"conformance[{lang}]: {len(expected)} observations in {len(files)} scenarios match Go")
        return 0
    print(
        f"conformance[{lang}]: FAILED: {differ} differ, {missing} missing, {extra} extra "
        f"(of {len(expected)} observations in {len(files)} scenarios)"
    )
    return 1


def line_order(key: str) -> tuple[str, int]:
    scenario, line = key.rsplit(":", 1)
    return scenario, int(line)


def divergence(key: str, lang: str, sources: dict[str, list[str]], want: str | None, have: str | None) -> str:
    scenario, line = line_order(key)
    source = sources.get(scenario, [])
    step = source[line - 1].strip() if 0 < line <= len(source) else "(no such line)"
    return (
        f"{key} [{lang}]\n"
        f"  step:     {step}\n"
        f"  expected: {result(want)}\n"
        f"  got:      {result(have)}\n"
    )


def result(line: str | None) -> str:
    return "(no line)" if line is None else line.split(" => ", 1)[1]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
