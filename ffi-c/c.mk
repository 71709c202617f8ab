## C ABI: libctx.so / libctx.a, include/ctx.h ---------------------------------
# Included by the top-level Makefile. Everything is built under $(BUILD)/c:
#   prefix/     a debug `make install` that the tests, example and runner use
#   asan/       the C tests built with AddressSanitizer + UBSan
#   pipe/       libctx built with the core's pipe-wake feature (its own cargo
#               target directory), and the C tests linked against it
# `make install PREFIX=...` installs a release build.

LINT_TARGETS += lint-c
TEST_TARGETS += test-c test-conformance-c
DEMO_TARGETS += demo-c
BENCH_BUILD_TARGETS += bench-build-c

.PHONY: install header-c c-stage test-c-unit test-c-valgrind test-c-asan test-c-install test-c-pipe

PREFIX ?= /usr/local
C_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(ROOT)/Cargo.toml | head -1)
C_SOMAJOR := 0
# From `cargo rustc -p polyctx-ffi-c -- --print native-static-libs`; linking
# libctx.a statically in test-c-install checks that it is still right.
C_LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
C_BUILD := $(BUILD)/c
C_STAGE := $(C_BUILD)/prefix
C_WARN := -std=c11 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes
C_TESTS := test_api test_threads test_patterns test_debug test_wire
C_TEST_CFLAGS := $(C_WARN) -g -O1 -I$(C_STAGE)/include -Iffi-c/tests -I$(C_BUILD) -DCTX_TEST_VERSION='"$(C_VERSION)"'
# The shared header vectors, as C data for test_wire.c (generated, never committed).
C_WIRE_VECTORS := $(C_BUILD)/wire_vectors.h
C_LINK_STAGE := -L$(C_STAGE)/lib -Wl,-rpath,$(C_STAGE)/lib -lctx -pthread
# Valgrind: leaks of kind definite/indirect fail the run. The process-wide
# timer thread and a just-finished after-func thread can leave their thread
# stacks and thread-local storage "possibly lost", which is not counted; no
# suppression file is needed.
C_VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect
C_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# Defined after C_WIRE_VECTORS: make expands a rule's target where it reads it.
$(C_WIRE_VECTORS): tests/wire/vectors.json ffi-c/tests/gen_wire_vectors.py
	@mkdir -p $(C_BUILD)
	$(PYTHON) ffi-c/tests/gen_wire_vectors.py tests/wire/vectors.json $@

# $(call c_install,CARGO_TARGET_DIR_WITH_PROFILE,DEST_PREFIX,PC_PREFIX)
define c_install
	install -d $(2)/lib/pkgconfig $(2)/include
	install -m 644 include/ctx.h $(2)/include/ctx.h
	install -m 755 $(1)/libctx.so $(2)/lib/libctx.so.$(C_VERSION)
	ln -sfn libctx.so.$(C_VERSION) $(2)/lib/libctx.so.$(C_SOMAJOR)
	ln -sfn libctx.so.$(C_SOMAJOR) $(2)/lib/libctx.so
	install -m 644 $(1)/libctx.a $(2)/lib/libctx.a
	sed -e 's|@PREFIX@|$(3)|' -e 's|@VERSION@|$(C_VERSION)|' -e 's|@LIBS_PRIVATE@|$(C_LIBS_PRIVATE)|' \
		ffi-c/ctx.pc.in > $(2)/lib/pkgconfig/ctx.pc
endef

install:
	$(CARGO) build --locked --release -p polyctx-ffi-c
	$(call c_install,$(ROOT)/target/release,$(DESTDIR)$(PREFIX),$(PREFIX))

# Rewrites the committed header from the Rust source.
header-c:
	$(CARGO) run --locked -q -p polyctx-gen-header -- include/ctx.h

# The committed header must be what the source generates, and usable from
# C++; C sources must compile warning-free (they do in every build below).
lint-c:
	@mkdir -p $(C_BUILD)
	$(CARGO) run --locked -q -p polyctx-gen-header -- $(C_BUILD)/ctx.h
	@diff -u include/ctx.h $(C_BUILD)/ctx.h || { echo "include/ctx.h is stale: run 'make header-c' and commit it"; exit 1; }
	echo '#include <ctx.h>' | $(CXX) -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only -Iinclude -

c-stage:
	$(CARGO) build --locked -q -p polyctx-ffi-c
	$(call c_install,$(ROOT)/target/debug,$(C_STAGE),$(C_STAGE))

test-c: test-c-unit test-c-valgrind test-c-asan test-c-install test-c-pipe

test-c-unit: c-stage $(C_WIRE_VECTORS)
	$(CARGO) test --locked -q -p polyctx-ffi-c
	@mkdir -p $(C_BUILD)
	readelf -d $(C_STAGE)/lib/libctx.so | grep -q 'SONAME.*\[libctx.so.$(C_SOMAJOR)\]'
	for t in $(C_TESTS); do \
		$(CC) $(C_TEST_CFLAGS) ffi-c/tests/$$t.c -o $(C_BUILD)/$$t $(C_LINK_STAGE); \
		$(C_BUILD)/$$t; \
	done

