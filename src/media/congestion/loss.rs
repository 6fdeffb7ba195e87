//! `LossRate`: the loss-based half of the estimate (draft-ietf-rmcat-gcc-02 §6), told apart
//! from the loss a path has anyway. A queue that overflows loses packets only while the sender
//! is over the path's capacity; a radio link loses its few per cent at any rate, and backing off
//! for that loss only starves the call. So the thresholds sit above the path's own loss, learnt
//! when a second sent at a clearly lower rate lost about as much as one before it (a queue that
//! overflowed loses less once the rate is below the path's). Above the high threshold the rate
//! falls in proportion, once per response time; below the low one it climbs back towards the
//! delay-based rate; between, it holds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::estimator::CHANGE_INTERVAL;

/// Loss below this share (over the path's own) lets the rate climb; above [`LOSS_HIGH`], it
/// falls.
const LOSS_LOW: f64 = 0.02;
const LOSS_HIGH: f64 = 0.10;
/// Between the thresholds with no queue building, the rate climbs by this share per change,
/// about 15 % a second (the healthy climb is near 50 %).
const CALM_GROWTH: f64 = 0.03;
/// Beyond the round trip, the time a decrease takes to show in the feedback.
const LOSS_RESPONSE: Duration = Duration::from_millis(300);
/// How far back the seconds compared are kept, one figure a second.
const MEMORY: Duration = Duration::from_secs(10);
const BUCKET: Duration = Duration::from_secs(1);
/// A second sent at this many times the rate, that lost no more than [`SAME_LOSS`] more, says
/// the loss does not come from the rate.
const RATE_CLEARLY_MORE: f64 = 1.5;
const SAME_LOSS: f64 = 0.03;
/// The path's own loss, once learnt, fades by this a second.
const FADE_PER_SEC: f64 = 0.98;

/// One second of reports: what was lost of what was sent, at which rate.
#[derive(Debug, Clone, Copy)]
struct Second {
    start: Instant,
    lost: usize,
    total: usize,
    rate_bps: f64,
}

impl Second {
    fn share(&self) -> f64 {
        self.lost as f64 / self.total.max(1) as f64
    }
}

/// The path's own loss: learnt when sending clearly less did not lose less.
#[derive(Debug, Clone, Default)]
struct OwnLoss {
    seconds: VecDeque<Second>,
    /// The loss learnt, and when (it fades, so a path that heals is believed again).
    learnt: Option<(f64, Instant)>,
}

impl OwnLoss {
    fn add(&mut self, now: Instant, lost: usize, total: usize, rate_bps: f64) {
        match self.seconds.back_mut() {
            Some(second) if now.saturating_duration_since(second.start) < BUCKET => {
                second.lost += lost;
                second.total += total;
            }
            _ => {
                self.learn(now);
                self.seconds.push_back(Second {
                    start: now,
                    lost,
                    total,
                    rate_bps,
                });
            }
        }
        while self
            .seconds
            .front()
            .is_some_and(|second| now.saturating_duration_since(second.start) > MEMORY)
        {
            self.seconds.pop_front();
        }
    }

    /// The second just closed, against the earlier ones: sent at a clearly lower rate, did it
    /// lose about as much? Then that much loss is the path's.
    fn learn(&mut self, now: Instant) {
        let Some((closed, earlier)) = self.seconds.make_contiguous().split_last() else {
            return;
        };
        let loss = closed.share();
        let own = earlier
            .iter()
            .filter(|second| {
                second.rate_bps >= closed.rate_bps * RATE_CLEARLY_MORE
                    && second.share() <= loss + SAME_LOSS
            })
            .map(|second| second.share().min(loss))
            .fold(None, |least: Option<f64>, share| {
                Some(least.map_or(share, |least| least.min(share)))
            });
        if let Some(own) = own
            && own > self.floor(now)
        {
            self.learnt = Some((own, now));
        }
    }

    /// The path's own loss now (0 until learnt), fading by [`FADE_PER_SEC`].
    fn floor(&self, now: Instant) -> f64 {
        self.learnt.map_or(0.0, |(own, at)| {
            own * FADE_PER_SEC.powf(now.saturating_duration_since(at).as_secs_f64())
        })
    }
}

/// The loss-based rate.
#[derive(Debug, Clone)]
pub struct LossRate {
    bps: f64,
    smoothed: Option<f64>,
    own: OwnLoss,
    last_change: Option<Instant>,
}

impl LossRate {
    /// A rate starting at `initial_bps`.
    pub fn new(initial_bps: f64) -> Self {
        Self {
            bps: initial_bps,
            smoothed: None,
            own: OwnLoss::default(),
            last_change: None,
        }
    }

    /// The share of packets lost lately, smoothed (0 to 1).
    pub fn smoothed(&self) -> f64 {
        self.smoothed.unwrap_or(0.0)
    }

    /// A probe showed the path carries `carried_bps`: on a path that loses little the rate
    /// starts from there. One that loses more keeps climbing at its own pace: each packet more
    /// a second is another that may need a resend, and a resend lost too costs a picture.
    pub fn follow_probe(&mut self, carried_bps: f64) {
        if self.smoothed() < LOSS_LOW {
            self.bps = self.bps.max(carried_bps);
        }
    }

    /// Keeps the rate within `floor_bps` and `ceiling_bps`.
    pub fn limit(&mut self, floor_bps: f64, ceiling_bps: f64) {
        self.bps = self.bps.clamp(floor_bps, ceiling_bps);
    }

