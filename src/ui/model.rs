//! `Model`: what the engine last reported, as the panels read it each frame.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crate::engine::{CallOutcome, CallSnapshot, ConnectionState, EngineMsg, EngineState};
use crate::event::{CallbackKind, Event, NetworkQuality};
use crate::media::{DeviceChoices, DeviceList};
use crate::model::ErrorCode;
use crate::signaling::Contact;
use crate::timeline::TimelineEntry;

/// The settings of the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextCall {
    /// Whether ringing is private.
    pub private_ringing: bool,
    /// Whether our callbacks are shared with its other participants.
    pub share_trace: bool,
}

/// The engine's state as last reported, plus counters the panels show.
#[derive(Debug)]
pub struct Model {
    /// The local user.
    pub user_id: String,
    /// The signaling connection.
    pub connection: ConnectionState,
    /// Who can be called.
    pub contacts: Vec<Contact>,
    /// The call.
    pub call: CallSnapshot,
    /// How the last call ended.
    pub last_outcome: Option<CallOutcome>,
    /// When the current call connected.
    pub connected_at: Option<Instant>,
    /// Entries per kind seen in this run.
    pub counts: [u64; CallbackKind::COUNT],
    /// A line for the status bar (the last export, an error).
    pub notice: Option<String>,
    /// What the media engine reported about the current call.
    pub media: MediaModel,
    /// The microphone is on.
    pub microphone_on: bool,
    /// The camera is on.
    pub camera_on: bool,
    /// The devices the engine found (asked for at start).
    pub devices: Option<DeviceList>,
    /// The devices chosen for the next call.
    pub device_choices: DeviceChoices,
    /// How the next call goes: ringing and sharing.
    pub next_call: NextCall,
    /// Entries per kind recorded as suppressed (their switch was off) in this run.
    pub suppressed: [u64; CallbackKind::COUNT],
    /// The ringing timeout of the call being placed, in seconds.
    pub ring_timeout_secs: u32,
    /// When the current outgoing call started ringing.
    pub dialing_since: Option<Instant>,
    /// `onError` entries per call in this run: other errors, and missing devices.
    errors: BTreeMap<String, (usize, usize)>,
    /// Everyone else in the last call (for "Call again").
    pub last_peers: Vec<String>,
    /// Audio or video of the last call.
    pub last_media: crate::model::MediaType,
    /// The server clock's offset from ours, once measured.
    pub clock_offset: Option<crate::timeline::ClockOffset>,
    /// What the media links do on purpose.
    pub link: crate::media::impair::LinkPlan,
}

/// Points kept per peer in the stats plots (two minutes).
const STATS_KEPT: usize = 120;

/// One `onCallStats` as the plots use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsPoint {
    /// Seconds since the call's media started.
    pub at_secs: f64,
    /// Round-trip time.
    pub rtt_millis: f64,
    /// Received bitrate.
    pub bitrate_kbps: f64,
    /// Decoded frames per second.
    pub fps: f64,
    /// Packet loss.
    pub loss_pct: f64,
    /// What our congestion control estimates the path to the peer carries.
    pub estimate_kbps: f64,
    /// What we sent the peer.
    pub sent_kbps: f64,
}

/// The media side of the current call, gathered from its timeline entries.
#[derive(Debug, Default)]
pub struct MediaModel {
    call_id: Option<String>,
    started: Option<Instant>,
    /// Recent statistics per peer.
    pub stats: BTreeMap<String, VecDeque<StatsPoint>>,
    /// The last resolution per peer.
    pub resolution: BTreeMap<String, String>,
    /// Network quality per peer.
    pub quality: BTreeMap<String, NetworkQuality>,
    /// The quality warnings raised now, per peer (as our kit decided them).
    pub warnings: BTreeMap<String, std::collections::BTreeSet<crate::event::QualityWarningName>>,
    /// Speaking level per user.
    pub volumes: BTreeMap<String, u8>,
    /// Why a device is not used (no camera, no microphone).
    pub device_warnings: Vec<String>,
}

impl MediaModel {
    /// Takes one timeline entry; a new call starts a fresh model.
    pub fn observe(&mut self, entry: &TimelineEntry) {
        let Some(call_id) = &entry.call_id else {
            return;
        };
        if self.call_id.as_ref() != Some(call_id) {
            *self = Self {
                call_id: Some(call_id.clone()),
                started: Some(Instant::now()),
                ..Self::default()
            };
        }
        match &entry.event {
            Event::CallStats(stats) => {
                let at_secs = self
                    .started
                    .map_or(0.0, |started| started.elapsed().as_secs_f64());
                let points = self.stats.entry(stats.user_id.clone()).or_default();
                points.push_back(StatsPoint {
                    at_secs,
                    rtt_millis: stats.rtt_millis,
                    bitrate_kbps: stats.bitrate_kbps,
                    fps: stats.fps,
                    loss_pct: stats.loss_pct,
                    estimate_kbps: stats.sending.estimate_kbps,
                    sent_kbps: stats.sending.sent_kbps,
                });
                if points.len() > STATS_KEPT {
                    points.pop_front();
                }
                self.resolution
                    .insert(stats.user_id.clone(), stats.resolution.clone());
            }
            Event::UserNetworkQualityChanged { user_id, quality } => {
                self.quality.insert(user_id.clone(), *quality);
            }
            Event::QualityWarning {
                user_id,
                name,
                state,
                ..
            } if entry.origin == crate::timeline::Origin::Local => {
                let raised = self.warnings.entry(user_id.clone()).or_default();
                if *state == crate::event::WarningState::Raised {
                    raised.insert(*name);
                } else {
                    raised.remove(name);
                }
            }
            Event::UserVoiceVolumeChanged { volumes } => self.volumes.clone_from(volumes),
            Event::Error(error)
                if matches!(
                    error.code,
                    ErrorCode::CameraUnavailable | ErrorCode::MicrophoneUnavailable
                ) && !self.device_warnings.contains(&error.message) =>
            {
                self.device_warnings.push(error.message.clone());
            }
            _ => {}
        }
    }
}

