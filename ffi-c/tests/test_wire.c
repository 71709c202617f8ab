/* The wire API of ctx.h: the shared header vectors (tests/wire/vectors.json,
 * turned into build/c/wire_vectors.h by gen_wire_vectors.py), extract and
 * inject over both carriers, budgets shrinking hop by hop (arrival times
 * given, no sleeps), trust policies, failing locally, end reasons, and
 * every documented answer to bad input. Single-threaded. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>
#include <strings.h>

#include "check.h"
#include "wire_vectors.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_SPAN "00f067aa0ba902b7"

static void hex(const uint8_t *bytes, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", bytes[i]);
    out[2 * n] = '\0';
}

static const char *trace_hex(const ctx_trace_context_t *tc) {
    static char buf[33];
    hex(tc->trace_id, 16, buf);
    return buf;
}

static const char *span_hex(const ctx_trace_context_t *tc) {
    static char buf[17];
    hex(tc->span_id, 8, buf);
    return buf;
}

/* A growing string, for rendering results as the vectors' expectations do. */
typedef struct {
    char *data;
    size_t len, cap;
} text_t;

static void text_add(text_t *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        if (!t->data) abort();
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void text_str(text_t *t, const char *s) { text_add(t, s, strlen(s)); }

/* S(s): "<bytes>:<s>", as gen_wire_vectors.py renders. */
static void text_s(text_t *t, const char *s, size_t n) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%zu:", n);
    text_str(t, prefix);
    text_add(t, s, n);
}

/* Formats with a size query first, checking the buffer protocol on the way:
 * 0 bytes and exactly the length are too small, length + 1 fits. */
typedef ctx_status_t (*format_fn)(const void *arg, char *buf, size_t buf_len, size_t *len);

static void render_format(text_t *t, format_fn f, const void *arg) {
    size_t need = 12345;
    ctx_status_t s = f(arg, NULL, 0, &need);
    if (s == CTX_EABSENT) {
        CHECK(need == 0);
        char buf[4] = "xyz";
        CHECK_STATUS(f(arg, buf, sizeof buf, NULL), CTX_EABSENT);
        CHECK_STR(buf, "");
        text_str(t, "absent");
        return;
    }
    CHECK_STATUS(s, CTX_ENOBUFS);
    char *buf = malloc(need + 1);
    if (!buf) abort();
    memset(buf, 'x', need + 1);
    size_t len = 0;
    if (need > 0) {
        CHECK_STATUS(f(arg, buf, need, &len), CTX_ENOBUFS);
        CHECK(len == need && buf[0] == '\0'); /* never truncated */
    }
    CHECK_OK(f(arg, buf, need + 1, &len));
    CHECK(len == need && strlen(buf) == need);
    text_str(t, "value:");
    text_str(t, buf);
    free(buf);
}

static ctx_status_t fmt_grpc(const void *arg, char *buf, size_t buf_len, size_t *len) {
    return ctx_grpc_timeout_format(*(const int64_t *)arg, buf, buf_len, len);
}

static ctx_status_t fmt_ms(const void *arg, char *buf, size_t buf_len, size_t *len) {
    return ctx_timeout_ms_format(*(const int64_t *)arg, buf, buf_len, len);
}

static ctx_status_t fmt_baggage(const void *arg, char *buf, size_t buf_len, size_t *len) {
    return ctx_baggage_format(arg, buf, buf_len, len);
}

static ctx_status_t fmt_tracestate(const void *arg, char *buf, size_t buf_len, size_t *len) {
    return ctx_tracestate_format(arg, buf, buf_len, len);
}

static void render_timeout(text_t *t, ctx_status_t s, int64_t ns) {
    char buf[64];
    if (s == CTX_OK) {
        snprintf(buf, sizeof buf, "ns %lld", (long long)ns);
        text_str(t, buf);
    } else {
        text_str(t, s == CTX_EABSENT ? "absent" : s == CTX_EMALFORMED ? "malformed" : ctx_strerror(s));
    }
}

static void render_tracestate(text_t *t, const ctx_tracestate_t *ts) {
    text_str(t, "[");
    for (size_t i = 0; i < ctx_tracestate_len(ts); i++) {
        const char *k = NULL, *v = NULL;
        CHECK_OK(ctx_tracestate_get(ts, i, &k, &v));
        text_s(t, k, strlen(k));
        text_s(t, v, strlen(v));
    }
    text_str(t, "]");
}

static void render_baggage(text_t *t, const ctx_baggage_t *b) {
    text_str(t, "[");
    for (size_t i = 0; i < ctx_baggage_len(b); i++) {
        const char *k = NULL, *v = NULL;
        size_t vlen = 0, nprops = 0;
        CHECK_OK(ctx_baggage_get(b, i, &k, &v, &vlen, &nprops));
        text_s(t, k, strlen(k));
        text_s(t, v, vlen);
        text_str(t, "(");
        for (size_t j = 0; j < nprops; j++) {
            const char *pk = NULL, *pv = NULL;
            size_t pvlen = 99;
            CHECK_OK(ctx_baggage_property(b, i, j, &pk, &pv, &pvlen));
            text_s(t, pk, strlen(pk));
            if (pv) {
                text_s(t, pv, pvlen);
            } else {
                CHECK(pvlen == 0);
                text_str(t, "-");
            }
        }
        text_str(t, ")");
    }
    text_str(t, "]");
}

/* One vector's result, rendered. */
static void run_vector(const struct wire_vector *v, text_t *t) {
    const char *const *inputs = v->inputs;
    size_t n = v->n_inputs;
    char *built = NULL;
    const char *one[1];
    if (v->repeat_times > 0) {
        size_t pre = strlen(v->repeat[0]), unit = strlen(v->repeat[1]), post = strlen(v->repeat[2]);
        built = malloc(pre + unit * v->repeat_times + post + 1);
        if (!built) abort();
        char *p = built;
        memcpy(p, v->repeat[0], pre), p += pre;
        for (size_t i = 0; i < v->repeat_times; i++) memcpy(p, v->repeat[1], unit), p += unit;
        memcpy(p, v->repeat[2], post), p += post;
        *p = '\0';
        one[0] = built;
        inputs = one;
        n = 1;
    }
    int64_t ns = -1;
    if (strcmp(v->kind, "grpc-timeout") == 0) {
        ctx_status_t s = ctx_grpc_timeout_parse(inputs[0], &ns);
        render_timeout(t, s, ns);
    } else if (strcmp(v->kind, "timeout-ms") == 0) {
        ctx_status_t s = ctx_timeout_ms_parse(inputs[0], &ns);
        render_timeout(t, s, ns);
    } else if (strcmp(v->kind, "format-grpc-timeout") == 0) {
        ns = strtoll(inputs[0], NULL, 10);
        render_format(t, fmt_grpc, &ns);
    } else if (strcmp(v->kind, "format-timeout-ms") == 0) {
        ns = strtoll(inputs[0], NULL, 10);
        render_format(t, fmt_ms, &ns);
    } else if (strcmp(v->kind, "traceparent") == 0) {
        ctx_trace_context_t tc;
        ctx_status_t s = ctx_traceparent_parse(inputs, n, &tc);
        if (s == CTX_OK) {
            char buf[80];
            snprintf(buf, sizeof buf, "%s-%s-%d", trace_hex(&tc), span_hex(&tc), tc.flags);
            text_str(t, buf);
        } else {
            text_str(t, s == CTX_EABSENT ? "absent" : ctx_strerror(s));
        }
    } else if (strcmp(v->kind, "tracestate") == 0) {
        ctx_tracestate_t *ts = NULL;
        ctx_status_t s = ctx_tracestate_parse(inputs, n, &ts);
        if (s == CTX_OK) {
            render_tracestate(t, ts);
            /* What is formatted parses back to the same members. */
            text_t formatted = {0}, again = {0};
            render_format(&formatted, fmt_tracestate, ts);
            if (ctx_tracestate_len(ts) == 0) {
                CHECK_STR(formatted.data, "absent");
            } else {
                const char *value = formatted.data + strlen("value:");
                ctx_tracestate_t *back = NULL;
                CHECK_OK(ctx_tracestate_parse(&value, 1, &back));
                render_tracestate(&again, back);
                CHECK_STR(again.data, t->data);
                ctx_tracestate_release(back);
            }
            free(formatted.data);
            free(again.data);
            ctx_tracestate_release(ts);
        } else {
            CHECK(ts == NULL);
            text_str(t, s == CTX_EMALFORMED ? "dropped" : ctx_strerror(s));
        }
    } else if (strcmp(v->kind, "baggage") == 0) {
        ctx_baggage_t *b = NULL;
        CHECK_OK(ctx_baggage_parse(inputs, n, &b));
        render_baggage(t, b);
        ctx_baggage_release(b);
    } else if (strcmp(v->kind, "format-baggage") == 0) {
        ctx_baggage_t *b = NULL;
        REQUIRE_OK(ctx_baggage_new(&b));
        ctx_status_t s = CTX_OK;
        for (size_t i = 0; i < v->n_entries && s == CTX_OK; i++) {
            const struct wire_entry *e = &v->entries[i];
            s = ctx_baggage_set(b, e->key, e->value);
            for (size_t j = 0; j < e->n_props && s == CTX_OK; j++)
                s = ctx_baggage_add_property(b, e->key, e->props[j].key, e->props[j].value);
        }
        if (s == CTX_OK) {
            render_format(t, fmt_baggage, b);
        } else {
            text_str(t, s == CTX_EMALFORMED ? "malformed" : ctx_strerror(s));
        }
        ctx_baggage_release(b);
    } else {
        fprintf(stderr, "unknown vector kind %s: teach test_wire.c\n", v->kind);
        text_str(t, "(unknown kind)");
    }
    free(built);
}

