//! `Reorder`: puts a video stream's RTP packets back in sequence order and, when one is
//! missing, holds the ones behind it for two round trips and a margin, so a packet resent after
//! a NACK (even one asked for twice, or only reordered) still completes its picture. A gap the
//! caller shows took nothing needed is passed at once. A gap not filled in time is given up:
//! the packets after it go on, and the picture they belong to is dropped and a key frame asked
//! for further on. Sans-IO: it is given each packet's arrival time and the time now.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The round trip assumed until one is measured: a slow path's, so the first losses of a call
/// are waited for long enough (on a fast path the repair comes sooner and ends the wait). Two
/// seconds of a call can pass before the first measurement, and a resend asked for at once
/// comes a round trip later.
pub const UNMEASURED_RTT: Duration = Duration::from_millis(250);
/// How long packets wait behind a gap before the round trip is known.
pub const REPAIR_WAIT: Duration = repair_wait(UNMEASURED_RTT);
/// The least packets wait behind a gap, whatever the round trip.
pub const MIN_REPAIR_WAIT: Duration = Duration::from_millis(50);
/// The most packets wait behind a gap, whatever the round trip.
pub const MAX_REPAIR_WAIT: Duration = Duration::from_secs(1);
/// Beyond two round trips, what a repair may take: the far end's pacing, our asking.
const REPAIR_MARGIN: Duration = Duration::from_millis(50);

/// How long a gap is waited for on a path of round trip `rtt`: two round trips and a margin
/// (so a resend lost once, asked for again a round trip later, still comes in time), within
/// [`MIN_REPAIR_WAIT`] and [`MAX_REPAIR_WAIT`]. The NACKs for a gap stop when it is given up.
pub const fn repair_wait(rtt: Duration) -> Duration {
    let wait = rtt.saturating_mul(2).saturating_add(REPAIR_MARGIN);
    if wait.as_nanos() < MIN_REPAIR_WAIT.as_nanos() {
        MIN_REPAIR_WAIT
    } else if wait.as_nanos() > MAX_REPAIR_WAIT.as_nanos() {
        MAX_REPAIR_WAIT
    } else {
        wait
    }
}
/// Packets held behind a gap at most (about a second of 2 Mbit/s video); more gives it up.
pub const MAX_HELD: usize = 256;
/// A gap spanning more than this much of the stream's time (in 90 kHz RTP ticks: 250 ms) is
/// an outage, not a loss: it is given up at once, since repairing it would only show old
/// pictures late; a key frame brings the picture back instead.
pub const MAX_GAP_TICKS: u32 = 22_500;

/// The reorder buffer of one stream.
#[derive(Debug)]
pub struct Reorder<P> {
    /// The unwrapped sequence number expected next.
    next: Option<u64>,
    /// Packets past a gap, by unwrapped number, with when they arrived and their RTP time.
    held: BTreeMap<u64, (Instant, u32, P)>,
    /// The RTP time of the last packet passed on.
    last_timestamp: Option<u32>,
    /// How long packets wait behind a gap.
    wait: Duration,
    /// Gaps given up so far.
    pub gaps_given_up: u64,
    /// Gaps passed at once, having taken nothing needed.
    pub gaps_passed: u64,
}

