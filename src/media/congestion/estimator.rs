//! `Estimator`: how much this side may send to one peer, from the far end's transport-wide
//! feedback (draft-ietf-rmcat-gcc-02). A delay-based half (the trend of packet groups' delay
//! against an adaptive threshold, [`Trendline`]) drives an AIMD rate
//! that remembers the capacity it last backed off at; a loss-based half ([`LossRate`]) holds the
//! rate down when the path loses a tenth more of what is sent than it loses anyway; the lower of
//! the two, never climbing past half again what the far end acknowledges, is the estimate. A
//! probe ([`Prober`]) lifts it past that to what the path was shown to carry: the packets of a
//! probe's cluster count for its result only, not for the delay, loss or acknowledged rate.
//! Sans-IO: every call is given `now`.
//!
//! What the interceptor chain is told ([`BandwidthEstimator::target_bitrate`]) is the pacing
//! rate, [`PACING_FACTOR`] times the estimate: the pacer smooths bursts, it must not hold an
//! encoder that overshoots for a moment (a key frame) behind a queue the estimate cannot see.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::collections::VecDeque;

use rtc::interceptor::{BandwidthEstimator, PacketReport, Usage};

use super::loss::LossRate;
use super::probe::{ProbeRequest, ProbeResult, Prober};
use super::trendline::Trendline;

/// Where an estimate starts before any feedback: what most calls can carry.
pub const INITIAL_BPS: f64 = 300_000.0;
/// The least the estimate falls to: enough for the audio and a thumbnail of video.
pub const MIN_BPS: f64 = 40_000.0;
/// The most it climbs to.
pub const MAX_BPS: f64 = 8_000_000.0;
/// The pacer releases this many times the estimate (libwebrtc's 2.5).
pub const PACING_FACTOR: f64 = 2.5;

/// Backing off: this share of what the far end received.
const DECREASE_FACTOR: f64 = 0.85;
/// Far from any known capacity, the rate grows by this share a second: faster than the draft's
/// 8 %, which without probes takes 20 s from the start to 1.5 Mbit/s (the trend filter stops
/// an overshoot within a few hundred milliseconds).
const MULTIPLICATIVE_GROWTH_PER_SEC: f64 = 0.25;
/// The rate is not changed more often than this (each change is seen before the next).
pub(super) const CHANGE_INTERVAL: Duration = Duration::from_millis(200);
/// Near the capacity last backed off at, the rate grows by about one packet per response time:
/// a packet being at most this big, and a frame's share of the rate split into such packets.
const PACKET_BITS: f64 = 1_200.0 * 8.0;
const FRAMES_PER_SEC: f64 = 30.0;
const MIN_ADDITIVE_BITS: f64 = 1_000.0;
/// How long the far end takes to show the effect of a change, beyond the round trip.
const RESPONSE_MARGIN: Duration = Duration::from_millis(100);
/// The estimate stays within this multiple of what is acknowledged (plus a little), so a sender
/// that sends less than it may does not let the estimate run off where the path was never tried.
const ACKED_HEADROOM: f64 = 1.5;
const ACKED_SLACK_BPS: f64 = 10_000.0;
/// How far above the combined estimate either half may rest.
const HALVES_REACH: f64 = 1.25;
/// Packets that all took this much longer on the way than the quickest of the last
/// [`BASE_DELAY_MEMORY`] are behind a queue standing on the path (full, so it no longer grows:
/// the trend sees nothing, but it drops what comes, and delays what it does not).
const STANDING_QUEUE: Duration = Duration::from_millis(60);
const BASE_DELAY_MEMORY: Duration = Duration::from_secs(10);
/// Less loss than this, and no queue, lets the path be probed.
const CALM_LOSS: f64 = 0.1;
/// How long after a probe a back-off starts from what it carried.
const PROBED_FRESH: Duration = Duration::from_secs(2);
/// The window over which acknowledged bytes make a rate.
const ACKED_WINDOW: Duration = Duration::from_millis(750);

/// What one estimator says now, for the sender and the statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// What may be sent, in bits per second.
    pub target_bps: f64,
    /// The delay-based half's rate (what limits the target, beside the other, when a test
    /// shows an estimate).
    pub delay_based_bps: f64,
    /// The loss-based half's rate.
    pub loss_based_bps: f64,
    /// The share of packets the far end reported lost, smoothed (0 to 1).
    pub loss: f64,
    /// Whether any feedback has arrived (a far end that sends none leaves the estimate blind).
    pub informed: bool,
    /// Whether a probe has been judged: before, the target is the starting guess (or what
    /// feedback on the media alone made of it), which says little about the path.
    pub measured: bool,
}

