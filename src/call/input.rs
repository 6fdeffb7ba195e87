//! What goes into the call core (`Input`, `Signal`) and what comes out (`Emitted`, `Action`).

use crate::callbacks::Event;
use crate::timeline::Source;

use super::{CallError, EndReason, MediaType};

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
        reason: EndReason,
    },
}

/// A signaling message about one call, from the server or another participant.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// The server delivered our invitation; the listed callees are offline.
    InviteDelivered {
        /// Callees that never logged in.
        offline: Vec<String>,
    },
    /// The server could not deliver our invitation.
    InviteFailed {
        /// Why.
        error: CallError,
    },
    /// Someone invites us.
    Invited {
        /// Who calls.
        caller: String,
        /// Everyone invited, us included.
        callees: Vec<String>,
        /// Those of `callees` already in the call (for an invitation into a running call).
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
    /// A callee did not answer in time (the server decided).
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
    /// Another device of ours accepted the invitation.
    AcceptedElsewhere,
    /// Another device of ours rejected the invitation.
    RejectedElsewhere,
    /// The server ended the call.
    EndedByServer,
}

/// An event the core yields, with where it came from and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    /// The time of the input that caused it.
    pub at: super::MonoTime,
    /// The call it belongs to, if any.
    pub call_id: Option<String>,
    /// Which kind of input caused it.
    pub source: Source,
    /// The callback or engine event.
    pub event: Event,
}

/// A message the driver must send to signaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Invite callees into a new call.
    Invite {
        /// The call.
        call_id: String,
        /// Who.
        callees: Vec<String>,
        /// Audio or video.
        media: MediaType,
        /// Group call.
        group: bool,
        /// Ringing timeout in seconds.
        timeout_secs: u32,
    },
    /// Cancel our ringing call.
    Cancel {
        /// The call.
        call_id: String,
    },
    /// Accept the invitation.
    Accept {
        /// The call.
        call_id: String,
    },
    /// Reject the invitation.
    Reject {
        /// The call.
        call_id: String,
    },
    /// Tell the caller we are in another call.
    LineBusy {
        /// The call we could not take.
        call_id: String,
    },
    /// Leave the connected call.
    Hangup {
        /// The call.
        call_id: String,
    },
    /// Switch the call's media.
    SwitchMedia {
        /// The call.
        call_id: String,
        /// The media now.
        media: MediaType,
    },
    /// Invite more people into the running group call.
    InviteMore {
        /// The call.
        call_id: String,
        /// Who.
        users: Vec<String>,
    },
}