impl Model {
    /// The model of a fresh start.
    pub fn new(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            connection: ConnectionState::Connecting,
            contacts: Vec::new(),
            call: CallSnapshot::default(),
            last_outcome: None,
            connected_at: None,
            counts: [0; CallbackKind::COUNT],
            notice: None,
            media: MediaModel::default(),
            microphone_on: true,
            camera_on: true,
            devices: None,
            device_choices: DeviceChoices::default(),
            next_call: NextCall {
                private_ringing: true,
                share_trace: false,
            },
            suppressed: [0; CallbackKind::COUNT],
            ring_timeout_secs: 30,
            dialing_since: None,
            errors: BTreeMap::new(),
            last_peers: Vec::new(),
            last_media: crate::model::MediaType::Video,
            clock_offset: None,
            link: crate::media::impair::LinkPlan::default(),
        }
    }

    /// Counts one new timeline entry.
    pub fn count(&mut self, entry: &TimelineEntry) {
        let index = entry.kind().index();
        self.counts[index] += 1;
        if entry.delivery == crate::timeline::Delivery::Suppressed {
            self.suppressed[index] += 1;
        }
        // A missing camera or microphone is a normal state here, said apart from real errors.
        if let (Event::Error(error), Some(call_id)) = (&entry.event, &entry.call_id) {
            let device = matches!(
                error.code,
                ErrorCode::CameraUnavailable | ErrorCode::MicrophoneUnavailable
            );
            let counts = self.errors.entry(call_id.clone()).or_default();
            if device {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
        }
        self.media.observe(entry);
    }

    /// `onError` entries of `call_id` in this run: errors, and missing devices apart.
    pub fn errors_in(&self, call_id: &str) -> (usize, usize) {
        self.errors.get(call_id).copied().unwrap_or((0, 0))
    }

    /// Whether a call can be placed now (logged in and idle).
    pub fn can_call(&self) -> bool {
        self.connection == ConnectionState::Online
            && self.status() == crate::model::CallStatus::Idle
    }

    /// How long the outgoing call still rings before it gives up.
    pub fn ringing_left(&self) -> Option<std::time::Duration> {
        let since = self.dialing_since?;
        let timeout = std::time::Duration::from_secs(u64::from(self.ring_timeout_secs));
        Some(timeout.saturating_sub(since.elapsed()))
    }

    /// Takes the engine's newest state.
    pub fn apply_state(&mut self, state: EngineState) {
        let status = state.call.status();
        let calling = status.is_calling();
        if !calling {
            self.connected_at = None;
        } else if self.connected_at.is_none() {
            self.connected_at = Some(Instant::now());
        }
        let dialing = matches!(
            status,
            crate::model::CallStatus::DialingC2c | crate::model::CallStatus::DialingGroup
        );
        if !dialing {
            self.dialing_since = None;
        } else if self.dialing_since.is_none() {
            self.dialing_since = Some(Instant::now());
        }
        if status != crate::model::CallStatus::Idle {
            if !state.call.participants.is_empty() {
                self.last_peers = state
                    .call
                    .participants
                    .iter()
                    .map(|(user, _)| user.clone())
                    .collect();
            } else if let Some(caller) = &state.call.caller
                && *caller != self.user_id
            {
                self.last_peers = vec![caller.clone()];
            }
            if let Some(media) = state.call.media {
                self.last_media = media;
            }
        }
        self.connection = state.connection;
        self.clock_offset = state.clock_offset;
        self.link = state.link;
        self.contacts = state.contacts;
        self.call = state.call;
        self.last_outcome = state.last_outcome;
        self.camera_on = state.camera_on;
        self.microphone_on = state.microphone_on;
        if state.devices.is_some() {
            self.devices = state.devices;
        }
    }

    /// Takes one notice of the engine.
    pub fn apply(&mut self, message: EngineMsg) {
        match message {
            EngineMsg::Notice(text) => self.notice = Some(text),
        }
    }

    /// The status now (idle when none was reported).
    pub fn status(&self) -> crate::model::CallStatus {
        self.call.status.unwrap_or(crate::model::CallStatus::Idle)
    }
}
