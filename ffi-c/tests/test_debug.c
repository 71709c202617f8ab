/* Diagnostics from C: the core's lost-cancel count and hook, live-context
 * tracking with C creation sites (CTX_DEBUG_SITE), the snapshot's tree, and
 * the counts of what is pending. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"

typedef struct {
    int calls;
    char context[128];
    char site[128];
    pthread_t thread;
} reports_t;

static void on_lost(void *userdata, const char *context, const char *site) {
    reports_t *r = userdata;
    r->calls++;
    snprintf(r->context, sizeof r->context, "%s", context);
    snprintf(r->site, sizeof r->site, "%s", site ? site : "(none)");
    r->thread = pthread_self();
}

static void forget(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &ctx, &cancel));
    CTX_DEBUG_SITE(ctx);
    ctx_cancel_release(cancel); /* never canceled: a lost cancel */
    ctx_release(ctx);
}

static void test_lost_cancels_are_counted_and_reported(void) {
    reports_t r = {0};
    ctx_set_lost_cancel_hook(on_lost, &r);
    ctx_debug_track(true);
    uint64_t before = ctx_lost_cancels();
    forget();
    CHECK(ctx_lost_cancels() == before + 1);
    CHECK(r.calls == 1);
    CHECK_STR(r.context, "context.Background.WithCancel");
    CHECK(strstr(r.site, "test_debug.c:") != NULL);
    CHECK(pthread_equal(r.thread, pthread_self())); /* on the thread that freed it */

    /* Canceled, past its deadline, or never cancelable: not lost. */
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 60 * SEC, &ctx, &cancel));
    ctx_cancel_and_release(ctx, cancel);
    REQUIRE_OK(ctx_with_timeout(ctx_background(), -1, &ctx, &cancel));
    ctx_cancel_release(cancel);
    ctx_release(ctx);
    REQUIRE_OK(ctx_without_cancel(ctx_background(), &ctx));
    ctx_release(ctx);
    CHECK(ctx_lost_cancels() == before + 1 && r.calls == 1);

    ctx_debug_track(false);
    forget(); /* untracked: reported without a site */
    CHECK(r.calls == 2);
    CHECK_STR(r.site, "(none)");
    ctx_set_lost_cancel_hook(NULL, NULL);
    forget(); /* counted, no longer reported */
    CHECK(ctx_lost_cancels() == before + 3 && r.calls == 2);
}

/* A hook that removes itself, and frees a live context of its own. */
static void removes_itself(void *userdata, const char *context, const char *site) {
    (void)context;
    (void)site;
    ++*(int *)userdata;
    ctx_set_lost_cancel_hook(NULL, NULL);
    forget();
}

static void test_a_hook_may_remove_itself(void) {
    int calls = 0;
    uint64_t before = ctx_lost_cancels();
    ctx_set_lost_cancel_hook(removes_itself, &calls);
    forget();
    forget();
    CHECK(calls == 1);
    CHECK(ctx_lost_cancels() == before + 3);
}

static void test_tracking_lists_live_contexts_as_a_tree(void) {
    size_t live = ctx_debug_live_contexts();
    ctx_debug_track(true);
    CHECK(ctx_debug_is_tracking());
    ctx_t *request, *call;
    ctx_cancel_t *cancel_request, *cancel_call;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 3600 * SEC, &request, &cancel_request));
    CHECK_OK(CTX_DEBUG_SITE(request));
    int request_line = __LINE__ - 1;
    REQUIRE_OK(ctx_with_cancel(request, &call, &cancel_call)); /* no site recorded */
    ctx_debug_track(false);
    CHECK(!ctx_debug_is_tracking());
    CHECK(ctx_debug_live_contexts() == live + 2);

    size_t n = 0;
    CHECK_OK(ctx_debug_snapshot(NULL, 0, &n));
    char *text = malloc(n + 1);
    CHECK_OK(ctx_debug_snapshot(text, n + 1, &n));
    char want[160];
    snprintf(want, sizeof want, "WithDeadline age");
    CHECK(strstr(text, want) != NULL);
    snprintf(want, sizeof want, "made at %s:%d", __FILE__, request_line);
    CHECK(strstr(text, want) != NULL);
    CHECK(strstr(text, "  #") != NULL); /* the child, indented under its parent */
    CHECK(strstr(text, "WithCancel age") != NULL && strstr(text, "made at C code (CTX_DEBUG_SITE") != NULL);
    free(text);

    char small[8];
    CHECK_OK(ctx_debug_snapshot(small, sizeof small, &n)); /* snprintf-style: truncated, terminated */
    CHECK(strlen(small) == sizeof small - 1 && n > sizeof small);

    ctx_cancel_and_release(call, cancel_call);
    ctx_cancel_and_release(request, cancel_request);
    CHECK(ctx_debug_live_contexts() == live); /* freed: no longer listed */
    CHECK_STATUS(ctx_debug_set_site(NULL, "x.c", 1), CTX_EINVAL);
    CHECK_STATUS(ctx_debug_set_site(ctx_background(), NULL, 1), CTX_EINVAL);
    CHECK_STATUS(ctx_debug_snapshot(NULL, 4, NULL), CTX_EINVAL);
}

static void noop(void *userdata) { (void)userdata; }

static void test_live_timers_and_pending_after_funcs(void) {
    size_t timers = ctx_debug_live_timers(), pending = ctx_debug_pending_after_funcs();
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 3600 * SEC, &ctx, &cancel));
    ctx_after_func_t *after;
    REQUIRE_OK(ctx_after_func(ctx, noop, NULL, NULL, &after));
    CHECK(ctx_debug_live_timers() == timers + 1);
    CHECK(ctx_debug_pending_after_funcs() == pending + 1);
    bool stopped = false;
    CHECK_OK(ctx_after_func_stop(after, &stopped));
    CHECK(stopped && ctx_debug_pending_after_funcs() == pending);
    ctx_after_func_release(after);
    ctx_cancel_and_release(ctx, cancel);
    CHECK(ctx_debug_live_timers() == timers);
}

int main(void) {
    test_lost_cancels_are_counted_and_reported();
    test_a_hook_may_remove_itself();
    test_tracking_lists_live_contexts_as_a_tree();
    test_live_timers_and_pending_after_funcs();
    return check_summary("test_debug");
}
