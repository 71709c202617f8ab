/* A request crosses services: its budget and trace arrive in headers, the
 * downstream call carries what is left of them, and when the client goes
 * away the request ends saying why.
 *
 *   cc wire.c $(pkg-config --cflags --libs ctx) -o wire */
#include <ctx.h>
#include <stdio.h>

/* Outbound headers go straight into the client library's own structure. */
static void set_header(void *userdata, const char *name, const char *value) {
    (void)userdata;
    printf("  %s: %s\n", name, value);
}

int main(void) {
    /* Inbound headers as an HTTP parser hands them over, and when they came. */
    int64_t arrived = ctx_now_ns();
    ctx_header_t in[] = {
        {"Request-Timeout-Ms", "1500"},
        {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"baggage", "tenant=acme,user=bob"},
    };

    /* Strangers reach this listener: clamp budgets, keep allowed baggage only.
     * The backend is ours: everything flows. */
    ctx_wire_policy_t *listener = NULL, *backend = NULL;
    if (ctx_wire_policy_new(CTX_TRUST_EXTERNAL, &listener) != CTX_OK ||
        ctx_wire_policy_allow_baggage(listener, "tenant") != CTX_OK ||
        ctx_wire_policy_new(CTX_TRUST_INTERNAL, &backend) != CTX_OK)
        return 1;

    ctx_t *req = NULL;
    ctx_cancel_t *end_req = NULL;
    const char *bad = NULL;
    ctx_status_t s = ctx_wire_extract_at(ctx_background(), in, 3, listener, CTX_PROTOCOL_HTTP, arrived,
                                         &req, &end_req, &bad);
    if (s == CTX_EMALFORMED) {
        printf("400 Bad Request: malformed %s\n", bad);
        return 1;
    }
    if (s != CTX_OK) return 1;

    /* The gRPC call to the backend carries the rest of the budget, the trace
     * (restarted here: the caller's is kept as a link) and the allowed baggage.
     * With no time left it fails here, and nothing is sent. */
    printf("calling the backend with:\n");
    s = ctx_wire_inject_cb(req, backend, CTX_PROTOCOL_GRPC, set_header, NULL);
    if (s == CTX_EDEADLINE || s == CTX_ECANCELED) printf("not sent: %s\n", ctx_strerror(s));

    /* The client disconnects: end the request saying why, and answer accordingly. */
    ctx_cancel_reason(end_req, CTX_END_CLIENT_DISCONNECTED);
    ctx_end_reason_t why = CTX_END_CANCELED;
    ctx_end_reason_info_t info = {0};
    ctx_end_reason(req, &why);
    ctx_end_reason_info(why, &info);
    printf("request ended: %s (HTTP %u, gRPC %u, Connect \"%s\")\n", info.message,
           (unsigned)info.http_status, (unsigned)info.grpc_code, info.connect_code);

    ctx_cancel_and_release(req, end_req);
    ctx_wire_policy_release(backend);
    ctx_wire_policy_release(listener);
    return s == CTX_OK && info.http_status == 499 ? 0 : 1;
}
