# tests/leaks/leaks.mk: leak checks in every language (included by the
# top-level Makefile, after the language fragments whose builds it uses).
#
# tests/leaks/leaks.{c,py,mjs} each run ROUNDS rounds of what a program in
# that language does with contexts (derive, values, causes, after-funcs,
# waits, handing contexts to C and back), with thread, event-loop or worker
# churn every 1,000 or 10,000 rounds, then check that nothing stayed behind:
# C counts value destructors and after-func finalizers, Python counts its
# values, causes and event loops and reads tracemalloc, Node reads the
# native counts (polyctx.stats() and the test hooks) exactly; all three
# bound glibc's bytes in use. `make stress` runs a million rounds each;
# `make test` 20,000 (a few seconds), plus a control run per language that
# keeps one context in 100 on purpose and must be caught.

LEAK_ROUNDS_SHORT := 20000
LEAK_ROUNDS := 1000000
PY_LINTED += tests/leaks
TEST_TARGETS += test-leaks
STRESS_TARGETS += stress-leaks

.PHONY: leaks-build

leaks-build: c-stage $(PY_STAMP) $(NODE_STAMP) $(NODE_TOOLS) node-link
	@mkdir -p $(C_BUILD)
	$(CC) $(C_WARN) -O1 -g -I$(C_STAGE)/include tests/leaks/leaks.c -o $(C_BUILD)/leaks $(C_LINK_STAGE)
	cp tests/leaks/leaks.mjs $(NODE_LINK)/

# $(call run_leaks,ROUNDS,EXTRA ARGUMENTS)
define run_leaks
	$(C_BUILD)/leaks $(1) $(2)
	$(PY) tests/leaks/leaks.py $(1) $(2)
	cd $(NODE_LINK) && POLYCTX_TEST_HOOKS=1 $(NODE) --expose-gc leaks.mjs $(1) $(2)
endef

# 20,000 rounds per language, and the controls that must fail.
test-leaks: leaks-build
	$(call run_leaks,$(LEAK_ROUNDS_SHORT))
	$(call run_leaks,$(LEAK_ROUNDS_SHORT),--expect-leak)

# A million rounds per language.
stress-leaks: leaks-build
	$(call run_leaks,$(LEAK_ROUNDS))
