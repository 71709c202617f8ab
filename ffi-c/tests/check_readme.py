#!/usr/bin/env python3
"""The README's C example must be examples/c/example.c, verbatim, so that the
example the tests build and run is the one people read.

    check_readme.py EXAMPLE.c README.md...

Each README given that has a `## C` section must contain the example as its
first ```c block; READMEs without one (or missing files) are skipped, but at
least one must be checked.
"""

import re
import sys
from pathlib import Path


def main(example: str, readmes: list[str]) -> int:
    want = Path(example).read_text()
    checked = 0
    for name in readmes:
        path = Path(name)
        if not path.exists():
            continue
        text = path.read_text()
        section = re.search(r"^## C\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
        if not section:
            continue
        block = re.search(r"^```c\n(.*?)^```", section.group(1), re.M | re.S)
        if not block or block.group(1) != want:
            print(f"{name}: the first ```c block of '## C' is not {example} verbatim", file=sys.stderr)
            return 1
        checked += 1
    if not checked:
        print(f"no README with a '## C' section among {readmes}", file=sys.stderr)
        return 1
    print(f"check_readme: {example} is the C example of {checked} README file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
