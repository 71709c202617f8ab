//! Core benchmarks: polyctx beside tokio-util's CancellationToken, printed as
//! JSON lines that bench/run.py turns into the side-by-side table.
//! `--quick` runs fewer, shorter repetitions.

mod cabi;
mod harness;
mod memory;
mod ops;
mod threads;

use std::time::Duration;

use harness::Bench;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        // A plain loop of one operation, for callgrind or perf.
        return ops::profile(args.get(i + 1).map_or("", String::as_str));
    }
    if let Some(i) = args.iter().position(|a| a == "--memory-of") {
        let count = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
        return ops::memory_of(args.get(i + 1).map_or("", String::as_str), count);
    }
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(i) = args.iter().position(|a| a == "--lateness") {
        // One machine state (idle, loaded), labelled by bench/run.py.
        return threads::lateness(args.get(i + 1).map_or("idle", String::as_str), quick);
    }
    let bench = Bench {
        reps: if quick { 3 } else { 15 },
        target: Duration::from_millis(if quick { 5 } else { 20 }),
    };
    // `--only a,b`: some sections only (core, c, scaling, threads, after-funcs, memory).
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
    let run = |section: &str| only.is_none_or(|o| o.split(',').any(|s| s == section));
    if run("core") {
        ops::core(&bench);
    }
    if run("c") {
        cabi::overhead(&bench);
    }
    if run("scaling") {
        ops::scaling(&bench, quick);
    }
    if run("threads") {
        threads::shared_parent(quick);
    }
    if run("after-funcs") {
        threads::after_funcs(quick);
    }
    if run("memory") {
        ops::memory(quick);
    }
}
