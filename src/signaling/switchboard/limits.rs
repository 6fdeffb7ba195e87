//! The switchboard's limits: caps on what one user may hold, rates of what one connection may
//! send (token buckets, in virtual time like everything here), and deadlines.

/// A token bucket: `burst` tokens at most, refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    at_millis: u64,
}

impl Bucket {
    /// A full bucket at `now_millis`.
    pub fn full(burst: u64, per_sec: u64, now_millis: u64) -> Self {
        Self {
            tokens: burst as f64,
            burst: burst as f64,
            per_sec: per_sec as f64,
            at_millis: now_millis,
        }
    }

    /// A full bucket at `now_millis` refilled at `per_minute` (at least one a minute).
    pub fn per_minute(burst: u64, per_minute: u64, now_millis: u64) -> Self {
        Self {
            per_sec: per_minute.max(1) as f64 / 60.0,
            ..Self::full(burst, 0, now_millis)
        }
    }

    /// Takes `cost` tokens at `now_millis`; false (and nothing taken) if there are not enough.
    pub fn take(&mut self, cost: u64, now_millis: u64) -> bool {
        let elapsed = now_millis.saturating_sub(self.at_millis) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.at_millis = self.at_millis.max(now_millis);
        let cost = cost as f64;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full at `now_millis` (nobody has used it lately).
    pub fn is_full(&self, now_millis: u64) -> bool {
        let elapsed = now_millis.saturating_sub(self.at_millis) as f64 / 1000.0;
        self.tokens + elapsed * self.per_sec >= self.burst
    }
}

/// What one connection and one user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection must log in this soon after it opened.
    pub login_deadline_millis: u64,
    /// Failed log-ins on one connection before it is closed.
    pub max_login_failures: u32,
    /// Log-in attempts for one user id: a burst, then this many per minute.
    pub login_burst: u64,
    /// See [`Limits::login_burst`].
    pub logins_per_minute: u64,
    /// Messages one connection may send: a burst, then this many a second.
    pub message_burst: u64,
    /// See [`Limits::message_burst`].
    pub messages_per_sec: u64,
    /// Refusals within [`Limits::abuse_window_millis`] that close a connection.
    pub refusals_before_close: u32,
    /// The window refusals are counted over.
    pub abuse_window_millis: u64,
    /// Refusals of one connection recorded per abuse window; the rest are counted.
    pub refusals_recorded: u32,
    /// Calls one user may have placed that nobody answered yet.
    pub max_unanswered_calls: usize,
    /// Calls one user may be in or invited into at once.
    pub max_calls_per_user: usize,
    /// Session descriptions one participant may send another in one call.
    pub max_descriptions_per_pair: u32,
    /// ICE candidates one participant may send another in one call.
    pub max_candidates_per_pair: u32,
    /// The largest session description relayed, in bytes.
    pub max_description_bytes: usize,
    /// The largest ICE candidate relayed, in bytes.
    pub max_candidate_bytes: usize,
    /// The server ends a ringing invitation this long after its own timeout (the clients' own
    /// timers, which fire first, keep the call's truth).
    pub ring_grace_millis: u64,
    /// Entries one participant may share about one call.
    pub max_shared_entries_per_call: u32,
    /// The largest shared entry, in bytes.
    pub max_shared_entry_bytes: usize,
    /// A user whose connection is lost stays in its connected calls this long, for it to log
    /// in again and go on; then it leaves them. A second shorter than the clients' own outage
    /// grace, so the others hear it from the server before the lost client gives up.
    pub rejoin_grace_millis: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_deadline_millis: 10_000,
            max_login_failures: 3,
            login_burst: 5,
            logins_per_minute: 12,
            message_burst: 200,
            messages_per_sec: 50,
            refusals_before_close: 60,
            abuse_window_millis: 10_000,
            refusals_recorded: 5,
            max_unanswered_calls: 4,
            max_calls_per_user: 8,
            max_descriptions_per_pair: 4,
            max_candidates_per_pair: 64,
            max_description_bytes: 16 * 1024,
            max_candidate_bytes: 1024,
            ring_grace_millis: 2_000,
            max_shared_entries_per_call: 2_000,
            max_shared_entry_bytes: super::super::protocol::MAX_SHARED_ENTRY_BYTES,
            rejoin_grace_millis: 9_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bucket;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = Bucket::full(3, 2, 0);
        assert!(bucket.take(1, 0) && bucket.take(1, 0) && bucket.take(1, 0));
        assert!(!bucket.take(1, 0));
        // Half a second refills one token at two a second.
        assert!(bucket.take(1, 500));
        assert!(!bucket.take(1, 500));
        assert!(!bucket.is_full(500));
        assert!(bucket.is_full(10_000));
        // Never more than the burst, however long it rested.
        assert!(bucket.take(3, 100_000));
        assert!(!bucket.take(1, 100_000));
    }
}
