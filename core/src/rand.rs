//! Randomness for trace ids and retry jitter: from the kernel's
//! `getrandom`, so that a forked child never repeats its parent's values.
//! Not for secrets (none of its uses is one).

/// Fills `buf` with random bytes.
pub(crate) fn fill(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // No getrandom (very old kernels): the clock and a counter, mixed.
            fallback(rest);
            return;
        }
    }
}

/// A uniform random number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

fn fallback(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut x = crate::clock::now_ns()
            ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            ^ u64::from(std::process::id()) << 32;
        // splitmix64's finaliser.
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sources_give_varied_bytes() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        fill(&mut a);
        fallback(&mut b);
        assert_ne!(a, [0; 16]);
        assert_ne!(b, [0; 16]);
        let u = unit();
        assert!((0.0..1.0).contains(&u));
    }
}
