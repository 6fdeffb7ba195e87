//! `CallbackKind`: the field-less twin of `Event` that drives switches and filters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! callback_kinds {
    ($($variant:ident => $name:literal, $doc:literal;)+) => {
        /// Which callback or engine event an entry is, without its payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CallbackKind {
            $(
                #[doc = $doc]
                #[serde(rename = $name)]
                $variant,
            )+
        }

        impl CallbackKind {
            /// Every kind: the five component callbacks first, then the engine events.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name of the contract (`beforeCalling`, `onCallStats`, …).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }
    };
}

callback_kinds! {
    BeforeCalling => "beforeCalling", "`beforeCalling`: a call is about to start, or could not.";
    AfterCalling => "afterCalling", "`afterCalling`: a call that `beforeCalling` announced ended.";
    Minimized => "onMinimized", "`onMinimized`: the call view was minimized or restored.";
    KickedOut => "kickedOut", "`kickedOut`: the user logged in elsewhere.";
    StatusChanged => "statusChanged", "`statusChanged`: the call status changed.";
    Error => "onError", "`onError`: a request failed or was refused.";
    CallReceived => "onCallReceived", "`onCallReceived`: an invitation arrived.";
    CallBegin => "onCallBegin", "`onCallBegin`: a call connected.";
    CallEnd => "onCallEnd", "`onCallEnd`: a connected call ended.";
    CallNotConnected => "onCallNotConnected", "`onCallNotConnected`: a call ended before it connected.";
    CallMediaTypeChanged => "onCallMediaTypeChanged", "`onCallMediaTypeChanged`: audio/video switched.";
    UserReject => "onUserReject", "`onUserReject`: a callee rejected.";
    UserNoResponse => "onUserNoResponse", "`onUserNoResponse`: a callee did not answer.";
    UserLineBusy => "onUserLineBusy", "`onUserLineBusy`: a callee was busy.";
    UserJoin => "onUserJoin", "`onUserJoin`: a participant joined.";
    UserLeave => "onUserLeave", "`onUserLeave`: a participant left.";
    UserVideoAvailable => "onUserVideoAvailable", "`onUserVideoAvailable`: video started or stopped.";
    UserAudioAvailable => "onUserAudioAvailable", "`onUserAudioAvailable`: audio started or stopped.";
    UserVoiceVolumeChanged => "onUserVoiceVolumeChanged", "`onUserVoiceVolumeChanged`: speaking levels.";
    UserNetworkQualityChanged => "onUserNetworkQualityChanged", "`onUserNetworkQualityChanged`: quality changed.";
    KickedOffline => "onKickedOffline", "`onKickedOffline`: this session was logged out.";
    UserSigExpired => "onUserSigExpired", "`onUserSigExpired`: the UserSig expired.";
    ConnectionStateChanged => "onConnectionStateChanged", "`onConnectionStateChanged`: media connection state.";
    CallStats => "onCallStats", "`onCallStats`: media statistics, about once a second.";
    ServerEvent => "onServerEvent", "`onServerEvent`: the server's record of routing a call.";
    QualityWarning => "onQualityWarning", "`onQualityWarning`: a quality warning was raised or cleared.";
    ImpairmentChanged => "onImpairmentChanged", "`onImpairmentChanged`: the media links were impaired on purpose.";
    LocalVideoAdapted => "onLocalVideoAdapted", "`onLocalVideoAdapted`: our video stepped on its resolution and frame-rate ladder.";
}

impl CallbackKind {
    /// How many kinds there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The five component callbacks of the seed (`beforeCalling` … `statusChanged`).
    pub const COMPONENT: [Self; 5] = [
        Self::BeforeCalling,
        Self::AfterCalling,
        Self::Minimized,
        Self::KickedOut,
        Self::StatusChanged,
    ];

    /// Position in [`CallbackKind::ALL`], used as a bit index by switches and filters.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether this is one of the five component callbacks.
    pub const fn is_component(self) -> bool {
        self.index() < Self::COMPONENT.len()
    }
}

