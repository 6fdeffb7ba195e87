//! The one event enum: the five component callbacks and every engine event of the contract,
//! its field-less twin [`CallbackKind`], and [`Emitted`], an event with when and where it
//! happened. Imports only the model.

mod kind;
mod payload;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{
    CallError, CallStatus, CallType, EndReason, MediaType, MonoTime, QualityLimitation, Source,
    ViewMode,
};

pub use kind::{CallbackKind, KindSet};
use payload::wire_name;
pub use payload::{
    CallStats, CallSummary, ConnectionState, NetworkQuality, PlayoutStats, QualityWarningName,
    SendingStats, WarningState,
};

/// An event as a core yields it: when, about which call, and caused by what.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    /// The time of the input that caused it.
    pub at: MonoTime,
    /// The call it belongs to, if any.
    pub call_id: Option<String>,
    /// Which kind of input caused it.
    pub source: Source,
    /// The callback or engine event.
    pub event: Event,
}

/// Everything a callback or an engine event can report.
///
/// Serialized adjacently tagged, as the timeline's JSON has it:
/// `{"kind": "statusChanged", "payload": {"old_status": "idle", "new_status": "dialing-c2c"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
#[non_exhaustive]
pub enum Event {
    /// Fires before a call starts: when we place one (with the error if it cannot start) and
    /// when an invitation arrives.
    #[serde(rename = "beforeCalling")]
    BeforeCalling {
        /// `call`, `groupCall` or `invited`.
        #[serde(rename = "type")]
        call_type: CallType,
        /// Why the call could not start, if it could not.
        error: Option<CallError>,
    },
    /// Fires exactly once after every call that `beforeCalling` announced without an error.
    #[serde(rename = "afterCalling")]
    AfterCalling(CallSummary),
    /// Fires when the call view is minimized or restored.
    #[serde(rename = "onMinimized")]
    Minimized {
        /// The mode before.
        old: ViewMode,
        /// The mode now.
        new: ViewMode,
    },
    /// Fires when the same user logged in elsewhere; any call ends.
    #[serde(rename = "kickedOut")]
    KickedOut {
        /// The device or session that took over.
        by: String,
    },
    /// Fires on every status transition.
    #[serde(rename = "statusChanged")]
    StatusChanged {
        /// The status before.
        old_status: CallStatus,
        /// The status now.
        new_status: CallStatus,
    },
    /// Fires when a request fails or is refused.
    #[serde(rename = "onError")]
    Error(CallError),
    /// Fires when an invitation arrives.
    #[serde(rename = "onCallReceived")]
    CallReceived {
        /// The call.
        call_id: String,
        /// Who calls.
        caller_id: String,
        /// Everyone invited, us included.
        callee_ids: Vec<String>,
        /// Audio or video.
        media_type: MediaType,
    },
    /// Fires when a call connects.
    #[serde(rename = "onCallBegin")]
    CallBegin {
        /// The call.
        call_id: String,
        /// Audio or video.
        media_type: MediaType,
    },
    /// Fires when a connected call ends.
    #[serde(rename = "onCallEnd")]
    CallEnd {
        /// The call.
        call_id: String,
        /// Audio or video at the end.
        media_type: MediaType,
        /// Why it ended.
        reason: EndReason,
        /// Who ended it.
        user_id: String,
        /// Connected time in milliseconds.
        #[serde(rename = "total_time")]
        total_time_millis: u64,
    },
    /// Fires when a call ends before it connected.
    #[serde(rename = "onCallNotConnected")]
    CallNotConnected {
        /// The call.
        call_id: String,
        /// Why it did not connect.
        reason: EndReason,
        /// The user the reason is about.
        user_id: String,
    },
    /// Fires when the call switches between audio and video, whichever side switched.
    #[serde(rename = "onCallMediaTypeChanged")]
    CallMediaTypeChanged {
        /// The media before.
        old_type: MediaType,
        /// The media now.
        new_type: MediaType,
    },
    /// Fires when a callee rejects.
    #[serde(rename = "onUserReject")]
    UserReject {
        /// The callee.
        user_id: String,
    },
    /// Fires when a callee does not answer in time.
    #[serde(rename = "onUserNoResponse")]
    UserNoResponse {
        /// The callee.
        user_id: String,
    },
    /// Fires when a callee is already in another call.
    #[serde(rename = "onUserLineBusy")]
    UserLineBusy {
        /// The callee.
        user_id: String,
    },
    /// Fires when a participant joins the call.
    #[serde(rename = "onUserJoin")]
    UserJoin {
        /// The participant.
        user_id: String,
    },
    /// Fires when a participant leaves the call.
    #[serde(rename = "onUserLeave")]
    UserLeave {
        /// The participant.
        user_id: String,
    },
    /// Fires when a participant's video starts or stops.
    #[serde(rename = "onUserVideoAvailable")]
    UserVideoAvailable {
        /// The participant.
        user_id: String,
        /// Whether video now flows.
        available: bool,
    },
    /// Fires when a participant's audio starts or stops.
    #[serde(rename = "onUserAudioAvailable")]
    UserAudioAvailable {
        /// The participant.
        user_id: String,
        /// Whether audio now flows.
        available: bool,
    },
    /// Fires with the speaking level of each participant.
    #[serde(rename = "onUserVoiceVolumeChanged")]
    UserVoiceVolumeChanged {
        /// Level 0..=100 per user.
        volumes: BTreeMap<String, u8>,
    },
    /// Fires when a participant's network quality changes.
    #[serde(rename = "onUserNetworkQualityChanged")]
    UserNetworkQualityChanged {
        /// The participant.
        user_id: String,
        /// The quality now.
        quality: NetworkQuality,
    },
    /// Fires when this session was logged out because the user logged in elsewhere.
    #[serde(rename = "onKickedOffline")]
    KickedOffline {},
    /// Fires when the UserSig expired; the session is closed.
    #[serde(rename = "onUserSigExpired")]
    UserSigExpired {},
    /// Fires when the media connection to a participant changes state.
    #[serde(rename = "onConnectionStateChanged")]
    ConnectionStateChanged {
        /// The participant.
        user_id: String,
        /// The state now.
        state: ConnectionState,
    },
    /// Fires about once a second per participant with media statistics.
    #[serde(rename = "onCallStats")]
    CallStats(CallStats),
    /// The server's record of one routing step of a call (named like the call-event webhooks).
    #[serde(rename = "onServerEvent")]
    ServerEvent {
        /// What happened: `caller_start_call`, `callee_receive_call`, `callee_accept_call`, …
        name: String,
        /// Who it is about.
        user_id: String,
    },
    /// Fires when a participant's media crosses a warning threshold over its recent samples,
    /// and again when it is back within it.
    #[serde(rename = "onQualityWarning")]
    QualityWarning {
        /// The participant whose media it is about.
        user_id: String,
        /// Which warning.
        name: QualityWarningName,
        /// Raised or cleared.
        state: WarningState,
        /// The value that decided it (ms, %, or fps).
        value: f64,
    },
    /// Fires when the media links are impaired on purpose, or a cut of the call's media
    /// starts (a debugging aid).
    #[serde(rename = "onImpairmentChanged")]
    ImpairmentChanged {
        /// The peer whose link it is, or `*` for every peer without its own.
        user_id: String,
        /// What happens to the packets we send now (`none`, or `loss=5%,delay=80ms`, …).
        send: String,
        /// What happens to the packets we receive now.
        receive: String,
        /// A cut of all media both ways starts now, this long; 0 when none.
        cut_ms: u64,
    },
    /// Fires when our video steps on its ladder of resolution and frame rate, because the
    /// path's estimate moved or the encoder could not keep up.
    #[serde(rename = "onLocalVideoAdapted")]
    LocalVideoAdapted {
        /// The picture and frame rate before (`1280x720@30`, or `paused`).
        from: String,
        /// The picture and frame rate after.
        to: String,
        /// What moved it: `bandwidth` (down, or back up) or `cpu`.
        reason: QualityLimitation,
        /// What limits the video after it: `none` at the source's own size and rate.
        limitation: QualityLimitation,
        /// What the estimate left for the video when it stepped, in kbit/s.
        budget_kbps: u32,
    },
}