impl Default for Estimate {
    fn default() -> Self {
        Self {
            target_bps: INITIAL_BPS,
            delay_based_bps: INITIAL_BPS,
            loss_based_bps: INITIAL_BPS,
            loss: 0.0,
            informed: false,
            measured: false,
        }
    }
}

/// The latest estimate of one peer connection, shared between the chain and the sender, and
/// the probe the estimator wants the pacer to send.
#[derive(Debug, Default)]
pub struct EstimateCell {
    estimate: Mutex<Estimate>,
    probe: Mutex<Option<ProbeRequest>>,
}

impl EstimateCell {
    /// A cell holding the starting estimate.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The estimate now.
    pub fn get(&self) -> Estimate {
        *self.estimate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the estimate.
    pub(crate) fn set(&self, estimate: Estimate) {
        *self.estimate.lock().unwrap_or_else(PoisonError::into_inner) = estimate;
    }

    /// Asks the pacer for a probe (replacing one it has not started).
    pub(super) fn request_probe(&self, probe: ProbeRequest) {
        *self.probe.lock().unwrap_or_else(PoisonError::into_inner) = Some(probe);
    }

    /// The probe asked for, once.
    pub(super) fn take_probe(&self) -> Option<ProbeRequest> {
        self.probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The capacity the path showed when the rate last backed off, with its spread (libwebrtc's
/// link capacity estimator): near it the rate creeps, far from it the rate grows quickly.
#[derive(Debug, Clone, Copy, Default)]
struct Capacity {
    /// Mean in bits per second, `None` until a back-off or once the path proved bigger.
    mean_bps: Option<f64>,
    /// Normalised variance (clamped), so the spread scales with the rate.
    variance: f64,
}

impl Capacity {
    fn on_backoff(&mut self, acknowledged_bps: f64) {
        const ALPHA: f64 = 0.05;
        let mean = self.mean_bps.map_or(acknowledged_bps, |mean| {
            (1.0 - ALPHA) * mean + ALPHA * acknowledged_bps
        });
        let deviation = (mean - acknowledged_bps).powi(2) / mean.max(1.0);
        self.variance = ((1.0 - ALPHA) * self.variance + ALPHA * deviation).clamp(400.0, 2_500.0);
        self.mean_bps = Some(mean);
    }

    fn spread_bps(&self, mean: f64) -> f64 {
        3.0 * (self.variance * mean).sqrt()
    }

    /// Whether `rate` is within the spread of the last capacity.
    fn is_near(&self, rate: f64) -> bool {
        self.mean_bps
            .is_some_and(|mean| rate <= mean + self.spread_bps(mean))
    }

    /// Forgets the capacity once the path carries clearly more than it.
    fn on_acknowledged(&mut self, acknowledged_bps: f64) {
        if let Some(mean) = self.mean_bps
            && acknowledged_bps > mean + self.spread_bps(mean)
        {
            self.mean_bps = None;
        }
    }
}

/// The delay-based AIMD rate.
#[derive(Debug, Clone)]
struct DelayRate {
    bps: f64,
    capacity: Capacity,
    last_change: Option<Instant>,
    /// What the last probe carried, and when: the first back-off soon after it is from there.
    probed: Option<(Instant, f64)>,
}

impl DelayRate {
    fn update(
        &mut self,
        now: Instant,
        usage: Usage,
        acknowledged: Option<f64>,
        rtt: Duration,
    ) -> f64 {
        if let Some(acknowledged) = acknowledged {
            self.capacity.on_acknowledged(acknowledged);
        }
        let since = self
            .last_change
            .map_or(CHANGE_INTERVAL, |last| now.saturating_duration_since(last));
        match usage {
            Usage::Over => {
                // Once per response time: the feedback of the last back-off is still on its way.
                if since >= rtt + RESPONSE_MARGIN || self.last_change.is_none() {
                    // Soon after a probe, from what it carried: the media may not fill what
                    // the probe showed yet (it follows the estimate with a lag), and the queue
                    // the probe itself left costs only one back-off.
                    let probed = self
                        .probed
                        .take()
                        .filter(|(at, _)| now.saturating_duration_since(*at) < PROBED_FRESH)
                        .map(|(_, bps)| bps);
                    let received = acknowledged.unwrap_or(self.bps).max(probed.unwrap_or(0.0));
                    self.capacity.on_backoff(received);
                    self.bps = (received * DECREASE_FACTOR).min(self.bps);
                    self.last_change = Some(now);
                }
            }
            // The queue drains: hold, so it can.
            Usage::Under => {}
            Usage::Normal => {
                if since >= CHANGE_INTERVAL {
                    self.bps = self.increased(since, rtt);
                    self.last_change = Some(now);
                }
            }
        }
        self.bps
    }

    /// A probe showed what the path carries: the rate starts from there, and the capacity is
    /// what it carried if the probe filled the path (else the path is bigger than known).
    fn raise_to(&mut self, now: Instant, probe: ProbeResult) {
        if probe.saturated {
            self.capacity.on_backoff(probe.carried_bps);
        } else {
            self.capacity.on_acknowledged(probe.carried_bps);
        }
        self.bps = self.bps.max(probe.carried_bps);
        self.last_change = Some(now);
        self.probed = Some((now, probe.carried_bps));
    }

    fn increased(&self, since: Duration, rtt: Duration) -> f64 {
        let secs = since.as_secs_f64().min(1.0);
        if self.capacity.is_near(self.bps) {
            // About one packet per response time, a packet being a frame's share of the rate.
            let frame_bits = self.bps / FRAMES_PER_SEC;
            let packet_bits = frame_bits / (frame_bits / PACKET_BITS).ceil().max(1.0);
            let response = (rtt + RESPONSE_MARGIN).as_secs_f64();
            self.bps + packet_bits.max(MIN_ADDITIVE_BITS) / response * secs
        } else {
            self.bps * (1.0 + MULTIPLICATIVE_GROWTH_PER_SEC).powf(secs)
        }
    }
}

/// What the far end received lately, from the arrival times it reported (its own clock): the
/// bytes that arrived over the last [`ACKED_WINDOW`] of arrivals, over the time they took.
/// Timing it by when the feedback came here instead would count a report's worth of bytes into
/// too short a span.
#[derive(Debug, Default, Clone)]
struct AckedRate {
    arrivals: VecDeque<(Duration, usize)>,
    bytes: usize,
}

impl AckedRate {
    fn add(&mut self, arrival: Duration, size: usize) {
        // Reports come in send order; a packet that overtook another arrives "earlier".
        let arrival = self
            .arrivals
            .back()
            .map_or(arrival, |(last, _)| arrival.max(*last));
        self.arrivals.push_back((arrival, size));
        self.bytes += size;
        while self
            .arrivals
            .front()
            .is_some_and(|(first, _)| arrival.saturating_sub(*first) > ACKED_WINDOW)
        {
            if let Some((_, old)) = self.arrivals.pop_front() {
                self.bytes -= old;
            }
        }
    }

    /// Bits per second, once the arrivals span enough time to say.
    fn bps(&self) -> Option<f64> {
        let (first, first_size) = *self.arrivals.front()?;
        let (last, _) = *self.arrivals.back()?;
        let span = last.saturating_sub(first);
        (span >= ACKED_WINDOW / 3)
            .then(|| (self.bytes - first_size) as f64 * 8.0 / span.as_secs_f64())
    }
}

/// The estimator of one peer connection.
pub struct Estimator {
    delay_trend: Trendline,
    acknowledged: AckedRate,
    delay: DelayRate,
    loss: LossRate,
    /// The last round trip the feedback implied, smoothed.
    rtt: Duration,
    queue: StandingQueue,
    prober: Prober,
    estimate: Estimate,
    published: Arc<EstimateCell>,
}

impl std::fmt::Debug for Estimator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Estimator")
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

impl Estimator {
    /// An estimator starting at [`INITIAL_BPS`], publishing into `cell`.
    pub fn new(cell: Arc<EstimateCell>) -> Self {
        let estimate = Estimate::default();
        cell.set(estimate);
        Self {
            delay_trend: Trendline::default(),
            acknowledged: AckedRate::default(),
            delay: DelayRate {
                bps: INITIAL_BPS,
                capacity: Capacity::default(),
                last_change: None,
                probed: None,
            },
            loss: LossRate::new(INITIAL_BPS),
            rtt: Duration::from_millis(100),
            queue: StandingQueue::default(),
            prober: Prober::default(),
            estimate,
            published: cell,
        }
    }

    /// The estimate now.
    pub fn estimate(&self) -> Estimate {
        self.estimate
    }

    /// The round trip from the newest acknowledged packet: its departure to now, less what the
    /// far end held it (unknown here, so this is an upper bound the feedback interval adds to).
    fn note_rtt(&mut self, now: Instant, reports: &[PacketReport]) {
        if let Some(newest) = reports.iter().rev().find(|report| report.arrived) {
            let sample = now.saturating_duration_since(newest.departure);
            self.rtt = (self.rtt * 7 + sample) / 8;
        }
    }
}

/// Whether a queue stands on the path: each batch's quickest packet against the quickest of the
/// last [`BASE_DELAY_MEMORY`], by their one-way delays (sender and receiver clocks differ by a
/// constant, which cancels out; the feedback's own interval does not enter, as it does a round
/// trip's).
#[derive(Debug, Default)]
struct StandingQueue {
    /// What departures are measured from.
    epoch: Option<Instant>,
    /// Candidates for the quickest, oldest first, each slower than those before it (a quicker
    /// one removes the slower ones before it).
    quickest: VecDeque<(Instant, i64)>,
    standing: bool,
}

impl StandingQueue {
    fn add(&mut self, now: Instant, reports: &[PacketReport]) {
        let epoch = *self
            .epoch
            .get_or_insert_with(|| reports.first().map_or(now, |report| report.departure));
        let Some(batch) = reports
            .iter()
            .filter_map(|report| {
                let arrival = report.arrival.filter(|_| report.arrived)?;
                let departed = report.departure.saturating_duration_since(epoch);
                Some(micros(arrival) - micros(departed))
            })
            .min()
        else {
            return;
        };
        while self
            .quickest
            .back()
            .is_some_and(|(_, later)| *later >= batch)
        {
            self.quickest.pop_back();
        }
        self.quickest.push_back((now, batch));
        while self
            .quickest
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > BASE_DELAY_MEMORY)
        {
            self.quickest.pop_front();
        }
        self.standing = self
            .quickest
            .front()
            .is_some_and(|(_, base)| batch - base > micros(STANDING_QUEUE));
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        self.note_rtt(now, reports);
        // A probe's packets queue on purpose, and may be lost for it: what they show is the
        // probe's result, not the path's delay, loss or what the media gets through.
        let path: Vec<PacketReport> = reports
            .iter()
            .filter(|report| !self.prober.probed_at(report.departure))
            .cloned()
            .collect();
        self.queue.add(now, &path);
        for report in &path {
            if let Some(arrival) = report.arrival.filter(|_| report.arrived) {
                self.acknowledged.add(arrival, report.size);
            }
            self.delay_trend.handle_report(report);
        }
        // A queue that is full no longer grows, so its trend says nothing; it is overuse all
        // the same (and it drops what comes).
        let usage = if self.queue.standing {
            Usage::Over
        } else {
            self.delay_trend.usage()
        };
        let acknowledged = self.acknowledged.bps();
        if let Some(acknowledged) = acknowledged {
            self.prober.note_carried(now, acknowledged);
        }
        // A probe the path carried above the rate: the rate starts from what it carried (a
        // queue building says otherwise, and wins).
        let probed = self
            .prober
            .handle_reports(now, reports)
            .filter(|result| usage != Usage::Over && result.carried_bps > self.estimate.target_bps);
        if let Some(result) = probed {
            self.delay.raise_to(now, result);
            self.loss.follow_probe(result.carried_bps.min(MAX_BPS));
        }
        let probed = probed.map(|result| result.carried_bps);
        let delay_based = self.delay.update(now, usage, acknowledged, self.rtt);
        let lost = path.iter().filter(|report| !report.arrived).count();
        let loss_based = self.loss.update(
            now,
            (lost, path.len()),
            (delay_based, usage == Usage::Over),
            self.rtt,
        );
        // What is acknowledged limits how far the estimate climbs, not where it stays: a sender
        // that sends little for a while (audio alone, a paused video) keeps what it had.
        let previous = self.estimate.target_bps.max(probed.unwrap_or(0.0));
        let ceiling = acknowledged
            .map_or(MAX_BPS, |acked| acked * ACKED_HEADROOM + ACKED_SLACK_BPS)
            .max(previous);
        let target = delay_based
            .min(loss_based)
            .min(ceiling)
            .clamp(MIN_BPS, MAX_BPS);
        // Neither half runs off where the path was never tried, nor far above the other: the
        // half that is not limiting climbs from near the estimate once the other lets go. Nor
        // does either sink below the floor, where climbing back would take minutes.
        let reach = ceiling.min(target * HALVES_REACH).clamp(MIN_BPS, MAX_BPS);
        self.delay.bps = self.delay.bps.clamp(MIN_BPS, reach);
        self.loss.limit(MIN_BPS, reach);
        self.estimate = Estimate {
            target_bps: target,
            delay_based_bps: delay_based,
            loss_based_bps: loss_based,
            loss: self.loss.smoothed(),
            informed: true,
            measured: self.prober.measured(),
        };
        self.published.set(self.estimate);
        let calm = usage == Usage::Normal && self.estimate.loss < CALM_LOSS;
        if let Some(probe) = self.prober.poll_probe(now, target, calm) {
            self.published.request_probe(probe);
        }
    }

    fn target_bitrate(&self) -> f64 {
        self.estimate.target_bps * PACING_FACTOR
    }
}

#[cfg(test)]
mod tests {
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    use super::*;
    use crate::media::ladder::whole_bps;

    fn secs(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    /// Feedback every 100 ms for `secs` seconds of packets of 1,000 bytes at `bps`, each
    /// arriving 20 ms after it left.
    fn feed(estimator: &mut Estimator, start: Instant, from: Duration, secs: u64, bps: f64) {
        feed_behind(estimator, (start, from), secs, bps, Duration::ZERO);
    }

    /// [`feed`], each packet `queued` longer on the way.
    fn feed_behind(
        estimator: &mut Estimator,
        (start, from): (Instant, Duration),
        secs: u64,
        bps: f64,
        queued: Duration,
    ) {
        let per_batch = u64::from(whole_bps(bps / 8.0 / 1_000.0 / 10.0).max(1));
        let mut id = 0;
        for batch in 0..secs * 10 {
            let at = start + from + Duration::from_millis(batch * 100);
            let reports: Vec<PacketReport> = (0..per_batch)
                .map(|index| {
                    id += 1;
                    let sent = at + Duration::from_micros(index * 100_000 / per_batch);
                    let since_start = sent.saturating_duration_since(start);
                    PacketReport {
                        ssrc: 1,
                        id,
                        rtp_sequence_number: id as u16,
                        is_twcc: true,
                        twcc_sequence_number: id as u16,
                        size: 1_000,
                        arrived: true,
                        departure: sent,
                        arrival: Some(since_start + Duration::from_millis(20) + queued),
                        ecn: Ecn::default(),
                    }
                })
                .collect();
            estimator.on_reports(at + Duration::from_millis(100), &reports);
        }
    }

    #[test]
    fn the_estimate_climbs_with_what_is_sent_and_holds_while_little_is() {
        let start = Instant::now();
        let mut estimator = Estimator::new(EstimateCell::new());
        feed(&mut estimator, start, Duration::ZERO, 10, 1_200_000.0);
        let busy = estimator.estimate().target_bps;
        assert!(busy > 1_000_000.0, "{busy}");
        assert!(
            busy <= 1_200_000.0 * ACKED_HEADROOM + ACKED_SLACK_BPS,
            "{busy}"
        );
        // The video stops: 40 kbit/s of audio alone for 20 s. The path did not shrink.
        feed(&mut estimator, start, Duration::from_secs(10), 20, 40_000.0);
        let quiet = estimator.estimate().target_bps;
        assert!(quiet >= busy * 0.95, "{quiet} after {busy}");
        assert!(estimator.estimate().informed);
    }

    #[test]
    fn a_queue_that_fills_and_then_stands_full_brings_the_estimate_down() {
        let start = Instant::now();
        let mut estimator = Estimator::new(EstimateCell::new());
        feed(&mut estimator, start, Duration::ZERO, 10, 1_200_000.0);
        let before = estimator.estimate().target_bps;
        // Every packet 150 ms later than before, and no later than each other: the trend sees
        // one step, then a flat line; the queue is full.
        let queued = Duration::from_millis(150);
        feed_behind(&mut estimator, (start, secs(10)), 5, 1_200_000.0, queued);
        let standing = estimator.estimate().target_bps;
        assert!(standing < before * 0.5, "{standing} after {before}");
    }
}
