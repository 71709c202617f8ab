#!/usr/bin/env python3
"""Loads the machine the same way for every language's lateness rows: CPU
hogs (two busy processes per core) and a parallel build (one compiler loop
per core, each compiling a C test file at -O2 over and over: fork, exec,
disk and memory traffic as in a real build). Bounded: everything stops when
the command does, when this process dies, or after --max-seconds.

    bench/load.py [--hogs N] [--jobs N] [--max-seconds S] -- COMMAND...

runs COMMAND under the load and exits with its status. bench/run.py uses
`Load` directly. The load shares the caller's session (and so its
scheduler autogroup), as a build started by the same `make` would.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child before exec: killed if the parent dies first.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class Load:
    """`with Load():` keeps the machine busy for the block."""

    def __init__(self, hogs: int | None = None, jobs: int | None = None, max_seconds: float = 600) -> None:
        cores = os.cpu_count() or 2
        self.hogs = 2 * cores if hogs is None else hogs
        self.jobs = cores if jobs is None else jobs
        self.max_seconds = max_seconds
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp: str | None = None

    def __enter__(self) -> Load:
        until = time.time() + self.max_seconds
        hog = f"import time\nwhile time.time() < {until}:\n    for _ in range(100000): pass\n"
        # Each in a process group of its own (but the caller's session), so
        # that stopping a compiler loop stops the compiler it is running.
        for _ in range(self.hogs):
            self.procs.append(
                subprocess.Popen([sys.executable, "-c", hog], preexec_fn=_die_with_parent, process_group=0)
            )
        cc = shutil.which(os.environ.get("CC", "cc"))
        if cc is not None and self.jobs > 0:
            self.tmp = tempfile.mkdtemp(prefix="polyctx-load-")
            source = ROOT / "ffi-c/tests/test_threads.c"
            includes = f"-I{ROOT / 'include'} -I{ROOT / 'ffi-c/tests'}"
            for j in range(self.jobs):
                loop = (
                    f'while [ "$(date +%s)" -lt {int(until)} ]; do '
                    f"{cc} -O2 -w {includes} -c {source} -o {self.tmp}/{j}.o || sleep 0.1; done"
                )
                self.procs.append(
                    subprocess.Popen(
                        ["sh", "-c", loop],
                        preexec_fn=_die_with_parent,
                        process_group=0,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        time.sleep(1)  # let the load ramp up
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait()
        self.procs = []
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def describe(self) -> str:
        return f"{self.hogs} CPU hogs + {self.jobs} parallel cc -O2 loops"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hogs", type=int, help="busy processes (default: 2 per core)")
    parser.add_argument("--jobs", type=int, help="compiler loops (default: 1 per core)")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    with Load(args.hogs, args.jobs, args.max_seconds) as load:
        print(f"load: {load.describe()}", file=sys.stderr)
        return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
