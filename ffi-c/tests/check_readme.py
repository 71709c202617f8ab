#!/usr/bin/env python3
"""The README's C examples must be the example programs, verbatim, so that
the examples the tests build and run are the ones people read.

    check_readme.py EXAMPLE.c... README.md... [docs/c.md]

Each README given that has a `## C` section must contain the examples as its
first ```c blocks, in the order given; READMEs without one (or missing
files) are skipped, but at least one must be checked. Any other Markdown
file (the C guide) is checked whole, and must exist.
"""

import re
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    examples = [a for a in args if a.endswith(".c")]
    readmes = [a for a in args if not a.endswith(".c")]
    wants = [Path(e).read_text() for e in examples]
    checked = 0
    for name in readmes:
        path = Path(name)
        if not path.exists():
            if path.name != "README.md":
                print(f"{name}: missing", file=sys.stderr)
                return 1
            continue
        text = path.read_text()
        if path.name == "README.md":
            section = re.search(r"^## C\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
            if not section:
                continue
            text = section.group(1)
        blocks = re.findall(r"^```c\n(.*?)^```", text, re.M | re.S)
        for i, (example, want) in enumerate(zip(examples, wants)):
            if i >= len(blocks) or blocks[i] != want:
                print(f"{name}: ```c block {i + 1} (of '## C' in a README) is not {example} verbatim", file=sys.stderr)
                return 1
        checked += 1
    if not checked or not examples:
        print(f"no README with a '## C' section among {readmes}, or no example", file=sys.stderr)
        return 1
    print(f"check_readme: {', '.join(examples)} are the C examples of {checked} README file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
