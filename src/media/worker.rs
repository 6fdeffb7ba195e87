//! A named media thread (capture and encode) that runs until its handle is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::session::Shared;

/// A running media thread; dropping the handle tells it to stop after its current frame.
#[derive(Debug)]
pub struct MediaThread {
    running: Arc<AtomicBool>,
}

impl MediaThread {
    /// Runs `body` on a thread named `name` until the handle is dropped (`body` watches the
    /// flag it is given).
    pub fn spawn(name: &str, shared: Arc<Shared>, body: fn(&Shared, &AtomicBool)) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&running);
        let started = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(&shared, &flag));
        if started.is_err() {
            running.store(false, Ordering::Release);
        }
        Self { running }
    }
}

impl Drop for MediaThread {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
    }
}
