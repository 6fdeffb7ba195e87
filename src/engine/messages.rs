//! What the UI (or the CLI) sends the engine, and what the engine reports back.

use crate::call::{CallStatus, MediaType, MemberState, Role, ViewMode};
use crate::media::{DeviceChoices, DeviceList};
use crate::signaling::Contact;

/// A request to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCommand {
    /// Place a call.
    Dial {
        /// Who to call.
        callees: Vec<String>,
        /// Audio or video.
        media: MediaType,
        /// Group call.
        group: bool,
        /// Ringing timeout in seconds; 0 = never.
        timeout_secs: u32,
    },
    /// Accept the ringing invitation.
    Accept,
    /// Reject the ringing invitation.
    Reject,
    /// Cancel, reject or leave, whatever the call's state.
    Hangup,
    /// Switch the connected call between audio and video.
    SwitchMedia(MediaType),
    /// Minimize the call view.
    Minimize,
    /// Restore the call view.
    Restore,
    /// Invite more people into the group call.
    InviteMore(Vec<String>),
    /// Log the same user in from a second session, which kicks this one out.
    SimulateLoginElsewhere,
    /// Drop the call's media connections silently, as a network outage would.
    SimulateMediaLoss,
    /// Ask the server for the contact list again.
    RefreshContacts,
    /// Turn the camera on or off.
    SetCamera(bool),
    /// List the cameras, microphones and speakers (answered with [`EngineMsg::Devices`]).
    ListDevices,
    /// Use these devices from the next call on.
    ChooseDevices(DeviceChoices),
    /// Unmute or mute the microphone.
    SetMicrophone(bool),
    /// Hang up if in a call and stop.
    Shutdown,
}

/// The signaling connection as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting or logging in.
    Connecting,
    /// Logged in.
    Online,
    /// The server is unreachable; the engine retries.
    Offline {
        /// What failed.
        reason: String,
        /// When the next attempt is, in milliseconds.
        retry_in_millis: u64,
    },
    /// Logged out for good (kicked, UserSig expired or refused); no retry.
    LoggedOut {
        /// Why.
        reason: String,
    },
}

/// The call as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallSnapshot {
    /// The status `statusChanged` last reported.
    pub status: Option<CallStatus>,
    /// The call in progress.
    pub call_id: Option<String>,
    /// Our side.
    pub role: Option<Role>,
    /// Who placed the call.
    pub caller: Option<String>,
    /// Audio or video.
    pub media: Option<MediaType>,
    /// Full or minimized.
    pub view: ViewMode,
    /// Everyone else, and whether they joined.
    pub participants: Vec<(String, MemberState)>,
}

/// A report from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMsg {
    /// The signaling connection changed.
    Connection(ConnectionState),
    /// The contact list arrived.
    Contacts(Vec<Contact>),
    /// The call changed.
    Call(CallSnapshot),
    /// The devices a call can use.
    Devices(DeviceList),
}
