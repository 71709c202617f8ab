//! Bytes per live object: resident memory growth over a million live
//! objects, read from /proc/self/statm.

pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident bytes per object while `count` objects made by `make` are alive.
pub fn per_object<T>(count: usize, mut make: impl FnMut() -> T) -> f64 {
    let before = resident_bytes();
    let live: Vec<T> = (0..count).map(|_| make()).collect();
    let after = resident_bytes();
    // The Vec holding them is not the object's cost.
    let holder = (count * std::mem::size_of::<T>()) as f64;
    drop(live);
    ((after.saturating_sub(before)) as f64 - holder) / count as f64
}
