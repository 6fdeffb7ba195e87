//! `ArrivalSpread`: how late a stream's media arrives, against its own timestamps. Each
//! arrival's transit (arrival time less media time, both from the stream's first) is compared
//! with the quickest transit seen (a floor that drifts up slowly, so two clocks that disagree a
//! little are not taken for lateness); the spread of the last seconds gives how long a receiver
//! must wait to play nearly everything on time. Sans-IO: given each arrival's time and RTP
//! timestamp. The audio jitter buffer and the video playout both wait by it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The quickest transit drifts up by this much a second (a sender's clock 2 % slow is followed
/// without the drift counting as lateness).
const FLOOR_RISE_MS_PER_SEC: f64 = 20.0;
/// A transit this far from the quickest is not lateness but a stream that stopped and resumed
/// (or a timestamp from elsewhere): measuring starts over.
const RESTART_AFTER_MS: f64 = 2_000.0;

/// The arrivals of one stream.
#[derive(Debug)]
pub struct ArrivalSpread {
    /// RTP ticks a second.
    clock_rate: f64,
    /// How far back the arrivals are remembered.
    memory: Duration,
    /// How much later than the quickest each arrival of the memory came: (arrival, ms).
    spreads: VecDeque<(Instant, f64)>,
    /// The quickest transit: (ms, when).
    floor: Option<(f64, Instant)>,
    origin: Option<(Instant, u32)>,
}

impl ArrivalSpread {
    /// A stream with `clock_rate` RTP ticks a second, remembered for `memory`.
    pub fn new(clock_rate: u32, memory: Duration) -> Self {
        Self {
            clock_rate: f64::from(clock_rate),
            memory,
            spreads: VecDeque::new(),
            floor: None,
            origin: None,
        }
    }

    /// Media stamped `timestamp` arrived at `now`; how late it came (over the quickest).
    pub fn arrived(&mut self, now: Instant, timestamp: u32) -> Duration {
        let mut transit = self.transit_ms(now, timestamp);
        // A sender that stopped (muted, paused) resumes with media time that did not run
        // meanwhile: that is no lateness. Start over from here.
        if self
            .floor
            .is_some_and(|(floor, _)| (transit - floor).abs() > RESTART_AFTER_MS)
        {
            self.origin = None;
            self.floor = None;
            self.spreads.clear();
            transit = self.transit_ms(now, timestamp);
        }
        let floor = self.floor.map_or(transit, |(floor, at)| {
            let drift = now.saturating_duration_since(at).as_secs_f64() * FLOOR_RISE_MS_PER_SEC;
            transit.min(floor + drift)
        });
        self.floor = Some((floor, now));
        let late = transit - floor;
        self.spreads.push_back((now, late));
        while self
            .spreads
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.memory)
        {
            self.spreads.pop_front();
        }
        Duration::from_secs_f64(late.max(0.0) / 1_000.0)
    }

    /// Arrival time less media time, in ms, both from the stream's first.
    fn transit_ms(&mut self, now: Instant, timestamp: u32) -> f64 {
        let (origin_at, origin_ts) = *self.origin.get_or_insert((now, timestamp));
        let media_ms =
            f64::from(timestamp.wrapping_sub(origin_ts).cast_signed()) * 1_000.0 / self.clock_rate;
        let arrival_ms = now.saturating_duration_since(origin_at).as_secs_f64() * 1_000.0;
        arrival_ms - media_ms
    }

    /// When media stamped `timestamp` would arrive, coming as quickly as the quickest did
    /// (`None` before any arrival).
    pub fn on_time(&self, timestamp: u32) -> Option<Instant> {
        let (origin_at, origin_ts) = self.origin?;
        let (floor, _) = self.floor?;
        let media_ms =
            f64::from(timestamp.wrapping_sub(origin_ts).cast_signed()) * 1_000.0 / self.clock_rate;
        let offset_ms = media_ms + floor;
        let offset = Duration::from_secs_f64(offset_ms.abs() / 1_000.0);
        Some(if offset_ms >= 0.0 {
            origin_at + offset
        } else {
            origin_at.checked_sub(offset).unwrap_or(origin_at)
        })
    }

    /// How late the latest `percent` of the remembered arrivals came, at most.
    pub fn percentile(&self, percent: usize) -> Duration {
        let mut spread: Vec<f64> = self.spreads.iter().map(|(_, late)| *late).collect();
        spread.sort_by(f64::total_cmp);
        let late_ms = spread
            .get(spread.len() * percent.min(100) / 100)
            .or(spread.last())
            .copied()
            .unwrap_or(0.0)
            .max(0.0);
        Duration::from_secs_f64(late_ms / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn lateness_is_measured_against_the_quickest_and_a_slow_clock_is_followed() {
        let start = Instant::now();
        let mut spread = ArrivalSpread::new(90_000, Duration::from_secs(5));
        // Frames every 33 ms (3,000 ticks), every fourth 100 ms late.
        for frame in 0..100_u32 {
            let late = if frame % 4 == 3 { 100 } else { 0 };
            let at = start + ms(u64::from(frame) * 33 + late);
            spread.arrived(at, frame * 2_970);
        }
        let p90 = spread.percentile(90);
        assert!((ms(95)..=ms(105)).contains(&p90), "{p90:?}");
        assert!(spread.percentile(50) <= ms(5));
        // The on-time arrival of the next frame: 33 ms after the last on-time one.
        let due = spread.on_time(100 * 2_970).expect("a floor");
        let expected = start + ms(3_300);
        let off = due.max(expected) - due.min(expected);
        assert!(off <= ms(5), "{off:?}");
        // A sender whose clock runs 1 % slow: lateness stays small.
        let mut slow = ArrivalSpread::new(90_000, Duration::from_secs(5));
        for frame in 0..300_u32 {
            slow.arrived(start + ms(u64::from(frame) * 3_333 / 100), frame * 2_970);
        }
        assert!(slow.percentile(95) <= ms(5), "{:?}", slow.percentile(95));
        // Muted for a minute: the media time did not run, but that is no lateness.
        let resumed = start + ms(60_000 + 300 * 33);
        assert_eq!(slow.arrived(resumed, 300 * 2_970), Duration::ZERO);
        assert!(slow.percentile(95) <= ms(5));
    }
}