static void test_vectors(void) {
    int ran = 0;
    for (size_t i = 0; i < WIRE_VECTOR_COUNT; i++) {
        const struct wire_vector *v = &wire_vectors[i];
        text_t got = {0}, want = {0};
        text_str(&got, "");
        text_str(&want, "");
        for (const char *const *piece = v->expect; *piece; piece++) text_str(&want, *piece);
        run_vector(v, &got);
        if (strcmp(got.data, want.data) == 0) {
            atomic_fetch_add(&check_passed, 1);
        } else {
            atomic_fetch_add(&check_failed, 1);
            fprintf(stderr, "vector %s / %s:\n  got  %.300s\n  want %.300s\n", v->kind, v->name, got.data,
                    want.data);
        }
        free(got.data);
        free(want.data);
        ran++;
    }
    CHECK(ran == WIRE_VECTOR_COUNT && ran >= 60);
    printf("test_wire: %d shared header vectors\n", ran);
}

/* Carriers -------------------------------------------------------------- */

/* An inbound request as a server library keeps it: values with lengths,
 * not NUL-terminated. */
typedef struct {
    const char *name;
    const char *value;
    size_t value_len;
} field_t;

typedef struct {
    const field_t *fields;
    size_t n;
    int calls;
    char asked[8][32];
} request_t;

static void get_header(void *userdata, const char *name, ctx_wire_values_t *values) {
    request_t *r = userdata;
    if (r->calls < 8) snprintf(r->asked[r->calls], sizeof r->asked[0], "%s", name);
    r->calls++;
    for (size_t i = 0; i < r->n; i++)
        if (strcasecmp(r->fields[i].name, name) == 0)
            CHECK_OK(ctx_wire_values_add(values, r->fields[i].value, r->fields[i].value_len));
}

/* An outbound request's headers, as a client library keeps them. */
typedef struct {
    int calls;
    int n;
    char names[8][32];
    char values[8][512];
} sink_t;

static void set_header(void *userdata, const char *name, const char *value) {
    sink_t *s = userdata;
    s->calls++;
    int i = 0;
    while (i < s->n && strcmp(s->names[i], name) != 0) i++;
    if (i == 8) return;
    if (i == s->n) s->n++;
    snprintf(s->names[i], sizeof s->names[i], "%s", name);
    snprintf(s->values[i], sizeof s->values[i], "%s", value);
}

static const char *sink_get(const sink_t *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->values[i];
    return NULL;
}

static const char *headers_get(const ctx_headers_t *h, const char *name) {
    size_t n = 0;
    const ctx_header_t *items = ctx_headers_items(h, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].name, name) == 0) return items[i].value;
    return NULL;
}

static size_t headers_len(const ctx_headers_t *h) {
    size_t n = 99;
    const ctx_header_t *items = ctx_headers_items(h, &n);
    CHECK(items != NULL && items[n].name == NULL && items[n].value == NULL); /* NULL-terminated */
    return n;
}

static ctx_wire_policy_t *policy(int trust) {
    ctx_wire_policy_t *p = NULL;
    REQUIRE_OK(ctx_wire_policy_new(trust, &p));
    return p;
}

static int64_t deadline_of(const ctx_t *ctx) {
    int64_t d = -1;
    CHECK_OK(ctx_deadline(ctx, &d));
    return d;
}

static void test_extract_inject_array(void) {
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    ctx_header_t in[] = {
        {"Request-Timeout-Ms", "15000"},
        {"TRACEPARENT", TP},
        {"tracestate", "rojo=00f067aa0ba902b7"},
        {"tracestate", "congo=t61rcWkgMzE"},
        {"Baggage", "userId=alice"},
        {"x-unrelated", "7"},
    };
    int64_t arrived = ctx_now_ns();
    ctx_t *ctx = NULL;
    ctx_cancel_t *cancel = NULL;
    const char *bad = "untouched";
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), in, 6, internal, CTX_PROTOCOL_HTTP, arrived, &ctx, &cancel,
                                   &bad));
    CHECK_STR(bad, "untouched");
    CHECK(deadline_of(ctx) == arrived + 15 * SEC); /* counted from arrival, exactly */

    ctx_trace_context_t tc, link;
    REQUIRE_OK(ctx_wire_trace_context(ctx, &tc));
    CHECK_STR(trace_hex(&tc), TP_TRACE);
    CHECK(strcmp(span_hex(&tc), TP_SPAN) != 0); /* this hop's own span */
    CHECK(tc.flags == CTX_TRACE_FLAG_SAMPLED);
    CHECK_STATUS(ctx_wire_trace_link(ctx, &link), CTX_ENOTFOUND); /* internal: same trace, no link */

    ctx_tracestate_t *ts = NULL;
    REQUIRE_OK(ctx_wire_tracestate(ctx, &ts));
    CHECK(ctx_tracestate_len(ts) == 2);
    const char *k = NULL, *v = NULL;
    CHECK_OK(ctx_tracestate_get(ts, 1, &k, &v));
    CHECK_STR(k, "congo");
    CHECK_STR(v, "t61rcWkgMzE");
    ctx_tracestate_release(ts);

    ctx_baggage_t *b = NULL;
    REQUIRE_OK(ctx_wire_baggage(ctx, &b));
    const char *val = NULL;
    size_t vlen = 0;
    CHECK_OK(ctx_baggage_find(b, "userId", &val, &vlen));
    CHECK_STR(val, "alice");
    CHECK(vlen == 5);
    CHECK_STATUS(ctx_baggage_find(b, "userid", NULL, NULL), CTX_ENOTFOUND); /* keys are case-sensitive */
    ctx_baggage_release(b);

    /* The downstream gRPC call carries the rest of the budget and the trace. */
    ctx_headers_t *out = NULL;
    REQUIRE_OK(ctx_wire_inject(ctx, internal, CTX_PROTOCOL_GRPC, &out));
    CHECK(headers_len(out) == 4);
    int64_t sent = 0;
    CHECK_OK(ctx_grpc_timeout_parse(headers_get(out, "grpc-timeout"), &sent));
    CHECK(sent > 0 && sent <= 15 * SEC);
    const char *tp = headers_get(out, "traceparent");
    char want[CTX_TRACEPARENT_LEN + 1];
    CHECK_OK(ctx_traceparent_format(&tc, want, sizeof want, NULL));
    CHECK_STR(tp, want);
    CHECK_STR(headers_get(out, "tracestate"), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    CHECK_STR(headers_get(out, "baggage"), "userId=alice");
    CHECK(headers_get(out, "request-timeout-ms") == NULL);

    /* The injected array is an extract's input as it stands. */
    size_t n = 0;
    const ctx_header_t *items = ctx_headers_items(out, &n);
    ctx_t *next = NULL;
    ctx_cancel_t *next_cancel = NULL;
    REQUIRE_OK(ctx_wire_extract(ctx_background(), items, n, internal, CTX_PROTOCOL_GRPC, &next, &next_cancel, NULL));
    ctx_trace_context_t next_tc;
    REQUIRE_OK(ctx_wire_trace_context(next, &next_tc));
    CHECK_STR(trace_hex(&next_tc), TP_TRACE);
    CHECK(deadline_of(next) <= deadline_of(ctx) + SEC);
    ctx_cancel_and_release(next, next_cancel);
    ctx_headers_release(out);

    ctx_cancel_and_release(ctx, cancel);
    ctx_wire_policy_release(internal);
}

