"""The README's Python examples and the demo run here, so they never rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# The blocks of the README's "## Python" section, up to the next "## " heading.
SECTION = re.search(r"^## Python\n(.*?)(?=^## )", README.read_text(), re.S | re.M).group(1)
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example(code):
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_fanout_demo():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "fanout.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.count(" answered ok ") == 2
    assert out.count(" stopped: context deadline exceeded (request budget of 150ms spent)") == 3
    assert out.rstrip().endswith("tasks still running: 0")


def test_polyglot_demo():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "polyglot.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "python fast call answered ok" in out
    assert "C backend        stopped by the Python deadline: request budget of 150ms spent" in out
    assert "python slow call stopped: request budget of 150ms spent" in out
    assert out.rstrip().endswith("still running: 0")
