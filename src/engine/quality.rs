//! `QualityMonitor`: the quality warnings of a call, decided from the media's reports over a
//! window of recent samples and raised and cleared like Twilio Voice Insights': a round trip
//! above 400 ms or jitter above 30 ms in 3 of the last 5 samples (cleared at 1 of 5 or none),
//! loss above 3 % over the last 7 (cleared at 3 % or less), and frozen video: no frame in the
//! last 3 samples while the participant's video is on (cleared by a frame, or the video going
//! off); and no audio input: our own microphone's level constant over its last 10 samples
//! while it is on (cleared by a level that moves, or the microphone going off); and low
//! bandwidth: our video paused because the path's estimate leaves it too little (cleared when it
//! resumes). Sans-IO: it is given every report and says which warnings start or end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::event::{CallStats, Event, QualityWarningName, WarningState};
use crate::model::QualityLimitation;

/// A round trip above this many ms counts towards `high-rtt`.
pub const HIGH_RTT_MILLIS: f64 = 400.0;
/// Jitter above this many ms counts towards `high-jitter`.
pub const HIGH_JITTER_MILLIS: f64 = 30.0;
/// Mean loss above this many % raises `high-packet-loss`.
pub const HIGH_LOSS_PCT: f64 = 3.0;
/// Samples the round-trip and jitter warnings look at, and how many of them must cross the
/// threshold to raise one; at most [`CLEAR_AT_MOST`] of them may for it to clear.
pub const WINDOW: usize = 5;
/// See [`WINDOW`].
pub const RAISE_AT_LEAST: usize = 3;
/// See [`WINDOW`].
pub const CLEAR_AT_MOST: usize = 1;
/// Samples the loss warning averages.
pub const LOSS_WINDOW: usize = 7;
/// Samples without a frame, while video is on, that make it frozen.
pub const FROZEN_SAMPLES: u32 = 3;
/// Samples of our own microphone's level (one a second) that must all be alike, within
/// [`CONSTANT_LEVEL`], to raise `no-audio-input`.
pub const AUDIO_INPUT_WINDOW: usize = 10;
/// The most two levels (0..=100, 0.6 dB a step) may differ and still count as constant.
pub const CONSTANT_LEVEL: u8 = 1;

/// One participant's recent samples and raised warnings.
#[derive(Debug, Default)]
struct Peer {
    rtt: VecDeque<f64>,
    jitter: VecDeque<f64>,
    loss: VecDeque<f64>,
    samples_without_frames: u32,
    video_on: bool,
    /// Our own microphone's recent levels (only for the local user).
    levels: VecDeque<u8>,
    raised: BTreeSet<QualityWarningName>,
}

/// The warnings of the call in progress, per participant.
#[derive(Debug, Default)]
pub struct QualityMonitor {
    peers: BTreeMap<String, Peer>,
}

/// Raise (`Some(true)`) when `raise` holds, clear (`Some(false)`) when `clear` does, else
/// leave the warning as it is.
fn verdict(raise: bool, clear: bool) -> Option<bool> {
    if raise {
        Some(true)
    } else if clear {
        Some(false)
    } else {
        None
    }
}

fn push(window: &mut VecDeque<f64>, size: usize, value: f64) {
    if window.len() == size {
        window.pop_front();
    }
    window.push_back(value);
}

impl QualityMonitor {
    /// No participant yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A participant's video went on or off; a frozen picture is over when it goes off.
    pub fn video(&mut self, user_id: &str, on: bool) -> Vec<Event> {
        let peer = self.peers.entry(user_id.to_owned()).or_default();
        peer.video_on = on;
        let mut events = Vec::new();
        if !on {
            peer.samples_without_frames = 0;
            Self::decide(
                user_id,
                peer,
                QualityWarningName::FrozenVideo,
                Some(false),
                0.0,
                &mut events,
            );
        }
        events
    }

    /// One sample of our own microphone's level (`None`: it is off): the warning it raises
    /// or clears.
    pub fn local_level(&mut self, user_id: &str, level: Option<u8>) -> Vec<Event> {
        let peer = self.peers.entry(user_id.to_owned()).or_default();
        let mut events = Vec::new();
        let Some(level) = level else {
            peer.levels.clear();
            Self::decide(
                user_id,
                peer,
                QualityWarningName::NoAudioInput,
                Some(false),
                0.0,
                &mut events,
            );
            return events;
        };
        if peer.levels.len() == AUDIO_INPUT_WINDOW {
            peer.levels.pop_front();
        }
        peer.levels.push_back(level);
        let lowest = peer.levels.iter().copied().min().unwrap_or(level);
        let highest = peer.levels.iter().copied().max().unwrap_or(level);
        let flat = highest - lowest <= CONSTANT_LEVEL;
        let constant = verdict(flat && peer.levels.len() == AUDIO_INPUT_WINDOW, !flat);
        Self::decide(
            user_id,
            peer,
            QualityWarningName::NoAudioInput,
            constant,
            f64::from(level),
            &mut events,
        );
        events
    }

