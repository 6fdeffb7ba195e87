//! `Prober`: asks the path for more than the media sends, for a moment, and measures what it
//! carried. The estimate otherwise only grows with what the encoder makes of it, a few per cent
//! a second: after a cap lifts, a call would take half a minute to find its path again. A probe
//! is a short cluster sent at a rate of its own (the pacer fills what the media leaves with
//! copies of recent packets on the retransmission stream); the far end's feedback tells how fast
//! the cluster arrived, and the lesser of the sending and the arriving rate is what the path
//! carries at least.
//!
//! When: at the start of a call, at three times the starting estimate; after a probe the path
//! carried without filling, again at twice what it carried; and while the estimate is far below what the path
//! carried within the last minute (a cap that may have lifted), every [`RECOVERY_INTERVAL`]
//! while no queue builds. Sans-IO: every call is given `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// What the estimator asks the pacer for: send at `rate_bps`, from when it is told, for
/// `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRequest {
    /// The rate the cluster is sent at, media and padding together, in bits per second.
    pub rate_bps: f64,
    /// How long the cluster lasts.
    pub duration: Duration,
}

/// What a probe showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeResult {
    /// What the path carried at least, in bits per second.
    pub carried_bps: f64,
    /// Whether the cluster filled the path (a queue grew while it was sent): then what it
    /// carried is what the path can carry, not only a lower bound.
    pub saturated: bool,
}

/// The first probe is this many times the starting estimate (libwebrtc's first of two).
const INITIAL_FACTOR: f64 = 3.0;
/// A probe the path carried is followed by one at this many times what it carried.
const FURTHER_FACTOR: f64 = 2.0;
/// A probe counts as carried when it arrived at this share of its rate.
const CARRIED_SHARE: f64 = 0.7;
/// A queue that grew during the cluster (it arrived slower than this share of how it was sent)
/// means the path is full: what it carries is a little less than the cluster's arrival rate.
const UNSATURATED_SHARE: f64 = 0.9;
const SATURATED_USE: f64 = 0.95;
/// No probe above this: more than the largest picture needs.
const PROBE_MAX_BPS: f64 = 5_000_000.0;
/// A cluster is long enough for this many full-sized packets, within these bounds.
const CLUSTER_PACKETS: f64 = 8.0;
const CLUSTER_PACKET_BITS: f64 = 1_200.0 * 8.0;
const MIN_CLUSTER: Duration = Duration::from_millis(50);
const MAX_CLUSTER: Duration = Duration::from_millis(200);
/// A cluster of fewer packets, or of which less than this share arrived, says nothing.
const MIN_CLUSTER_REPORTS: usize = 5;
const MIN_ARRIVED_SHARE: f64 = 0.8;
/// A cluster whose reports have not all come after this is judged on what has.
const REPORT_WAIT: Duration = Duration::from_secs(1);
/// While the estimate is below this share of the most carried within [`CARRIED_MEMORY`], the
/// path is probed at [`RECOVERY_FACTOR`] times the estimate, every [`RECOVERY_INTERVAL`] at
/// first, then less often (twice the last wait, up to [`MAX_RECOVERY_INTERVAL`]) while the
/// probes find nothing: each leaves a queue of a few packets on a path that is full.
const RECOVERY_SHARE: f64 = 0.5;
const CARRIED_MEMORY: Duration = Duration::from_mins(1);
const RECOVERY_FACTOR: f64 = 1.5;
const RECOVERY_INTERVAL: Duration = Duration::from_secs(2);
const MAX_RECOVERY_INTERVAL: Duration = Duration::from_secs(3);
/// Below this estimate probing is not worth the path's time: the ladder's lowest rungs.
const MIN_PROBED_ESTIMATE_BPS: f64 = 100_000.0;

/// One cluster sent and the reports of its packets.
#[derive(Debug, Clone)]
struct Cluster {
    start: Instant,
    end: Instant,
    rate_bps: f64,
    /// (departure, arrival on the far end's clock or none, size in bytes)
    packets: Vec<(Instant, Option<Duration>, usize)>,
    /// Whether a packet that left after the cluster has been reported (so all of it has).
    complete: bool,
}