static void test_extract_inject_callback(void) {
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    /* Values with lengths, cut from a larger buffer, as an HTTP parser gives them. */
    const char *raw = "25SJUNK" TP "JUNK";
    field_t fields[] = {
        {"Grpc-Timeout", raw, 3},
        {"traceparent", raw + 7, CTX_TRACEPARENT_LEN},
        {"baggage", "a=1", 3},
        {"baggage", "b=2", 3},
    };
    request_t req = {fields, 4, 0, {{0}}};
    int64_t arrived = ctx_now_ns();
    ctx_t *ctx = NULL;
    ctx_cancel_t *cancel = NULL;
    REQUIRE_OK(ctx_wire_extract_cb_at(ctx_background(), get_header, &req, internal, CTX_PROTOCOL_GRPC, arrived, &ctx,
                                      &cancel, NULL));
    CHECK(deadline_of(ctx) == arrived + 25 * SEC);
    CHECK(req.calls >= 4 && req.calls <= 6); /* only the headers polyctx reads */
    for (int i = 0; i < req.calls && i < 8; i++) {
        for (const char *c = req.asked[i]; *c; c++) CHECK(*c < 'A' || *c > 'Z'); /* asked in lowercase */
        CHECK(strcmp(req.asked[i], "x-unrelated") != 0);
    }
    ctx_trace_context_t tc;
    REQUIRE_OK(ctx_wire_trace_context(ctx, &tc));
    CHECK_STR(trace_hex(&tc), TP_TRACE);
    ctx_baggage_t *b = NULL;
    REQUIRE_OK(ctx_wire_baggage(ctx, &b));
    CHECK(ctx_baggage_len(b) == 2); /* two field lines, combined in order */
    ctx_baggage_release(b);

    sink_t sink = {0};
    REQUIRE_OK(ctx_wire_inject_cb(ctx, internal, CTX_PROTOCOL_CONNECT, set_header, &sink));
    CHECK(sink.calls == 3 && sink.n == 3);
    int64_t ms = 0;
    CHECK_OK(ctx_timeout_ms_parse(sink_get(&sink, "connect-timeout-ms"), &ms));
    CHECK(ms > 0 && ms <= 25 * SEC);
    CHECK(sink_get(&sink, "traceparent") != NULL && strstr(sink_get(&sink, "traceparent"), TP_TRACE) != NULL);
    CHECK_STR(sink_get(&sink, "baggage"), "a=1,b=2");
    CHECK(sink_get(&sink, "tracestate") == NULL); /* none came in */

    /* Without arrival time: counted from the call. */
    ctx_t *now_ctx = NULL;
    ctx_cancel_t *now_cancel = NULL;
    req.calls = 0;
    int64_t before = ctx_now_ns();
    REQUIRE_OK(ctx_wire_extract_cb(ctx_background(), get_header, &req, internal, CTX_PROTOCOL_GRPC, &now_ctx,
                                   &now_cancel, NULL));
    int64_t d = deadline_of(now_ctx);
    CHECK(d >= before + 25 * SEC && d <= ctx_now_ns() + 25 * SEC);
    ctx_cancel_and_release(now_ctx, now_cancel);

    ctx_cancel_and_release(ctx, cancel);
    ctx_wire_policy_release(internal);
}

/* Budgets shrink by the time each hop spends, across three hops and three
 * protocols. Arrival times are given, so no test sleeps; the deadlines made
 * are exact, and what is sent is bounded above exactly and below loosely
 * (for slow machines and valgrind). */
static void test_budgets_shrink_hop_by_hop(void) {
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    const int64_t margin = 1 * SEC;
    int64_t t0 = ctx_now_ns();

    /* Hop 1 receives 10 s over plain HTTP; the headers arrived 1.2 s ago. */
    ctx_header_t in[] = {{"request-timeout-ms", "10000"}, {"traceparent", TP}};
    ctx_t *hop1 = NULL;
    ctx_cancel_t *c1 = NULL;
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), in, 2, internal, CTX_PROTOCOL_HTTP, t0 - 1200 * MS, &hop1, &c1,
                                   NULL));
    CHECK(deadline_of(hop1) == t0 + 8800 * MS);

    /* Hop 1 calls hop 2 over gRPC. */
    ctx_headers_t *to2 = NULL;
    REQUIRE_OK(ctx_wire_inject(hop1, internal, CTX_PROTOCOL_GRPC, &to2));
    int64_t sent1 = 0;
    CHECK_OK(ctx_grpc_timeout_parse(headers_get(to2, "grpc-timeout"), &sent1));
    CHECK(sent1 <= 8800 * MS && sent1 > 8800 * MS - margin);

    /* Hop 2 got them 2 s before it extracts. */
    size_t n = 0;
    const ctx_header_t *items = ctx_headers_items(to2, &n);
    int64_t t2 = ctx_now_ns();
    ctx_t *hop2 = NULL;
    ctx_cancel_t *c2 = NULL;
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), items, n, internal, CTX_PROTOCOL_GRPC, t2 - 2 * SEC, &hop2, &c2,
                                   NULL));
    CHECK(deadline_of(hop2) == t2 - 2 * SEC + sent1);
    CHECK(deadline_of(hop2) < deadline_of(hop1));

    /* Hop 2 calls hop 3 over Connect; hop 3 got them 1 s before. */
    sink_t to3 = {0};
    REQUIRE_OK(ctx_wire_inject_cb(hop2, internal, CTX_PROTOCOL_CONNECT, set_header, &to3));
    int64_t sent2 = 0;
    CHECK_OK(ctx_timeout_ms_parse(sink_get(&to3, "connect-timeout-ms"), &sent2));
    CHECK(sent2 < sent1 && sent2 <= 6800 * MS + MS && sent2 > 6800 * MS - 2 * margin);
    ctx_header_t in3[] = {{"connect-timeout-ms", sink_get(&to3, "connect-timeout-ms")},
                          {"traceparent", sink_get(&to3, "traceparent")}};
    int64_t t3 = ctx_now_ns();
    ctx_t *hop3 = NULL;
    ctx_cancel_t *c3 = NULL;
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), in3, 2, internal, CTX_PROTOCOL_CONNECT, t3 - 1 * SEC, &hop3,
                                   &c3, NULL));
    CHECK(deadline_of(hop3) == t3 - 1 * SEC + sent2);
    int64_t left3 = deadline_of(hop3) - ctx_now_ns();
    CHECK(left3 <= 5800 * MS + MS && left3 > 5800 * MS - 3 * margin);

    /* One trace throughout, a new span at each hop, each the parent of the next. */
    ctx_trace_context_t tc1, tc2, tc3, sent_tc;
    REQUIRE_OK(ctx_wire_trace_context(hop1, &tc1));
    REQUIRE_OK(ctx_wire_trace_context(hop2, &tc2));
    REQUIRE_OK(ctx_wire_trace_context(hop3, &tc3));
    CHECK(memcmp(tc1.trace_id, tc3.trace_id, 16) == 0 && memcmp(tc2.trace_id, tc3.trace_id, 16) == 0);
    CHECK(memcmp(tc1.span_id, tc2.span_id, 8) != 0 && memcmp(tc2.span_id, tc3.span_id, 8) != 0);
    const char *tp2 = headers_get(to2, "traceparent");
    CHECK_OK(ctx_traceparent_parse(&tp2, 1, &sent_tc));
    CHECK(memcmp(sent_tc.span_id, tc1.span_id, 8) == 0);

    ctx_headers_release(to2);
    ctx_cancel_and_release(hop3, c3);
    ctx_cancel_and_release(hop2, c2);
    ctx_cancel_and_release(hop1, c1);
    ctx_wire_policy_release(internal);
}

