//! `VideoPlayout`: hands decoded frames on at an even pace. A frame that waited for a resend
//! comes late and the ones after it come in a burst; shown as they come, the picture stops and
//! jumps (a freeze, by W3C's count). Each frame is held until its media time plus a delay: the
//! 99th percentile of how late frames have been coming lately (0 on a clean path, about a round
//! trip on a lossy one), at most [`MAX_DELAY`]. Sans-IO: given arrival and present times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::spread::ArrivalSpread;

/// The most a frame is held.
pub const MAX_DELAY: Duration = Duration::from_millis(400);
/// Frames held at most (beyond, the oldest goes at once).
const MAX_HELD: usize = 16;
/// The lateness the delay covers.
const COVERED_PERCENT: usize = 99;
/// How far back the lateness is remembered.
const MEMORY: Duration = Duration::from_secs(5);

/// The frames of one stream on their way to the screen.
#[derive(Debug)]
pub struct VideoPlayout<F> {
    spread: ArrivalSpread,
    /// Frames held, with when each is due, in order.
    held: VecDeque<(Instant, F)>,
}

impl<F> Default for VideoPlayout<F> {
    fn default() -> Self {
        Self {
            spread: ArrivalSpread::new(90_000, MEMORY),
            held: VecDeque::new(),
        }
    }
}

impl<F> VideoPlayout<F> {
    /// The frame stamped `timestamp` (RTP, 90 kHz), whole at `arrived`.
    pub fn push(&mut self, arrived: Instant, timestamp: u32, frame: F) {
        self.spread.arrived(arrived, timestamp);
        let delay = self.delay();
        let due = self
            .spread
            .on_time(timestamp)
            .map_or(arrived, |on_time| on_time + delay)
            .min(arrived + MAX_DELAY);
        // Never before the one ahead of it.
        let due = self.held.back().map_or(due, |(before, _)| due.max(*before));
        self.held.push_back((due, frame));
    }

    /// How long frames are held beyond their on-time arrival now.
    pub fn delay(&self) -> Duration {
        self.spread.percentile(COVERED_PERCENT).min(MAX_DELAY)
    }

    /// The next frame due by `now` (or held too many).
    pub fn pop(&mut self, now: Instant) -> Option<F> {
        let (due, _) = self.held.front()?;
        if *due <= now || self.held.len() > MAX_HELD {
            return self.held.pop_front().map(|(_, frame)| frame);
        }
        None
    }

    /// When the next held frame is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.front().map(|(due, _)| *due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// Frames every 33 ms, each fifth held up 250 ms (a resend), those behind it coming with it;
    /// the intervals at which they are handed on, once the delay has learnt the lateness.
    fn intervals(smooth: bool) -> Vec<u64> {
        let start = Instant::now();
        let mut playout = VideoPlayout::default();
        let mut shown = Vec::new();
        let mut arrivals: Vec<(Instant, u32)> = Vec::new();
        let mut waiting_until = None;
        for frame in 0..150_u32 {
            let sent = start + ms(u64::from(frame) * 33);
            if frame % 5 == 0 {
                waiting_until = Some(sent + ms(250));
            }
            let arrived = waiting_until.filter(|until| *until > sent).unwrap_or(sent);
            arrivals.push((arrived, frame * 2_970));
        }
        let end = start + ms(6_000);
        let mut now = start;
        let mut next = 0;
        while now < end {
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (arrived, timestamp) = arrivals[next];
                if smooth {
                    playout.push(arrived, timestamp, next);
                } else {
                    shown.push(now);
                }
                next += 1;
            }
            while let Some(_frame) = playout.pop(now) {
                shown.push(now);
            }
            now += ms(1);
        }
        shown
            .windows(2)
            .skip(60)
            .map(|pair| pair[1].duration_since(pair[0]).as_millis() as u64)
            .collect()
    }

    #[test]
    fn frames_held_up_by_a_resend_are_shown_at_an_even_pace() {
        let raw = intervals(false);
        // As they come: bursts of five, then nothing for 165 ms.
        assert!(raw.iter().any(|gap| *gap >= 150), "{raw:?}");
        let smooth = intervals(true);
        assert!(smooth.iter().all(|gap| *gap <= 70), "{smooth:?}");
    }

    #[test]
    fn on_a_clean_path_frames_go_at_once() {
        let start = Instant::now();
        let mut playout = VideoPlayout::default();
        for frame in 0..60_u32 {
            let at = start + ms(u64::from(frame) * 33);
            playout.push(at, frame * 2_970, frame);
            assert_eq!(playout.pop(at), Some(frame));
        }
        assert_eq!(playout.delay(), Duration::ZERO);
    }
}