impl Cluster {
    fn add(&mut self, report: &PacketReport) {
        if report.departure > self.end {
            self.complete = true;
        } else if report.departure >= self.start {
            let arrival = report.arrival.filter(|_| report.arrived);
            self.packets.push((report.departure, arrival, report.size));
        }
    }

    /// What the cluster showed; `None` if it says nothing.
    fn result(&self) -> Option<ProbeResult> {
        let arrived: Vec<_> = self
            .packets
            .iter()
            .filter_map(|&(departure, arrival, size)| Some((departure, arrival?, size)))
            .collect();
        if arrived.len() < MIN_CLUSTER_REPORTS
            || (arrived.len() as f64) < self.packets.len() as f64 * MIN_ARRIVED_SHARE
        {
            return None;
        }
        let sent_span = self
            .packets
            .last()?
            .0
            .saturating_duration_since(self.packets.first()?.0);
        let first_arrival = arrived.iter().map(|packet| packet.1).min()?;
        let last_arrival = arrived.iter().map(|packet| packet.1).max()?;
        let arrival_span = last_arrival.saturating_sub(first_arrival);
        if sent_span.is_zero() || arrival_span.is_zero() {
            return None;
        }
        // Each span is bounded by packets: the last sent's bytes are not in the sending rate's
        // time, nor the first arrived's in the arriving rate's.
        let sent_bits = self.packets[..self.packets.len() - 1]
            .iter()
            .map(|packet| packet.2)
            .sum::<usize>() as f64
            * 8.0;
        let first_size = arrived
            .iter()
            .find(|packet| packet.1 == first_arrival)
            .map_or(0, |packet| packet.2);
        let arrived_bits =
            (arrived.iter().map(|packet| packet.2).sum::<usize>() - first_size) as f64 * 8.0;
        let sent_bps = sent_bits / sent_span.as_secs_f64();
        let arrived_bps = arrived_bits / arrival_span.as_secs_f64();
        let saturated = arrived_bps < sent_bps * UNSATURATED_SHARE;
        Some(ProbeResult {
            carried_bps: if saturated {
                arrived_bps * SATURATED_USE
            } else {
                sent_bps.min(arrived_bps)
            },
            saturated,
        })
    }
}

/// The prober of one estimator.
#[derive(Debug, Default)]
pub struct Prober {
    /// Whether the call's first probe has been asked for.
    started: bool,
    /// Whether a probe has been judged.
    measured: bool,
    /// The cluster whose reports are awaited.
    pending: Option<Cluster>,
    /// A further probe to send once nothing is pending, at this rate.
    further_bps: Option<f64>,
    /// The most the path carried lately: (when, bits per second), each less than those before.
    carried: VecDeque<(Instant, f64)>,
    last_probe: Option<Instant>,
    /// Probes in a row the path did not carry.
    failed: u32,
}

