//! The contract checker's media rules, for one participant's entries: our video's ladder steps
//! follow on from each other (each starts where the last one ended, and moves somewhere, for a
//! reason), and each participant's `onCallStats` figures stay in range (shares within 0 to
//! 100, counts that never go back while one connection lasts: a participant who joins again, or
//! whose connection is made anew, counts from zero).

use std::collections::HashMap;

use crate::event::{CallStats, ConnectionState, Event};
use crate::model::QualityLimitation;

use super::TimelineEntry;
use super::check::{Finding, Rule, finding};

/// What the media rules remember of one participant's calls.
#[derive(Debug, Default)]
pub(super) struct MediaWalk {
    /// The rung our video is on, per call (from its last step).
    rung: HashMap<String, String>,
    /// The counts last reported, per call and participant: freezes, frozen ms, FEC recoveries.
    counts: HashMap<(String, String), [u64; 3]>,
}

impl MediaWalk {
    /// Checks one entry of `call_id`.
    pub(super) fn step(&mut self, entry: &TimelineEntry, call_id: &str, out: &mut Vec<Finding>) {
        match &entry.event {
            Event::LocalVideoAdapted {
                from, to, reason, ..
            } => self.ladder_step(entry, call_id, (from, to), *reason, out),
            Event::CallStats(stats) => self.stats(entry, call_id, stats, out),
            Event::UserJoin { user_id } | Event::UserLeave { user_id } => {
                self.new_connection(call_id, user_id);
            }
            Event::ConnectionStateChanged { user_id, state }
                if !matches!(
                    state,
                    ConnectionState::Connected | ConnectionState::Reconnecting
                ) =>
            {
                self.new_connection(call_id, user_id);
            }
            _ => {}
        }
    }

    /// `user_id`'s media connection in `call_id` is (or will be) a new one: its counts restart.
    fn new_connection(&mut self, call_id: &str, user_id: &str) {
        self.counts
            .remove(&(call_id.to_owned(), user_id.to_owned()));
    }

    fn ladder_step(
        &mut self,
        entry: &TimelineEntry,
        call_id: &str,
        (from, to): (&str, &str),
        reason: QualityLimitation,
        out: &mut Vec<Finding>,
    ) {
        let mut problems = Vec::new();
        if let Some(rung) = self.rung.get(call_id)
            && rung != from
        {
            problems.push(format!("a step from {from}, but the video was at {rung}"));
        }
        if from == to {
            problems.push(format!("a step from {from} to itself"));
        }
        if reason == QualityLimitation::None {
            problems.push("a step without a reason".to_owned());
        }
        for label in [from, to] {
            if !is_rung_label(label) {
                problems.push(format!("{label:?} is not WIDTHxHEIGHT@FPS or paused"));
            }
        }
        for problem in problems {
            out.push(finding(entry, Rule::Media, problem));
        }
        self.rung.insert(call_id.to_owned(), to.to_owned());
    }

    fn stats(
        &mut self,
        entry: &TimelineEntry,
        call_id: &str,
        stats: &CallStats,
        out: &mut Vec<Finding>,
    ) {
        let playout = &stats.playout;
        for (name, share) in [
            ("concealed_pct", playout.concealed_pct),
            ("loss_pct", stats.loss_pct),
        ] {
            if !(0.0..=100.0).contains(&share) {
                out.push(finding(
                    entry,
                    Rule::Media,
                    format!("{name} {share} is not a share"),
                ));
            }
        }
        let counts = [
            playout.freeze_count,
            playout.freeze_ms,
            playout.fec_recovered,
        ];
        let key = (call_id.to_owned(), stats.user_id.clone());
        if let Some(before) = self.counts.insert(key, counts) {
            let names = ["freeze_count", "freeze_ms", "fec_recovered"];
            for ((name, now), before) in names.iter().zip(counts).zip(before) {
                if now < before {
                    out.push(finding(
                        entry,
                        Rule::Media,
                        format!(
                            "{name} of {} went back from {before} to {now}",
                            stats.user_id
                        ),
                    ));
                }
            }
        }
    }
}

