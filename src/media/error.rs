//! `MediaError`: what went wrong in the media engine, each with the contract's error code.

use crate::model::{CallError, ErrorCode};

/// A media failure the engine reports; [`MediaError::code`] gives its contract code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// No camera could be used; the call sends the synthetic test pattern.
    #[error("{reason}; sending the synthetic test pattern instead")]
    CameraUnavailable {
        /// What the camera layer said.
        reason: String,
    },
    /// No microphone could be used; the call sends a synthetic tone.
    #[error("{reason}; sending a synthetic 440 Hz tone instead")]
    MicrophoneUnavailable {
        /// What the audio layer said.
        reason: String,
    },
    /// No speaker could be used; received audio is decoded and measured, not played.
    #[error("{reason}; received audio is not played")]
    SpeakerUnavailable {
        /// What the audio layer said.
        reason: String,
    },
    /// A codec could not start or failed.
    #[error("the {codec} {role} failed: {reason}")]
    Codec {
        /// `H.264` or `Opus`.
        codec: &'static str,
        /// `encoder` or `decoder`.
        role: &'static str,
        /// What the codec said.
        reason: String,
    },
    /// A description or candidate from a participant could not be used.
    #[error("media negotiation with {user_id} failed: {reason}")]
    Negotiation {
        /// The participant.
        user_id: String,
        /// What was wrong.
        reason: String,
    },
    /// The media connection to a participant could not be built, or was lost for good.
    #[error("the media connection to {user_id} failed: {reason}")]
    Connection {
        /// The participant.
        user_id: String,
        /// What happened.
        reason: String,
    },
    /// A media thread could not start.
    #[error("the {thread} thread could not start: {reason}")]
    Thread {
        /// The thread's name.
        thread: &'static str,
        /// What the system said.
        reason: String,
    },
    /// A participant's audio could not be recorded (`--record-audio`).
    #[error("{user_id}'s audio could not be recorded: {reason}")]
    Recording {
        /// The participant.
        user_id: String,
        /// What the system said.
        reason: String,
    },
}

impl MediaError {
    /// The contract's code for this error.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::CameraUnavailable { .. } => ErrorCode::CameraUnavailable,
            Self::MicrophoneUnavailable { .. } => ErrorCode::MicrophoneUnavailable,
            Self::Negotiation { .. } => ErrorCode::InvalidParameter,
            Self::SpeakerUnavailable { .. }
            | Self::Codec { .. }
            | Self::Connection { .. }
            | Self::Thread { .. }
            | Self::Recording { .. } => ErrorCode::InitFailed,
        }
    }

    /// The error as callbacks carry it.
    pub fn to_call_error(&self) -> CallError {
        CallError::new(self.code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::MediaError;
    use crate::model::ErrorCode;

    #[test]
    fn device_errors_carry_their_contract_codes_and_the_whole_reason() {
        let camera = MediaError::CameraUnavailable {
            reason: "no camera found.".into(),
        };
        assert_eq!(camera.code(), ErrorCode::CameraUnavailable);
        assert!(camera.to_string().contains("no camera found."));
        let microphone = MediaError::MicrophoneUnavailable {
            reason: "default: no device".into(),
        };
        assert_eq!(microphone.to_call_error().code.code(), 60003);
        let negotiation = MediaError::Negotiation {
            user_id: "bob".into(),
            reason: "malformed".into(),
        };
        assert_eq!(negotiation.code(), ErrorCode::InvalidParameter);
    }
}
