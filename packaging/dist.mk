## Packages: `make dist` writes dist/ -----------------------------------------
# packaging/dist.mk (included by the top-level Makefile). What a user
# installs without a Rust toolchain, for Linux x86_64 with glibc 2.34+:
#
#   polyctx-V-cp39-abi3-manylinux_2_34_x86_64.whl   Python 3.9+, stripped, built
#                                                   from the sdist beside it
#   polyctx-V.tar.gz                                the sdist: builds on its own
#   polyctx-V.tgz                                   npm: the JS package, which pins
#   polyctx-linux-x64-gnu-V.tgz                     the platform package (the .node)
#   polyctx-c-V-linux-x86_64.tar.gz                 libctx.so.0, libctx.a, ctx.h,
#                                                   ctx.pc, INSTALL
#
# Release builds happen only here (and in the bench and install targets).
# The libc floor is the build machine's: glibc 2.34 merged libpthread into
# libc, so anything linked on a newer glibc needs 2.34. An older floor
# (manylinux2014) needs a manylinux container or `maturin --zig`.
# `make test` runs test-dist: each artifact installed into a clean place with
# no cargo or rustc on PATH, and a smoke program in each language run there.

DIST := $(ROOT)/dist
DIST_BUILD := $(BUILD)/dist
# c.mk reads it from the workspace's Cargo.toml, where the one version lives.
DIST_VERSION := $(C_VERSION)
DIST_VENV := $(BUILD)/venv-dist
# The maturin that py/pyproject.toml's build-system pins.
DIST_MATURIN := $(shell sed -n 's/^requires = \["\(maturin==[^"]*\)"\]/\1/p' $(ROOT)/py/pyproject.toml)
DIST_MANYLINUX := manylinux_2_34
DIST_C_NAME := polyctx-c-$(DIST_VERSION)-linux-x86_64
DIST_NODE_BINARY := $(DIST_BUILD)/polyctx.linux-x64-gnu.node
# The interpreters test-dist installs the wheel for (py.mk's py_interpreter).
DIST_PY_VERSIONS ?= 3.9 3.13

LINT_TARGETS += lint-version
TEST_TARGETS += test-dist
# ruff checks these scripts with the package's (py.mk's lint-py).
PY_LINTED += packaging

.PHONY: dist dist-py dist-node dist-c lint-version

# One version everywhere: the crates, the Python and npm packages, the
# header, the changelog (packaging/check_version.py says where).
lint-version:
	$(PYTHON) packaging/check_version.py
	$(PYTHON) packaging/test_check_version.py

# Every artifact into dist/, then their versions checked against each other.
dist: lint-version dist-py dist-node dist-c
	$(PYTHON) packaging/check_version.py --dist $(DIST)
	@cd $(DIST) && ls -l polyctx-*

$(DIST_VENV)/.tools: $(ROOT)/py/pyproject.toml
	$(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install -q '$(DIST_MATURIN)'
	touch $@

# The sdist, then the wheel built from it in a scratch directory (maturin's
# --sdist), which proves the sdist complete. Its Cargo.lock is the
# workspace's, trimmed to the crates it holds; cargo prunes the rest
# (--offline, not --locked, which would refuse that), so every crate
# stays at its locked version. The fetch makes --offline work on a fresh clone.
# The sdist's files all carry one fixed time, which cargo's freshness check
# (by mtime) would take for unchanged: its own crates are cleaned first, so
# only the registry crates are reused.
DIST_SDIST_TARGET := $(DIST_BUILD)/sdist-target
dist-py: $(DIST_VENV)/.tools
	$(CARGO) fetch --locked -q
	$(CARGO) clean -q --release --target-dir $(DIST_SDIST_TARGET) -p polyctx -p polyctx-ffi-c -p polyctx-py
	@mkdir -p $(DIST)
	rm -f $(DIST)/polyctx-*.whl $(DIST)/polyctx-[0-9]*.tar.gz
	cd py && PATH=$(DIST_VENV)/bin:$$PATH CARGO_TARGET_DIR=$(DIST_SDIST_TARGET) \
		maturin build --sdist --offline --release --strip --compatibility $(DIST_MANYLINUX) --auditwheel check \
		-o $(DIST)

# The module as scripts/install.js builds it, stripped, then both packages.
dist-node:
	$(CARGO) build --locked -q --release -p polyctx-node
	@mkdir -p $(DIST_BUILD) $(DIST)
	strip --strip-unneeded -o $(DIST_NODE_BINARY) $(ROOT)/target/release/libpolyctx_node.so
	rm -f $(DIST)/polyctx-[0-9]*.tgz $(DIST)/polyctx-*-*-*.tgz
	$(NODE) node/scripts/pack.js --binary $(DIST_NODE_BINARY) --stage $(DIST_BUILD)/npm --out $(DIST)

# `make install`'s layout in a relocatable tree: ctx.pc finds its prefix
# from where it lies (${pcfiledir}), so the tree works wherever it is put.
dist-c:
	$(CARGO) build --locked -q --release -p polyctx-ffi-c
	rm -rf $(DIST_BUILD)/c
	$(call c_install,$(ROOT)/target/release,$(DIST_BUILD)/c/$(DIST_C_NAME),$${pcfiledir}/../..)
	strip --strip-unneeded $(DIST_BUILD)/c/$(DIST_C_NAME)/lib/libctx.so.$(DIST_VERSION)
	strip --strip-debug $(DIST_BUILD)/c/$(DIST_C_NAME)/lib/libctx.a
	install -m 644 packaging/c/INSTALL CHANGELOG.md $(DIST_BUILD)/c/$(DIST_C_NAME)/
	@mkdir -p $(DIST)
	tar -C $(DIST_BUILD)/c --owner=0 --group=0 --numeric-owner --sort=name -czf $(DIST)/$(DIST_C_NAME).tar.gz $(DIST_C_NAME)

# What a newcomer does with dist/, with no cargo or rustc on PATH: a venv
# per Python version, an npm project, a prefix; a smoke program in each.
test-dist: dist
	packaging/test_dist.sh $(DIST) $(DIST_VERSION) $(DIST_BUILD)/try \
		$(foreach v,$(DIST_PY_VERSIONS),$(or $(call py_interpreter,$(v)),python$(v)))
