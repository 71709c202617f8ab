# examples/demo/demo.mk: `make demo`, the polyglot service path (included by
# the top-level Makefile). A Python gateway (FastAPI + polyctx's ASGI
# middleware) fans out to a Node backend (Express + polyctx, with a C worker
# in the same process), a Go backend (Go's own context) and a Rust backend
# (the core), on loopback; examples/demo/run.py starts them, sends three
# requests, prints each one's timeline, and stops everything.
# `make test-demo` runs it with --check: the outcomes asserted from each
# service's own counters.

DEMO_BUILD := $(BUILD)/demo
DEMO_GO := $(DEMO_BUILD)/gobackend
DEMO_C_WORKER := $(DEMO_BUILD)/c_worker.node
DEMO_RUST := $(ROOT)/target/debug/examples/demo-backend
# Node's headers (node_api.h) for the C worker: beside the node binary, or the system's.
NODE_INCLUDE = $(firstword $(wildcard $(dir $(shell command -v $(NODE)))../include/node /usr/include/node))

TEST_TARGETS += test-demo

.PHONY: demo-services demo-build test-demo

demo-build: $(PY_STAMP) $(NODE_STAMP) node-link
	@mkdir -p $(DEMO_BUILD)
	$(GO) -C examples/demo/go-backend build -o $(DEMO_GO) .
	$(CARGO) build --locked -q -p polyctx --example demo-backend
	@test -n "$(NODE_INCLUDE)" || { echo "demo: Node's node_api.h not found (needed for the C worker)" >&2; exit 1; }
	$(CC) -std=c11 -Wall -Wextra -Werror -O1 -shared -fPIC -Iinclude -I$(NODE_INCLUDE) \
		examples/demo/c_worker.c -o $(DEMO_C_WORKER)
	cp examples/demo/node_backend.mjs $(NODE_LINK)/

DEMO_RUN = $(PY) examples/demo/run.py --gateway-python $(PY) --go-backend $(DEMO_GO) \
	--rust-backend $(DEMO_RUST) --node $(NODE) --node-backend $(NODE_LINK)/node_backend.mjs \
	--c-worker $(DEMO_C_WORKER)

# The polyglot service path, with its timelines.
demo-services: demo-build
	@$(DEMO_RUN)

# The same path, its outcomes asserted (in `make test`).
test-demo: demo-build
	$(DEMO_RUN) --check
