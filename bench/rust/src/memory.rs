//! Bytes per live object, each kind measured in a fresh process (this binary
//! re-run with `--memory-of KIND`) so that memory freed by earlier benchmarks
//! cannot hide the growth. Two readings: the allocator's bytes in use
//! (glibc `mallinfo2`, chunk headers included) and resident memory.

use std::process::Command;

pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    // Small chunks, plus large blocks (the timer's heap) that glibc maps.
    (info.uordblks + info.hblkhd) as u64
}

/// (heap bytes, resident bytes) per object while `count` made by `make` live.
pub fn per_object<T>(count: usize, mut make: impl FnMut() -> T) -> (f64, f64) {
    let mut live: Vec<T> = Vec::with_capacity(count);
    let (heap0, rss0) = (heap_in_use(), resident_bytes());
    for _ in 0..count {
        live.push(make());
    }
    let (heap1, rss1) = (heap_in_use(), resident_bytes());
    std::hint::black_box(&live);
    let n = count as f64;
    // The holding Vec was allocated up front, but its pages become resident
    // as it fills; that is not the objects' cost.
    let holder = (count * std::mem::size_of::<T>()) as f64;
    (
        (heap1 - heap0) as f64 / n,
        (rss1.saturating_sub(rss0) as f64 - holder) / n,
    )
}

/// Runs `--memory-of kind` in a child process and relays its result lines.
pub fn measure_in_child(kind: &str, count: usize) {
    let me = std::env::current_exe().expect("own path");
    let out = Command::new(me)
        .args(["--memory-of", kind, &count.to_string()])
        .output()
        .expect("child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprintln!(
            "memory benchmark {kind} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