impl Event {
    /// The field-less twin of this event.
    pub const fn kind(&self) -> CallbackKind {
        match self {
            Self::BeforeCalling { .. } => CallbackKind::BeforeCalling,
            Self::AfterCalling(_) => CallbackKind::AfterCalling,
            Self::Minimized { .. } => CallbackKind::Minimized,
            Self::KickedOut { .. } => CallbackKind::KickedOut,
            Self::StatusChanged { .. } => CallbackKind::StatusChanged,
            Self::Error(_) => CallbackKind::Error,
            Self::CallReceived { .. } => CallbackKind::CallReceived,
            Self::CallBegin { .. } => CallbackKind::CallBegin,
            Self::CallEnd { .. } => CallbackKind::CallEnd,
            Self::CallNotConnected { .. } => CallbackKind::CallNotConnected,
            Self::CallMediaTypeChanged { .. } => CallbackKind::CallMediaTypeChanged,
            Self::UserReject { .. } => CallbackKind::UserReject,
            Self::UserNoResponse { .. } => CallbackKind::UserNoResponse,
            Self::UserLineBusy { .. } => CallbackKind::UserLineBusy,
            Self::UserJoin { .. } => CallbackKind::UserJoin,
            Self::UserLeave { .. } => CallbackKind::UserLeave,
            Self::UserVideoAvailable { .. } => CallbackKind::UserVideoAvailable,
            Self::UserAudioAvailable { .. } => CallbackKind::UserAudioAvailable,
            Self::UserVoiceVolumeChanged { .. } => CallbackKind::UserVoiceVolumeChanged,
            Self::UserNetworkQualityChanged { .. } => CallbackKind::UserNetworkQualityChanged,
            Self::KickedOffline {} => CallbackKind::KickedOffline,
            Self::UserSigExpired {} => CallbackKind::UserSigExpired,
            Self::ConnectionStateChanged { .. } => CallbackKind::ConnectionStateChanged,
            Self::CallStats(_) => CallbackKind::CallStats,
            Self::ServerEvent { .. } => CallbackKind::ServerEvent,
            Self::QualityWarning { .. } => CallbackKind::QualityWarning,
            Self::ImpairmentChanged { .. } => CallbackKind::ImpairmentChanged,
            Self::LocalVideoAdapted { .. } => CallbackKind::LocalVideoAdapted,
        }
    }

