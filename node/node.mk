# node/node.mk: the Node package (included by the top-level Makefile).
#
# The package is built the way a user installs it: `npm install ./node` from
# a scratch project under $(BUILD)/node-project, whose install script runs a
# release `cargo build` and puts polyctx.<platform>.node in node/ (npm links
# a local directory rather than copying it). Tests, the conformance runner,
# the demo and the benchmarks all use that build, through `require('polyctx')`
# / `import 'polyctx'` as a user would. node/node_modules holds the pinned
# dev tools (napi CLI, TypeScript) and what the tests run against (Express,
# Fastify, undici, grpc-js, OpenTelemetry, koffi for the conformance
# runner's C steps), installed without scripts.

NODE ?= node
NPM ?= npm
NODE_BUILD := $(BUILD)/node
NODE_PROJECT := $(BUILD)/node-project
# Where the conformance runner and the example run from, so that their
# `import "polyctx"` finds this checkout without a link in the source tree.
NODE_LINK := $(NODE_BUILD)/link
NODE_STAMP := $(NODE_PROJECT)/.polyctx-installed
NODE_TOOLS := $(ROOT)/node/node_modules/.polyctx-tools
NODE_SOURCES := $(shell find $(ROOT)/node/src $(ROOT)/core/src $(ROOT)/ffi-c/src -name '*.rs') \
	$(ROOT)/node/Cargo.toml $(ROOT)/node/build.rs $(ROOT)/node/package.json \
	$(ROOT)/node/scripts/install.js $(ROOT)/node/scripts/platform.js $(ROOT)/core/Cargo.toml $(ROOT)/Cargo.lock
NPM_QUIET := --no-audit --no-fund --loglevel=error

LINT_TARGETS += lint-node
TEST_TARGETS += test-node test-conformance-node
DEMO_TARGETS += demo-node
BENCH_BUILD_TARGETS += node-install

.PHONY: node-install node-tools node-gen node-link

$(NODE_TOOLS): $(ROOT)/node/package.json $(ROOT)/node/package-lock.json
	cd $(ROOT)/node && $(NPM) ci --ignore-scripts $(NPM_QUIET)
	touch $@

node-tools: $(NODE_TOOLS)

$(NODE_STAMP): $(NODE_SOURCES)
	@mkdir -p $(NODE_PROJECT)
	echo '{"name": "polyctx-install-check", "private": true}' > $(NODE_PROJECT)/package.json
	cd $(NODE_PROJECT) && $(NPM) install $(NPM_QUIET) --foreground-scripts $(ROOT)/node
	touch $@

node-install: $(NODE_STAMP)

# Where the example and the conformance runner import 'polyctx' from: the
# same link `npm install` makes.
# The checkout as `polyctx` for the runner and the example (see NODE_LINK).
node-link:
	@mkdir -p $(NODE_LINK)/node_modules
	ln -sfn $(ROOT)/node $(NODE_LINK)/node_modules/polyctx
	cp examples/node/fanout.mjs tests/conformance/node/runner.mjs $(NODE_LINK)/

# Regenerates the committed loader and typings with the pinned napi CLI.
node-gen: $(NODE_TOOLS)
	cd $(ROOT)/node && npx napi build --platform --js native.js --dts native.d.ts --output-dir $(NODE_BUILD)/gen
	cp $(NODE_BUILD)/gen/native.js $(NODE_BUILD)/gen/native.d.ts $(ROOT)/node/

# The committed loader and typings must be what the CLI generates now; the
# hand-written declarations must type-check, as must code using them.
lint-node: $(NODE_TOOLS)
	rm -rf $(NODE_BUILD)/gen
	cd $(ROOT)/node && npx napi build --platform --js native.js --dts native.d.ts --output-dir $(NODE_BUILD)/gen
	@diff -u node/native.js $(NODE_BUILD)/gen/native.js && diff -u node/native.d.ts $(NODE_BUILD)/gen/native.d.ts \
		|| { echo "node/native.js or native.d.ts is stale: run 'make node-gen' and commit them"; exit 1; }
	cd $(ROOT)/node && npx tsc -p tsconfig.json

# The tests run against the installed package; the scratch project checks
# that both module systems find it there.
test-node: $(NODE_STAMP) $(NODE_TOOLS)
	cd $(NODE_PROJECT) && $(NODE) -e "require('polyctx').background()" \
		&& $(NODE) --input-type=module -e "import { background } from 'polyctx'; background()"
	cd $(ROOT)/node && POLYCTX_TEST_HOOKS=1 $(NODE) --expose-gc --test --test-concurrency=2 \
		$$(ls test/*.test.mjs | grep -v -e memory -e worker)
	@# What measures memory runs alone: another test file beside it skews the collector's timing.
	cd $(ROOT)/node && POLYCTX_TEST_HOOKS=1 $(NODE) --expose-gc --test --test-concurrency=1 test/memory.test.mjs test/worker.test.mjs

test-conformance-node: $(NODE_STAMP) $(NODE_TOOLS) node-link
	$(CONFORMANCE) --lang node -- $(NODE) $(NODE_LINK)/runner.mjs

demo-node: $(NODE_STAMP) node-link
	@$(NODE) $(NODE_LINK)/fanout.mjs

# Alone, with the human-readable report; `make bench` runs it beside the others.
bench-node: $(NODE_STAMP) $(NODE_TOOLS)
	$(NODE) --expose-gc node/bench/bench.mjs
