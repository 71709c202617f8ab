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
LINT_TARGETS := lint-rust lint-fuzz
TEST_TARGETS := test-rust test-shuttle test-miri test-sanitizers-rust test-conformance-go test-conformance-rust
STRESS_TARGETS := stress-rust stress-shuttle stress-miri stress-fuzz
DEMO_TARGETS := demo-rust
BENCH_BUILD_TARGETS :=

# A missing fragment is an error, not a surface silently skipped.
include ffi-c/c.mk
include py/py.mk
include tests/interop/interop.mk
include node/node.mk
include bench/bench.mk
include examples/demo/demo.mk
include packaging/dist.mk
include tests/leaks/leaks.mk

.PHONY: miri-setup help demo demo-local test lint bench bench-run stress clean $(LINT_TARGETS) $(TEST_TARGETS) $(DEMO_TARGETS) $(BENCH_BUILD_TARGETS) $(STRESS_TARGETS)

# What every target does.
help:
	@echo "make demo   build and run the demo: one request path across Python, Node, C, Go and Rust services"
	@echo "make demo-local  the fan-out under one deadline in each language on its own"
	@echo "make test   build everything and run every test suite (what .ci/run runs)"
	@echo "make bench  release builds and side-by-side benchmarks (writes bench/results.md)"
	@echo "            BENCH_ARGS=--quick for a short run"
	@echo "make stress the long runs: Miri with many seeds and Tree Borrows, fuzzing,"
	@echo "            stress and model-based tests at length"
	@echo
	@echo "Every target, with the first line of the comment above it:"
	@awk '/^#/ { if (!c) c = substr($$0, 3); next } \
	      /^[a-z][a-zA-Z0-9_-]*:([^=]|$$)/ { split($$0, t, ":"); printf "  %-26s %s\n", t[1], c } \
	      { c = "" }' $(MAKEFILE_LIST) | sort -u

# The polyglot service path (examples/demo): quietly, its output is the point.
demo:
	@$(MAKE) --no-print-directory -s demo-services

# The fan-out under one deadline in each language on its own, one after another.
demo-local:
	@$(MAKE) --no-print-directory -s $(DEMO_TARGETS)

# Every suite of every language, lint first.
test: lint $(TEST_TARGETS)
	@echo "make test: all suites passed ($(TEST_TARGETS))"

# The long runs: what `make test` runs briefly, run for longer.
stress: $(STRESS_TARGETS)
	@echo "make stress: all passed ($(STRESS_TARGETS))"

# Formatters, linters, type checkers and generated-file freshness.
lint: $(LINT_TARGETS)

# BENCH_ARGS=--quick for a short run.
bench: bench-run

# Removes every build output (target/ and build/).
clean:
	$(CARGO) clean
	rm -rf $(BUILD)

## Rust core ---------------------------------------------------------------

# rustfmt and clippy over the workspace.
lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The fuzz targets (their own workspace, run by `make stress-fuzz`) are
# formatted and compile against today's API.
lint-fuzz:
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) check --locked -q --manifest-path fuzz/Cargo.toml --bins

# The core's tests, doctests and the README's Rust examples.
test-rust:
	$(CARGO) test --locked -p polyctx

# Shuttle (core/src/shuttle_tests.rs) explores thread interleavings of the
# real core, built with Shuttle's threads, locks and atomics (core/src/sync.rs):
# cancel against derive, drop, waiters, after-funcs and the timer firing.
# One execution at a time: the core's statics belong to one execution.
SHUTTLE = RUSTFLAGS="--cfg polyctx_shuttle" CARGO_TARGET_DIR=$(ROOT)/target/shuttle SHUTTLE_SILENCE_WARNINGS=1 \
	SHUTTLE_ITERATIONS=$(1) $(CARGO) test --locked -q -p polyctx --lib shuttle_tests -- --test-threads=1