    /// Our video stepped on its ladder (of `user_id`, the local user): pausing it for bandwidth
    /// raises `low-bandwidth` (the audio alone has the path), resuming clears it.
    pub fn video_step(
        &mut self,
        user_id: &str,
        to: &str,
        reason: QualityLimitation,
        budget_kbps: u32,
    ) -> Vec<Event> {
        let peer = self.peers.entry(user_id.to_owned()).or_default();
        let paused = to == "paused";
        let mut events = Vec::new();
        Self::decide(
            user_id,
            peer,
            QualityWarningName::LowBandwidth,
            verdict(paused && reason == QualityLimitation::Bandwidth, !paused),
            f64::from(budget_kbps),
            &mut events,
        );
        events
    }

    /// One stats sample of a participant: the warnings it raises or clears.
    pub fn stats(&mut self, stats: &CallStats) -> Vec<Event> {
        let user_id = stats.user_id.as_str();
        let peer = self.peers.entry(user_id.to_owned()).or_default();
        push(&mut peer.rtt, WINDOW, stats.rtt_millis);
        push(&mut peer.jitter, WINDOW, stats.jitter_millis);
        push(&mut peer.loss, LOSS_WINDOW, stats.loss_pct);
        if peer.video_on && stats.fps <= 0.0 {
            peer.samples_without_frames = peer.samples_without_frames.saturating_add(1);
        } else {
            peer.samples_without_frames = 0;
        }
        let mut events = Vec::new();
        let over = |window: &VecDeque<f64>, limit: f64| {
            let crossing = window.iter().filter(|value| **value > limit).count();
            verdict(crossing >= RAISE_AT_LEAST, crossing <= CLEAR_AT_MOST)
        };
        let rtt = over(&peer.rtt, HIGH_RTT_MILLIS);
        Self::decide(
            user_id,
            peer,
            QualityWarningName::HighRtt,
            rtt,
            stats.rtt_millis,
            &mut events,
        );
        let jitter = over(&peer.jitter, HIGH_JITTER_MILLIS);
        Self::decide(
            user_id,
            peer,
            QualityWarningName::HighJitter,
            jitter,
            stats.jitter_millis,
            &mut events,
        );
        let mean_loss = peer.loss.iter().sum::<f64>() / peer.loss.len() as f64;
        let loss = verdict(
            peer.loss.len() == LOSS_WINDOW && mean_loss > HIGH_LOSS_PCT,
            mean_loss <= HIGH_LOSS_PCT,
        );
        Self::decide(
            user_id,
            peer,
            QualityWarningName::HighPacketLoss,
            loss,
            mean_loss,
            &mut events,
        );
        let frozen = verdict(
            peer.samples_without_frames >= FROZEN_SAMPLES,
            peer.samples_without_frames == 0,
        );
        Self::decide(
            user_id,
            peer,
            QualityWarningName::FrozenVideo,
            frozen,
            stats.fps,
            &mut events,
        );
        events
    }

    /// The call is over: its warnings end with it, unsaid (nothing follows `afterCalling`).
    pub fn reset(&mut self) {
        self.peers.clear();
    }

    /// Whether `user_id` has `name` raised now.
    pub fn is_raised(&self, user_id: &str, name: QualityWarningName) -> bool {
        self.peers
            .get(user_id)
            .is_some_and(|peer| peer.raised.contains(&name))
    }

