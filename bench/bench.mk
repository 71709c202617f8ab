# `make bench`: release builds of every benchmark program, then bench/run.py
# runs them interleaved and prints the side-by-side table (bench/results.md).
# Fragments add their build steps to BENCH_BUILD_TARGETS.

# node-tools: the Node program reaches C and glibc through koffi, a pinned
# dev dependency.
BENCH_BUILD_TARGETS += bench-build-rust bench-build-go node-tools

bench-build-rust:
	$(CARGO) build --locked --release -q -p polyctx-bench

bench-build-go:
	@mkdir -p $(BUILD)/bench
	$(GO) -C bench/go build -o $(BUILD)/bench/go-bench .

bench-run: $(BENCH_BUILD_TARGETS)
	$(PYTHON) bench/run.py $(BENCH_ARGS)