impl Prober {
    /// Whether a packet that left at `departure` belongs to the cluster being awaited (its
    /// queueing is the probe's, on purpose).
    pub fn probed_at(&self, departure: Instant) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|cluster| (cluster.start..=cluster.end).contains(&departure))
    }

    /// Folds in a batch of reports; what a cluster showed, once it is judged.
    pub fn handle_reports(
        &mut self,
        now: Instant,
        reports: &[PacketReport],
    ) -> Option<ProbeResult> {
        let cluster = self.pending.as_mut()?;
        for report in reports {
            cluster.add(report);
        }
        if !cluster.complete && now.saturating_duration_since(cluster.end) < REPORT_WAIT {
            return None;
        }
        let cluster = self.pending.take()?;
        self.measured = true;
        let result = cluster.result();
        if let Some(result) = result {
            self.note_carried(now, result.carried_bps);
        }
        if let Some(result) =
            result.filter(|result| result.carried_bps >= cluster.rate_bps * CARRIED_SHARE)
        {
            self.failed = 0;
            // A cluster that filled the path found its size: no further probe.
            self.further_bps = Some(result.carried_bps * FURTHER_FACTOR).filter(|&rate| {
                !result.saturated && cluster.rate_bps < PROBE_MAX_BPS && rate > cluster.rate_bps
            });
        } else {
            self.failed = self.failed.saturating_add(1);
        }
        result
    }

    /// Whether a probe has been judged. One mostly lost shows no figure, but that the path is
    /// far narrower than the probe, which is measure enough not to wait on the starting guess.
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// What the media carried lately (the acknowledged rate), so a fall from it is seen.
    pub fn note_carried(&mut self, now: Instant, bps: f64) {
        while self
            .carried
            .back()
            .is_some_and(|&(_, before)| before <= bps)
        {
            self.carried.pop_back();
        }
        self.carried.push_back((now, bps));
        while self
            .carried
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) > CARRIED_MEMORY)
        {
            self.carried.pop_front();
        }
    }

    /// A probe to send now, if one is due: the estimate is `estimate_bps`, and `calm` says
    /// whether the path shows no queue and little loss.
    pub fn poll_probe(
        &mut self,
        now: Instant,
        estimate_bps: f64,
        calm: bool,
    ) -> Option<ProbeRequest> {
        if self.pending.is_some() {
            return None;
        }
        let rate = if !self.started {
            self.started = true;
            estimate_bps * INITIAL_FACTOR
        } else if let Some(further) = self.further_bps.take() {
            further
        } else if calm && self.recovering(now, estimate_bps) {
            estimate_bps * RECOVERY_FACTOR
        } else {
            return None;
        };
        let rate_bps = rate.min(PROBE_MAX_BPS);
        let duration = Duration::from_secs_f64(CLUSTER_PACKETS * CLUSTER_PACKET_BITS / rate_bps)
            .clamp(MIN_CLUSTER, MAX_CLUSTER);
        self.pending = Some(Cluster {
            start: now,
            end: now + duration,
            rate_bps,
            packets: Vec::new(),
            complete: false,
        });
        self.last_probe = Some(now);
        Some(ProbeRequest { rate_bps, duration })
    }

    /// Whether the estimate is far below what the path carried within the last minute, and
    /// the last probe long enough ago.
    fn recovering(&self, now: Instant, estimate_bps: f64) -> bool {
        let most = self.carried.front().map_or(0.0, |&(_, bps)| bps);
        let wait = RECOVERY_INTERVAL
            .saturating_mul(1 << self.failed.min(8))
            .min(MAX_RECOVERY_INTERVAL);
        estimate_bps >= MIN_PROBED_ESTIMATE_BPS
            && estimate_bps < most * RECOVERY_SHARE
            && self
                .last_probe
                .is_none_or(|last| now.saturating_duration_since(last) >= wait)
    }
}

#[cfg(test)]
mod tests {
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    use super::*;

    /// Reports of packets of `size` bytes sent every `gap` from `from`, arriving at
    /// `arrive(index)` after the epoch (none: lost).
    fn reports(
        from: Instant,
        epoch: Instant,
        count: u64,
        gap: Duration,
        arrive: impl Fn(u64) -> Option<Duration>,
    ) -> Vec<PacketReport> {
        (0..count)
            .map(|index| {
                let arrival = arrive(index);
                PacketReport {
                    ssrc: 1,
                    id: index,
                    rtp_sequence_number: index as u16,
                    is_twcc: true,
                    twcc_sequence_number: index as u16,
                    size: 1_200,
                    arrived: arrival.is_some(),
                    departure: from + gap * u32::try_from(index).expect("small"),
                    arrival: arrival.map(|at| at + from.duration_since(epoch)),
                    ecn: Ecn::default(),
                }
            })
            .collect()
    }

