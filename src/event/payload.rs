//! The payloads of events that carry more than a few fields: what `afterCalling` and
//! `onCallStats` get, and the quality and connection-state scales.

use serde::{Deserialize, Serialize};

use crate::model::{EndReason, MediaType, QualityLimitation};

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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// What we send this participant, and what limits it.
    #[serde(flatten)]
    pub sending: SendingStats,
    /// How smoothly this participant's media plays here.
    #[serde(flatten)]
    pub playout: PlayoutStats,
}

/// What we send one participant (part of `onCallStats`, its fields at the top level).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SendingStats {
    /// What our congestion control estimates the path to this participant carries, in kbit/s
    /// (the starting guess until its feedback arrives).
    pub estimate_kbps: f64,
    /// What our video encoder aims at, in kbit/s: what the estimate (of the narrowest path,
    /// in a group call) leaves after the audio.
    pub send_target_kbps: f64,
    /// What we sent this participant over the last interval (audio, video and resends, with
    /// their RTP headers), in kbit/s.
    pub sent_kbps: f64,
    /// The picture we send, `640x360`; empty when we send no video.
    pub sent_resolution: String,
    /// Frames a second we sent over the last interval.
    pub sent_fps: f64,
    /// Why our video is below the source's own: `none`, `bandwidth` or `cpu`.
    pub quality_limitation: QualityLimitation,
}

/// How smoothly one participant's media plays here (part of `onCallStats`, its fields at the
/// top level).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlayoutStats {
    /// Freezes of the participant's video so far (W3C: a frame at least three average frame
    /// intervals, and 150 ms more than one, after the last).
    pub freeze_count: u64,
    /// The freezes' time together, in milliseconds.
    pub freeze_ms: u64,
    /// The share of the participant's audio played over the last interval that was made up
    /// (concealment of lost packets), in percent.
    pub concealed_pct: f64,
    /// How long the participant's audio played over the last interval waited in the jitter
    /// buffer, on average, in milliseconds (0 when none played).
    pub jitter_buffer_ms: f64,
    /// Lost audio packets rebuilt from the forward error correction in the next one, so far.
    pub fec_recovered: u64,
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
    /// Our video is paused: the path's estimate leaves it too little after the audio.
    LowBandwidth,
}

impl QualityWarningName {
    /// Every warning.
    pub const ALL: [Self; 6] = [
        Self::HighRtt,
        Self::HighJitter,
        Self::HighPacketLoss,
        Self::FrozenVideo,
        Self::NoAudioInput,
        Self::LowBandwidth,
    ];

    /// `high-rtt`, `high-jitter`, `high-packet-loss`, `frozen-video`, `no-audio-input` or
    /// `low-bandwidth`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HighRtt => "high-rtt",
            Self::HighJitter => "high-jitter",
            Self::HighPacketLoss => "high-packet-loss",
            Self::FrozenVideo => "frozen-video",
            Self::NoAudioInput => "no-audio-input",
            Self::LowBandwidth => "low-bandwidth",
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
