#!/usr/bin/env bash
# Installs what `make dist` wrote, as a newcomer would, with no cargo and no
# rustc on PATH and an empty home (no caches, no registry: nothing may be
# downloaded or built), and runs packaging/smoke/ in each language:
#
#   test_dist.sh DIST VERSION WORKDIR PYTHON...
#
# Python: a fresh venv per interpreter, `pip install --no-index` the wheel.
# Node: a fresh project, `npm install --offline` both tarballs; then the JS
# package alone, which must say which package is missing.
# C: the tarball copied into a prefix, a program built with pkg-config,
# shared and static.
set -euo pipefail

mkdir -p "$3"
dist=$(cd "$1" && pwd) version=$2 work=$(cd "$3" && pwd)
shift 3
here=$(cd "$(dirname "$0")" && pwd)
smoke=$here/smoke

# PATH without any directory that holds cargo or rustc.
clean_path=
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
	[[ -z $d || -x $d/cargo || -x $d/rustc || -x $d/rustup ]] && continue
	clean_path=${clean_path:+$clean_path:}$d
done
rm -rf "$work"
mkdir -p "$work/home"
# A clean environment: nothing from the build leaks in (CARGO, RUSTUP_HOME...).
clean() {
	env -i HOME="$work/home" PATH="$clean_path" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" \
		PIP_DISABLE_PIP_VERSION_CHECK=1 npm_config_update_notifier=false "$@"
}
if clean bash -c 'command -v cargo || command -v rustc || command -v rustup'; then
	echo "test_dist: cargo or rustc is still on the cleaned PATH" >&2
	exit 1
fi

one() { # one file matching a pattern in dist
	local found=("$dist"/$1)
	[[ ${#found[@]} -eq 1 && -f ${found[0]} ]] || { echo "test_dist: want one $dist/$1, found: ${found[*]}" >&2; exit 1; }
	echo "${found[0]}"
}
no_debug_info() {
	if readelf -S "$1" | grep -q '\.debug_'; then
		echo "test_dist: $1 carries debug info" >&2
		exit 1
	fi
}

wheel=$(one "polyctx-$version-cp39-abi3-manylinux_*_x86_64.whl")
npm_main=$(one "polyctx-$version.tgz")
npm_platform=$(one "polyctx-linux-x64-gnu-$version.tgz")
c_tarball=$(one "polyctx-c-$version-linux-x86_64.tar.gz")

## Python ----------------------------------------------------------------------
for python in "$@"; do
	v=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	venv=$work/py$v
	clean "$python" -m venv "$venv"
	clean "$venv/bin/pip" install -q --no-index --no-cache-dir "$wheel"
	no_debug_info "$(echo "$venv"/lib/python*/site-packages/polyctx/_native*.so)"
	(cd "$work" && clean timeout 60 "$venv/bin/python" "$smoke/smoke.py" "$version")
done

## Node ------------------------------------------------------------------------
project=$work/npm
mkdir -p "$project"
echo '{"name": "smoke", "private": true}' >"$project/package.json"
npm_install() { (cd "$1" && shift && clean npm install --offline --no-audit --no-fund --loglevel=error "$@"); }
npm_install "$project" "$npm_main" "$npm_platform"
pkg=$project/node_modules/polyctx
[[ -d $pkg && ! -L $pkg ]] || { echo "test_dist: node_modules/polyctx is not a copied package" >&2; exit 1; }
for unwanted in src test scripts/install.js Cargo.toml build.rs node_modules; do
	[[ ! -e $pkg/$unwanted ]] || { echo "test_dist: the npm package ships $unwanted" >&2; exit 1; }
done
if compgen -G "$pkg/*.node" >/dev/null; then echo "test_dist: the JS package ships a .node" >&2; exit 1; fi
no_debug_info "$project/node_modules/polyctx-linux-x64-gnu/polyctx.linux-x64-gnu.node"
cp "$smoke/smoke.mjs" "$project/"
(cd "$project" && clean NAPI_RS_ENFORCE_VERSION_CHECK=1 timeout 60 node smoke.mjs "$version")

# The JS package alone (offline, npm cannot fetch the platform package and
# skips it, as --omit=optional would): loading it must say what is missing.
alone=$work/npm-alone
mkdir -p "$alone"
echo '{"name": "smoke-alone", "private": true}' >"$alone/package.json"
npm_install "$alone" "$npm_main"
if out=$(cd "$alone" && clean timeout 60 node -e "require('polyctx')" 2>&1); then
	echo "test_dist: polyctx loaded without its platform package" >&2
	exit 1
fi
grep -q "polyctx: the native module for this platform comes in the package polyctx-linux-x64-gnu, which is not installed" <<<"$out" || {
	echo "test_dist: without its platform package, polyctx said:" >&2
	echo "$out" >&2
	exit 1
}
echo "node: without the platform package: says which package is missing: ok"

## C -----------------------------------------------------------------------------
tar -xzf "$c_tarball" -C "$work"
prefix=$work/c-prefix
mkdir -p "$prefix"
cp -a "$work/polyctx-c-$version-linux-x86_64/include" "$work/polyctx-c-$version-linux-x86_64/lib" "$prefix/"
lib=$prefix/lib
readelf -d "$lib/libctx.so" | grep -q 'SONAME.*\[libctx\.so\.0\]' || { echo "test_dist: libctx.so has no soname libctx.so.0" >&2; exit 1; }
no_debug_info "$lib/libctx.so.$version"
no_debug_info "$lib/libctx.a"
pc() { clean PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config "$@" ctx; }
[[ $(pc --modversion) == "$version" ]] || { echo "test_dist: ctx.pc is not $version" >&2; exit 1; }
warn=(-std=c11 -Wall -Wextra -Werror -Wpedantic)
# shellcheck disable=SC2046 # pkg-config's flags are words
clean cc "${warn[@]}" "$smoke/smoke.c" $(pc --cflags --libs) -Wl,-rpath,"$lib" -o "$work/smoke-c"
clean timeout 60 "$work/smoke-c" "$version"
# shellcheck disable=SC2046
clean cc "${warn[@]}" "$smoke/smoke.c" $(pc --cflags) "$lib/libctx.a" $(pc --static --libs-only-l | sed 's/-lctx//') \
	-o "$work/smoke-c-static"
if ldd "$work/smoke-c-static" | grep -q libctx; then echo "test_dist: the static build links libctx.so" >&2; exit 1; fi
clean timeout 60 "$work/smoke-c-static" "$version"

echo "test_dist: every artifact in $dist installed and ran without cargo or rustc"
