// Command gobackend is the demo's Go service: plain net/http and Go's own
// context, no polyctx. It reads the budget its caller sent (the
// request-timeout-ms header polyctx writes, or gRPC's grpc-timeout form in
// milliseconds), shrinks its context to it, keeps the caller's trace id, and
// does work that honours the context. It prints one JSON line per event
// (the demo's timeline) and serves /stats (work in flight).
//
//	gobackend -addr 127.0.0.1:0 -work 300ms
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	inFlight atomic.Int64
	served   atomic.Int64
	stopped  atomic.Int64
	out      sync.Mutex
)

func emit(fields map[string]any) {
	fields["hop"] = "go"
	line, _ := json.Marshal(fields)
	out.Lock()
	defer out.Unlock()
	fmt.Println(string(line))
}

// budget is what the caller sent: request-timeout-ms (plain HTTP), the
// shortest valid one if it sent several; false if none.
func budget(r *http.Request) (time.Duration, bool) {
	v := strings.TrimSpace(r.Header.Get("request-timeout-ms"))
	if v == "" || len(v) > 10 {
		return 0, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// traceID is the trace id of a valid W3C traceparent, or "".
func traceID(r *http.Request) string {
	parts := strings.Split(strings.TrimSpace(r.Header.Get("traceparent")), "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	work := flag.Duration("work", 300*time.Millisecond, "how long a search takes")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/search", func(w http.ResponseWriter, r *http.Request) {
		// r.Context() ends when the client goes away; the caller's budget
		// shortens it further, counted from when the request arrived.
		ctx := r.Context()
		left, ok := budget(r)
		if ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, left)
			defer cancel()
		}
		trace := traceID(r)
		inFlight.Add(1)
		defer inFlight.Add(-1)
		emit(map[string]any{"event": "start", "budget_ms": left.Milliseconds(), "has_budget": ok, "trace": trace})
		started := time.Now()
		took := *work
		if r.URL.Query().Get("slow") == "go" {
			took = 5 * time.Second // the slow backend of the demo's second request
		}
		select {
		case <-time.After(took):
			served.Add(1)
			emit(map[string]any{"event": "done", "elapsed_ms": time.Since(started).Milliseconds(), "trace": trace})
			fmt.Fprintf(w, "go: %d results for %q\n", 3, r.URL.Query().Get("q"))
		case <-ctx.Done():
			stopped.Add(1)
			emit(map[string]any{"event": "stopped", "elapsed_ms": time.Since(started).Milliseconds(), "why": context.Cause(ctx).Error(), "trace": trace})
			http.Error(w, ctx.Err().Error(), http.StatusGatewayTimeout)
		}
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]int64{
			"in_flight":  inFlight.Load(),
			"served":     served.Load(),
			"stopped":    stopped.Load(),
			"goroutines": int64(runtime.NumGoroutine()),
		})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobackend:", err)
		os.Exit(1)
	}
	server := &http.Server{Handler: mux}
	emit(map[string]any{"event": "listening", "port": ln.Addr().(*net.TCPAddr).Port})
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		server.Shutdown(ctx)
	}()
	if err := server.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "gobackend:", err)
		os.Exit(1)
	}
}
