//! The signaling protocol: versioned JSON messages over WebSocket, one enum each way.
//!
//! Every frame is one JSON object whose `type` names the message, for example
//! `{"type":"invite","call_id":"c-1","callees":["bob"],"media":"video","group":false,"timeout_secs":30}`.
//! A client logs in first (`login`, with its UserSig); the server answers `welcome` or an `error`
//! with the contract's code. Frames above [`MAX_FRAME_BYTES`] are refused with an error and the
//! connection stays usable.

use serde::{Deserialize, Serialize};

use crate::call::{Action, CallSignal, Signal};
use crate::model::ids::quote_untrusted;
use crate::model::{CallError, ErrorCode};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame the server takes; larger ones are answered with an error.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The most entries one [`ClientMessage::ShareTrace`] carries.
pub const MAX_SHARED_ENTRIES: usize = 64;

/// The largest shared entry a server forwards by default, in bytes of JSON.
pub const MAX_SHARED_ENTRY_BYTES: usize = 4 * 1024;

/// A message from a client to the server.
///
/// The call actions are the call core's [`Action`]s themselves, on the wire as flat objects
/// (`{"type":"accept","call_id":"c-1"}`).
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
    /// Asks for (or stops) the server's records of how it routes this user's calls, and the
    /// entries the call's other participants share.
    Traces {
        /// Send them.
        on: bool,
    },
    /// Entries this user's kit recorded about one of its calls, for the call's other
    /// participants who asked for traces (at most [`MAX_SHARED_ENTRIES`] per message).
    ShareTrace {
        /// The call.
        call_id: String,
        /// Each entry in the contract's JSON, with `server_us` (its time on the server's clock)
        /// and `clock_error_us` (how far off that may be) when the sender knows its offset.
        entries: Vec<serde_json::Value>,
    },
    /// A call action: invite, cancel, accept, reject, line busy, hang up, invite more, switch
    /// media.
    #[serde(untagged)]
    Call(Action),
}

/// A message from the server to a client.
///
/// What the server says about a call is the call core's [`CallSignal`] itself, on the wire as
/// a flat object (`{"type":"accepted","call_id":"c-1","user_id":"bob"}`).
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
        /// Connected calls the server held for the user while its connection was lost: they
        /// go on (absent from servers before rejoining).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<String>,
    },
    /// The contact list changed, or was asked for.
    Contacts {
        /// Everyone the user can call.
        contacts: Vec<Contact>,
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
        /// The `type` of the refused request, where a client must tell it apart (a refused
        /// `share_trace` is not a refused call action).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
    /// The answer to `ping`.
    Pong {
        /// The client's nonce.
        nonce: u64,
        /// The server's wall clock when it answered, in ms since the Unix epoch (absent from
        /// servers before clock alignment).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_ms: Option<u64>,
        /// The same in µs, stamped as the answer leaves (absent from older servers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_us: Option<u64>,
    },
    /// The server's record of one routing step of a call, for a participant that asked for
    /// traces; named like the call-event webhooks (`caller_start_call`, `callee_accept_call`…).
    Trace {
        /// The call.
        call_id: String,
        /// What happened.
        name: String,
        /// Who it is about.
        user_id: String,
        /// When, on the server's clock in µs since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_us: Option<u64>,
    },
    /// Entries another participant of a call shared ([`ClientMessage::ShareTrace`]), as it
    /// sent them; `from` is who the server knows sent them.
    SharedTrace {
        /// The call.
        call_id: String,
        /// The participant who shared them.
        from: String,
        /// The entries.
        entries: Vec<serde_json::Value>,
    },
    /// News about a call: an invitation, an answer, a hang-up, a switch, its end.
    #[serde(untagged)]
    Call(CallSignal),
}

impl ServerMessage {
    /// Puts the server's clock (µs since the Unix epoch, read by `now_micros` only for a
    /// message that carries it) on the message, as it leaves.
    pub fn stamp(&mut self, now_micros: impl FnOnce() -> u64) {
        match self {
            Self::Pong { server_us, .. } | Self::Trace { server_us, .. } => {
                *server_us = Some(now_micros());
            }
            _ => {}
        }
    }

    /// The news `signal` about `call_id`.
    pub fn call(call_id: &str, signal: Signal) -> Self {
        Self::Call(CallSignal {
            call_id: call_id.to_owned(),
            signal,
        })
    }
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
            request: None,
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

/// The `type`s of client messages that are not call actions.
const SESSION_TYPES: [&str; 7] = [
    "login",
    "sdp",
    "ice",
    "contacts",
    "ping",
    "traces",
    "share_trace",
];

/// A frame's `type` alone (the rest is skipped, not kept).
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// Reads one frame as a client message, telling apart every way it can be wrong.
pub fn decode_client(frame: &str) -> Result<ClientMessage, DecodeError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(frame.len()));
    }
    // The common case is read once (a call action straight as one: through `ClientMessage` it
    // would be buffered twice, after a failed look-up of its type); a frame that fails is read
    // again to say how it is wrong.
    let is_action = serde_json::from_str::<Typed<'_>>(frame)
        .is_ok_and(|typed| Action::TYPES.contains(&typed.kind.as_ref()));
    let read = if is_action {
        serde_json::from_str::<Action>(frame)
            .map(ClientMessage::Call)
            .ok()
    } else {
        serde_json::from_str::<ClientMessage>(frame).ok()
    };
    if let Some(message) = read {
        return Ok(message);
    }
    let value: serde_json::Value = serde_json::from_str(frame)
        .map_err(|error| DecodeError::Malformed(quote_untrusted(&error.to_string(), 160)))?;
    if !value.is_object() {
        return Err(DecodeError::Malformed("not a JSON object".into()));
    }
    let Some(serde_json::Value::String(kind)) = value.get("type") else {
        return Err(DecodeError::Malformed("no \"type\" string".into()));
    };
    let kind = kind.clone();
    if !SESSION_TYPES.contains(&kind.as_str()) && !Action::TYPES.contains(&kind.as_str()) {
        // Never the sender's input in full.
        return Err(DecodeError::UnknownType(quote_untrusted(&kind, 32)));
    }
    let invalid = |error: serde_json::Error| DecodeError::Invalid {
        kind: kind.clone(),
        reason: quote_untrusted(&error.to_string(), 160),
    };
    // Straight to the action, so a bad field is named (not "no variant matched").
    if Action::TYPES.contains(&kind.as_str()) {
        return serde_json::from_value(value)
            .map(ClientMessage::Call)
            .map_err(invalid);
    }
    serde_json::from_value(value).map_err(invalid)
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