static void test_policies(void) {
    ctx_wire_policy_t *external = policy(CTX_TRUST_EXTERNAL);
    CHECK_OK(ctx_wire_policy_allow_baggage(external, "tenant"));
    CHECK_STATUS(ctx_wire_policy_allow_baggage(external, "bad key"), CTX_EMALFORMED);
    CHECK_STATUS(ctx_wire_policy_allow_baggage(external, ""), CTX_EMALFORMED);
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    int64_t at = ctx_now_ns();
    ctx_t *ctx = NULL;
    ctx_cancel_t *cancel = NULL;

    /* External: a huge budget is clamped to 300 s, the trace restarts with a
     * link, only allowed baggage is kept, tracestate is dropped. */
    ctx_header_t huge[] = {{"request-timeout-ms", "9999999999"},
                           {"traceparent", TP},
                           {"baggage", "tenant=a,user=bob"},
                           {"tracestate", "x=1"}};
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), huge, 4, external, CTX_PROTOCOL_HTTP, at, &ctx, &cancel, NULL));
    CHECK(deadline_of(ctx) == at + 300 * SEC);
    ctx_trace_context_t tc, link;
    REQUIRE_OK(ctx_wire_trace_context(ctx, &tc));
    REQUIRE_OK(ctx_wire_trace_link(ctx, &link));
    CHECK_STR(trace_hex(&link), TP_TRACE);
    CHECK_STR(span_hex(&link), TP_SPAN);
    CHECK(strcmp(trace_hex(&tc), TP_TRACE) != 0); /* a new trace */
    ctx_tracestate_t *ts = NULL;
    REQUIRE_OK(ctx_wire_tracestate(ctx, &ts));
    CHECK(ctx_tracestate_len(ts) == 0);
    ctx_tracestate_release(ts);
    ctx_baggage_t *b = NULL;
    REQUIRE_OK(ctx_wire_baggage(ctx, &b));
    CHECK(ctx_baggage_len(b) == 1);
    CHECK_OK(ctx_baggage_find(b, "tenant", NULL, NULL));
    ctx_baggage_release(b);
    ctx_cancel_and_release(ctx, cancel);

    /* External, nothing sent: 30 s. Internal, nothing sent: no deadline. */
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), NULL, 0, external, CTX_PROTOCOL_GRPC, at, &ctx, &cancel, NULL));
    CHECK(deadline_of(ctx) == at + 30 * SEC);
    ctx_cancel_and_release(ctx, cancel);
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), NULL, 0, internal, CTX_PROTOCOL_GRPC, at, &ctx, &cancel, NULL));
    int64_t d;
    CHECK_STATUS(ctx_deadline(ctx, &d), CTX_ENODEADLINE);
    ctx_cancel_and_release(ctx, cancel);

    /* Adjusted: max 5 s, default 1 s; then no maximum at all. */
    CHECK_OK(ctx_wire_policy_set_max_timeout(external, 5 * SEC));
    CHECK_OK(ctx_wire_policy_set_default_timeout(external, 1 * SEC));
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), huge, 1, external, CTX_PROTOCOL_HTTP, at, &ctx, &cancel, NULL));
    CHECK(deadline_of(ctx) == at + 5 * SEC);
    ctx_cancel_and_release(ctx, cancel);
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), NULL, 0, external, CTX_PROTOCOL_HTTP, at, &ctx, &cancel, NULL));
    CHECK(deadline_of(ctx) == at + 1 * SEC);
    ctx_cancel_and_release(ctx, cancel);
    CHECK_OK(ctx_wire_policy_set_max_timeout(external, -1));
    CHECK_OK(ctx_wire_policy_set_default_timeout(external, INT64_MIN));
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), huge, 1, external, CTX_PROTOCOL_HTTP, at, &ctx, &cancel, NULL));
    CHECK(deadline_of(ctx) == at + 9999999999LL * MS);
    ctx_cancel_and_release(ctx, cancel);
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), NULL, 0, external, CTX_PROTOCOL_HTTP, at, &ctx, &cancel, NULL));
    CHECK_STATUS(ctx_deadline(ctx, &d), CTX_ENODEADLINE);
    ctx_cancel_and_release(ctx, cancel);
    /* A maximum of 0: every request arrives already expired. */
    CHECK_OK(ctx_wire_policy_set_max_timeout(external, 0));
    REQUIRE_OK(ctx_wire_extract(ctx_background(), huge, 1, external, CTX_PROTOCOL_HTTP, &ctx, &cancel, NULL));
    CHECK(ctx_err(ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    ctx_cancel_and_release(ctx, cancel);

    /* Inbound budgets only shorten the parent's. */
    ctx_t *parent = NULL;
    ctx_cancel_t *parent_cancel = NULL;
    REQUIRE_OK(ctx_with_deadline(ctx_background(), at + 100 * MS, &parent, &parent_cancel));
    ctx_header_t long_one[] = {{"request-timeout-ms", "60000"}};
    REQUIRE_OK(ctx_wire_extract_at(parent, long_one, 1, internal, CTX_PROTOCOL_HTTP, at, &ctx, &cancel, NULL));
    CHECK(deadline_of(ctx) == at + 100 * MS);
    ctx_cancel_and_release(ctx, cancel);
    ctx_cancel_and_release(parent, parent_cancel);

    /* Sending to an external destination: the budget and traceparent only. */
    REQUIRE_OK(ctx_wire_extract(ctx_background(), huge, 4, internal, CTX_PROTOCOL_HTTP, &ctx, &cancel, NULL));
    ctx_headers_t *out = NULL;
    REQUIRE_OK(ctx_wire_inject(ctx, external, CTX_PROTOCOL_HTTP, &out));
    CHECK(headers_len(out) == 2);
    CHECK(headers_get(out, "request-timeout-ms") != NULL && headers_get(out, "traceparent") != NULL);
    ctx_headers_release(out);
    REQUIRE_OK(ctx_wire_inject(ctx, internal, CTX_PROTOCOL_HTTP, &out));
    CHECK_STR(headers_get(out, "baggage"), "tenant=a,user=bob");
    CHECK_STR(headers_get(out, "tracestate"), "x=1");
    ctx_headers_release(out);

    /* Trace propagation off (OpenTelemetry owns those headers): budgets only. */
    ctx_wire_policy_t *quiet = policy(CTX_TRUST_INTERNAL);
    CHECK_OK(ctx_wire_policy_set_propagate_trace(quiet, false));
    REQUIRE_OK(ctx_wire_inject(ctx, quiet, CTX_PROTOCOL_GRPC, &out));
    CHECK(headers_len(out) == 1 && headers_get(out, "grpc-timeout") != NULL);
    ctx_headers_release(out);
    ctx_cancel_and_release(ctx, cancel);
    request_t req = {NULL, 0, 0, {{0}}};
    field_t traced[] = {{"traceparent", TP, CTX_TRACEPARENT_LEN}};
    req.fields = traced;
    req.n = 1;
    REQUIRE_OK(ctx_wire_extract_cb(ctx_background(), get_header, &req, quiet, CTX_PROTOCOL_GRPC, &ctx, &cancel, NULL));
    ctx_trace_context_t none;
    CHECK_STATUS(ctx_wire_trace_context(ctx, &none), CTX_ENOTFOUND);
    CHECK(req.calls == 3); /* the timeout headers only: traceparent was never asked for */
    ctx_cancel_and_release(ctx, cancel);

    ctx_wire_policy_release(quiet);
    ctx_wire_policy_release(internal);
    ctx_wire_policy_release(external);
}

static void test_malformed_and_several_timeouts(void) {
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    ctx_header_t headers[] = {{"grpc-timeout", "5S"}, {"connect-timeout-ms", "garbage"}, {"Request-Timeout-Ms", "2000"}};
    int64_t at = ctx_now_ns();
    ctx_t *ctx = NULL;
    ctx_cancel_t *cancel = NULL;
    const char *bad = NULL;
    /* The shortest valid one wins; another protocol's malformed header is ignored. */
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), headers, 3, internal, CTX_PROTOCOL_GRPC, at, &ctx, &cancel, &bad));
    CHECK(deadline_of(ctx) == at + 2 * SEC);
    CHECK(bad == NULL);
    ctx_cancel_and_release(ctx, cancel);
    ctx = NULL, cancel = NULL;
    /* The protocol's own, malformed: an error naming it, nothing made. */
    CHECK_STATUS(ctx_wire_extract(ctx_background(), headers, 3, internal, CTX_PROTOCOL_CONNECT, &ctx, &cancel, &bad),
                 CTX_EMALFORMED);
    CHECK_STR(bad, "connect-timeout-ms");
    CHECK(ctx == NULL && cancel == NULL);
    CHECK_STATUS(ctx_wire_extract(ctx_background(), headers, 3, internal, CTX_PROTOCOL_CONNECT, &ctx, &cancel, NULL),
                 CTX_EMALFORMED); /* bad_header may be NULL */
    ctx_header_t twice[] = {{"grpc-timeout", "1S"}, {"GRPC-TIMEOUT", "2S"}};
    CHECK_STATUS(ctx_wire_extract(ctx_background(), twice, 2, internal, CTX_PROTOCOL_GRPC, &ctx, &cancel, &bad),
                 CTX_EMALFORMED);
    CHECK_STR(bad, "grpc-timeout");
    ctx_header_t http_bad[] = {{"request-timeout-ms", "-1"}};
    CHECK_STATUS(ctx_wire_extract(ctx_background(), http_bad, 1, internal, CTX_PROTOCOL_HTTP, &ctx, &cancel, &bad),
                 CTX_EMALFORMED);
    CHECK_STR(bad, "request-timeout-ms");
    ctx_header_t invalid_utf8[] = {{"grpc-timeout", "\xff" "1S"}};
    CHECK_STATUS(ctx_wire_extract(ctx_background(), invalid_utf8, 1, internal, CTX_PROTOCOL_GRPC, &ctx, &cancel, &bad),
                 CTX_EMALFORMED);
    CHECK(ctx == NULL && cancel == NULL);

    /* An inbound 0 is a budget already spent. */
    ctx_header_t zero[] = {{"grpc-timeout", "0n"}};
    REQUIRE_OK(ctx_wire_extract(ctx_background(), zero, 1, internal, CTX_PROTOCOL_GRPC, &ctx, &cancel, NULL));
    CHECK(ctx_err(ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    ctx_cancel_and_release(ctx, cancel);
    /* A blank header is absent. */
    ctx_header_t blank[] = {{"grpc-timeout", " \t "}};
    REQUIRE_OK(ctx_wire_extract(ctx_background(), blank, 1, internal, CTX_PROTOCOL_GRPC, &ctx, &cancel, NULL));
    int64_t d;
    CHECK_STATUS(ctx_deadline(ctx, &d), CTX_ENODEADLINE);
    ctx_cancel_and_release(ctx, cancel);
    ctx_wire_policy_release(internal);
}

static void test_inject_fails_locally(void) {
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    sink_t sink = {0};
    ctx_headers_t *out = NULL;

    /* A spent budget: CTX_EDEADLINE, nothing written. */
    ctx_t *spent = NULL;
    ctx_cancel_t *spent_cancel = NULL;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 0, &spent, &spent_cancel));
    CHECK_STATUS(ctx_wire_inject_cb(spent, internal, CTX_PROTOCOL_GRPC, set_header, &sink), CTX_EDEADLINE);
    CHECK_STATUS(ctx_wire_inject(spent, internal, CTX_PROTOCOL_HTTP, &out), CTX_EDEADLINE);
    CHECK(sink.calls == 0 && out == NULL);
    ctx_cancel_and_release(spent, spent_cancel);

    /* Past the deadline, before its timer fires: the same. */
    ctx_header_t in[] = {{"grpc-timeout", "1m"}, {"traceparent", TP}};
    ctx_t *ctx = NULL;
    ctx_cancel_t *cancel = NULL;
    REQUIRE_OK(ctx_wire_extract_at(ctx_background(), in, 2, internal, CTX_PROTOCOL_GRPC, ctx_now_ns() - 10 * MS, &ctx,
                                   &cancel, NULL));
    CHECK_STATUS(ctx_wire_inject_cb(ctx, internal, CTX_PROTOCOL_CONNECT, set_header, &sink), CTX_EDEADLINE);
    CHECK_STATUS(ctx_wire_inject(ctx, internal, CTX_PROTOCOL_GRPC, &out), CTX_EDEADLINE);
    CHECK(sink.calls == 0 && out == NULL);
    ctx_cancel_and_release(ctx, cancel);

    /* Canceled: CTX_ECANCELED, nothing written, even with a budget left. */
    ctx_header_t ample[] = {{"grpc-timeout", "10S"}, {"traceparent", TP}};
    REQUIRE_OK(ctx_wire_extract(ctx_background(), ample, 2, internal, CTX_PROTOCOL_GRPC, &ctx, &cancel, NULL));
    ctx_cancel(cancel);
    CHECK_STATUS(ctx_wire_inject_cb(ctx, internal, CTX_PROTOCOL_GRPC, set_header, &sink), CTX_ECANCELED);
    CHECK_STATUS(ctx_wire_inject(ctx, internal, CTX_PROTOCOL_GRPC, &out), CTX_ECANCELED);
    CHECK(sink.calls == 0 && out == NULL);
    ctx_cancel_and_release(ctx, cancel);

    /* Nothing to carry: success, no headers. */
    REQUIRE_OK(ctx_wire_inject(ctx_background(), internal, CTX_PROTOCOL_GRPC, &out));
    CHECK(headers_len(out) == 0);
    ctx_headers_release(out);
    CHECK_OK(ctx_wire_inject_cb(ctx_background(), internal, CTX_PROTOCOL_GRPC, set_header, &sink));
    CHECK(sink.calls == 0);

    /* A budget beyond what grpc-js can hold is sent capped. */
    ctx_t *far = NULL;
    ctx_cancel_t *far_cancel = NULL;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), INT64_MAX, &far, &far_cancel));
    REQUIRE_OK(ctx_wire_inject(far, internal, CTX_PROTOCOL_GRPC, &out));
    CHECK_STR(headers_get(out, "grpc-timeout"), "2147483S");
    ctx_headers_release(out);
    REQUIRE_OK(ctx_wire_inject(far, internal, CTX_PROTOCOL_HTTP, &out));
    CHECK_STR(headers_get(out, "request-timeout-ms"), "2147483000");
    ctx_headers_release(out);
    ctx_cancel_and_release(far, far_cancel);
    ctx_wire_policy_release(internal);
}

