// Command interop is the Go side of the polyctx interop tests: a Go client
// and server, written the way a Go service is (net/http, grpc-go, the
// standard context package), talking to polyctx services on loopback.
//
//	interop serve                       HTTP and gRPC servers; prints their addresses, then one JSON line per call
//	interop call-http URL MS SLEEP_MS   GET URL with a context.WithTimeout(MS) budget, after SLEEP_MS of work
//	interop call-grpc ADDR MS SLEEP_MS SERVICE   grpc.health.v1 Check the same way
//	interop raw-0n URL PATH             one request carrying grpc-timeout "0n" over h2c (what grpc-go's encoder gives for no time left)
//
// Every command prints JSON on stdout; `serve` runs until stdin closes.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

func emit(v any) {
	outMu.Lock()
	defer outMu.Unlock()
	if err := out.Encode(v); err != nil {
		panic(err)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: interop serve | call-http | call-grpc | raw-0n")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		serve()
	case "call-http":
		callHTTP(args[0], atoi(args[1]), atoi(args[2]))
	case "call-grpc":
		callGRPC(args[0], atoi(args[1]), atoi(args[2]), args[3])
	case "raw-0n":
		raw0n(args[0], args[1])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// budgetHeader is what a Go client writes for a plain HTTP call: the time
// left in its context, in whole milliseconds rounded up.
func budgetHeader(ctx context.Context, req *http.Request) {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		req.Header.Set("Request-Timeout-Ms", strconv.FormatInt(int64((left+time.Millisecond-1)/time.Millisecond), 10))
	}
}

func callHTTP(url string, budgetMs, sleepMs int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(budgetMs)*time.Millisecond)
	defer cancel()
	start := time.Now()
	time.Sleep(time.Duration(sleepMs) * time.Millisecond) // this hop's own work
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	budgetHeader(ctx, req)
	result := map[string]any{"sent": req.Header.Get("Request-Timeout-Ms")}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		result["error"] = err.Error()
		result["deadline_exceeded"] = ctx.Err() == context.DeadlineExceeded
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result["status"] = resp.StatusCode
		result["body"] = string(body)
	}
	result["elapsed_ms"] = ms(time.Since(start))
	emit(result)
}

func callGRPC(addr string, budgetMs, sleepMs int, service string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(budgetMs)*time.Millisecond)
	defer cancel()
	start := time.Now()
	time.Sleep(time.Duration(sleepMs) * time.Millisecond)
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	emit(map[string]any{"code": status.Code(err).String(), "elapsed_ms": ms(time.Since(start))})
}

// raw0n sends one gRPC request over cleartext HTTP/2 by hand, with
// grpc-timeout "0n", and reports the grpc-status (or HTTP status) it gets.
func raw0n(base, path string) {
	transport := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	// An empty HealthCheckRequest: the 5-byte gRPC frame header, no message bytes.
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Grpc-Timeout", "0n")
	resp, err := transport.RoundTrip(req)
	if err != nil {
		emit(map[string]any{"error": err.Error()})
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	grpcStatus := resp.Trailer.Get("Grpc-Status")
	if grpcStatus == "" {
		grpcStatus = resp.Header.Get("Grpc-Status") // a trailers-only response
	}
	emit(map[string]any{"http_status": resp.StatusCode, "grpc_status": grpcStatus})
}

type health struct {
	grpc_health_v1.UnimplementedHealthServer
}

// Check reports the budget grpc-go made of the caller's grpc-timeout.
func (health) Check(ctx context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	call := map[string]any{"kind": "grpc", "service": req.Service}
	if dl, ok := ctx.Deadline(); ok {
		call["remaining_ms"] = ms(time.Until(dl))
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		call["traceparent"] = md.Get("traceparent")
		call["baggage"] = md.Get("baggage")
	}
	emit(call)
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

// budget reads the budget a caller sent the way a Go service would: into
// its own context.
func budget(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	call := map[string]any{"kind": "http", "header": r.Header.Get("Request-Timeout-Ms"), "traceparent": r.Header.Values("Traceparent")}
	if v, err := strconv.Atoi(r.Header.Get("Request-Timeout-Ms")); err == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(v)*time.Millisecond)
		defer cancel()
	}
	if dl, ok := ctx.Deadline(); ok {
		call["remaining_ms"] = ms(time.Until(dl))
	}
	emit(call)
	w.WriteHeader(http.StatusOK)
}

func serve() {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/budget", budget)
	httpServer := &http.Server{Handler: mux}
	grpcServer := grpc.NewServer()
	grpc_health_v1.RegisterHealthServer(grpcServer, health{})
	go httpServer.Serve(httpLn)
	go grpcServer.Serve(grpcLn)
	emit(map[string]string{"http": httpLn.Addr().String(), "grpc": grpcLn.Addr().String()})
	// Until the test closes our stdin.
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	grpcServer.Stop()
	httpServer.Close()
}
