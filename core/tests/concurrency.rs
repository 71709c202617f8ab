//! The core under real concurrency: races between deriving, cancelling,
//! dropping, waiting and the timer, checked by what the process-wide
//! counters say afterwards. One test binary of its own, and one test at a
//! time within it (`serial`), because `stats::pending_deadlines()` counts
//! every deadline in the process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use polyctx::{stats, with_cancel, with_timeout, Context};

const HOUR: Duration = Duration::from_secs(3600);

/// Scales counts down under Miri, which runs this file too.
fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

fn serial() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two threads meet at `arrive` many times without a syscall, so that the
/// operations after it race as closely as the hardware allows.
struct SpinBarrier {
    arrived: AtomicUsize,
}

impl SpinBarrier {
    fn arrive(&self, round: usize) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        while self.arrived.load(Ordering::Acquire) < 2 * (round + 1) {
            std::hint::spin_loop();
        }
    }
}

/// A parent canceled while a child with its own deadline is derived from it:
/// the child's insertion into the timer and the parent's walk marking it
/// done must not both miss each other. If they did, a done child would stay
/// in the timer heap after it is freed (a dangling entry).
#[test]
fn deriving_a_deadline_child_while_the_parent_is_canceled_leaves_no_timer_entry() {
    let _serial = serial();
    let rounds = scaled(1_000_000, 40);
    let time_limit = Duration::from_secs(4);
    let barrier = Arc::new(SpinBarrier {
        arrived: AtomicUsize::new(0),
    });
    let parents: Arc<Mutex<Vec<Option<polyctx::CancelFunc>>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let canceller = {
        let (barrier, parents, stop) = (barrier.clone(), parents.clone(), stop.clone());
        thread::spawn(move || {
            for round in 0.. {
                barrier.arrive(2 * round);
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let cancel = parents.lock().unwrap()[round].take().unwrap();
                cancel.cancel();
                barrier.arrive(2 * round + 1);
            }
        })
    };
    let started = Instant::now();
    let mut done_rounds = 0;
    for round in 0..rounds {
        let (parent, cancel_parent) = with_cancel(&Context::background());
        parents.lock().unwrap().push(Some(cancel_parent));
        barrier.arrive(2 * round);
        let (child, cancel_child) = with_timeout(&parent, HOUR);
        barrier.arrive(2 * round + 1);
        assert!(child.is_done(), "the parent was canceled, so the child is done");
        drop((child, cancel_child, parent));
        let pending = stats::pending_deadlines();
        assert_eq!(pending, 0, "round {round}: a done child was left in the timer heap");
        done_rounds = round + 1;
        if started.elapsed() > time_limit {
            break;
        }
    }
    stop.store(true, Ordering::Release);
    barrier.arrive(2 * done_rounds);
    canceller.join().unwrap();
    eprintln!("{done_rounds} racing rounds, no stale timer entry");
}