    /// Raises (`Some(true)`) or clears (`Some(false)`) `name` when that changes it.
    fn decide(
        user_id: &str,
        peer: &mut Peer,
        name: QualityWarningName,
        holds: Option<bool>,
        value: f64,
        out: &mut Vec<Event>,
    ) {
        let state = match holds {
            Some(true) if peer.raised.insert(name) => WarningState::Raised,
            Some(false) if peer.raised.remove(&name) => WarningState::Cleared,
            _ => return,
        };
        out.push(Event::QualityWarning {
            user_id: user_id.to_owned(),
            name,
            state,
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rtt: f64, jitter: f64, loss: f64, fps: f64) -> CallStats {
        CallStats {
            user_id: "bob".into(),
            rtt_millis: rtt,
            jitter_millis: jitter,
            loss_pct: loss,
            fps,
            bitrate_kbps: 500.0,
            resolution: "640x480".into(),
            frames_decoded: 0,
            repaired: 0,
            nacks: 0,
            key_frame_requests: 0,
            local_candidate: String::new(),
            ..CallStats::default()
        }
    }

    /// The warnings `samples` raise and clear, in order, as (name, raised).
    fn run(monitor: &mut QualityMonitor, samples: &[CallStats]) -> Vec<(QualityWarningName, bool)> {
        samples
            .iter()
            .flat_map(|stats| monitor.stats(stats))
            .map(|event| match event {
                Event::QualityWarning { name, state, .. } => (name, state == WarningState::Raised),
                other => unreachable!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn each_warning_is_raised_under_its_condition_and_cleared_after() {
        let good = sample(40.0, 5.0, 0.0, 30.0);
        let cases = [
            (QualityWarningName::HighRtt, sample(450.0, 5.0, 0.0, 30.0)),
            (
                QualityWarningName::HighJitter,
                sample(40.0, 35.0, 0.0, 30.0),
            ),
            (
                QualityWarningName::HighPacketLoss,
                sample(40.0, 5.0, 8.0, 30.0),
            ),
            (QualityWarningName::FrozenVideo, sample(40.0, 5.0, 0.0, 0.0)),
        ];
        for (name, bad) in cases {
            let mut monitor = QualityMonitor::new();
            monitor.video("bob", true);
            assert_eq!(
                run(&mut monitor, &[good.clone(), good.clone()]),
                [],
                "{name}"
            );
            // Two bad samples are not yet a warning (3 of 5, 7 for loss, 3 without frames).
            assert_eq!(run(&mut monitor, &[bad.clone(), bad.clone()]), [], "{name}");
            let raised = run(&mut monitor, &vec![bad.clone(); 7]);
            assert_eq!(raised, [(name, true)], "{name}");
            assert!(monitor.is_raised("bob", name));
            let cleared = run(&mut monitor, &vec![good.clone(); 7]);
            assert_eq!(cleared, [(name, false)], "{name}");
            assert!(!monitor.is_raised("bob", name));
        }
    }

    fn levels(monitor: &mut QualityMonitor, levels: &[Option<u8>]) -> Vec<(WarningState, f64)> {
        levels
            .iter()
            .flat_map(|level| monitor.local_level("alice", *level))
            .map(|event| match event {
                Event::QualityWarning {
                    name: QualityWarningName::NoAudioInput,
                    state,
                    value,
                    ..
                } => (state, value),
                other => panic!("not a no-audio-input warning: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_constant_microphone_level_raises_no_audio_input_and_a_moving_one_clears_it() {
        let mut monitor = QualityMonitor::new();
        // Nine flat seconds are not enough; the tenth is.
        assert_eq!(levels(&mut monitor, &[Some(0); 9]), []);
        assert_eq!(
            levels(&mut monitor, &[Some(1)]),
            [(WarningState::Raised, 1.0)]
        );
        assert_eq!(
            levels(&mut monitor, &[Some(40)]),
            [(WarningState::Cleared, 40.0)]
        );
        // A speaking level moves: never raised.
        let speech: Vec<Option<u8>> = (0..30).map(|n| Some(50 + (n * 7 % 20))).collect();
        assert_eq!(levels(&mut monitor, &speech), []);
        // Flat again, then the microphone goes off: raised, then cleared without a level.
        assert_eq!(levels(&mut monitor, &[Some(63); 10]).len(), 1);
        assert_eq!(
            levels(&mut monitor, &[None]),
            [(WarningState::Cleared, 0.0)]
        );
        // Off, the window starts again.
        assert_eq!(levels(&mut monitor, &[Some(63); 9]), []);
    }

    #[test]
    fn a_flapping_round_trip_stays_raised_and_video_turned_off_is_not_frozen() {
        let mut monitor = QualityMonitor::new();
        let high = sample(500.0, 5.0, 0.0, 30.0);
        let low = sample(50.0, 5.0, 0.0, 30.0);
        let raised = run(&mut monitor, &[high.clone(), high.clone(), high.clone()]);
        assert_eq!(raised, [(QualityWarningName::HighRtt, true)]);
        // 2 of the last 5 still high: neither raised again nor cleared.
        assert_eq!(
            run(&mut monitor, &[low.clone(), low.clone(), high.clone(), low]),
            []
        );
        // Video on without frames, then off: frozen, then over.
        monitor.video("bob", true);
        let still = sample(50.0, 5.0, 0.0, 0.0);
        let frozen = run(&mut monitor, &[still.clone(), still.clone(), still]);
        assert!(
            frozen.contains(&(QualityWarningName::FrozenVideo, true)),
            "{frozen:?}"
        );
        let off = monitor.video("bob", false);
        assert!(matches!(
            off.as_slice(),
            [Event::QualityWarning {
                name: QualityWarningName::FrozenVideo,
                state: WarningState::Cleared,
                ..
            }]
        ));
        // Without video, no frames is no warning.
        let audio_only = sample(50.0, 5.0, 0.0, 0.0);
        assert!(
            !run(&mut monitor, &vec![audio_only; 5])
                .contains(&(QualityWarningName::FrozenVideo, true))
        );
    }
}
