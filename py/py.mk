# py/py.mk: the Python package (included by the top-level Makefile).
#
# One wheel, built from source the way `pip install ./py` builds it (PEP
# 517, maturin, release build), abi3 for Python 3.9+: it is installed into
# $(BUILD)/venv-py, which holds the pinned lint and test tools, and into one
# venv per other version in PY_OTHER_VERSIONS (found under pyenv, or on
# PATH as pythonX.Y), where the test suite runs again: asyncio's
# cancellation differs between 3.9, 3.11 and 3.13. Rebuilt when the sources
# change.

PY_VENV := $(BUILD)/venv-py
PY := $(PY_VENV)/bin/python
PY_STAMP := $(PY_VENV)/.polyctx-installed
PY_WHEEL_DIR := $(BUILD)/wheel-py
PY_WHEEL_STAMP := $(PY_WHEEL_DIR)/.built
PY_OTHER_VERSIONS ?= 3.9 3.13
PY_SOURCES := $(shell find $(ROOT)/py/src $(ROOT)/py/python $(ROOT)/core/src $(wildcard $(ROOT)/ffi-c/src) \
	-name '*.rs' -o -name '*.py' -o -name '*.pyi' -o -name 'py.typed' 2>/dev/null) \
	$(ROOT)/py/Cargo.toml $(ROOT)/py/pyproject.toml $(ROOT)/Cargo.lock $(wildcard $(ROOT)/ffi-c/Cargo.toml)
PY_LINTED := py tests/conformance/py examples/python examples/demo
PY_PYTEST := -X dev -m pytest -q -p no:cacheprovider tests

# The interpreter for version $(1): pyenv's newest, else pythonX.Y on PATH.
py_interpreter = $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python$(1)))),$(shell command -v python$(1) 2>/dev/null))

LINT_TARGETS += lint-py
TEST_TARGETS += test-py test-conformance-py
DEMO_TARGETS += demo-py demo-polyglot
BENCH_BUILD_TARGETS += venv-py

$(PY_VENV)/.tools: $(ROOT)/py/requirements-dev.txt $(ROOT)/py/requirements-test.txt
	$(PYTHON) -m venv $(PY_VENV)
	$(PY) -m pip install -q -r $(ROOT)/py/requirements-dev.txt
	touch $@

$(PY_WHEEL_STAMP): $(PY_VENV)/.tools $(PY_SOURCES)
	rm -rf $(PY_WHEEL_DIR)
	$(PY) -m pip wheel -q --no-deps -w $(PY_WHEEL_DIR) $(ROOT)/py
	touch $@

$(PY_STAMP): $(PY_WHEEL_STAMP)
	$(PY) -m pip install -q --force-reinstall --no-deps $(PY_WHEEL_DIR)/polyctx-*.whl
	touch $@

# build/venv-py3.9 and the like: the same wheel, and the test requirements.
$(BUILD)/venv-py%/.tools: $(ROOT)/py/requirements-test.txt
	@test -n "$(call py_interpreter,$*)" || { echo "no Python $* (looked in ~/.pyenv/versions and PATH);" \
		"install it, or run with PY_OTHER_VERSIONS=\"\"" >&2; exit 1; }
	$(call py_interpreter,$*) -m venv $(BUILD)/venv-py$*
	$(BUILD)/venv-py$*/bin/python -m pip install -q -r $(ROOT)/py/requirements-test.txt
	touch $@

$(BUILD)/venv-py%/.polyctx-installed: $(BUILD)/venv-py%/.tools $(PY_WHEEL_STAMP)
	$(BUILD)/venv-py$*/bin/python -m pip install -q --force-reinstall --no-deps $(PY_WHEEL_DIR)/polyctx-*.whl
	touch $@

# Kept between runs, like the main venv's stamps.
.PRECIOUS: $(BUILD)/venv-py%/.tools $(BUILD)/venv-py%/.polyctx-installed

.PHONY: venv-py
venv-py: $(PY_STAMP)

# pyright checks the package and tests/typing (expected errors included)
# with the venv's interpreter, as mypy --strict does.
lint-py: $(PY_STAMP)
	cd $(ROOT) && $(PY_VENV)/bin/ruff check --config py/pyproject.toml $(PY_LINTED)
	cd $(ROOT) && $(PY_VENV)/bin/ruff format --config py/pyproject.toml --check $(PY_LINTED)
	cd $(ROOT)/py && $(PY) -m mypy.stubtest --allowlist stubtest-allowlist.txt polyctx._native
	cd $(ROOT)/py && $(PY) -m mypy --strict python/polyctx tests/typing
	cd $(ROOT)/py && $(PY_VENV)/bin/pyright --pythonpath $(PY) python/polyctx tests/typing

# Run from py/ so that `import polyctx` finds the installed package, not the
# source tree (which has no native module).
test-py: $(PY_STAMP) $(foreach v,$(PY_OTHER_VERSIONS),test-py-$(v))
	cd $(ROOT)/py && $(PY) $(PY_PYTEST)

test-py-%: $(BUILD)/venv-py%/.polyctx-installed
	cd $(ROOT)/py && $(BUILD)/venv-py$*/bin/python $(PY_PYTEST)

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
