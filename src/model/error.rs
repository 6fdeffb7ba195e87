//! Error codes of the call contract (kept from TUICallKit) and the error value callbacks carry.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A numbered error code of the call contract, section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 60001: switching the call to audio failed.
    SwitchToAudioFailed,
    /// 60002: switching the call to video failed.
    SwitchToVideoFailed,
    /// 60003: the microphone is unavailable.
    MicrophoneUnavailable,
    /// 60004: the camera is unavailable.
    CameraUnavailable,
    /// 60005: the user denied device permission.
    DevicePermissionDenied,
    /// -1101: permission denied.
    PermissionDenied,
    /// -1201: initialisation failed.
    InitFailed,
    /// -1202: a parameter is invalid.
    InvalidParameter,
    /// -1203: the request is refused in the current state.
    RequestRefused,
    /// -1204: the request repeats one already in progress.
    RequestRepeated,
    /// -1406: a signaling message could not be sent.
    SignalingSendFailed,
    /// 6014: the user is not logged in.
    NotLoggedIn,
    /// 8021: the callee never logged in (offline).
    CalleeOffline,
    /// 70009: the UserSig did not verify.
    UserSigInvalid,
}

impl ErrorCode {
    /// Every code, in the order of the contract.
    pub const ALL: [Self; 14] = [
        Self::SwitchToAudioFailed,
        Self::SwitchToVideoFailed,
        Self::MicrophoneUnavailable,
        Self::CameraUnavailable,
        Self::DevicePermissionDenied,
        Self::PermissionDenied,
        Self::InitFailed,
        Self::InvalidParameter,
        Self::RequestRefused,
        Self::RequestRepeated,
        Self::SignalingSendFailed,
        Self::NotLoggedIn,
        Self::CalleeOffline,
        Self::UserSigInvalid,
    ];

    /// The number TUICallKit users know this error by.
    pub const fn code(self) -> i32 {
        match self {
            Self::SwitchToAudioFailed => 60001,
            Self::SwitchToVideoFailed => 60002,
            Self::MicrophoneUnavailable => 60003,
            Self::CameraUnavailable => 60004,
            Self::DevicePermissionDenied => 60005,
            Self::PermissionDenied => -1101,
            Self::InitFailed => -1201,
            Self::InvalidParameter => -1202,
            Self::RequestRefused => -1203,
            Self::RequestRepeated => -1204,
            Self::SignalingSendFailed => -1406,
            Self::NotLoggedIn => 6014,
            Self::CalleeOffline => 8021,
            Self::UserSigInvalid => 70009,
        }
    }

    /// The contract's short description of the code.
    pub const fn description(self) -> &'static str {
        match self {
            Self::SwitchToAudioFailed => "switch to audio failed",
            Self::SwitchToVideoFailed => "switch to video failed",
            Self::MicrophoneUnavailable => "microphone unavailable",
            Self::CameraUnavailable => "camera unavailable",
            Self::DevicePermissionDenied => "device permission denied",
            Self::PermissionDenied => "permission denied",
            Self::InitFailed => "init failed",
            Self::InvalidParameter => "invalid parameter",
            Self::RequestRefused => "request refused",
            Self::RequestRepeated => "request repeated",
            Self::SignalingSendFailed => "signaling send failed",
            Self::NotLoggedIn => "not logged in",
            Self::CalleeOffline => "callee offline",
            Self::UserSigInvalid => "UserSig verification failed",
        }
    }
}

impl From<ErrorCode> for i32 {
    fn from(code: ErrorCode) -> Self {
        code.code()
    }
}

impl TryFrom<i32> for ErrorCode {
    type Error = String;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|code| code.code() == value)
            .ok_or_else(|| format!("unknown error code {value}"))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.description())
    }
}

/// An error as callbacks and the timeline carry it: `{"code": 8021, "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("error {code}: {message}")]
pub struct CallError {
    /// The contract's error code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl CallError {
    /// An error with its code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `-1203 request refused` error for an input that the current status does not allow.
    pub fn refused(what: &str, status: super::CallStatus) -> Self {
        Self::new(
            ErrorCode::RequestRefused,
            format!("{what} is not allowed while the status is {status}"),
        )
    }
}
