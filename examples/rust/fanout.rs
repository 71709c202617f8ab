//! The article's leaky fan-out, fixed with polyctx: one request deadline,
//! five downstream calls, and every slow call stops the moment it passes.
//!
//! Run with `make demo` or `cargo run -p polyctx --example fanout`.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use polyctx::{cause, patterns, with_timeout_cause, with_value, Cause, Context, Error, Key};

static TRACE_ID: LazyLock<Key<String>> = LazyLock::new(|| Key::new("trace-id"));

/// A downstream call that listens to its context, as every I/O should.
fn fetch(ctx: &Context, latency: Duration) -> Result<&'static str, Error> {
    if ctx.wait_timeout(latency) {
        return Err(ctx.err().expect("done"));
    }
    Ok("ok")
}

fn main() {
    let start = Instant::now();
    let at = move || format!("[{:>4} ms]", start.elapsed().as_millis());
    let request = with_value(&Context::background(), &TRACE_ID, "4bf92f3577b34da6".to_string());
    let (ctx, cancel) = with_timeout_cause(
        &request,
        Duration::from_millis(150),
        Cause::msg("request budget of 150ms spent"),
    );
    let _cancel = cancel.guard(); // Go's `defer cancel()`

    let trace = ctx.value(&TRACE_ID).expect("set above");
    println!("rust: request {trace} fans out to 5 services under a 150 ms deadline");
    let services = [
        ("auth", 20),
        ("profile", 60),
        ("search", 400),
        ("ads", 900),
        ("recommend", 2000),
    ];
    // A group: it returns only when every call has finished or stopped.
    let outcome: Result<(), Error> = patterns::scope(&ctx, None, |group| {
        for (name, ms) in services {
            group.spawn(move |ctx| {
                let outcome = fetch(ctx, Duration::from_millis(ms));
                match outcome {
                    Ok(v) => println!("{} {name:<9} answered {v} (needed {ms} ms)", at()),
                    Err(e) => println!(
                        "{} {name:<9} stopped: {e} ({}), would have needed {ms} ms",
                        at(),
                        cause(ctx).unwrap()
                    ),
                }
                // Partial results are the point: a slow call is not an error
                // that should cancel its siblings.
                Ok(())
            });
        }
    });
    outcome.expect("no call failed");
    println!("{} calls still running: 0 (the group waited for every one)", at());
}