# Each scenario under 5,000 random and 5,000 PCT schedules (seconds).
test-shuttle:
	$(call SHUTTLE,5000)

# Each scenario under 100,000 random and 100,000 PCT schedules.
stress-shuttle:
	$(call SHUTTLE,100000)

# Miri checks the core's unsafe code for undefined behaviour (Stacked
# Borrows aliasing, data races, weak-memory outcomes) on the unit tests and
# the small concurrency tests, with several scheduling seeds. The timer and
# after-func threads outlive the tests by design, hence -Zmiri-ignore-leaks.
MIRI_TARGET := $(ROOT)/target/miri
MIRI := CARGO_TARGET_DIR=$(MIRI_TARGET) $(CARGO) +nightly miri
# Installs Miri and its sysroot on the nightly toolchain (idempotent).
miri-setup:
	rustup component add --toolchain nightly miri rust-src
	$(MIRI) setup

# Miri over the unit and concurrency tests, four seeds.
test-miri: miri-setup
	MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-many-seeds=0..4" \
	  $(MIRI) test --locked -q -p polyctx --lib --test concurrency --test after_func

# The core's tests under ThreadSanitizer and AddressSanitizer (with
# LeakSanitizer): nightly, with the standard library rebuilt instrumented.
# UBSan has no Rust flavour; Miri covers undefined behaviour instead.
SANITIZED_TESTS := --lib --test concurrency --test after_func --test done_future --test beyond_go --test patterns --test wire_vectors
SANITIZE = RUSTFLAGS="-Zsanitizer=$(1)" RUSTDOCFLAGS="-Zsanitizer=$(1)" CARGO_TARGET_DIR=$(ROOT)/target/$(1) \
	$(CARGO) +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu --locked -q -p polyctx $(SANITIZED_TESTS)
test-sanitizers-rust: miri-setup
	TSAN_OPTIONS="halt_on_error=1" $(call SANITIZE,thread)
	ASAN_OPTIONS="detect_leaks=1" LSAN_OPTIONS="suppressions=$(ROOT)/core/lsan.supp" $(call SANITIZE,address)

# Longer: every core test file, more seeds, and Tree Borrows as well.
stress-miri: miri-setup
	MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-many-seeds=0..32" \
	  $(MIRI) test --locked -q -p polyctx --lib --test concurrency --test after_func
	MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-tree-borrows -Zmiri-many-seeds=0..8" \
	  $(MIRI) test --locked -q -p polyctx --lib --test concurrency --test after_func --test done_future --test go_context

# cargo-fuzz (pinned) on every header parser, on extract/inject, and on
# random sequences of C ABI operations, each for FUZZ_SECONDS, starting from
# the committed seeds in fuzz/corpus/.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := wire_timeouts wire_trace wire_baggage wire_extract c_abi_ops
stress-fuzz: miri-setup
	@cargo fuzz --version 2>/dev/null | grep -q $(CARGO_FUZZ_VERSION) || \
	  $(CARGO) install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION)
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  $(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | grep -E "stat::number_of_executed_units|Done|ERROR|panicked" ; \
	done

# The concurrency tests natively, in release, many times over, and the
# model-based test for about 100,000 operations.
stress-rust:
	POLYCTX_STRESS=1 $(CARGO) test --locked --release -q -p polyctx --test concurrency --test fork --test model

# The fan-out under one deadline, in Rust.
demo-rust:
	$(CARGO) run --locked -q -p polyctx --example fanout

## Conformance: every runner must print what Go's own context prints --------

CONFORMANCE := $(PYTHON) tests/conformance/check.py

# Go's own context must still print expected.txt.
test-conformance-go:
	$(CONFORMANCE) --verify-go -- $(GO) -C tests/conformance/go run .

# The Rust runner must print what Go prints.
test-conformance-rust:
	$(CARGO) build --locked -q -p polyctx-conformance
	$(CONFORMANCE) --lang rust -- $(ROOT)/target/debug/polyctx-conformance
