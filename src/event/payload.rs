//! The payloads of events that carry more than a few fields: what `afterCalling` and
//! `onCallStats` get, and the quality and connection-state scales.

use serde::{Deserialize, Serialize};

use crate::model::{EndReason, MediaType};

/// What `afterCalling` gets: how a call went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    /// The call.
    pub call_id: String,
    /// Why it ended.
    pub reason: EndReason,
    /// Who placed it.
    pub initiator: String,
    /// Connected time in milliseconds (0 if it never connected).
    #[serde(rename = "duration_ms")]
    pub duration_millis: u64,
    /// Audio or video at the end.
    pub media: MediaType,
}

/// Media statistics of one participant (`onCallStats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStats {
    /// The participant.
    pub user_id: String,
    /// Round-trip time in milliseconds.
    #[serde(rename = "rtt_ms")]
    pub rtt_millis: f64,
    /// Jitter in milliseconds.
    #[serde(rename = "jitter_ms")]
    pub jitter_millis: f64,
    /// Packets the path lost in the last interval, in percent, before any repair (a packet
    /// resent after a NACK still counts as lost once).
    pub loss_pct: f64,
    /// Decoded frames per second.
    pub fps: f64,
    /// Received bitrate in kbit/s.
    pub bitrate_kbps: f64,
    /// Received video resolution, `1280x720`.
    pub resolution: String,
    /// Frames decoded since the call began.
    #[serde(default)]
    pub frames_decoded: u64,
    /// Packets that arrived late since the call began: resent after a NACK, or reordered.
    #[serde(default)]
    pub repaired: u64,
    /// NACKs we sent this participant since the call began.
    #[serde(default)]
    pub nacks: u64,
    /// Key frames we asked this participant for since the call began (PLI or FIR).
    #[serde(default)]
    pub key_frame_requests: u64,
    /// The kind of our end of the path in use: `host`, `srflx`, `prflx` or `relay` (through
    /// a TURN server); empty before one is chosen.
    #[serde(default)]
    pub local_candidate: String,
}

impl std::fmt::Display for CallStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rtt {:.0} ms, {:.0} fps, {:.0} kbps, loss {:.1}%, {}",
            self.user_id,
            self.rtt_millis,
            self.fps,
            self.bitrate_kbps,
            self.loss_pct,
            self.resolution
        )
    }
}

/// Network quality of a participant, TUICallKit's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkQuality {
    /// Not known yet.
    Unknown,
    /// Excellent.
    Excellent,
    /// Good.
    Good,
    /// Poor.
    Poor,
    /// Bad.
    Bad,
    /// Very bad.
    Vbad,
    /// Disconnected.
    Down,
}

/// State of the media connection to a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// Created, not started.
    New,
    /// Negotiating.
    Connecting,
    /// Media flows.
    Connected,
    /// Lost, trying again.
    Reconnecting,
    /// Gave up.
    Failed,
    /// Closed.
    Closed,
}

/// A value's name as the contract's JSON writes it (`connecting`, `excellent`).
pub(super) fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// A quality warning, named like Twilio Voice Insights' where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QualityWarningName {
    /// Round trip above 400 ms in 3 of the last 5 samples.
    HighRtt,
    /// Jitter above 30 ms in 3 of the last 5 samples.
    HighJitter,
    /// Loss above 3 % over the last 7 samples.
    HighPacketLoss,
    /// No frame for the last 3 samples while the participant's video is on.
    FrozenVideo,
    /// Our own microphone's level was constant over the last 10 samples while it was on (a
    /// dead or muted device delivers silence, or one flat level).
    NoAudioInput,
}

impl QualityWarningName {
    /// Every warning.
    pub const ALL: [Self; 5] = [
        Self::HighRtt,
        Self::HighJitter,
        Self::HighPacketLoss,
        Self::FrozenVideo,
        Self::NoAudioInput,
    ];

    /// `high-rtt`, `high-jitter`, `high-packet-loss`, `frozen-video` or `no-audio-input`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HighRtt => "high-rtt",
            Self::HighJitter => "high-jitter",
            Self::HighPacketLoss => "high-packet-loss",
            Self::FrozenVideo => "frozen-video",
            Self::NoAudioInput => "no-audio-input",
        }
    }
}

impl std::fmt::Display for QualityWarningName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a warning starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarningState {
    /// The condition holds now.
    Raised,
    /// It no longer does.
    Cleared,
}

impl WarningState {
    /// `raised` or `cleared`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Cleared => "cleared",
        }
    }
}
