/* The C smoke test of the installed tarball: smoke VERSION
 *
 * Derives a context with a deadline and a cause, cancels a child of it with
 * another cause, and observes both errors and both causes; a wait on the
 * parent ends at its deadline. The header's CTX_VERSION and the library's
 * ctx_version() must both be VERSION. */
#include <ctx.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "smoke.c:%d: failed: %s\n", __LINE__, #cond); \
            return 1;                                                    \
        }                                                                \
    } while (0)

int main(int argc, char **argv) {
    CHECK(argc == 2);
    CHECK(strcmp(CTX_VERSION, argv[1]) == 0);
    CHECK(strcmp(ctx_version(), argv[1]) == 0);

    ctx_t *request, *call;
    ctx_cancel_t *cancel_request, *cancel_call;
    CHECK(ctx_with_timeout_cause(ctx_background(), 200LL * 1000 * 1000, "budget spent", 504, &request,
                                 &cancel_request) == CTX_OK);
    CHECK(ctx_with_cancel_cause(request, &call, &cancel_call) == CTX_OK);
    CHECK(ctx_cancel_cause(cancel_call, "client went away", 499) == CTX_OK);

    char why[64];
    int64_t code = 0;
    CHECK(ctx_err(call) == CTX_ERR_CANCELED);
    CHECK(ctx_cause(call, why, sizeof why, &code, NULL) == CTX_OK);
    CHECK(strcmp(why, "client went away") == 0 && code == 499);
    CHECK(ctx_err(request) == CTX_ERR_NONE); /* a child never cancels its parent */

    CHECK(ctx_wait(request, 60LL * 1000 * 1000 * 1000) == CTX_OK); /* until the deadline */
    CHECK(ctx_err(request) == CTX_ERR_DEADLINE_EXCEEDED);
    CHECK(ctx_cause(request, why, sizeof why, &code, NULL) == CTX_OK);
    CHECK(strcmp(why, "budget spent") == 0 && code == 504);

    ctx_cancel_and_release(call, cancel_call);
    ctx_cancel_and_release(request, cancel_request);
    printf("c: libctx %s (header %s): ok\n", ctx_version(), CTX_VERSION);
    return 0;
}
