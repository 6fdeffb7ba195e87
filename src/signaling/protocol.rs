//! The signaling protocol: versioned JSON messages over WebSocket, one enum each way.
//!
//! Every frame is one JSON object whose `type` names the message, for example
//! `{"type":"invite","call_id":"c-1","callees":["bob"],"media":"video","group":false,"timeout_secs":30}`.
//! A client logs in first (`login`, with its UserSig); the server answers `welcome` or an `error`
//! with the contract's code. Frames above [`MAX_FRAME_BYTES`] are refused with an error and the
//! connection stays usable.

use serde::{Deserialize, Serialize};

use crate::call::{CallError, ErrorCode, MediaType};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame the server takes; larger ones are answered with an error.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Log in as `user_id`, proving it with a UserSig.
    Login {
        /// The protocol version the client speaks.
        version: u32,
        /// Who logs in.
        user_id: String,
        /// The HMAC-SHA256 token the app's secret signed.
        user_sig: String,
    },
    /// Invite callees into a new call.
    Invite {
        /// The call's id, chosen by the caller.
        call_id: String,
        /// Who is invited.
        callees: Vec<String>,
        /// Audio or video.
        media: MediaType,
        /// Group call.
        group: bool,
        /// Ringing timeout in seconds; 0 = never.
        timeout_secs: u32,
    },
    /// The caller gives up before anyone answered.
    Cancel {
        /// The call.
        call_id: String,
    },
    /// The callee accepts.
    Accept {
        /// The call.
        call_id: String,
    },
    /// The callee rejects.
    Reject {
        /// The call.
        call_id: String,
    },
    /// The callee is in another call.
    LineBusy {
        /// The call.
        call_id: String,
    },
    /// A participant leaves the call.
    Hangup {
        /// The call.
        call_id: String,
    },
    /// A participant invites more people into the running group call.
    InviteMore {
        /// The call.
        call_id: String,
        /// Who is invited.
        users: Vec<String>,
    },
    /// A participant switches the call between audio and video.
    SwitchMedia {
        /// The call.
        call_id: String,
        /// The media now.
        media: MediaType,
    },
    /// An SDP offer or answer for one participant, relayed for the media engine.
    Sdp {
        /// The call.
        call_id: String,
        /// The participant it is for.
        to: String,
        /// The session description, as the media engine serialized it.
        description: String,
    },
    /// An ICE candidate for one participant, relayed for the media engine.
    Ice {
        /// The call.
        call_id: String,
        /// The participant it is for.
        to: String,
        /// The candidate, as the media engine serialized it.
        candidate: String,
    },
    /// Asks for the contact list again.
    Contacts,
    /// Checks the connection; answered with `pong`.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The log-in succeeded.
    Welcome {
        /// The protocol version the server speaks.
        version: u32,
        /// Who is logged in.
        user_id: String,
        /// Everyone the user can call.
        contacts: Vec<Contact>,
    },
    /// The contact list changed, or was asked for.
    Contacts {
        /// Everyone the user can call.
        contacts: Vec<Contact>,
    },
    /// Our invitation went out; the listed callees are offline.
    InviteDelivered {
        /// The call.
        call_id: String,
        /// Callees that are not logged in.
        offline: Vec<String>,
    },
    /// Someone invites us.
    Invited {
        /// The call.
        call_id: String,
        /// Who calls.
        caller: String,
        /// Everyone invited, us included.
        callees: Vec<String>,
        /// Those of `callees` already in the call (for an invitation into a running call).
        #[serde(default)]
        joined: Vec<String>,
        /// Audio or video.
        media: MediaType,
        /// Group call.
        group: bool,
        /// Ringing timeout in seconds; 0 = never.
        timeout_secs: u32,
    },
    /// A participant accepted.
    Accepted {
        /// The call.
        call_id: String,
        /// Who.
        user_id: String,
    },
    /// A callee rejected.
    Rejected {
        /// The call.
        call_id: String,
        /// Who.
        user_id: String,
    },
    /// A callee was in another call.
    LineBusy {
        /// The call.
        call_id: String,
        /// Who.
        user_id: String,
    },
    /// A callee went away without answering.
    NoResponse {
        /// The call.
        call_id: String,
        /// Who.
        user_id: String,
    },
    /// The caller cancelled.
    Canceled {
        /// The call.
        call_id: String,
        /// Who cancelled.
        user_id: String,
    },
    /// A participant left.
    HungUp {
        /// The call.
        call_id: String,
        /// Who.
        user_id: String,
    },
    /// More people were invited into the running call.
    MembersInvited {
        /// The call.
        call_id: String,
        /// Who.
        users: Vec<String>,
    },
    /// A participant switched the call between audio and video.
    MediaSwitched {
        /// The call.
        call_id: String,
        /// Who.
        user_id: String,
        /// The media now.
        media: MediaType,
    },
    /// The server ended the call.
    CallEnded {
        /// The call.
        call_id: String,
    },
    /// An SDP offer or answer from a participant.
    Sdp {
        /// The call.
        call_id: String,
        /// Who sent it.
        from: String,
        /// The session description.
        description: String,
    },
    /// An ICE candidate from a participant.
    Ice {
        /// The call.
        call_id: String,
        /// Who sent it.
        from: String,
        /// The candidate.
        candidate: String,
    },
    /// The same user logged in elsewhere; this session is closed.
    Kicked {
        /// The session that took over.
        by: String,
    },
    /// The UserSig expired; this session is closed.
    UserSigExpired,
    /// A request failed; nothing changed.
    Error {
        /// The contract's error code.
        code: ErrorCode,
        /// What went wrong.
        message: String,
        /// The call the request was about, if any.
        call_id: Option<String>,
    },
    /// The answer to `ping`.
    Pong {
        /// The client's nonce.
        nonce: u64,
    },
}