static void test_trace_and_baggage_on_contexts(void) {
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    ctx_trace_context_t root, child, got;
    REQUIRE_OK(ctx_trace_context_new_root(&root));
    CHECK(root.flags == (CTX_TRACE_FLAG_SAMPLED | CTX_TRACE_FLAG_RANDOM));
    REQUIRE_OK(ctx_trace_context_child(&root, &child));
    CHECK(memcmp(root.trace_id, child.trace_id, 16) == 0 && memcmp(root.span_id, child.span_id, 8) != 0);
    ctx_trace_context_t other;
    REQUIRE_OK(ctx_trace_context_new_root(&other));
    CHECK(memcmp(root.trace_id, other.trace_id, 16) != 0);
    ctx_trace_context_t same = child;
    REQUIRE_OK(ctx_trace_context_child(&same, &same)); /* in place */
    CHECK(memcmp(same.span_id, child.span_id, 8) != 0);

    ctx_t *traced = NULL;
    REQUIRE_OK(ctx_wire_with_trace_context(ctx_background(), &root, &traced));
    REQUIRE_OK(ctx_wire_trace_context(traced, &got));
    CHECK(memcmp(&got, &root, sizeof got) == 0);
    CHECK_STATUS(ctx_wire_trace_context(ctx_background(), &got), CTX_ENOTFOUND);

    ctx_baggage_t *b = NULL;
    REQUIRE_OK(ctx_baggage_new(&b));
    CHECK_OK(ctx_baggage_set(b, "k", "v w"));
    CHECK_OK(ctx_baggage_set(b, "n", "1"));
    CHECK_OK(ctx_baggage_add_property(b, "k", "p", NULL));
    CHECK_OK(ctx_baggage_add_property(b, "k", "q", "r"));
    CHECK_STATUS(ctx_baggage_add_property(b, "absent", "p", NULL), CTX_ENOTFOUND);
    CHECK_STATUS(ctx_baggage_add_property(b, "k", "bad key", NULL), CTX_EMALFORMED);
    CHECK_STATUS(ctx_baggage_set(b, "bad key", "v"), CTX_EMALFORMED);
    CHECK_STATUS(ctx_baggage_set(b, "", "v"), CTX_EMALFORMED);
    CHECK(ctx_baggage_len(b) == 2);
    ctx_t *with_both = NULL;
    REQUIRE_OK(ctx_wire_with_baggage(traced, b, &with_both));
    ctx_baggage_release(b); /* the context has its own copy */
    REQUIRE_OK(ctx_wire_trace_context(with_both, &got));
    CHECK(memcmp(&got, &root, sizeof got) == 0); /* setting baggage keeps the trace */
    ctx_headers_t *out = NULL;
    REQUIRE_OK(ctx_wire_inject(with_both, internal, CTX_PROTOCOL_HTTP, &out));
    CHECK_STR(headers_get(out, "baggage"), "k=v%20w;p;q=r,n=1");
    char tp[CTX_TRACEPARENT_LEN + 1];
    CHECK_OK(ctx_traceparent_format(&root, tp, sizeof tp, NULL));
    CHECK_STR(headers_get(out, "traceparent"), tp);
    CHECK(headers_get(out, "request-timeout-ms") == NULL); /* no deadline, no timeout */
    ctx_headers_release(out);

    /* Setting a trace keeps the baggage. */
    ctx_t *retraced = NULL;
    REQUIRE_OK(ctx_wire_with_trace_context(with_both, &child, &retraced));
    REQUIRE_OK(ctx_wire_baggage(retraced, &b));
    CHECK(ctx_baggage_len(b) == 2);
    ctx_baggage_release(b);

    /* Editing: replace in place, remove, and values holding a NUL. */
    REQUIRE_OK(ctx_baggage_new(&b));
    CHECK_OK(ctx_baggage_set(b, "a", "1"));
    CHECK_OK(ctx_baggage_set(b, "b", "2"));
    CHECK_OK(ctx_baggage_add_property(b, "a", "p", NULL));
    CHECK_OK(ctx_baggage_set(b, "a", "3"));
    const char *k = NULL, *v = NULL;
    size_t vlen = 0, nprops = 9;
    CHECK_OK(ctx_baggage_get(b, 0, &k, &v, &vlen, &nprops));
    CHECK_STR(k, "a");
    CHECK_STR(v, "3");
    CHECK(nprops == 0); /* set replaces the properties too */
    CHECK_STATUS(ctx_baggage_get(b, 2, &k, NULL, NULL, NULL), CTX_ERANGE);
    CHECK_STATUS(ctx_baggage_property(b, 0, 0, &k, &v, &vlen), CTX_ERANGE);
    CHECK_STATUS(ctx_baggage_property(b, 5, 0, NULL, NULL, NULL), CTX_ERANGE);
    CHECK_OK(ctx_baggage_remove(b, "a"));
    CHECK_STATUS(ctx_baggage_remove(b, "a"), CTX_ENOTFOUND);
    CHECK(ctx_baggage_len(b) == 1);
    CHECK_OK(ctx_baggage_remove(b, "b"));
    size_t len = 7;
    char buf[8] = "xxxxxxx";
    CHECK_STATUS(ctx_baggage_format(b, buf, sizeof buf, &len), CTX_EABSENT);
    CHECK(len == 0 && buf[0] == '\0');
    ctx_baggage_release(b);
    const char *with_nul[] = {"k=a%00b"};
    REQUIRE_OK(ctx_baggage_parse(with_nul, 1, &b));
    CHECK_OK(ctx_baggage_find(b, "k", &v, &vlen));
    CHECK(vlen == 3 && memcmp(v, "a\0b", 4) == 0);
    char back[32];
    CHECK_OK(ctx_baggage_format(b, back, sizeof back, NULL));
    CHECK_STR(back, "k=a%00b");
    ctx_baggage_release(b);
    const char *utf8[] = {"ok=1,bad=\xff,k=%E2%9C%93"};
    REQUIRE_OK(ctx_baggage_parse(utf8, 1, &b));
    CHECK(ctx_baggage_len(b) == 2); /* the raw invalid byte drops its member alone */
    CHECK_OK(ctx_baggage_find(b, "k", &v, NULL));
    CHECK_STR(v, "\xe2\x9c\x93");
    ctx_baggage_release(b);

    /* Tracestate formatting, and one byte off its grammar drops it all. */
    const char *state[] = {"a=1", "b=2"};
    ctx_tracestate_t *ts = NULL;
    REQUIRE_OK(ctx_tracestate_parse(state, 2, &ts));
    CHECK_OK(ctx_tracestate_format(ts, buf, sizeof buf, &len));
    CHECK_STR(buf, "a=1,b=2");
    CHECK(len == 7);
    CHECK_STATUS(ctx_tracestate_get(ts, 2, NULL, NULL), CTX_ERANGE);
    ctx_tracestate_release(ts);
    const char *bad_state[] = {"a=1,b=\xff"};
    ts = NULL;
    CHECK_STATUS(ctx_tracestate_parse(bad_state, 1, &ts), CTX_EMALFORMED);
    CHECK(ts == NULL);

    /* An all-zero id is not a trace context. */
    ctx_trace_context_t zero = root;
    memset(zero.span_id, 0, sizeof zero.span_id);
    ctx_t *none = NULL;
    CHECK_STATUS(ctx_wire_with_trace_context(ctx_background(), &zero, &none), CTX_EMALFORMED);
    CHECK_STATUS(ctx_traceparent_format(&zero, tp, sizeof tp, &len), CTX_EMALFORMED);
    CHECK_STATUS(ctx_trace_context_child(&zero, &got), CTX_EMALFORMED);
    memset(&zero, 0, sizeof zero);
    CHECK_STATUS(ctx_wire_with_trace_context(ctx_background(), &zero, &none), CTX_EMALFORMED);
    CHECK(none == NULL);

    ctx_release(retraced);
    ctx_release(with_both);
    ctx_release(traced);
    ctx_wire_policy_release(internal);
}

