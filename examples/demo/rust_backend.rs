//! The demo's Rust service: a plain HTTP/1.1 server on std's sockets, with
//! polyctx's core used directly. It takes the budget, trace and baggage its
//! caller sent (`polyctx::wire::extract`), does work that honours the
//! context, stops the moment the client hangs up (a thread watching the
//! socket cancels with the client-disconnected reason), prints one JSON line
//! per event (the demo's timeline) and serves /stats (work in flight).
//!
//! cargo run -p polyctx --example demo-backend -- [port] [work-ms]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use polyctx::wire::{self, EndReason, Policy, Protocol};
use polyctx::{clock, debug, patterns, stats, Context};

static IN_FLIGHT: AtomicI64 = AtomicI64::new(0);
static SERVED: AtomicI64 = AtomicI64::new(0);
static STOPPED: AtomicI64 = AtomicI64::new(0);

fn emit(line: String) {
    // One write per line, so that threads never interleave a line.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{{\"hop\":\"rust\",{line}}}\n").as_bytes());
    let _ = out.flush();
}

struct Request {
    path: String,
    headers: Vec<(String, String)>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Some(Request { path, headers })
}

fn respond(mut stream: &TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

fn handle(stream: TcpStream, work: Duration) {
    let arrived = clock::now_ns();
    let Some(request) = read_request(&stream) else { return };
    if request.path.starts_with("/stats") {
        let body = format!(
            "{{\"in_flight\":{},\"served\":{},\"stopped\":{},\"deadlines_armed\":{},\"after_func_threads\":{},\"live_contexts\":{}}}",
            IN_FLIGHT.load(Ordering::SeqCst),
            SERVED.load(Ordering::SeqCst),
            STOPPED.load(Ordering::SeqCst),
            stats::pending_deadlines(),
            stats::after_func_threads(),
            debug::snapshot().len(),
        );
        return respond(&stream, "200 OK", &body);
    }
    // The request's context: the caller's budget counted from arrival, its
    // trace continued.
    let (ctx, cancel) = match wire::extract_at(
        &Context::background(),
        &request.headers,
        &Policy::internal(),
        Protocol::Http,
        arrived,
    ) {
        Ok(pair) => pair,
        Err(e) => return respond(&stream, "400 Bad Request", &e.to_string()),
    };
    let trace = wire::propagation(&ctx)
        .and_then(|p| p.trace)
        .map(|t| t.trace_id_hex())
        .unwrap_or_default();
    let budget_ms = ctx
        .deadline_ns()
        .map_or(-1, |d| (d.saturating_sub(clock::now_ns()) / 1_000_000) as i64);
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    emit(format!(
        "\"event\":\"start\",\"budget_ms\":{budget_ms},\"trace\":\"{trace}\""
    ));

    // The client hanging up ends the request: a thread watches the socket.
    let watcher = stream.try_clone().ok().map(|mut s| {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            // Returns 0 (EOF) or an error once the client closes; a shutdown
            // of our own reading half (after the response) ends it too.
            if matches!(s.read(&mut byte), Ok(0) | Err(_)) {
                cancel.cancel(Some(EndReason::ClientDisconnected.cause()));
            }
        })
    });

    // The slow backend of the demo's second request, when asked to be.
    let work = if request.path.contains("slow=rust") {
        Duration::from_secs(5)
    } else {
        work
    };
    let started = Instant::now();
    let outcome = patterns::sleep(&ctx, work);
    let elapsed = started.elapsed().as_millis();
    match outcome {
        Ok(()) => {
            SERVED.fetch_add(1, Ordering::SeqCst);
            emit(format!(
                "\"event\":\"done\",\"elapsed_ms\":{elapsed},\"trace\":\"{trace}\""
            ));
            respond(&stream, "200 OK", "rust: 3 results\n");
        }
        Err(_) => {
            STOPPED.fetch_add(1, Ordering::SeqCst);
            let why = polyctx::cause(&ctx).map(|c| c.to_string()).unwrap_or_default();
            emit(format!(
                "\"event\":\"stopped\",\"elapsed_ms\":{elapsed},\"why\":\"{why}\",\"trace\":\"{trace}\""
            ));
            let status = match EndReason::of(&ctx).map(EndReason::http_status) {
                Some(504) => "504 Gateway Timeout",
                _ => "499 Client Closed Request",
            };
            respond(&stream, status, &why);
        }
    }
    cancel.cancel(Some(EndReason::RequestFinished.cause()));
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
    if let Some(w) = watcher {
        let _ = w.join();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let work = Duration::from_millis(args.next().and_then(|w| w.parse().ok()).unwrap_or(200));
    debug::track(true); // /stats reports the live contexts: none once a request ends
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    emit(format!(
        "\"event\":\"listening\",\"port\":{}",
        listener.local_addr().unwrap().port()
    ));
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || handle(stream, work));
    }
}