/// Someone a user can call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Their user id.
    pub user_id: String,
    /// Whether they are logged in now.
    pub online: bool,
    /// For a built-in demo peer, what it does.
    pub demo: Option<String>,
}

impl ServerMessage {
    /// An error reply.
    pub fn error(error: &CallError, call_id: Option<&str>) -> Self {
        Self::Error {
            code: error.code,
            message: error.message.clone(),
            call_id: call_id.map(str::to_owned),
        }
    }
}

/// Why a frame could not be read as a client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a JSON object.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A JSON object whose `type` is unknown.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A known `type` with missing or wrong fields.
    #[error("invalid {kind} message: {reason}")]
    Invalid {
        /// The message type.
        kind: String,
        /// What is wrong.
        reason: String,
    },
}

impl DecodeError {
    /// The contract error this is reported as (`-1202 invalid parameter`).
    pub fn to_call_error(&self) -> CallError {
        CallError::new(ErrorCode::InvalidParameter, self.to_string())
    }
}

const CLIENT_TYPES: [&str; 13] = [
    "login",
    "invite",
    "cancel",
    "accept",
    "reject",
    "line_busy",
    "hangup",
    "invite_more",
    "switch_media",
    "sdp",
    "ice",
    "contacts",
    "ping",
];

/// Reads one frame as a client message, telling apart every way it can be wrong.
pub fn decode_client(frame: &str) -> Result<ClientMessage, DecodeError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(frame.len()));
    }
    let value: serde_json::Value =
        serde_json::from_str(frame).map_err(|error| DecodeError::Malformed(error.to_string()))?;
    if !value.is_object() {
        return Err(DecodeError::Malformed("not a JSON object".into()));
    }
    let Some(serde_json::Value::String(kind)) = value.get("type") else {
        return Err(DecodeError::Malformed("no \"type\" string".into()));
    };
    let kind = kind.clone();
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(DecodeError::UnknownType(kind));
    }
    serde_json::from_value(value).map_err(|error| DecodeError::Invalid {
        kind,
        reason: error.to_string(),
    })
}

/// Reads one frame as a server message.
pub fn decode_server(frame: &str) -> Result<ServerMessage, DecodeError> {
    serde_json::from_str(frame).map_err(|error| DecodeError::Malformed(error.to_string()))
}

/// Writes a message as one frame.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Plain data with string keys always serializes.
    serde_json::to_string(message).unwrap_or_default()
}
