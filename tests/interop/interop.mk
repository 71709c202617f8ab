# tests/interop/interop.mk: Go and polyctx services talking on loopback
# (issue 15), included by the top-level Makefile after py/py.mk. The Go side
# (net/http, grpc-go at the version go.mod pins) is built into
# $(BUILD)/interop; pytest drives both sides.

INTEROP_BIN := $(BUILD)/interop/interop
INTEROP_GO := $(ROOT)/tests/interop/go

LINT_TARGETS += lint-interop
TEST_TARGETS += test-interop
PY_LINTED += tests/interop

.PHONY: lint-interop test-interop

$(INTEROP_BIN): $(wildcard $(INTEROP_GO)/*.go) $(INTEROP_GO)/go.mod $(INTEROP_GO)/go.sum
	@mkdir -p $(dir $@)
	$(GO) -C $(INTEROP_GO) build -o $@ .

lint-interop:
	@test -z "$$(gofmt -l $(INTEROP_GO))" || { gofmt -l $(INTEROP_GO); echo "gofmt: files above need formatting" >&2; exit 1; }
	$(GO) -C $(INTEROP_GO) vet .

test-interop: $(PY_STAMP) $(INTEROP_BIN)
	cd $(ROOT) && INTEROP_BIN=$(INTEROP_BIN) $(PY) -X dev -m pytest -q -p no:cacheprovider tests/interop