impl CallbackKind {
    /// When it fires, as the call contract says.
    pub const fn fires_when(self) -> &'static str {
        match self {
            Self::BeforeCalling => {
                "before a call starts: when we place one (with the error if it cannot start: \
                 callee offline, not logged in, bad parameters, device missing) and when an \
                 invitation arrives"
            }
            Self::AfterCalling => {
                "exactly once after every call that beforeCalling announced, whatever the end"
            }
            Self::Minimized => "the call view is minimized to the mini view or restored",
            Self::KickedOut => "the same user logged in elsewhere; the call ends",
            Self::StatusChanged => "on every status transition of the call",
            Self::Error => "a request failed or was refused, or a device is missing",
            Self::CallReceived => "an invitation arrives",
            Self::CallBegin => "a call connects (the callee accepted)",
            Self::CallEnd => "a connected call ends",
            Self::CallNotConnected => "a call ends before it connected",
            Self::CallMediaTypeChanged => "the call switched between audio and video",
            Self::UserReject => "a callee rejected the invitation",
            Self::UserNoResponse => "a callee did not answer within the ringing timeout",
            Self::UserLineBusy => "a callee was in another call",
            Self::UserJoin => "a participant joined the call",
            Self::UserLeave => "a participant left the call",
            Self::UserVideoAvailable => "a participant's video started or stopped",
            Self::UserAudioAvailable => "a participant's audio started or stopped",
            Self::UserVoiceVolumeChanged => "speaking levels, several times a second in a call",
            Self::UserNetworkQualityChanged => "a participant's network quality changed",
            Self::KickedOffline => "this session was logged out by a log-in elsewhere",
            Self::UserSigExpired => "the UserSig expired; log in again with a new one",
            Self::ConnectionStateChanged => "a peer's media connection changed state",
            Self::CallStats => "about once a second per peer while media flows",
            Self::ServerEvent => {
                "the server routed a step of our call (recorded on the server's side of the \
                 trace; no handler of ours runs)"
            }
            Self::QualityWarning => {
                "a participant's media crossed a warning threshold over its recent samples \
                 (round trip > 400 ms, jitter > 30 ms, loss > 3 %, frozen video, our microphone's \
                 level constant for 10 s, our video paused for bandwidth), or came back"
            }
            Self::LocalVideoAdapted => {
                "our video stepped to another resolution or frame rate: down when the path's \
                 estimate stays below what the rung needs and the encoder shows it (at once \
                 when far below), or the encoder cannot keep up; back up once the estimate has \
                 stayed above the next rung's need for a while"
            }
            Self::ImpairmentChanged => {
                "the media links were impaired on purpose (loss, delay, jitter, a cap) or the \
                 call's media was cut (a debugging aid of the panel or --impair)"
            }
        }
    }

    /// What its handler gets, as the call contract says.
    pub const fn payload_fields(self) -> &'static str {
        match self {
            Self::BeforeCalling => "type: call | groupCall | invited, error: {code, message}?",
            Self::AfterCalling => "{call_id, reason, initiator, duration, media}",
            Self::Minimized => "old, new: full | minimized",
            Self::KickedOut => "{by}",
            Self::StatusChanged => "{old_status, new_status}",
            Self::Error => "{code, message}",
            Self::CallReceived => "{call_id, caller_id, callee_ids, media_type}",
            Self::CallBegin => "{call_id, media_type}",
            Self::CallEnd => "{call_id, media_type, reason, user_id, total_time}",
            Self::CallNotConnected => "{call_id, reason, user_id}",
            Self::CallMediaTypeChanged => "{old_type, new_type}",
            Self::UserReject
            | Self::UserNoResponse
            | Self::UserLineBusy
            | Self::UserJoin
            | Self::UserLeave => "{user_id}",
            Self::UserVideoAvailable | Self::UserAudioAvailable => "{user_id, available}",
            Self::UserVoiceVolumeChanged => "{volumes: user_id -> 0..100}",
            Self::UserNetworkQualityChanged => {
                "{user_id, quality: unknown | excellent | good | poor | bad | vbad | down}"
            }
            Self::KickedOffline | Self::UserSigExpired => "nothing",
            Self::ConnectionStateChanged => {
                "{user_id, state: new | connecting | connected | reconnecting | failed | closed}"
            }
            Self::CallStats => {
                "{user_id, rtt_ms, jitter_ms, loss_pct, fps, bitrate_kbps, resolution, \
                 estimate_kbps, send_target_kbps, sent_resolution, sent_fps, \
                 quality_limitation, freeze_count, freeze_ms, concealed_pct, jitter_buffer_ms, \
                 fec_recovered, …}"
            }
            Self::ServerEvent => "{name: caller_start_call | callee_accept_call | …, user_id}",
            Self::QualityWarning => {
                "{user_id, name: high-rtt | high-jitter | high-packet-loss | frozen-video | \
                 no-audio-input | low-bandwidth, state: raised | cleared, value}"
            }
            Self::ImpairmentChanged => "{user_id: peer | *, send, receive, cut_ms}",
            Self::LocalVideoAdapted => {
                "{from, to: 1280x720@30 | … | paused, reason: bandwidth | cpu, \
                 limitation: none | bandwidth | cpu, budget_kbps}"
            }
        }
    }

    /// Whether it repeats on a timer during a call (stats and voice levels), rather than
    /// marking a step of the call's flow.
    pub const fn is_periodic(self) -> bool {
        matches!(self, Self::CallStats | Self::UserVoiceVolumeChanged)
    }
}

impl fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallbackKind {
    type Err = String;

    /// Parses the contract's name; the Rust variant name is accepted too.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == text || format!("{kind:?}") == text)
            .ok_or_else(|| format!("unknown callback kind {text:?}"))
    }
}

/// A set of kinds, one bit each; cheap to copy and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct KindSet(u64);

impl KindSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// Every kind.
    pub const fn all() -> Self {
        Self((1u64 << CallbackKind::COUNT) - 1)
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: CallbackKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: CallbackKind) {
        self.0 |= 1 << kind.index();
    }

    /// Removes `kind`.
    pub fn remove(&mut self, kind: CallbackKind) {
        self.0 &= !(1 << kind.index());
    }

    /// The set as bits, bit `kind.index()` per kind.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The set of the given bits (bits beyond the known kinds are dropped).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits & Self::all().0)
    }

    /// Whether no kind is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`CallbackKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = CallbackKind> {
        CallbackKind::ALL
            .iter()
            .copied()
            .filter(move |kind| self.contains(*kind))
    }
}

impl FromIterator<CallbackKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = CallbackKind>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}