/// Whether `label` names a rung: `1280x720@30`, or `paused`.
fn is_rung_label(label: &str) -> bool {
    if label == "paused" {
        return true;
    }
    let Some((size, fps)) = label.split_once('@') else {
        return false;
    };
    let Some((width, height)) = size.split_once('x') else {
        return false;
    };
    [width, height, fps]
        .iter()
        .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PlayoutStats;
    use crate::model::Source;
    use crate::timeline::{Delivery, Origin, Timestamp};

    fn entry(seq: u64, event: Event) -> TimelineEntry {
        TimelineEntry {
            seq,
            run: 0,
            at: Timestamp {
                wall_millis: 0,
                mono_micros: seq * 1_000,
            },
            call_id: Some("c-1".into()),
            user_id: "alice".into(),
            source: Source::Engine,
            event,
            delivery: Delivery::Delivered,
            handler_micros: 0,
            origin: Origin::Local,
            session: None,
            clock_error_micros: None,
        }
    }

    fn step(seq: u64, from: &str, to: &str, reason: QualityLimitation) -> TimelineEntry {
        entry(
            seq,
            Event::LocalVideoAdapted {
                from: from.into(),
                to: to.into(),
                reason,
                limitation: reason,
                budget_kbps: 100,
            },
        )
    }

    fn stats(seq: u64, freezes: u64, concealed_pct: f64) -> TimelineEntry {
        entry(
            seq,
            Event::CallStats(CallStats {
                user_id: "bob".into(),
                playout: PlayoutStats {
                    freeze_count: freezes,
                    concealed_pct,
                    ..PlayoutStats::default()
                },
                ..CallStats::default()
            }),
        )
    }

    fn findings(entries: &[TimelineEntry]) -> Vec<String> {
        let mut walk = MediaWalk::default();
        let mut out = Vec::new();
        for entry in entries {
            walk.step(entry, "c-1", &mut out);
        }
        out.iter().map(|finding| finding.message.clone()).collect()
    }

    #[test]
    fn ladder_steps_that_follow_on_pass_and_each_broken_one_is_named() {
        let bandwidth = QualityLimitation::Bandwidth;
        assert!(
            findings(&[
                step(1, "1280x720@30", "640x360@30", bandwidth),
                step(2, "640x360@30", "paused", bandwidth),
                step(3, "paused", "424x240@15", bandwidth),
            ])
            .is_empty()
        );
        let broken = findings(&[
            step(1, "1280x720@30", "640x360@30", bandwidth),
            step(2, "960x540@30", "960x540@30", QualityLimitation::None),
            step(3, "960x540@30", "big", QualityLimitation::Cpu),
        ]);
        assert_eq!(
            broken,
            [
                "a step from 960x540@30, but the video was at 640x360@30",
                "a step from 960x540@30 to itself",
                "a step without a reason",
                "\"big\" is not WIDTHxHEIGHT@FPS or paused",
            ]
        );
    }

    #[test]
    fn stats_shares_stay_in_range_and_counts_never_go_back() {
        assert!(findings(&[stats(1, 0, 0.0), stats(2, 1, 2.5), stats(3, 1, 0.0)]).is_empty());
        let broken = findings(&[stats(1, 3, 0.0), stats(2, 2, 140.0)]);
        assert_eq!(
            broken,
            [
                "concealed_pct 140 is not a share",
                "freeze_count of bob went back from 3 to 2",
            ]
        );
        // Bob's connection is made anew (or he leaves and joins again): his counts restart.
        for anew in [
            Event::ConnectionStateChanged {
                user_id: "bob".into(),
                state: ConnectionState::Connecting,
            },
            Event::UserLeave {
                user_id: "bob".into(),
            },
        ] {
            assert!(findings(&[stats(1, 3, 0.0), entry(2, anew), stats(3, 0, 0.0)]).is_empty());
        }
        // A connection that only comes back keeps them.
        let back = Event::ConnectionStateChanged {
            user_id: "bob".into(),
            state: ConnectionState::Connected,
        };
        assert_eq!(
            findings(&[stats(1, 3, 0.0), entry(2, back), stats(3, 0, 0.0)]),
            ["freeze_count of bob went back from 3 to 0"]
        );
    }
}