    /// Folds in a batch of reports: `lost` of `total` did not arrive; the delay-based rate is
    /// `delay_based`, the round trip `rtt`, and `queue_building` whether the delay trend says a
    /// queue grows on the path. The rate after.
    pub fn update(
        &mut self,
        now: Instant,
        (lost, total): (usize, usize),
        (delay_based, queue_building): (f64, bool),
        rtt: Duration,
    ) -> f64 {
        if total == 0 {
            return self.bps;
        }
        self.own.add(now, lost, total, self.bps);
        let sample = lost as f64 / total as f64;
        let smoothed = self
            .smoothed
            .map_or(sample, |before| 0.8 * before + 0.2 * sample);
        self.smoothed = Some(smoothed);
        let since = self
            .last_change
            .map(|last| now.saturating_duration_since(last));
        if since.is_some_and(|since| since < CHANGE_INTERVAL) {
            return self.bps;
        }
        let own = self.own.floor(now);
        if smoothed < own + LOSS_LOW {
            // Healthy: climb back towards what the delay allows, quickly but not at once (the
            // loss that brought it down may return at the rate that caused it).
            self.bps = (self.bps * 1.08).min(self.bps.max(delay_based));
            self.last_change = Some(now);
        } else if smoothed > own + LOSS_HIGH {
            // Once per response time: the last decrease's effect is not visible sooner.
            if since.is_none_or(|since| since >= rtt + LOSS_RESPONSE) {
                self.bps *= 1.0 - 0.5 * (smoothed - own);
                self.last_change = Some(now);
            }
        } else if !queue_building {
            // Between the thresholds, and no queue behind the loss: climb, slowly, towards
            // what the delay allows. If the loss was the queue's after all, it rises above the
            // high threshold and the rate falls again.
            self.bps = (self.bps * (1.0 + CALM_GROWTH)).min(self.bps.max(delay_based));
            self.last_change = Some(now);
        }
        // Between the thresholds with a queue building: hold. Climbing would fill again the
        // queue that just overflowed; a few per cent is not worth backing off for either.
        self.bps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten batches a second of 100 packets, `lost` of them lost, for `secs` seconds, with a
    /// queue building on the path whenever it loses.
    fn run(rate: &mut LossRate, start: Instant, from_ms: u64, secs: u64, lost: usize) {
        run_with(rate, (start, from_ms), secs, lost, lost > 0);
    }

    fn run_with(
        rate: &mut LossRate,
        (start, from_ms): (Instant, u64),
        secs: u64,
        lost: usize,
        queue_building: bool,
    ) {
        for step in 0..secs * 10 {
            let now = start + Duration::from_millis(from_ms + step * 100);
            rate.update(
                now,
                (lost, 100),
                (2_000_000.0, queue_building),
                Duration::from_millis(50),
            );
        }
    }

    #[test]
    fn a_few_per_cent_lost_holds_the_rate_behind_a_growing_queue_and_not_without_one() {
        let start = Instant::now();
        let mut queued = LossRate::new(300_000.0);
        run_with(&mut queued, (start, 0), 10, 5, true);
        assert!((queued.bps - 300_000.0).abs() < 1.0, "{}", queued.bps);
        // The same loss with no queue behind it is the path's: the rate climbs, slowly.
        let mut calm = LossRate::new(300_000.0);
        run_with(&mut calm, (start, 0), 5, 5, false);
        assert!(calm.bps > 450_000.0, "{}", calm.bps);
        assert!(calm.bps < 300_000.0 * 1.08_f64.powi(25), "{}", calm.bps);
        run_with(&mut calm, (start, 5_000), 20, 5, false);
        assert!((calm.bps - 2_000_000.0).abs() < 1.0, "{}", calm.bps);
    }

    #[test]
    fn a_probe_lifts_the_rate_of_a_path_that_loses_little_and_not_of_one_that_loses_more() {
        let start = Instant::now();
        let mut clean = LossRate::new(300_000.0);
        run(&mut clean, start, 0, 2, 0);
        clean.follow_probe(1_500_000.0);
        assert!((clean.bps - 1_500_000.0).abs() < 1.0, "{}", clean.bps);
        let mut lossy = LossRate::new(300_000.0);
        run_with(&mut lossy, (start, 0), 2, 5, true);
        lossy.follow_probe(1_500_000.0);
        assert!(lossy.bps < 400_000.0, "{}", lossy.bps);
    }

    #[test]
    fn loss_that_never_goes_away_is_the_path_s_own_and_costs_no_rate() {
        let start = Instant::now();
        let mut rate = LossRate::new(300_000.0);
        run(&mut rate, start, 0, 30, 12);
        // The first seconds fall (nothing is known yet); then the floor of 12 % is the path's.
        let after_learning = rate.bps;
        run(&mut rate, start, 30_000, 30, 12);
        assert!(
            rate.bps >= after_learning,
            "{} fell from {after_learning}",
            rate.bps
        );
    }

    #[test]
    fn loss_that_comes_with_the_rate_is_congestion_and_brings_it_down() {
        let start = Instant::now();
        let mut rate = LossRate::new(1_000_000.0);
        run(&mut rate, start, 0, 10, 0);
        run(&mut rate, start, 10_000, 3, 30);
        assert!(rate.bps < 1_000_000.0, "{} from 1 Mbit/s", rate.bps);
        let fallen = rate.bps;
        // Back to clean: it climbs again, towards the delay-based rate.
        run(&mut rate, start, 13_000, 5, 0);
        assert!(rate.bps > fallen * 2.0, "{} from {fallen}", rate.bps);
    }
}
