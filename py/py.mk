# py/py.mk: the Python package (included by the top-level Makefile).
#
# One venv, $(BUILD)/venv-py, holds the pinned test tools and polyctx built
# from source the way a user installs it: `pip install ./py` (PEP 517,
# maturin, release build). It is rebuilt when the sources change.

PY_VENV := $(BUILD)/venv-py
PY := $(PY_VENV)/bin/python
PY_STAMP := $(PY_VENV)/.polyctx-installed
PY_SOURCES := $(shell find $(ROOT)/py/src $(ROOT)/py/python $(ROOT)/core/src $(wildcard $(ROOT)/ffi-c/src) \
	-name '*.rs' -o -name '*.py' -o -name '*.pyi' -o -name 'py.typed' 2>/dev/null) \
	$(ROOT)/py/Cargo.toml $(ROOT)/py/pyproject.toml $(ROOT)/Cargo.lock $(wildcard $(ROOT)/ffi-c/Cargo.toml)
PY_LINTED := py tests/conformance/py examples/python

LINT_TARGETS += lint-py
TEST_TARGETS += test-py test-conformance-py
DEMO_TARGETS += demo-py demo-polyglot
BENCH_BUILD_TARGETS += venv-py

$(PY_VENV)/.tools: $(ROOT)/py/requirements-dev.txt
	$(PYTHON) -m venv $(PY_VENV)
	$(PY) -m pip install -q -r $(ROOT)/py/requirements-dev.txt
	touch $@

$(PY_STAMP): $(PY_VENV)/.tools $(PY_SOURCES)
	$(PY) -m pip install -q --force-reinstall --no-deps $(ROOT)/py
	touch $@

.PHONY: venv-py
venv-py: $(PY_STAMP)

lint-py: $(PY_STAMP)
	cd $(ROOT) && $(PY_VENV)/bin/ruff check --config py/pyproject.toml $(PY_LINTED)
	cd $(ROOT) && $(PY_VENV)/bin/ruff format --config py/pyproject.toml --check $(PY_LINTED)
	cd $(ROOT)/py && $(PY) -m mypy.stubtest --allowlist stubtest-allowlist.txt polyctx._native
	cd $(ROOT)/py && $(PY) -m mypy --strict python/polyctx

# Run from py/ so that `import polyctx` finds the installed package, not the
# source tree (which has no native module).
test-py: $(PY_STAMP)
	cd $(ROOT)/py && $(PY) -X dev -m pytest -q -p no:cacheprovider tests

test-conformance-py: $(PY_STAMP)
	$(PY) tests/conformance/check.py --lang python -- $(PY) $(ROOT)/tests/conformance/py/runner.py

demo-py: $(PY_STAMP)
	$(PY) examples/python/fanout.py

# One request across Python and C in one process, on one core.
demo-polyglot: $(PY_STAMP)
	$(PY) examples/python/polyglot.py

# Alone, with the human-readable report; `make bench` runs it beside the others.
bench-py: $(PY_STAMP)
	$(PY) py/bench/bench.py