static void test_end_reasons(void) {
    struct {
        int reason;
        const char *name, *message, *connect;
        uint32_t grpc;
        uint16_t http;
    } table[] = {
        {CTX_END_CANCELED, "canceled", "context canceled", "canceled", 1, 499},
        {CTX_END_DEADLINE_EXCEEDED, "deadline_exceeded", "context deadline exceeded", "deadline_exceeded", 4, 504},
        {CTX_END_CLIENT_DISCONNECTED, "client_disconnected", "client disconnected", "canceled", 1, 499},
        {CTX_END_PEER_CANCELED, "peer_canceled", "peer canceled the call", "canceled", 1, 499},
        {CTX_END_SERVER_SHUTDOWN, "server_shutdown", "server shutting down", "unavailable", 14, 503},
        {CTX_END_REQUEST_FINISHED, "request_finished", "request finished", "canceled", 1, 499},
    };
    ctx_wire_policy_t *internal = policy(CTX_TRUST_INTERNAL);
    ctx_header_t in[] = {{"grpc-timeout", "10S"}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ctx_end_reason_info_t info;
        REQUIRE_OK(ctx_end_reason_info(table[i].reason, &info));
        CHECK_STR(info.name, table[i].name);
        CHECK_STR(info.message, table[i].message);
        CHECK_STR(info.connect_code, table[i].connect);
        CHECK(info.grpc_code == table[i].grpc && info.http_status == table[i].http);

        /* A request ended for this reason reads it back, as do its children. */
        ctx_t *ctx = NULL, *child = NULL;
        ctx_cancel_t *cancel = NULL, *child_cancel = NULL;
        REQUIRE_OK(ctx_wire_extract(ctx_background(), in, 1, internal, CTX_PROTOCOL_GRPC, &ctx, &cancel, NULL));
        REQUIRE_OK(ctx_with_cancel(ctx, &child, &child_cancel));
        ctx_end_reason_t why = 0;
        CHECK_STATUS(ctx_end_reason(ctx, &why), CTX_ENOTDONE);
        CHECK(why == 0);
        CHECK_OK(ctx_cancel_reason(cancel, table[i].reason));
        CHECK(ctx_err(ctx) == CTX_ERR_CANCELED);
        CHECK_OK(ctx_end_reason(ctx, &why));
        CHECK((int)why == table[i].reason);
        CHECK_OK(ctx_end_reason(child, &why));
        CHECK((int)why == table[i].reason);
        char text[64];
        CHECK_OK(ctx_cause(child, text, sizeof text, NULL, NULL));
        CHECK_STR(text, table[i].message);
        /* Only the first cancellation counts. */
        CHECK_OK(ctx_cancel_reason(cancel, CTX_END_SERVER_SHUTDOWN));
        CHECK_OK(ctx_end_reason(ctx, &why));
        CHECK((int)why == table[i].reason);
        ctx_cancel_and_release(child, child_cancel);
        ctx_cancel_and_release(ctx, cancel);
    }

    /* Without a reason: the context's own error. */
    ctx_t *ctx = NULL;
    ctx_cancel_t *cancel = NULL;
    ctx_end_reason_t why;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 0, &ctx, &cancel));
    CHECK_OK(ctx_end_reason(ctx, &why));
    CHECK(why == CTX_END_DEADLINE_EXCEEDED);
    ctx_cancel_and_release(ctx, cancel);
    REQUIRE_OK(ctx_with_cancel_cause(ctx_background(), &ctx, &cancel));
    ctx_cancel_cause(cancel, "something else", 7);
    CHECK_OK(ctx_end_reason(ctx, &why));
    CHECK(why == CTX_END_CANCELED);
    ctx_cancel_and_release(ctx, cancel);

    /* A handle that takes no cause refuses a reason, and cancels nothing. */
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &ctx, &cancel));
    CHECK_STATUS(ctx_cancel_reason(cancel, CTX_END_CLIENT_DISCONNECTED), CTX_EKIND);
    CHECK(!ctx_is_done(ctx));
    /* Not a reason at all. */
    int bad[] = {0, -1, 7, INT_MAX, INT_MIN};
    ctx_end_reason_info_t info;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(ctx_cancel_reason(cancel, bad[i]), CTX_EINVAL);
        CHECK_STATUS(ctx_end_reason_info(bad[i], &info), CTX_EINVAL);
    }
    CHECK(!ctx_is_done(ctx));
    ctx_cancel_and_release(ctx, cancel);
    ctx_wire_policy_release(internal);
}

