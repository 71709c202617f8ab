#!/usr/bin/env python3
"""One version for the whole project: the workspace's, in Cargo.toml.

    check_version.py [--root DIR] [--dist DIR] [--print]

Fails (exit status 1, one line per disagreement) unless every place that
states a version states that one:

- every workspace crate (`version.workspace = true`, or the same number),
  and its entry in Cargo.lock;
- the Python package (`dynamic = ["version"]`: maturin takes the crate's);
- the npm package, its lock file, every platform package under node/npm/,
  and the napi loader (node/native.js), which compares the platform
  package's version with its own;
- include/ctx.h's CTX_VERSION and CTX_VERSION_MAJOR/MINOR/PATCH;
- CHANGELOG.md, which must have a section for it.

With --dist, also what `make dist` wrote there: the wheel and sdist (file
names and metadata), both npm tarballs (package.json, and the main
package's pin on the platform package), and the C tarball (its name, the
library's file name, ctx.pc and the header). What the built code reports
(`ctx_version()`, `polyctx.__version__`, the npm package seen from Node)
is checked by the smoke programs against the installed artifacts, with the
version this script prints (--print).

Python 3.9+, standard library only, no cargo: it runs first in `make lint`.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?"


def toml_section(text: str, name: str) -> str:
    """The body of `[name]` in a TOML file (up to the next table header)."""
    m = re.search(rf"^\[{re.escape(name)}\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def toml_string(section: str, key: str) -> str | None:
    m = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', section, re.M)
    return m.group(1) if m else None


def workspace_version(root: Path) -> str:
    text = (root / "Cargo.toml").read_text()
    version = toml_string(toml_section(text, "workspace.package"), "version")
    if not version or not re.fullmatch(SEMVER, version):
        sys.exit(f"check_version: no [workspace.package] version in {root / 'Cargo.toml'}")
    return version


class Check:
    def __init__(self, root: Path, version: str) -> None:
        self.root, self.version, self.errors = root, version, []

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def equal(self, where: str, found: str | None) -> None:
        if found != self.version:
            self.errors.append(f"{where}: {found or 'no version'}, not {self.version}")

    def sources(self) -> None:
        root = self.root
        workspace = (root / "Cargo.toml").read_text()
        members = re.findall(r'"([^"]+)"', toml_section(workspace, "workspace").split("members", 1)[1].split("]")[0])
        crates = []
        for member in members:
            manifest = root / member / "Cargo.toml"
            package = toml_section(manifest.read_text(), "package")
            crates.append(toml_string(package, "name"))
            if not re.search(r"^version\.workspace\s*=\s*true", package, re.M):
                self.equal(f"{self.rel(manifest)} [package] version", toml_string(package, "version"))
        lock = (root / "Cargo.lock").read_text()
        for name in crates:
            m = re.search(rf'^name = "{re.escape(name or "")}"\nversion = "([^"]*)"', lock, re.M)
            self.equal(f"Cargo.lock, crate {name}", m and m.group(1))

        project = toml_section((root / "py/pyproject.toml").read_text(), "project")
        if toml_string(project, "version") is not None or not re.search(
            r'^dynamic\s*=\s*\[[^]]*"version"', project, re.M
        ):
            self.errors.append(
                'py/pyproject.toml: the version must be dynamic = ["version"] (maturin takes the crate\'s)'
            )

        node = root / "node"
        self.equal("node/package.json", json.loads((node / "package.json").read_text()).get("version"))
        lock_json = json.loads((node / "package-lock.json").read_text())
        self.equal("node/package-lock.json", lock_json.get("version"))
        self.equal("node/package-lock.json packages['']", lock_json.get("packages", {}).get("", {}).get("version"))
        platforms = sorted((node / "npm").glob("*/package.json"))
        if not platforms:
            self.errors.append("node/npm/: no platform package")
        for p in platforms:
            self.equal(self.rel(p), json.loads(p.read_text()).get("version"))
        loader = set(re.findall(r"expected (\S+) but got", (node / "native.js").read_text()))
        if len(loader) != 1:
            self.errors.append(f"node/native.js: expects versions {sorted(loader)}; run `make node-gen`")
        else:
            self.equal("node/native.js (run `make node-gen`)", loader.pop())

        self.header("include/ctx.h", (root / "include/ctx.h").read_text())

        changelog = (root / "CHANGELOG.md").read_text()
        if not re.search(rf"^## \[?{re.escape(self.version)}\]?(\s|$)", changelog, re.M):
            self.errors.append(f"CHANGELOG.md: no '## {self.version}' section")

    def header(self, where: str, text: str) -> None:
        macros = dict(re.findall(r"^#define (CTX_VERSION\w*) (\S+)", text, re.M))
        self.equal(f"{where} CTX_VERSION", macros.get("CTX_VERSION", "").strip('"') or None)
        parts = [macros.get(f"CTX_VERSION_{p}") for p in ("MAJOR", "MINOR", "PATCH")]
        self.equal(f"{where} CTX_VERSION_MAJOR/MINOR/PATCH", ".".join(p or "?" for p in parts))

    def one(self, dist: Path, pattern: str) -> Path | None:
        found = sorted(dist.glob(pattern))
        if len(found) != 1:
            self.errors.append(f"{self.rel(dist)}: {len(found)} files match {pattern}, not 1")
            return None
        return found[0]

    def artifacts(self, dist: Path) -> None:
        v = re.escape(self.version)
        wheel = self.one(dist, "polyctx-*.whl")
        if wheel:
            if not re.match(rf"polyctx-{v}-", wheel.name):
                self.errors.append(f"{wheel.name}: file name does not carry {self.version}")
            with zipfile.ZipFile(wheel) as z:
                meta = z.read(f"polyctx-{self.version}.dist-info/METADATA").decode()
            self.equal(f"{wheel.name} METADATA", re.search(r"^Version: (.*)$", meta, re.M).group(1))
        sdist = self.one(dist, "polyctx-[0-9]*.tar.gz")
        if sdist:
            with tarfile.open(sdist) as t:
                top = t.getnames()[0].split("/")[0]
                self.equal(f"{sdist.name} directory", top.removeprefix("polyctx-"))
                info = t.extractfile(f"{top}/PKG-INFO").read().decode()
                cargo = t.extractfile(f"{top}/Cargo.toml").read().decode()
            self.equal(f"{sdist.name} PKG-INFO", re.search(r"^Version: (.*)$", info, re.M).group(1))
            self.equal(f"{sdist.name} Cargo.toml", toml_string(toml_section(cargo, "workspace.package"), "version"))
        main = self.one(dist, "polyctx-[0-9]*.tgz")
        platform = self.one(dist, "polyctx-*-*-*.tgz")
        if main and platform:
            pkg, plat = npm_manifest(main), npm_manifest(platform)
            self.equal(f"{main.name} package.json", pkg.get("version"))
            self.equal(f"{platform.name} package.json", plat.get("version"))
            pins = pkg.get("optionalDependencies", {})
            self.equal(f"{main.name} optionalDependencies[{plat.get('name')}]", pins.get(plat.get("name")))
        c = self.one(dist, "polyctx-c-*.tar.gz")
        if c:
            with tarfile.open(c) as t:
                names = t.getnames()
                top = names[0].split("/")[0]
                if not top.startswith(f"polyctx-c-{self.version}-"):
                    self.errors.append(f"{c.name}: top directory {top} does not carry {self.version}")
                if f"{top}/lib/libctx.so.{self.version}" not in names:
                    self.errors.append(f"{c.name}: no lib/libctx.so.{self.version}")
                pc = t.extractfile(f"{top}/lib/pkgconfig/ctx.pc").read().decode()
                self.header(f"{c.name} include/ctx.h", t.extractfile(f"{top}/include/ctx.h").read().decode())
            self.equal(f"{c.name} ctx.pc", re.search(r"^Version: (.*)$", pc, re.M).group(1))


def npm_manifest(tgz: Path) -> dict:
    with tarfile.open(tgz) as t:
        return json.load(io.TextIOWrapper(t.extractfile("package/package.json"), encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--dist", type=Path, help="also check the artifacts in this directory")
    parser.add_argument("--print", action="store_true", help="print the version once it checks out")
    args = parser.parse_args()
    check = Check(args.root.resolve(), workspace_version(args.root))
    check.sources()
    if args.dist:
        check.artifacts(args.dist.resolve())
    for e in check.errors:
        print(f"check_version: {e}", file=sys.stderr)
    if check.errors:
        print(
            f"check_version: the version is defined once, in Cargo.toml ([workspace.package] {check.version});"
            " make every place above agree with it",
            file=sys.stderr,
        )
        return 1
    print(check.version if args.print else f"check_version: {check.version} everywhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