    /// A cluster of 1,200-byte packets sent every 10 ms (960 kbit/s) from `start`, arriving
    /// `spacing` apart after `delay`, then a packet after it, which says all of it has been
    /// reported.
    fn cluster(start: Instant, spacing: Duration, delay: Duration) -> Vec<PacketReport> {
        let gap = Duration::from_millis(10);
        let mut sent = reports(start, start, 15, gap, |index| {
            Some(delay + spacing * u32::try_from(index).expect("small"))
        });
        sent.extend(reports(start + ms(400), start, 1, gap, |_| Some(ms(1_000))));
        sent
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_first_probe_asks_three_times_the_estimate_and_a_carried_one_asks_twice_more() {
        let start = Instant::now();
        let mut prober = Prober::default();
        let first = prober
            .poll_probe(start, 300_000.0, true)
            .expect("a first probe");
        assert!((first.rate_bps - 900_000.0).abs() < 1.0);
        assert!(
            prober.poll_probe(start, 300_000.0, true).is_none(),
            "one at a time"
        );
        assert!(!prober.measured());
        // A path wider than the cluster carries it at the rate it was sent, 20 ms on the way.
        let sent = cluster(start, Duration::from_millis(10), Duration::from_millis(20));
        let result = prober
            .handle_reports(start + Duration::from_millis(500), &sent)
            .expect("judged");
        assert!(prober.measured());
        let carried = result.carried_bps;
        assert!((900_000.0..=1_000_000.0).contains(&carried), "{carried}");
        assert!(!result.saturated);
        let further = prober
            .poll_probe(start + Duration::from_millis(500), carried, true)
            .expect("a further probe");
        assert!((further.rate_bps - carried * 2.0).abs() < 1.0);
    }

    #[test]
    fn a_cluster_that_queues_behind_a_narrow_link_reports_the_link_and_stops_the_climb() {
        let start = Instant::now();
        let mut prober = Prober::default();
        prober
            .poll_probe(start, 300_000.0, true)
            .expect("a first probe");
        // Through a 300 kbit/s link they arrive 32 ms apart.
        let sent = cluster(start, Duration::from_millis(32), Duration::ZERO);
        let result = prober
            .handle_reports(start + Duration::from_millis(700), &sent)
            .expect("judged");
        let carried = result.carried_bps;
        assert!((250_000.0..=300_000.0).contains(&carried), "{carried}");
        assert!(result.saturated);
        assert!(
            prober
                .poll_probe(start + Duration::from_millis(700), 300_000.0, true)
                .is_none()
        );
    }

    #[test]
    fn a_cluster_mostly_lost_says_nothing() {
        let start = Instant::now();
        let mut prober = Prober::default();
        prober
            .poll_probe(start, 300_000.0, true)
            .expect("a first probe");
        let gap = Duration::from_millis(10);
        let sent = reports(start, start, 15, gap, |index| {
            (index % 3 == 0).then(|| gap * u32::try_from(index).expect("small"))
        });
        // No report after the cluster: it is judged once the wait is over, and says nothing.
        assert!(
            prober
                .handle_reports(start + Duration::from_millis(300), &sent)
                .is_none()
        );
        assert!(
            prober
                .handle_reports(start + Duration::from_secs(2), &[])
                .is_none()
        );
        assert!(prober.pending.is_none());
        assert!(
            prober.measured(),
            "judged: the path is narrower than the probe"
        );
    }

    #[test]
    fn an_estimate_far_below_what_was_carried_is_probed_every_interval_while_calm() {
        let start = Instant::now();
        let mut prober = Prober {
            started: true,
            ..Prober::default()
        };
        prober.note_carried(start, 2_000_000.0);
        let later = start + Duration::from_secs(10);
        // Near what was carried: no probe.
        assert!(prober.poll_probe(later, 1_500_000.0, true).is_none());
        // A queue on the path: none either.
        assert!(prober.poll_probe(later, 300_000.0, false).is_none());
        let probe = prober.poll_probe(later, 300_000.0, true).expect("recovery");
        assert!((probe.rate_bps - 450_000.0).abs() < 1.0);
        // Its reports never come: after the wait it is given up, and the next waits longer,
        // up to the longest wait.
        let mut at = later;
        for wait in [3, 3] {
            let given_up = prober.handle_reports(at + Duration::from_secs(2), &[]);
            assert!(given_up.is_none());
            let next = at + Duration::from_secs(wait);
            let just_before = next.checked_sub(Duration::from_millis(1)).expect("later");
            let early = prober.poll_probe(just_before, 300_000.0, true);
            assert!(early.is_none(), "{wait} s");
            assert!(prober.poll_probe(next, 300_000.0, true).is_some());
            at = next;
        }
        // A minute later the old figure is forgotten.
        let much_later = later + Duration::from_secs(70);
        prober.pending = None;
        prober.note_carried(much_later, 300_000.0);
        assert!(prober.poll_probe(much_later, 300_000.0, true).is_none());
    }
}
