//! `ClockSync`: the offset of a peer's clock (the server's) from ours, estimated NTP-style from
//! request/answer round trips: of the recent samples, the one with the smallest round trip
//! bounds the offset most tightly, by half its round trip plus the peer's stamp resolution.
//! Sans-IO: it is given every time and reads no clock.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Round trips kept; the best of them gives the estimate.
pub const SAMPLES_KEPT: usize = 16;

/// The estimated offset of the peer's clock from ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Peer clock minus our clock, in microseconds: add it to a local time to get the peer's.
    pub offset_micros: i64,
    /// The true offset lies within this many microseconds of `offset_micros`.
    pub error_micros: u64,
    /// The round trip of the sample the estimate comes from.
    pub rtt_micros: u64,
    /// How many round trips were kept.
    pub samples: usize,
}

/// One round trip, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rtt: u64,
    offset: i64,
    error: u64,
}

/// Keeps the recent round trips and answers the best estimate.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    samples: VecDeque<Sample>,
}

impl ClockSync {
    /// A sync with no sample yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One round trip: sent at `sent_micros` and answered at `received_micros` on our clock,
    /// stamped `peer_micros` by the peer, whose stamps are whole units of `resolution_micros`
    /// (truncated, so the stamp's true time lies in the unit after it). An answer that came back
    /// before it was sent is ignored.
    pub fn add(
        &mut self,
        sent_micros: u64,
        peer_micros: u64,
        received_micros: u64,
        resolution_micros: u64,
    ) {
        let Some(rtt_micros) = received_micros.checked_sub(sent_micros) else {
            return;
        };
        // A stamp past what a clock reads (the peer's numbers are not trusted) is no sample.
        let mid = |at: u64, half: u64| at.checked_add(half).and_then(|mid| i64::try_from(mid).ok());
        let (Some(local_mid), Some(peer_mid)) = (
            mid(sent_micros, rtt_micros / 2),
            mid(peer_micros, resolution_micros / 2),
        ) else {
            return;
        };
        let offset_micros = peer_mid - local_mid;
        let error_micros = rtt_micros / 2 + resolution_micros / 2 + 1;
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            rtt: rtt_micros,
            offset: offset_micros,
            error: error_micros,
        });
    }

    /// The estimate from the sample with the smallest round trip, once there is one.
    pub fn estimate(&self) -> Option<ClockOffset> {
        let best = self.samples.iter().min_by_key(|sample| sample.rtt)?;
        Some(ClockOffset {
            offset_micros: best.offset,
            error_micros: best.error,
            rtt_micros: best.rtt,
            samples: self.samples.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip over a path with `there` and `back` microseconds each way, to a peer whose
    /// clock runs `offset` ahead and stamps in whole milliseconds.
    fn trip(sync: &mut ClockSync, at: u64, there: u64, back: u64, offset: i64) {
        let peer_true = (at + there).saturating_add_signed(offset);
        let peer_stamp = peer_true / 1000 * 1000;
        sync.add(at, peer_stamp, at + there + back, 1000);
    }

    #[test]
    fn the_smallest_round_trip_bounds_the_offset_and_the_truth_lies_within_the_bound() {
        let mut sync = ClockSync::new();
        let offset = -250_000_i64;
        // Queued, lopsided round trips, and one quick symmetric one.
        trip(&mut sync, 1_000_000, 9_000, 200, offset);
        trip(&mut sync, 2_000_000, 150, 150, offset);
        trip(&mut sync, 3_000_000, 300, 7_000, offset);
        let estimate = sync.estimate().unwrap_or_else(|| unreachable!());
        assert_eq!(estimate.rtt_micros, 300);
        assert_eq!(estimate.samples, 3);
        assert!(
            (estimate.offset_micros - offset).unsigned_abs() <= estimate.error_micros,
            "{estimate:?}"
        );
        assert!(estimate.error_micros <= 700);
    }

    #[test]
    fn the_truth_stays_within_the_bound_for_any_path_and_offset() {
        for (there, back, offset) in [
            (10, 5_000, 123_456),
            (5_000, 10, -987_654),
            (0, 0, 0),
            (499, 501, 1),
        ] {
            let mut sync = ClockSync::new();
            trip(&mut sync, 5_000_123, there, back, offset);
            let estimate = sync.estimate().unwrap_or_else(|| unreachable!());
            assert!(
                (estimate.offset_micros - offset).unsigned_abs() <= estimate.error_micros,
                "{there} {back} {offset}: {estimate:?}"
            );
        }
    }

    #[test]
    fn only_the_newest_samples_count_and_a_reversed_trip_is_ignored() {
        let mut sync = ClockSync::new();
        trip(&mut sync, 1_000, 10, 10, 0);
        for at in 0..SAMPLES_KEPT as u64 {
            trip(&mut sync, 100_000 * (at + 1), 400, 400, 0);
        }
        let estimate = sync.estimate().unwrap_or_else(|| unreachable!());
        assert_eq!(estimate.rtt_micros, 800, "the 20 µs trip left the window");
        assert_eq!(estimate.samples, SAMPLES_KEPT);
        sync.add(5_000, 1_000, 4_000, 1000);
        assert_eq!(sync.estimate().map(|e| e.samples), Some(SAMPLES_KEPT));
    }
}