test-c-valgrind: test-c-unit
	for t in $(C_TESTS); do $(C_VALGRIND) $(C_BUILD)/$$t; done

test-c-asan: c-stage $(C_WIRE_VECTORS)
	@mkdir -p $(C_BUILD)/asan
	for t in $(C_TESTS); do \
		$(CC) $(C_TEST_CFLAGS) $(C_SAN) ffi-c/tests/$$t.c -o $(C_BUILD)/asan/$$t $(C_LINK_STAGE); \
		$(C_BUILD)/asan/$$t; \
	done

# ctx_done_fd's pipe, the path every system but Linux takes, run on Linux:
# the tests check that they got a FIFO (and an eventfd in the other builds).
C_PIPE := $(C_BUILD)/pipe
test-c-pipe:
	CARGO_TARGET_DIR=$(C_PIPE)/target $(CARGO) build --locked -q -p polyctx-ffi-c --features pipe-wake
	$(call c_install,$(C_PIPE)/target/debug,$(C_PIPE)/prefix,$(C_PIPE)/prefix)
	for t in test_api test_threads; do \
		$(CC) $(C_TEST_CFLAGS) -DCTX_TEST_PIPE_WAKE ffi-c/tests/$$t.c -o $(C_PIPE)/$$t \
			-L$(C_PIPE)/prefix/lib -Wl,-rpath,$(C_PIPE)/prefix/lib -lctx -pthread; \
		$(C_PIPE)/$$t; \
	done

# The five-minute path of a C user: pkg-config against an installed prefix,
# shared and static; and the README's examples are examples/c/example.c,
# examples/c/wire.c and examples/c/fanout.c.
test-c-install: c-stage
	PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig $(CC) $(C_WARN) examples/c/example.c \
		$$(PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig pkg-config --cflags --libs ctx) -o $(C_BUILD)/example
	LD_LIBRARY_PATH=$(C_STAGE)/lib $(C_BUILD)/example
	$(CC) $(C_WARN) examples/c/example.c \
		$$(PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig pkg-config --cflags ctx) \
		$(C_STAGE)/lib/libctx.a $$(PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig pkg-config --static --libs-only-l ctx | sed 's/-lctx//') \
		-o $(C_BUILD)/example-static
	! ldd $(C_BUILD)/example-static | grep -q libctx
	$(C_BUILD)/example-static
	PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig $(CC) $(C_WARN) examples/c/wire.c \
		$$(PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig pkg-config --cflags --libs ctx) -o $(C_BUILD)/wire-example
	LD_LIBRARY_PATH=$(C_STAGE)/lib $(C_BUILD)/wire-example
	PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig $(CC) $(C_WARN) examples/c/fanout.c \
		$$(PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig pkg-config --cflags --libs ctx) -o $(C_BUILD)/fanout-example
	LD_LIBRARY_PATH=$(C_STAGE)/lib $(C_BUILD)/fanout-example
	$(PYTHON) ffi-c/tests/check_readme.py examples/c/fanout.c README.md
	$(PYTHON) ffi-c/tests/check_readme.py examples/c/example.c examples/c/wire.c examples/c/fanout.c docs/c.md

test-conformance-c: c-stage
	@mkdir -p $(C_BUILD)
	$(CC) $(C_WARN) -O1 -g -I$(C_STAGE)/include tests/conformance/c/runner.c -o $(C_BUILD)/conformance-runner $(C_LINK_STAGE)
	$(CONFORMANCE) --lang c -- $(C_BUILD)/conformance-runner

demo-c: c-stage
	@mkdir -p $(C_BUILD)
	@$(CC) $(C_WARN) -O1 -I$(C_STAGE)/include examples/c/fanout.c -o $(C_BUILD)/fanout $(C_LINK_STAGE)
	@$(C_BUILD)/fanout

# Release build of the library only here. bench/run.py runs the program
# beside the others; `make bench-c` runs it alone.
bench-c: bench-build-c
	$(C_BUILD)/bench/bench

bench-build-c:
	$(CARGO) build --locked --release -q -p polyctx-ffi-c
	@mkdir -p $(C_BUILD)/bench
	$(call c_install,$(ROOT)/target/release,$(C_BUILD)/bench/prefix,$(C_BUILD)/bench/prefix)
	$(CC) $(C_WARN) -O2 -I$(C_BUILD)/bench/prefix/include ffi-c/bench/bench.c -o $(C_BUILD)/bench/bench \
		-L$(C_BUILD)/bench/prefix/lib -Wl,-rpath,$(C_BUILD)/bench/prefix/lib -lctx -pthread
