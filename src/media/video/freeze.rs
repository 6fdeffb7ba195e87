//! `FreezeMeter`: counts a received stream's freezes as W3C webrtc-stats defines them: a frame
//! that comes at least `max(3 × average, average + 150 ms)` after the one before, the average
//! being that of the recent frame intervals. Sans-IO: given when each frame was rendered.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The frame intervals averaged (libwebrtc's window).
const WINDOW: usize = 30;
/// An interval this much over the average is a freeze, however short the average.
const OVER_AVERAGE: Duration = Duration::from_millis(150);

/// The freezes of one stream.
#[derive(Debug, Default)]
pub struct FreezeMeter {
    last: Option<Instant>,
    intervals: VecDeque<Duration>,
    total: Duration,
    /// Freezes so far.
    pub count: u64,
    /// Their time together.
    pub frozen: Duration,
}

impl FreezeMeter {
    /// A frame was rendered at `at`; whether it ended a freeze.
    pub fn frame(&mut self, at: Instant) -> bool {
        let Some(last) = self.last.replace(at) else {
            return false;
        };
        let interval = at.saturating_duration_since(last);
        let frozen = self.intervals.len() >= WINDOW / 3 && {
            let average = self.total / u32::try_from(self.intervals.len()).unwrap_or(u32::MAX);
            interval >= (average * 3).max(average + OVER_AVERAGE)
        };
        if frozen {
            self.count += 1;
            self.frozen += interval;
        }
        // A freeze is not a frame interval of the stream; it would pull the average up.
        if !frozen {
            self.intervals.push_back(interval);
            self.total += interval;
            if self.intervals.len() > WINDOW
                && let Some(oldest) = self.intervals.pop_front()
            {
                self.total -= oldest;
            }
        }
        frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_of_three_average_intervals_and_150_ms_more_is_a_freeze() {
        let start = Instant::now();
        let mut meter = FreezeMeter::default();
        let mut at = start;
        for _ in 0..40 {
            at += Duration::from_millis(33);
            assert!(!meter.frame(at));
        }
        // 99 ms is three intervals, but not 150 ms over the average: no freeze.
        at += Duration::from_millis(120);
        assert!(!meter.frame(at));
        at += Duration::from_millis(400);
        assert!(meter.frame(at));
        for _ in 0..10 {
            at += Duration::from_millis(33);
            assert!(!meter.frame(at));
        }
        at += Duration::from_secs(1);
        assert!(meter.frame(at));
        assert_eq!(meter.count, 2);
        assert_eq!(meter.frozen, Duration::from_millis(1_400));
    }

    #[test]
    fn a_slow_steady_stream_is_not_frozen() {
        let start = Instant::now();
        let mut meter = FreezeMeter::default();
        for frame in 1..100 {
            // 5 fps throughout.
            assert!(!meter.frame(start + Duration::from_millis(frame * 200)));
        }
        assert_eq!(meter.count, 0);
    }
}
