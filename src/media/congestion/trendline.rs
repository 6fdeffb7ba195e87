//! `Trendline`: whether the path's queue is growing, from the delay of packet groups (libwebrtc's
//! trendline filter, the successor of draft-ietf-rmcat-gcc-02's Kalman filter). Each group's
//! delay change is accumulated and smoothed; the slope of a straight line through the last
//! [`WINDOW`] points, scaled by how many deltas back it, is compared against a threshold that
//! follows it slowly. A queue growing by a few milliseconds a frame — a sender a fifth over a
//! capped link — shows as a steady slope long before the queue overflows, where a per-group
//! filter sees only noise. Sans-IO: each report carries its own times.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{ArrivalGroupAccumulator, PacketReport, Usage};

/// Points the slope is fitted through.
const WINDOW: usize = 20;
/// Weight of the older smoothed delay against the newly accumulated one.
const SMOOTHING: f64 = 0.9;
/// The slope is scaled by this and by the deltas behind it (at most [`DELTAS_CAP`]).
const GAIN: f64 = 4.0;
const DELTAS_CAP: u32 = 60;
/// The threshold's start, bounds, and how fast it follows (up, and back down).
const THRESHOLD_START_MS: f64 = 12.5;
const THRESHOLD_MIN_MS: f64 = 6.0;
const THRESHOLD_MAX_MS: f64 = 600.0;
const THRESHOLD_UP: f64 = 0.0087;
const THRESHOLD_DOWN: f64 = 0.039;
/// A trend this far past the threshold is a spike, not a reason to move the threshold.
const THRESHOLD_SPIKE_MS: f64 = 15.0;
/// The trend must stay over the threshold this long (and twice in a row) to be overuse.
const OVERUSE_MS: f64 = 10.0;

/// The delay-based detector.
#[derive(Debug, Clone)]
pub struct Trendline {
    groups: ArrivalGroupAccumulator,
    accumulated_ms: f64,
    smoothed_ms: f64,
    /// (milliseconds since the first group, smoothed delay)
    points: VecDeque<(f64, f64)>,
    first: Option<Instant>,
    previous_departure: Option<Instant>,
    deltas: u32,
    previous_trend: f64,
    threshold_ms: f64,
    threshold_updated_ms: Option<f64>,
    over_ms: Option<f64>,
    over_count: u32,
    usage: Usage,
}

impl Default for Trendline {
    fn default() -> Self {
        Self {
            groups: ArrivalGroupAccumulator::default(),
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            points: VecDeque::with_capacity(WINDOW + 1),
            first: None,
            previous_departure: None,
            deltas: 0,
            previous_trend: 0.0,
            threshold_ms: THRESHOLD_START_MS,
            threshold_updated_ms: None,
            over_ms: None,
            over_count: 0,
            usage: Usage::Normal,
        }
    }
}

impl Trendline {
    /// What the delay says now.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Folds in one packet's report; the usage, changed or not.
    pub fn handle_report(&mut self, report: &PacketReport) -> Usage {
        let Some(delay) = self.groups.accumulate(report) else {
            return self.usage;
        };
        let at = delay.at;
        let first = *self.first.get_or_insert(at);
        let send_delta_ms = self.previous_departure.map_or(0.0, |previous| {
            at.saturating_duration_since(previous).as_secs_f64() * 1e3
        });
        self.previous_departure = Some(at);
        self.deltas = (self.deltas + 1).min(1_000);
        self.accumulated_ms += delay.delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let x = at.saturating_duration_since(first).as_secs_f64() * 1e3;
        self.points.push_back((x, self.smoothed_ms));
        if self.points.len() > WINDOW {
            self.points.pop_front();
        }
        let trend = if self.points.len() == WINDOW {
            slope(&self.points).unwrap_or(self.previous_trend)
        } else {
            self.previous_trend
        };
        self.detect(trend, send_delta_ms, x);
        self.usage
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, now_ms: f64) {
        if self.deltas < 2 {
            self.usage = Usage::Normal;
            return;
        }
        let modified = f64::from(self.deltas.min(DELTAS_CAP)) * trend * GAIN;
        if modified > self.threshold_ms {
            let over = self
                .over_ms
                .map_or(send_delta_ms / 2.0, |over| over + send_delta_ms);
            self.over_ms = Some(over);
            self.over_count += 1;
            if over > OVERUSE_MS && self.over_count > 1 && trend >= self.previous_trend {
                self.over_ms = Some(0.0);
                self.over_count = 0;
                self.usage = Usage::Over;
            }
        } else {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = if modified < -self.threshold_ms {
                Usage::Under
            } else {
                Usage::Normal
            };
        }
        self.previous_trend = trend;
        self.adapt_threshold(modified, now_ms);
    }

    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.threshold_updated_ms.get_or_insert(now_ms);
        self.threshold_updated_ms = Some(now_ms);
        let magnitude = modified.abs();
        if magnitude > self.threshold_ms + THRESHOLD_SPIKE_MS {
            return;
        }
        let gain = if magnitude < self.threshold_ms {
            THRESHOLD_DOWN
        } else {
            THRESHOLD_UP
        };
        let elapsed = (now_ms - last).clamp(0.0, 100.0);
        self.threshold_ms = (self.threshold_ms + gain * (magnitude - self.threshold_ms) * elapsed)
            .clamp(THRESHOLD_MIN_MS, THRESHOLD_MAX_MS);
    }
}

/// The least-squares slope of `points`; `None` when they all share one x.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let count = points.len() as f64;
    let (sum_x, sum_y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), point| (x + point.0, y + point.1));
    let (mean_x, mean_y) = (sum_x / count, sum_y / count);
    let (numerator, denominator) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (
            num + (x - mean_x) * (y - mean_y),
            den + (x - mean_x) * (x - mean_x),
        )
    });
    (denominator > 0.0).then(|| numerator / denominator)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    use super::*;

    /// A frame's packets every 33 ms, arriving `growth_ms` later each frame than the last.
    fn run(growth_ms: f64, frames: u64) -> Vec<Usage> {
        let epoch = Instant::now();
        let mut trendline = Trendline::default();
        let mut usages = Vec::new();
        for frame in 0..frames {
            let departure = epoch + Duration::from_millis(frame * 33);
            let arrival = Duration::from_secs_f64(
                (frame as f64 * 33.0 + 20.0 + growth_ms * frame as f64) / 1e3,
            );
            let report = PacketReport {
                ssrc: 1,
                id: frame,
                rtp_sequence_number: frame as u16,
                is_twcc: true,
                twcc_sequence_number: frame as u16,
                size: 1_200,
                arrived: true,
                departure,
                arrival: Some(arrival),
                ecn: Ecn::default(),
            };
            usages.push(trendline.handle_report(&report));
        }
        usages
    }

    #[test]
    fn a_steady_path_is_normal_and_a_queue_growing_a_few_ms_a_frame_is_overuse() {
        assert!(run(0.0, 300).iter().all(|usage| *usage == Usage::Normal));
        // A sender a fifth over the link's rate: 33 ms of frames take 40 to drain.
        let growing = run(6.6, 100);
        let first = growing.iter().position(|usage| *usage == Usage::Over);
        assert!(
            first.is_some_and(|frame| frame < 40),
            "overuse at frame {first:?}"
        );
    }

    #[test]
    fn a_draining_queue_is_underuse() {
        let draining = run(-5.0, 100);
        assert!(draining.contains(&Usage::Under));
        assert!(!draining.contains(&Usage::Over));
    }
}