static void test_codecs_edges(void) {
    int64_t ns = 42;
    char buf[32];
    size_t len = 99;
    CHECK_OK(ctx_grpc_timeout_parse("99999999H", &ns));
    CHECK(ns == INT64_MAX);
    CHECK_STATUS(ctx_grpc_timeout_parse("\xff", &ns), CTX_EMALFORMED);
    CHECK_STATUS(ctx_timeout_ms_parse("12345678901", &ns), CTX_EMALFORMED);
    CHECK_STATUS(ctx_timeout_ms_parse("", &ns), CTX_EABSENT);
    CHECK(ns == INT64_MAX); /* untouched by the failures */
    CHECK_STATUS(ctx_grpc_timeout_format(INT64_MIN, buf, sizeof buf, &len), CTX_EABSENT);
    CHECK(len == 0 && buf[0] == '\0');
    CHECK_STATUS(ctx_timeout_ms_format(-1, NULL, 0, NULL), CTX_EABSENT);
    CHECK_OK(ctx_timeout_ms_format(1, buf, sizeof buf, &len));
    CHECK_STR(buf, "1");
    CHECK_OK(ctx_grpc_timeout_format(INT64_MAX, buf, CTX_TIMEOUT_MAX_LEN + 1, &len));
    CHECK_OK(ctx_timeout_ms_format(INT64_MAX, buf, CTX_TIMEOUT_MAX_LEN + 1, &len));
    CHECK(len == CTX_TIMEOUT_MAX_LEN);
    /* A huge header is read without trouble (and is malformed). */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    if (!huge) abort();
    memset(huge, '9', big);
    huge[big] = '\0';
    CHECK_STATUS(ctx_grpc_timeout_parse(huge, &ns), CTX_EMALFORMED);
    const char *huge_values[] = {huge, huge};
    ctx_trace_context_t tc;
    CHECK_STATUS(ctx_traceparent_parse(huge_values, 2, &tc), CTX_EABSENT);
    ctx_tracestate_t *ts = NULL;
    CHECK_STATUS(ctx_tracestate_parse(huge_values, 2, &ts), CTX_EMALFORMED);
    ctx_baggage_t *b = NULL;
    REQUIRE_OK(ctx_baggage_parse(huge_values, 2, &b));
    CHECK(ctx_baggage_len(b) == 0);
    ctx_baggage_release(b);
    free(huge);
    /* Many members: the first 64 are sent. */
    REQUIRE_OK(ctx_baggage_new(&b));
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(ctx_baggage_set(b, key, "v"));
    }
    CHECK(ctx_baggage_len(b) == 100);
    char *text = malloc(4096);
    if (!text) abort();
    CHECK_OK(ctx_baggage_format(b, text, 4096, &len));
    ctx_baggage_t *again = NULL;
    REQUIRE_OK(ctx_baggage_parse((const char *const *)&text, 1, &again));
    CHECK(ctx_baggage_len(again) == 64);
    ctx_baggage_release(again);
    free(text);
    ctx_baggage_release(b);
}

static void add_in_callback(void *userdata, const char *name, ctx_wire_values_t *values) {
    int *calls = userdata;
    (*calls)++;
    (void)name;
    CHECK_STATUS(ctx_wire_values_add(NULL, "1S", 2), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_values_add(values, NULL, 2), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_values_add(values, "x", SIZE_MAX), CTX_ERANGE);
    CHECK_OK(ctx_wire_values_add(values, NULL, 0)); /* an empty value: absent */
}

