//! The process's allocator, and how its threads give memory back to the system.

#![allow(unsafe_code)] // One call into the allocator, which takes no pointer (see `collect`).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The allocator: a server handles many small messages a second, and every one allocates.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often a thread going idle gives back what it freed, at most.
const EVERY: Duration = Duration::from_secs(2);

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// For a runtime's threads as they go idle: every few seconds at most, the memory this thread
/// freed goes back to the system. The allocator keeps freed pages for reuse and lets them go
/// only as the thread goes on allocating, so an idle server would otherwise hold the peak of an
/// attack it has ridden out.
pub fn give_back_when_idle() {
    let now = Instant::now();
    let due = LAST.with(|last| {
        let due = last.get().is_none_or(|at| now.duration_since(at) >= EVERY);
        if due {
            last.set(Some(now));
        }
        due
    });
    if due {
        // SAFETY: `mi_collect` takes no pointer and may be called from any thread at any time;
        // it only returns this thread's free pages (and abandoned ones) to the system.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}
