//! Timing: batches sized to run ~20 ms, several repetitions with every
//! implementation of an operation interleaved; the median batch and the
//! 99th-percentile batch (of 15 repetitions: the slowest but one) reported. The machine
//! is noisy; ratios within one run are what to read.

use std::time::{Duration, Instant};

pub struct Bench {
    pub reps: usize,
    pub target: Duration,
}

/// One implementation of an operation: runs `n` iterations, returns their time.
pub type Case<'a> = (&'a str, Box<dyn FnMut(u64) -> Duration + 'a>);

impl Bench {
    /// Times every case of `op`, interleaved, and prints one result line each.
    pub fn compare(&self, area: &str, op: &str, cases: Vec<Case<'_>>) {
        self.compare_per(area, op, 1, cases)
    }

    /// As `compare`, for cases whose one iteration handles `items` items
    /// (a tree's nodes, a batch of waiters); reports time per item.
    pub fn compare_per(&self, area: &str, op: &str, items: u64, mut cases: Vec<Case<'_>>) {
        let sizes: Vec<u64> = cases.iter_mut().map(|(_, f)| self.calibrate(f)).collect();
        let mut samples = vec![Vec::with_capacity(self.reps); cases.len()];
        for _ in 0..self.reps {
            for (i, (_, f)) in cases.iter_mut().enumerate() {
                let n = sizes[i];
                samples[i].push(f(n).as_nanos() as f64 / n as f64);
            }
        }
        for ((name, _), s) in cases.iter().zip(samples) {
            let p99 = percentile(&s, 0.99) / items as f64;
            emit_with_p99(area, op, name, "ns_per_op", median(s) / items as f64, p99);
        }
    }

    fn calibrate(&self, f: &mut dyn FnMut(u64) -> Duration) -> u64 {
        let mut n = 1u64;
        loop {
            let t = f(n);
            if t >= self.target / 4 || n >= 1 << 30 {
                let per = t.as_nanos().max(1) as f64 / n as f64;
                return ((self.target.as_nanos() as f64 / per) as u64).max(1);
            }
            n *= 4;
        }
    }
}

/// Times `f` once over `n` iterations.
pub fn time(n: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed()
}

pub fn median(v: Vec<f64>) -> f64 {
    percentile(&v, 0.5)
}

/// The nearest-rank percentile `q` (0 to 1) of `v`.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// One result, as a JSON line for bench/run.py.
pub fn emit(area: &str, op: &str, implementation: &str, unit: &str, value: f64) {
    println!(r#"{{"area":"{area}","op":"{op}","impl":"{implementation}","unit":"{unit}","value":{value:.3}}}"#);
}

/// One result with the 99th percentile of its samples beside the median.
pub fn emit_with_p99(area: &str, op: &str, implementation: &str, unit: &str, value: f64, p99: f64) {
    println!(
        r#"{{"area":"{area}","op":"{op}","impl":"{implementation}","unit":"{unit}","value":{value:.3},"p99":{p99:.3}}}"#
    );
}
