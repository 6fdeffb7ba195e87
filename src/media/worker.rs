//! A named media thread (capture and encode) that runs until its handle is dropped, the pacer
//! that gives it its frame rate, and the wake-up its threads wait on instead of polling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::session::Shared;

/// A running media thread; dropping the handle tells it to stop after its current frame.
#[derive(Debug)]
pub struct MediaThread {
    running: Arc<AtomicBool>,
}

impl MediaThread {
    /// Runs `body` on a thread named `name` until the handle is dropped (`body` watches the
    /// flag it is given).
    pub fn spawn(name: &'static str, shared: &Arc<Shared>, body: fn(&Shared, &AtomicBool)) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&running);
        let thread_shared = Arc::clone(shared);
        let started = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(&thread_shared, &flag));
        if let Err(error) = started {
            running.store(false, Ordering::Release);
            shared.error(super::MediaError::Thread {
                thread: name,
                reason: error.to_string(),
            });
        }
        Self { running }
    }
}

impl Drop for MediaThread {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
    }
}

/// Lowers the calling thread's scheduling priority (its niceness): video threads call it, so
/// on busy cores the audio, the network and the window are served first, and a frame late is
/// what gives (a late audio packet is a gap heard, a late frame is one frame shown longer).
pub fn give_way() {
    // Refused (a locked-down system), the thread keeps its priority: nothing more to do.
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// A wake-up shared by a call's media threads: whoever changes what they wait for rings it.
/// Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Wake {
    inner: Arc<(Mutex<u64>, Condvar)>,
}

impl Wake {
    /// Wakes every waiter so it looks again.
    pub fn ring(&self) {
        let (rings, changed) = &*self.inner;
        *rings.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        changed.notify_all();
    }

    /// Blocks until `done` holds, looking again at every ring.
    pub fn wait_until(&self, done: impl Fn() -> bool) {
        let (rings, changed) = &*self.inner;
        let mut guard = rings.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock: a ring between the check and the wait is not missed.
        while !done() {
            guard = changed.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Paces a loop to one turn per interval; when it falls behind (a slow machine), it skips ahead
/// instead of bursting to catch up.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Instant,
    /// How far behind counts as fallen behind.
    slack: Duration,
}

impl Pacer {
    /// A pacer for turns `interval` apart, the first one now.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Instant::now(),
            slack: interval,
        }
    }

    /// Allows falling behind by `slack` before skipping ahead.
    pub fn with_slack(mut self, slack: Duration) -> Self {
        self.slack = slack;
        self
    }

    /// The time between turns.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The next turn is now (after an idle spell).
    pub fn restart(&mut self) {
        self.next = Instant::now();
    }

    /// Sleeps until the next turn.
    pub fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else if now - self.next > self.slack {
            self.next = now;
        }
        self.next += self.interval;
    }
}
