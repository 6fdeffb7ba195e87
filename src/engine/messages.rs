//! What the UI (or the CLI) sends the engine, and the state and notices the engine reports.

use crate::call::MemberState;
use crate::media::impair::{LinkPlan, LinkRule};
use crate::media::{DeviceChoices, DeviceList};
use crate::model::{CallStatus, EndReason, MediaType, Role, ViewMode};
use crate::signaling::Contact;

/// A request to the engine.
#[derive(Debug, Clone, PartialEq)]
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
    /// Decline the ringing invitation as busy.
    DeclineBusy,
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
    /// Log in again after being logged out (kicked, UserSig expired); a log-in elsewhere is
    /// kicked in turn.
    LogIn,
    /// Log the same user in from a second session, which kicks this one out.
    SimulateLoginElsewhere,
    /// Drop the call's media connections silently, as a network outage would.
    SimulateMediaLoss,
    /// Ask the server for the contact list again.
    RefreshContacts,
    /// Turn the camera on or off for the current call.
    SetCamera(bool),
    /// Unmute or mute the microphone for the current call.
    SetMicrophone(bool),
    /// List the cameras, microphones and speakers (the list arrives in the state).
    ListDevices,
    /// Use these devices from the next call on.
    ChooseDevices(DeviceChoices),
    /// From the next call on, ring privately (`true`: nothing reaches the caller before the
    /// accept) or prepare the connection while ringing.
    SetPrivateRinging(bool),
    /// Share our entries of each call with its other participants (and hear theirs), or stop.
    ShareTraces(bool),
    /// Drops the signaling connection now and stays off it this long (a debugging aid: the
    /// reconnect path runs, and a connected call survives a cut shorter than the grace).
    CutSignaling {
        /// How long to stay off, in milliseconds.
        for_millis: u64,
    },
    /// Impair the media links from now on, as the rule says (a debugging aid; it holds for
    /// the calls after this one too).
    Impair(LinkRule),
    /// Drop the current call's media both ways for this long, keeping its connections.
    CutMedia {
        /// How long, in milliseconds.
        for_millis: u64,
    },
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
    /// Logged out (kicked, UserSig expired or refused); [`EngineCommand::LogIn`] tries again.
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

impl CallSnapshot {
    /// The status now (idle when none).
    pub fn status(&self) -> CallStatus {
        self.status.unwrap_or(CallStatus::Idle)
    }
}

/// How the last call ended, for the view after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The call.
    pub call_id: String,
    /// Why it ended.
    pub reason: EndReason,
    /// Who the reason is about (who hung up, rejected, was busy).
    pub user_id: String,
    /// Connected time in milliseconds (0 if it never connected).
    pub duration_millis: u64,
}

/// Everything the engine reports as state: the UI reads the newest, never a stale queue.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineState {
    /// The signaling connection.
    pub connection: ConnectionState,
    /// Who can be called.
    pub contacts: Vec<Contact>,
    /// The call.
    pub call: CallSnapshot,
    /// How the last call ended.
    pub last_outcome: Option<CallOutcome>,
    /// The local camera is on in the current call.
    pub camera_on: bool,
    /// The local microphone is on in the current call.
    pub microphone_on: bool,
    /// The devices found, once listed.
    pub devices: Option<DeviceList>,
    /// The server clock's offset from ours, once a ping came back.
    pub clock_offset: Option<crate::timeline::ClockOffset>,
    /// What the media links do on purpose.
    pub link: LinkPlan,
}

impl Default for EngineState {
    fn default() -> Self {
        Self {
            connection: ConnectionState::Connecting,
            contacts: Vec::new(),
            call: CallSnapshot::default(),
            last_outcome: None,
            camera_on: true,
            microphone_on: true,
            devices: None,
            clock_offset: None,
            link: LinkPlan::default(),
        }
    }
}

/// A notice from the engine that is not state: something to say once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMsg {
    /// A line for the status bar.
    Notice(String),
}
