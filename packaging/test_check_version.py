"""check_version.py must pass on the tree and fail, naming the place, when
any one place disagrees with the workspace's version."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "packaging" / "check_version.py"


def copy_tree(dest: Path) -> None:
    """The files check_version.py reads, at their places under dest."""
    workspace = (ROOT / "Cargo.toml").read_text()
    members = re.findall(r'"([^"]+)"', workspace.split("members", 1)[1].split("]")[0])
    files = ["Cargo.toml", "Cargo.lock", "py/pyproject.toml", "node/package.json", "node/package-lock.json"]
    files += [f"{m}/Cargo.toml" for m in members]
    files += [str(p.relative_to(ROOT)) for p in (ROOT / "node/npm").glob("*/package.json")]
    files += ["node/native.js", "include/ctx.h", "CHANGELOG.md"]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / f, dest / f)


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), "--root", str(root)], capture_output=True, text=True)


class CheckVersion(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="check-version-"))
        self.addCleanup(shutil.rmtree, self.tmp)
        copy_tree(self.tmp)
        version = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
        assert version
        self.version = version.group(1)

    def test_the_tree_agrees(self) -> None:
        ok = run(self.tmp)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn(self.version, ok.stdout)

    def edit(self, path: str, old: str, new: str, count: int = 1) -> None:
        f = self.tmp / path
        text = f.read_text()
        self.assertIn(old, text, f"{path} has no {old!r}")
        f.write_text(text.replace(old, new, count))

    def assert_fails(self, *where: str) -> None:
        run_ = run(self.tmp)
        self.assertEqual(run_.returncode, 1, run_.stdout)
        for w in where:
            self.assertIn(w, run_.stderr)

    def test_each_place_is_checked(self) -> None:
        v = self.version
        cases = [
            ("node/package.json", f'"version": "{v}"', '"version": "9.9.9"', "node/package.json: 9.9.9"),
            ("node/package-lock.json", f'"version": "{v}"', '"version": "9.9.9"', "node/package-lock.json"),
            ("node/npm/linux-x64-gnu/package.json", f'"version": "{v}"', '"version": "9.9.9"', "linux-x64-gnu"),
            ("node/native.js", f"expected {v} but got", "expected 9.9.9 but got", "node/native.js"),
            ("include/ctx.h", f'#define CTX_VERSION "{v}"', '#define CTX_VERSION "9.9.9"', "CTX_VERSION: 9.9.9"),
            ("include/ctx.h", "#define CTX_VERSION_PATCH ", "#define CTX_VERSION_PATCH 9", "MAJOR/MINOR/PATCH"),
            ("CHANGELOG.md", f"## [{v}]", "## [9.9.9]", "CHANGELOG.md"),
            ("py/pyproject.toml", 'dynamic = ["version"]', 'version = "9.9.9"', "py/pyproject.toml"),
            ("ffi-c/Cargo.toml", "version.workspace = true", 'version = "9.9.9"', "ffi-c/Cargo.toml"),
            (
                "Cargo.lock",
                f'name = "polyctx-node"\nversion = "{v}"',
                'name = "polyctx-node"\nversion = "9"',
                "polyctx-node",
            ),
        ]
        for path, old, new, where in cases:
            with self.subTest(path=path, new=new):
                self.setUp()
                self.edit(path, old, new)
                self.assert_fails(where, "defined once, in Cargo.toml")

    def test_a_new_workspace_version_leaves_everything_else_behind(self) -> None:
        self.edit("Cargo.toml", f'version = "{self.version}"', 'version = "9.9.9"')
        self.assert_fails("node/package.json", "include/ctx.h", "CHANGELOG.md", "Cargo.lock")


if __name__ == "__main__":
    unittest.main()
