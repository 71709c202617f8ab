# polyctx — `make demo` runs the fan-out demo in every language; `make test`
# builds everything and runs every suite. Each surface adds its own targets
# from its fragment (ffi-c/c.mk, py/py.mk, node/node.mk, ...), appending to
# the lists below, so this file stays the index.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
PYTHON ?= python3
GO ?= go
ROOT := $(abspath .)
BUILD := $(ROOT)/build

# Filled in by the fragments.
LINT_TARGETS := lint-rust
TEST_TARGETS := test-rust test-conformance-go test-conformance-rust
DEMO_TARGETS := demo-rust
BENCH_BUILD_TARGETS :=

-include ffi-c/c.mk
-include py/py.mk
-include node/node.mk
-include bench/bench.mk

.PHONY: help demo test lint bench bench-run clean $(LINT_TARGETS) $(TEST_TARGETS) $(DEMO_TARGETS) $(BENCH_BUILD_TARGETS)

help:
	@echo "make demo   build and run the fan-out demo in every language"
	@echo "make test   build everything and run every test suite"
	@echo "make bench  release builds and side-by-side benchmarks (writes bench/results.md)"
	@echo "            BENCH_ARGS=--quick for a short run"

# Quietly: the demos' own output is the point; builds still show errors.
demo:
	@$(MAKE) --no-print-directory -s $(DEMO_TARGETS)

test: lint $(TEST_TARGETS)
	@echo "make test: all suites passed ($(TEST_TARGETS))"

lint: $(LINT_TARGETS)

# BENCH_ARGS=--quick for a short run.
bench: bench-run

clean:
	$(CARGO) clean
	rm -rf $(BUILD)

## Rust core ---------------------------------------------------------------

lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	$(CARGO) test --locked -p polyctx

demo-rust:
	$(CARGO) run --locked -q -p polyctx --example fanout

## Conformance: every runner must print what Go's own context prints --------

CONFORMANCE := $(PYTHON) tests/conformance/check.py

test-conformance-go:
	$(CONFORMANCE) --verify-go -- $(GO) -C tests/conformance/go run .

test-conformance-rust:
	$(CARGO) build --locked -q -p polyctx-conformance
	$(CONFORMANCE) --lang rust -- $(ROOT)/target/debug/polyctx-conformance
