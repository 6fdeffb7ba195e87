//! What goes into the call core (`Input`, and the wire's `Signal`) and what comes out for
//! signaling (`Action`). `Action` and `Signal` are the signaling protocol's call messages
//! themselves: the wire enums wrap them, so a call message is defined here once.

use serde::{Deserialize, Serialize};

use crate::model::{CallError, MediaType};

/// An input to [`super::CallMachine::handle_input`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The session logged in to signaling.
    LoggedIn,
    /// The local user places a call.
    Dial {
        /// The new call's id, chosen by the driver.
        call_id: String,
        /// Who to call (1 for a 1:1 call, 1..=8 for a group call).
        callees: Vec<String>,
        /// Audio or video.
        media: MediaType,
        /// Group call (`groupCall`) rather than 1:1 (`call`).
        group: bool,
        /// Ringing timeout in seconds; 0 rings until answered.
        timeout_secs: u32,
    },
    /// The local user accepts the ringing invitation.
    Accept,
    /// The local user rejects the ringing invitation.
    Reject,
    /// The local user declines the ringing invitation as busy (in another call elsewhere).
    DeclineBusy,
    /// The local user hangs up: cancels while dialing, rejects while invited, leaves when connected.
    Hangup,
    /// The local user switches the connected call between audio and video.
    SwitchMedia(MediaType),
    /// The local user minimizes the call view.
    Minimize,
    /// The local user restores the call view.
    Restore,
    /// The local user invites more people into the group call.
    InviteMore {
        /// Who to add.
        users: Vec<String>,
    },
    /// A message from signaling about one call.
    Signal {
        /// The call the message is about.
        call_id: String,
        /// What happened.
        signal: Signal,
    },
    /// Signaling could not deliver our invitation (the server refused it, or it could not be
    /// sent).
    InviteFailed {
        /// The call being placed.
        call_id: String,
        /// Why.
        error: CallError,
    },
    /// Another device of ours answered the ringing invitation.
    AnsweredElsewhere {
        /// The call.
        call_id: String,
        /// Accepted there (rejected otherwise).
        accepted: bool,
    },
    /// This user logged in elsewhere and this session was closed.
    KickedOut {
        /// The device or session that took over.
        by: String,
    },
    /// The UserSig expired and the server closed the session.
    UserSigExpired,
    /// The driver ends the call: the server went away, media failed, or a fatal error.
    Abort {
        /// Why.
        reason: crate::model::EndReason,
    },
}

impl From<CallSignal> for Input {
    fn from(message: CallSignal) -> Self {
        Self::Signal {
            call_id: message.call_id,
            signal: message.signal,
        }
    }
}

/// A signaling message about one call, as the server sends it: its call id and what happened.
///
/// On the wire it is one flat object: `{"type":"accepted","call_id":"c-1","user_id":"bob"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSignal {
    /// The call.
    pub call_id: String,
    /// What happened.
    #[serde(flatten)]
    pub signal: Signal,
}

/// What the server tells a participant about a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Signal {
    /// The server delivered our invitation; the listed callees are offline.
    InviteDelivered {
        /// Callees that are not logged in.
        offline: Vec<String>,
    },
    /// Someone invites us.
    Invited {
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
        /// Ringing timeout in seconds; 0 rings until answered.
        timeout_secs: u32,
    },
    /// A participant accepted.
    Accepted {
        /// Who.
        user_id: String,
    },
    /// A callee rejected.
    Rejected {
        /// Who.
        user_id: String,
    },
    /// A callee was in another call.
    LineBusy {
        /// Who.
        user_id: String,
    },
    /// A callee did not answer in time, or went away without answering.
    NoResponse {
        /// Who.
        user_id: String,
    },
    /// The caller cancelled before we answered.
    Canceled {
        /// Who cancelled.
        user_id: String,
    },
    /// A participant hung up.
    HungUp {
        /// Who.
        user_id: String,
    },
    /// A participant invited more people into the running call.
    MembersInvited {
        /// Who was invited.
        users: Vec<String>,
    },
    /// A participant switched the call between audio and video.
    MediaSwitched {
        /// Who switched.
        user_id: String,
        /// The media now.
        media: MediaType,
    },
    /// The server ended the call.
    #[serde(rename = "call_ended")]
    EndedByServer,
}

/// A message the driver must send to signaling: one call action of the local user.
///
/// On the wire it is one flat object: `{"type":"accept","call_id":"c-1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
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
}

impl Action {
    /// The wire names of the actions, as their `type` field reads.
    pub const TYPES: [&'static str; 8] = [
        "invite",
        "cancel",
        "accept",
        "reject",
        "line_busy",
        "hangup",
        "invite_more",
        "switch_media",
    ];

    /// The call the action is about.
    pub fn call_id(&self) -> &str {
        match self {
            Self::Invite { call_id, .. }
            | Self::Cancel { call_id }
            | Self::Accept { call_id }
            | Self::Reject { call_id }
            | Self::LineBusy { call_id }
            | Self::Hangup { call_id }
            | Self::InviteMore { call_id, .. }
            | Self::SwitchMedia { call_id, .. } => call_id,
        }
    }
}
