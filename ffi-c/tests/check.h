/* A minimal test harness for the C tests: CHECK records a failure and goes
 * on; check_summary prints "N passed, N failed" and gives the exit status. */
#ifndef CTX_TEST_CHECK_H
#define CTX_TEST_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

static atomic_int check_passed;
static atomic_int check_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            atomic_fetch_add(&check_passed, 1);                                      \
        } else {                                                                     \
            atomic_fetch_add(&check_failed, 1);                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Status checks print both codes' names on failure. */
#define CHECK_STATUS(expr, want)                                                          \
    do {                                                                                  \
        int got_ = (int)(expr);                                                           \
        int want_ = (int)(want);                                                          \
        if (got_ == want_) {                                                              \
            atomic_fetch_add(&check_passed, 1);                                           \
        } else {                                                                          \
            atomic_fetch_add(&check_failed, 1);                                           \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr, \
                    got_, ctx_strerror(got_), want_, ctx_strerror(want_));                \
        }                                                                                 \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, CTX_OK)

/* For setup steps the rest of a test depends on. */
#define REQUIRE_OK(expr)                                                                   \
    do {                                                                                   \
        int got_ = (int)(expr);                                                            \
        if (got_ != CTX_OK) {                                                              \
            fprintf(stderr, "%s:%d: %s = %s; giving up\n", __FILE__, __LINE__, #expr,      \
                    ctx_strerror(got_));                                                   \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_STR(got, want)                                                               \
    do {                                                                                   \
        const char *got_ = (got);                                                          \
        const char *want_ = (want);                                                        \
        if (got_ != NULL && strcmp(got_, want_) == 0) {                                    \
            atomic_fetch_add(&check_passed, 1);                                            \
        } else {                                                                           \
            atomic_fetch_add(&check_failed, 1);                                            \
            fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got, \
                    got_ ? got_ : "(null)", want_);                                        \
        }                                                                                  \
    } while (0)

#define MS (1000 * 1000LL)
#define SEC (1000 * MS)

static int check_summary(const char *name) {
    int passed = atomic_load(&check_passed), failed = atomic_load(&check_failed);
    printf("%s: %d passed, %d failed\n", name, passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}

#endif