impl<P> Default for Reorder<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Reorder<P> {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self {
            next: None,
            held: BTreeMap::new(),
            last_timestamp: None,
            wait: REPAIR_WAIT,
            gaps_given_up: 0,
            gaps_passed: 0,
        }
    }

    /// Waits for repairs as long as a path of round trip `rtt` needs ([`repair_wait`]).
    pub fn set_round_trip(&mut self, rtt: Duration) {
        self.wait = repair_wait(rtt);
    }

    /// How long packets wait behind a gap now.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// A packet with `sequence_number` and RTP `timestamp` arrived at `now`. One already
    /// passed on (a late copy) is dropped.
    pub fn push(&mut self, now: Instant, sequence_number: u16, timestamp: u32, packet: P) {
        let next = *self
            .next
            .get_or_insert(u64::from(sequence_number) + (1 << 16));
        let ahead = sequence_number.wrapping_sub(next as u16);
        // More than half the number space ahead is behind, by the usual RTP rule.
        if ahead >= 1 << 15 {
            return;
        }
        self.held
            .entry(next + u64::from(ahead))
            .or_insert((now, timestamp, packet));
    }

    /// The next packet in order, if it is here; or, when the gap before the first held one
    /// has waited long enough (or too much is held), that one, giving the gap up.
    pub fn pop(&mut self, now: Instant) -> Option<P> {
        self.pop_with(now, |_| Some(false))
    }

    /// As [`Reorder::pop`], but a gap that took nothing the stream needs (a sender's padding,
    /// say) is passed at once. `harmless` is asked of the packets held behind the gap, in
    /// order, until one can tell (`None`: this one cannot, ask the next).
    pub fn pop_with(&mut self, now: Instant, harmless: impl Fn(&P) -> Option<bool>) -> Option<P> {
        let (&number, &(_, timestamp, _)) = self.held.first_key_value()?;
        let next = self.next?;
        if number != next {
            let waiting = self
                .gap_since()
                .is_some_and(|since| now.saturating_duration_since(since) < self.wait);
            let span = self
                .last_timestamp
                .map_or(0, |last| timestamp.wrapping_sub(last));
            let repairable = span <= MAX_GAP_TICKS && self.held.len() <= MAX_HELD;
            if self.gap_is_harmless(harmless) {
                self.gaps_passed += 1;
            } else if waiting && repairable {
                return None;
            } else {
                self.gaps_given_up += 1;
            }
        }
        self.next = Some(number + 1);
        self.last_timestamp = Some(timestamp);
        self.held.remove(&number).map(|(_, _, packet)| packet)
    }

    /// What `harmless` says of the first held packet that can tell, among those in sequence
    /// right behind the gap.
    fn gap_is_harmless(&self, harmless: impl Fn(&P) -> Option<bool>) -> bool {
        let mut expected = None;
        for (&number, (_, _, packet)) in &self.held {
            if expected.is_some_and(|expected| expected != number) {
                return false;
            }
            if let Some(answer) = harmless(packet) {
                return answer;
            }
            expected = Some(number + 1);
        }
        false
    }

    /// When the gap before the first held packet opened: the earliest arrival of those held
    /// behind it (a repair of part of it does not start the wait again).
    fn gap_since(&self) -> Option<Instant> {
        self.held.values().map(|(arrived, _, _)| *arrived).min()
    }

    /// When [`Reorder::pop`] gives a gap up, if nothing arrives first.
    pub fn deadline(&self) -> Option<Instant> {
        let (&number, _) = self.held.first_key_value()?;
        if Some(number) == self.next {
            return None;
        }
        self.gap_since().map(|since| since + self.wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTP times close together: 100 ticks a packet.
    fn ts(number: u16) -> u32 {
        u32::from(number) * 100
    }

    fn drain(reorder: &mut Reorder<u16>, now: Instant) -> Vec<u16> {
        std::iter::from_fn(|| reorder.pop(now)).collect()
    }

    #[test]
    fn in_order_packets_pass_at_once_and_late_copies_are_dropped() {
        let mut reorder = Reorder::new();
        let now = Instant::now();
        for number in [65_534_u16, 65_535, 0, 1] {
            reorder.push(now, number, ts(number), number);
        }
        assert_eq!(drain(&mut reorder, now), [65_534, 65_535, 0, 1]);
        reorder.push(now, 0, ts(0), 0);
        assert_eq!(drain(&mut reorder, now), Vec::<u16>::new());
        assert_eq!(reorder.deadline(), None);
    }

    #[test]
    fn a_gap_holds_what_follows_until_the_repair_comes() {
        let mut reorder = Reorder::new();
        let start = Instant::now();
        reorder.push(start, 10, ts(10), 10);
        reorder.push(start, 12, ts(12), 12);
        reorder.push(start, 13, ts(13), 13);
        assert_eq!(drain(&mut reorder, start), [10]);
        assert_eq!(reorder.deadline(), Some(start + REPAIR_WAIT));
        // The resent packet arrives within the wait: everything goes on, in order.
        let repaired = start + Duration::from_millis(120);
        reorder.push(repaired, 11, ts(11), 11);
        assert_eq!(drain(&mut reorder, repaired), [11, 12, 13]);
        assert_eq!(reorder.gaps_given_up, 0);
    }

    #[test]
    fn a_gap_repaired_in_part_still_gives_up_when_it_first_would_have() {
        let mut reorder = Reorder::new();
        let start = Instant::now();
        reorder.push(start, 10, ts(10), 10);
        reorder.push(start, 13, ts(13), 13);
        assert_eq!(drain(&mut reorder, start), [10]);
        // 12 comes back, 11 not: the wait still ends REPAIR_WAIT after 13 arrived.
        let later = start + Duration::from_millis(150);
        reorder.push(later, 12, ts(12), 12);
        assert_eq!(reorder.deadline(), Some(start + REPAIR_WAIT));
        assert_eq!(drain(&mut reorder, start + REPAIR_WAIT), [12, 13]);
    }

    #[test]
    fn a_gap_not_filled_in_time_is_given_up_and_a_late_repair_dropped() {
        let mut reorder = Reorder::new();
        let start = Instant::now();
        reorder.push(start, 1, ts(1), 1);
        reorder.push(start, 3, ts(3), 3);
        assert_eq!(drain(&mut reorder, start), [1]);
        let almost = start + REPAIR_WAIT.saturating_sub(Duration::from_millis(1));
        assert_eq!(drain(&mut reorder, almost), Vec::<u16>::new());
        assert_eq!(drain(&mut reorder, start + REPAIR_WAIT), [3]);
        assert_eq!(reorder.gaps_given_up, 1);
        reorder.push(start + REPAIR_WAIT, 2, ts(2), 2);
        assert_eq!(drain(&mut reorder, start + REPAIR_WAIT), Vec::<u16>::new());
    }

    #[test]
    fn the_wait_follows_the_round_trip_within_bounds() {
        let mut reorder = Reorder::<u16>::new();
        assert_eq!(reorder.wait(), REPAIR_WAIT);
        reorder.set_round_trip(Duration::from_millis(200));
        assert_eq!(reorder.wait(), Duration::from_millis(450));
        let start = Instant::now();
        reorder.push(start, 1, ts(1), 1);
        reorder.push(start, 3, ts(3), 3);
        assert_eq!(drain(&mut reorder, start), [1]);
        // A repair at 300 ms still makes it: a fixed 200 ms would have given up.
        reorder.push(start + Duration::from_millis(300), 2, ts(2), 2);
        assert_eq!(
            drain(&mut reorder, start + Duration::from_millis(300)),
            [2, 3]
        );
        assert_eq!(reorder.gaps_given_up, 0);
        reorder.set_round_trip(Duration::ZERO);
        assert_eq!(reorder.wait(), MIN_REPAIR_WAIT);
        reorder.set_round_trip(Duration::from_secs(5));
        assert_eq!(reorder.wait(), MAX_REPAIR_WAIT);
    }

    #[test]
    fn an_outage_s_wide_gap_is_given_up_at_once() {
        let mut reorder = Reorder::new();
        let now = Instant::now();
        reorder.push(now, 100, 0, 100);
        // Three packets missing, but a second of the stream's time: an outage.
        reorder.push(now, 104, 90_000, 104);
        assert_eq!(drain(&mut reorder, now), [100, 104]);
        assert_eq!(reorder.gaps_given_up, 1);
        // A short gap still waits.
        reorder.push(now, 106, 90_000 + 3_000, 106);
        assert_eq!(drain(&mut reorder, now), Vec::<u16>::new());
    }

    #[test]
    fn too_much_held_gives_the_gap_up_at_once() {
        let mut reorder = Reorder::new();
        let now = Instant::now();
        reorder.push(now, 0, ts(0), 0);
        for number in 2..(MAX_HELD as u16 + 3) {
            reorder.push(now, number, ts(number), number);
        }
        let passed = drain(&mut reorder, now);
        assert_eq!(passed.first(), Some(&0));
        assert_eq!(passed.get(1), Some(&2), "the gap at 1 was given up");
        assert_eq!(reorder.gaps_given_up, 1);
    }

    #[test]
    fn a_gap_the_packets_behind_it_show_harmless_is_passed_at_once() {
        let mut reorder = Reorder::new();
        let now = Instant::now();
        reorder.push(now, 10, ts(10), 10);
        assert_eq!(drain(&mut reorder, now), [10]);
        // 11 is lost; 12 cannot tell (padding, say), 13 says the gap took nothing needed.
        reorder.push(now, 12, ts(12), 12);
        reorder.push(now, 13, ts(13), 13);
        let tells = |packet: &u16| (*packet != 12).then_some(*packet == 13);
        let passed: Vec<u16> = std::iter::from_fn(|| reorder.pop_with(now, tells)).collect();
        assert_eq!(passed, [12, 13]);
        assert_eq!((reorder.gaps_passed, reorder.gaps_given_up), (1, 0));
        // A gap the packet behind says was harmful waits for its repair as before.
        reorder.push(now, 15, ts(15), 15);
        assert_eq!(reorder.pop_with(now, |_| Some(false)), None);
        // And one whose only teller sits behind a second gap cannot be told harmless.
        reorder.push(now, 17, ts(17), 17);
        assert_eq!(
            reorder.pop_with(now, |packet| (*packet == 17).then_some(true)),
            None
        );
        let later = now + REPAIR_WAIT;
        assert_eq!(drain(&mut reorder, later), [15, 17]);
        assert_eq!(reorder.gaps_given_up, 2);
    }

    #[test]
    fn before_the_round_trip_is_measured_a_slow_path_s_repair_still_comes_in_time() {
        let mut reorder = Reorder::new();
        let start = Instant::now();
        reorder.push(start, 10, ts(10), 10);
        reorder.push(start, 12, ts(12), 12);
        assert_eq!(drain(&mut reorder, start), [10]);
        // 100 ms each way and some jitter: the resend of 11 comes 450 ms after it was missed.
        let resent = start + Duration::from_millis(450);
        assert_eq!(drain(&mut reorder, resent), Vec::<u16>::new());
        reorder.push(resent, 11, ts(11), 11);
        assert_eq!(drain(&mut reorder, resent), [11, 12]);
        assert_eq!(reorder.gaps_given_up, 0);
    }
}
