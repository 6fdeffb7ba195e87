//! Small value types of the call contract: media type, view mode, end reason, call type, time.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// Audio only.
    Audio,
    /// Audio and video.
    Video,
}

impl MediaType {
    /// `audio` or `video`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
        }
    }
}

/// How the call view is shown (`onMinimized` reports the old and new mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ViewMode {
    /// The full call view.
    #[default]
    Full,
    /// The floating mini view.
    Minimized,
}

impl ViewMode {
    /// `full` or `minimized`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Minimized => "minimized",
        }
    }
}

/// The `type` argument of `beforeCalling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallType {
    /// We place a 1:1 call.
    Call,
    /// We place a group call.
    GroupCall,
    /// An invitation arrived.
    Invited,
}

impl CallType {
    /// `call`, `groupCall` or `invited`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::GroupCall => "groupCall",
            Self::Invited => "invited",
        }
    }
}

/// Why a call ended (TUICallKit's `CallEndReason` plus callscope's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// Someone hung up a connected call.
    Hangup,
    /// The callee rejected.
    Reject,
    /// Nobody answered before the timeout.
    NoResponse,
    /// The callee is offline.
    Offline,
    /// The callee was already in a call.
    LineBusy,
    /// The caller cancelled while it rang.
    Canceled,
    /// Another device of the same user accepted.
    OtherDeviceAccepted,
    /// Another device of the same user rejected.
    OtherDeviceRejected,
    /// The server ended the call (it went away, or closed the call).
    EndByServer,
    /// The user logged in elsewhere.
    KickedOut,
    /// Media could not be established or was lost.
    MediaFailed,
    /// Any other fatal error.
    Error,
}

impl EndReason {
    /// Every reason, in the order of the contract.
    pub const ALL: [Self; 12] = [
        Self::Hangup,
        Self::Reject,
        Self::NoResponse,
        Self::Offline,
        Self::LineBusy,
        Self::Canceled,
        Self::OtherDeviceAccepted,
        Self::OtherDeviceRejected,
        Self::EndByServer,
        Self::KickedOut,
        Self::MediaFailed,
        Self::Error,
    ];

    /// The contract's string (`no-response`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hangup => "hangup",
            Self::Reject => "reject",
            Self::NoResponse => "no-response",
            Self::Offline => "offline",
            Self::LineBusy => "line-busy",
            Self::Canceled => "canceled",
            Self::OtherDeviceAccepted => "other-device-accepted",
            Self::OtherDeviceRejected => "other-device-rejected",
            Self::EndByServer => "end-by-server",
            Self::KickedOut => "kicked-out",
            Self::MediaFailed => "media-failed",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the call the local user is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// We placed the call.
    Caller,
    /// We were invited.
    Callee,
}

/// A monotonic point in time, in microseconds since a clock's origin.
///
/// The call core never reads a clock: its driver passes the time of every input.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct MonoTime(pub u64);

impl MonoTime {
    /// The point `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// The point `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for MonoTime {
    type Output = Self;

    fn add(self, rhs: Duration) -> Self {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

/// Why the sent video is below what the source gives (the W3C `qualityLimitationReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QualityLimitation {
    /// Nothing: the source's own size and rate.
    #[default]
    None,
    /// The path's estimate.
    Bandwidth,
    /// The encoder could not keep up.
    Cpu,
}

impl QualityLimitation {
    /// `none`, `bandwidth` or `cpu`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bandwidth => "bandwidth",
            Self::Cpu => "cpu",
        }
    }
}