static void test_bad_input(void) {
    ctx_t *bg = ctx_background(), *c = NULL;
    ctx_cancel_t *k = NULL;
    ctx_wire_policy_t *p = policy(CTX_TRUST_INTERNAL), *p2 = NULL;
    ctx_header_t h[] = {{"grpc-timeout", "1S"}};
    ctx_header_t null_name[] = {{NULL, "1S"}};
    ctx_header_t null_value[] = {{"grpc-timeout", NULL}};
    const char *bad = NULL;
    int64_t ns = 5;
    char buf[8];
    size_t n = 3;
    ctx_trace_context_t tc;
    ctx_tracestate_t *ts = NULL;
    ctx_baggage_t *b = NULL;
    ctx_headers_t *out = NULL;
    ctx_end_reason_t why;
    sink_t sink = {0};
    int calls = 0;

    ctx_wire_policy_release(NULL);
    ctx_baggage_release(NULL);
    ctx_tracestate_release(NULL);
    ctx_headers_release(NULL);
    CHECK(ctx_headers_items(NULL, &n) == NULL && n == 3);
    CHECK(ctx_tracestate_len(NULL) == 0 && ctx_baggage_len(NULL) == 0);

    CHECK_STATUS(ctx_wire_policy_new(CTX_TRUST_INTERNAL, NULL), CTX_EINVAL);
    int bad_enums[] = {0, 3, 4, -1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_enums / sizeof bad_enums[0]; i++) {
        CHECK_STATUS(ctx_wire_policy_new(bad_enums[i], &p2), CTX_EINVAL);
        if (bad_enums[i] == CTX_PROTOCOL_HTTP) continue; /* a trust, no protocol */
        CHECK_STATUS(ctx_wire_extract(bg, h, 1, p, bad_enums[i], &c, &k, &bad), CTX_EINVAL);
        CHECK_STATUS(ctx_wire_extract_cb(bg, get_header, NULL, p, bad_enums[i], &c, &k, &bad), CTX_EINVAL);
        CHECK_STATUS(ctx_wire_inject(bg, p, bad_enums[i], &out), CTX_EINVAL);
        CHECK_STATUS(ctx_wire_inject_cb(bg, p, bad_enums[i], set_header, &sink), CTX_EINVAL);
    }
    CHECK(p2 == NULL);
    CHECK_STATUS(ctx_wire_policy_set_max_timeout(NULL, 1), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_policy_set_default_timeout(NULL, 1), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_policy_allow_baggage(NULL, "k"), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_policy_allow_baggage(p, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_policy_set_propagate_trace(NULL, true), CTX_EINVAL);

    CHECK_STATUS(ctx_wire_extract(NULL, h, 1, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, NULL, 1, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, h, 1, NULL, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, h, 1, p, CTX_PROTOCOL_GRPC, NULL, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, h, 1, p, CTX_PROTOCOL_GRPC, &c, NULL, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, null_name, 1, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, null_value, 1, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract(bg, h, SIZE_MAX, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_ERANGE);
    CHECK_STATUS(ctx_wire_extract_at(NULL, h, 1, p, CTX_PROTOCOL_GRPC, 0, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract_at(bg, h, SIZE_MAX / 2, p, CTX_PROTOCOL_GRPC, 0, &c, &k, &bad), CTX_ERANGE);
    CHECK_STATUS(ctx_wire_extract_cb(NULL, get_header, NULL, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract_cb(bg, NULL, NULL, p, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract_cb(bg, get_header, NULL, NULL, CTX_PROTOCOL_GRPC, &c, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract_cb(bg, get_header, NULL, p, CTX_PROTOCOL_GRPC, NULL, &k, &bad), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_extract_cb_at(bg, get_header, NULL, p, CTX_PROTOCOL_GRPC, 0, &c, NULL, &bad), CTX_EINVAL);
    CHECK(c == NULL && k == NULL && bad == NULL);
    /* Bad calls inside the callback are refused; the extract goes on. */
    REQUIRE_OK(ctx_wire_extract_cb(bg, add_in_callback, &calls, p, CTX_PROTOCOL_GRPC, &c, &k, NULL));
    CHECK(calls >= 3);
    ctx_cancel_and_release(c, k);
    c = NULL, k = NULL;
    /* Absurd arrival times: long past, far future. */
    REQUIRE_OK(ctx_wire_extract_at(bg, h, 1, p, CTX_PROTOCOL_GRPC, INT64_MIN, &c, &k, NULL));
    CHECK(ctx_err(c) == CTX_ERR_DEADLINE_EXCEEDED);
    ctx_cancel_and_release(c, k);
    REQUIRE_OK(ctx_wire_extract_at(bg, h, 1, p, CTX_PROTOCOL_GRPC, INT64_MAX, &c, &k, NULL));
    CHECK(!ctx_is_done(c));
    ctx_cancel_and_release(c, k);
    c = NULL, k = NULL;

    CHECK_STATUS(ctx_wire_inject(NULL, p, CTX_PROTOCOL_GRPC, &out), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_inject(bg, NULL, CTX_PROTOCOL_GRPC, &out), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_inject(bg, p, CTX_PROTOCOL_GRPC, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_inject_cb(NULL, p, CTX_PROTOCOL_GRPC, set_header, &sink), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_inject_cb(bg, NULL, CTX_PROTOCOL_GRPC, set_header, &sink), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_inject_cb(bg, p, CTX_PROTOCOL_GRPC, NULL, &sink), CTX_EINVAL);
    CHECK(out == NULL && sink.calls == 0);
    CHECK_STATUS(ctx_wire_values_add(NULL, "x", 1), CTX_EINVAL);

    CHECK_STATUS(ctx_grpc_timeout_parse(NULL, &ns), CTX_EINVAL);
    CHECK_STATUS(ctx_grpc_timeout_parse("1S", NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_timeout_ms_parse(NULL, &ns), CTX_EINVAL);
    CHECK_STATUS(ctx_timeout_ms_parse("1", NULL), CTX_EINVAL);
    CHECK(ns == 5);
    CHECK_STATUS(ctx_grpc_timeout_format(SEC, NULL, 8, &n), CTX_EINVAL);
    CHECK_STATUS(ctx_timeout_ms_format(SEC, NULL, 8, &n), CTX_EINVAL);
    CHECK(n == 3);
    const char *null_value_list[] = {TP, NULL};
    CHECK_STATUS(ctx_traceparent_parse(null_value_list, 2, &tc), CTX_EINVAL);
    CHECK_STATUS(ctx_traceparent_parse(NULL, 1, &tc), CTX_EINVAL);
    CHECK_STATUS(ctx_traceparent_parse(null_value_list, SIZE_MAX, &tc), CTX_ERANGE);
    CHECK_STATUS(ctx_traceparent_parse(NULL, 0, &tc), CTX_EABSENT);
    CHECK_STATUS(ctx_traceparent_parse(null_value_list, 1, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_traceparent_format(NULL, buf, sizeof buf, &n), CTX_EINVAL);
    REQUIRE_OK(ctx_trace_context_new_root(&tc));
    CHECK_STATUS(ctx_traceparent_format(&tc, NULL, 1, &n), CTX_EINVAL);
    CHECK_STATUS(ctx_trace_context_new_root(NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_trace_context_child(NULL, &tc), CTX_EINVAL);
    CHECK_STATUS(ctx_trace_context_child(&tc, NULL), CTX_EINVAL);

    CHECK_STATUS(ctx_tracestate_parse(null_value_list, 2, &ts), CTX_EINVAL);
    CHECK_STATUS(ctx_tracestate_parse(NULL, 3, &ts), CTX_EINVAL);
    CHECK_STATUS(ctx_tracestate_parse(null_value_list, SIZE_MAX, &ts), CTX_ERANGE);
    CHECK_STATUS(ctx_tracestate_parse(NULL, 0, NULL), CTX_EINVAL);
    CHECK(ts == NULL);
    CHECK_STATUS(ctx_tracestate_get(NULL, 0, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_tracestate_format(NULL, buf, sizeof buf, &n), CTX_EINVAL);
    REQUIRE_OK(ctx_tracestate_parse(NULL, 0, &ts));
    CHECK_STATUS(ctx_tracestate_format(ts, NULL, 4, &n), CTX_EINVAL);
    CHECK_STATUS(ctx_tracestate_get(ts, SIZE_MAX, NULL, NULL), CTX_ERANGE);
    ctx_tracestate_release(ts);

    CHECK_STATUS(ctx_baggage_new(NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_parse(null_value_list, 2, &b), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_parse(NULL, 1, &b), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_parse(null_value_list, SIZE_MAX, &b), CTX_ERANGE);
    CHECK_STATUS(ctx_baggage_parse(NULL, 0, NULL), CTX_EINVAL);
    CHECK(b == NULL);
    CHECK_STATUS(ctx_baggage_get(NULL, 0, NULL, NULL, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_property(NULL, 0, 0, NULL, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_find(NULL, "k", NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_set(NULL, "k", "v"), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_add_property(NULL, "k", "p", NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_remove(NULL, "k"), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_format(NULL, buf, sizeof buf, &n), CTX_EINVAL);
    REQUIRE_OK(ctx_baggage_new(&b));
    CHECK_STATUS(ctx_baggage_find(b, NULL, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_set(b, NULL, "v"), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_set(b, "k", NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_add_property(b, NULL, "p", NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_add_property(b, "k", NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_remove(b, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_baggage_format(b, NULL, 4, &n), CTX_EINVAL);
    CHECK(ctx_baggage_len(b) == 0);

    CHECK_STATUS(ctx_wire_trace_context(NULL, &tc), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_trace_context(bg, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_trace_link(NULL, &tc), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_trace_link(bg, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_tracestate(NULL, &ts), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_tracestate(bg, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_baggage(NULL, &b), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_baggage(bg, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_with_trace_context(NULL, &tc, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_with_trace_context(bg, NULL, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_with_trace_context(bg, &tc, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_with_baggage(NULL, b, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_with_baggage(bg, NULL, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_wire_with_baggage(bg, b, NULL), CTX_EINVAL);
    CHECK(c == NULL);
    ctx_baggage_release(b);

    CHECK_STATUS(ctx_cancel_reason(NULL, CTX_END_CANCELED), CTX_EINVAL);
    CHECK_STATUS(ctx_end_reason(NULL, &why), CTX_EINVAL);
    CHECK_STATUS(ctx_end_reason(bg, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_end_reason_info(CTX_END_CANCELED, NULL), CTX_EINVAL);
    ctx_wire_policy_release(p);
}

int main(void) {
    test_vectors();
    test_extract_inject_array();
    test_extract_inject_callback();
    test_budgets_shrink_hop_by_hop();
    test_policies();
    test_malformed_and_several_timeouts();
    test_inject_fails_locally();
    test_trace_and_baggage_on_contexts();
    test_end_reasons();
    test_codecs_edges();
    test_bad_input();
    return check_summary("test_wire");
}