    /// The payload as JSON, the shape of the contract's timeline section.
    pub fn payload_json(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                tagged.remove("payload").unwrap_or_default()
            }
            // An adjacently tagged enum of plain data always serializes to an object.
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds an event from its kind and payload, as stored or exported.
    pub fn from_parts(kind: CallbackKind, payload: serde_json::Value) -> serde_json::Result<Self> {
        let mut tagged = serde_json::Map::new();
        tagged.insert("kind".to_owned(), kind.as_str().into());
        tagged.insert("payload".to_owned(), payload);
        serde_json::from_value(serde_json::Value::Object(tagged))
    }
}

fn list(f: &mut fmt::Formatter<'_>, users: &[String]) -> fmt::Result {
    f.write_str(&users.join(","))
}

impl fmt::Display for Event {
    /// A one-line summary for people: the table's summary column and the text filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BeforeCalling { call_type, error } => match error {
                None => write!(f, "{}", call_type.as_str()),
                Some(error) => write!(f, "{} failed: {error}", call_type.as_str()),
            },
            Self::AfterCalling(summary) => write!(
                f,
                "{}, placed by {}, {} ms connected ({})",
                summary.reason,
                summary.initiator,
                summary.duration_millis,
                summary.media.as_str()
            ),
            Self::Minimized { old, new } => write!(f, "{} -> {}", old.as_str(), new.as_str()),
            Self::KickedOut { by } => write!(f, "by {by}"),
            Self::StatusChanged {
                old_status,
                new_status,
            } => write!(f, "{old_status} -> {new_status}"),
            Self::Error(error) => write!(f, "{error}"),
            Self::CallReceived {
                caller_id,
                callee_ids,
                media_type,
                ..
            } => {
                write!(f, "{} call from {caller_id} to ", media_type.as_str())?;
                list(f, callee_ids)
            }
            Self::CallBegin { media_type, .. } => write!(f, "{} connected", media_type.as_str()),
            Self::CallEnd {
                reason,
                user_id,
                total_time_millis,
                ..
            } => write!(f, "{reason} by {user_id} after {total_time_millis} ms"),
            Self::CallNotConnected {
                reason, user_id, ..
            } => write!(f, "{reason}: {user_id}"),
            Self::CallMediaTypeChanged { old_type, new_type } => {
                write!(f, "{} -> {}", old_type.as_str(), new_type.as_str())
            }
            Self::UserReject { user_id }
            | Self::UserNoResponse { user_id }
            | Self::UserLineBusy { user_id }
            | Self::UserJoin { user_id }
            | Self::UserLeave { user_id } => f.write_str(user_id),
            Self::UserVideoAvailable { user_id, available }
            | Self::UserAudioAvailable { user_id, available } => {
                write!(f, "{user_id} {}", if *available { "on" } else { "off" })
            }
            Self::UserVoiceVolumeChanged { volumes } => {
                let levels: Vec<String> = volumes
                    .iter()
                    .map(|(user_id, level)| format!("{user_id}={level}"))
                    .collect();
                f.write_str(&levels.join(" "))
            }
            Self::UserNetworkQualityChanged { user_id, quality } => {
                write!(f, "{user_id} {}", wire_name(quality))
            }
            Self::KickedOffline {} => f.write_str("logged out: logged in elsewhere"),
            Self::UserSigExpired {} => f.write_str("UserSig expired"),
            Self::ServerEvent { name, user_id } => write!(f, "{name} {user_id}"),
            Self::QualityWarning {
                user_id,
                name,
                state,
                value,
            } => write!(f, "{name} {} for {user_id} ({value:.1})", state.as_str()),
            Self::ImpairmentChanged {
                user_id,
                send,
                receive,
                cut_ms,
            } => {
                write!(f, "{user_id}: send {send}, receive {receive}")?;
                if *cut_ms > 0 {
                    write!(f, "; media cut for {:.1} s", *cut_ms as f64 / 1000.0)?;
                }
                Ok(())
            }
            Self::ConnectionStateChanged { user_id, state } => {
                write!(f, "{user_id} {}", wire_name(state))
            }
            Self::LocalVideoAdapted {
                from,
                to,
                reason,
                budget_kbps,
                ..
            } => write!(
                f,
                "{from} -> {to} ({}, {budget_kbps} kbit/s for video)",
                reason.as_str()
            ),
            Self::CallStats(stats) => write!(f, "{stats}"),
        }
    }
}
