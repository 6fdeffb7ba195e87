//! `Driver`: the one place where facts become decisions. It holds one user's call core, the
//! signaling link's state and reconnect policy, and the kit that records every entry; it turns
//! UI commands, server messages and media reports into call-core inputs, timeline entries,
//! wire messages and media commands.
//!
//! Sans-IO: it owns no socket, task or clock. The client task (or a test stepping virtual
//! time) passes `now` with every input and carries out the [`Output`]s.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use crate::call::{Action, CallMachine, Input, MemberState};
use crate::event::Event;
use crate::kit::CallKit;
use crate::media::mesh::CallView;
use crate::media::{DeviceChoices, DeviceList, MediaCommand, MediaEvent, MediaReport};
use crate::model::{CallError, CallStatus, ErrorCode, MediaType, MonoTime, Role, Source};
use crate::signaling::{
    ClientMessage, MAX_SHARED_ENTRIES, MAX_SHARED_ENTRY_BYTES, PROTOCOL_VERSION, ServerMessage,
};
use crate::timeline::{ClockSync, Origin, TimelineEntry};

use super::connection::ReconnectPolicy;
use super::messages::{CallOutcome, CallSnapshot, ConnectionState, EngineCommand, EngineState};

/// Makes the id of each new call.
pub type CallIds = Box<dyn FnMut() -> String + Send>;

/// Who the driver logs in as, and whether its calls carry media.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The local user.
    pub user_id: String,
    /// Its UserSig.
    pub user_sig: String,
    /// Whether a media engine carries the calls' audio and video.
    pub media: bool,
    /// Ask the server for its records of how it routes our calls (and for the entries other
    /// participants share).
    pub server_traces: bool,
    /// Share our entries of each call with its other participants, through the server.
    pub share_traces: bool,
}

/// The `user_id` of an impairment that holds for every peer without its own.
pub const EVERY_PEER: &str = "*";

/// What the driver's owner must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this to the server.
    Send(ClientMessage),
    /// Open the signaling connection; report [`Driver::handle_connected`] or
    /// [`Driver::handle_lost`].
    Connect,
    /// Close the signaling connection (logged out).
    Disconnect,
    /// Start the media of this call.
    MediaOpen {
        /// The call.
        call_id: String,
    },
    /// Tell the open call's media.
    Media(MediaCommand),
    /// Stop the open call's media.
    MediaClose,
    /// Log the same user in from a second connection (a debugging aid).
    LoginElsewhere,
    /// List the devices; report [`Driver::handle_devices`].
    ListDevices,
    /// Use these devices from the next call on.
    ChooseDevices(DeviceChoices),
    /// Ring privately, or prepare while ringing, from the next call on.
    PrivateRinging(bool),
    /// Impair the media links like this, now and from the next call on.
    Impair(crate::media::impair::LinkPlan),
    /// Say this once (the status bar).
    Notice(String),
    /// The driver is done: close everything.
    Stop,
}

/// Where the signaling link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Not connected; the next attempt is due then (none while logged out).
    Down { retry_at: MonoTime },
    /// A connection attempt is under way.
    Connecting,
    /// Connected; the log-in is on its way.
    LoggingIn,
    /// Logged in.
    Online,
    /// Logged out for good, until asked to log in again.
    LoggedOut,
}

/// One user's engine, without IO.
pub struct Driver {
    config: DriverConfig,
    kit: CallKit,
    machine: CallMachine,
    policy: ReconnectPolicy,
    link: Link,
    call_ids: CallIds,
    /// The call whose media is open, and what its media was last told.
    media_call: Option<String>,
    media_view: Option<CallView>,
    /// Participants whose media connection failed in the current call.
    failed_peers: BTreeSet<String>,
    /// Who the last ending event of the current call was about.
    ended_by: Option<String>,
    state: EngineState,
    generation: u64,
    out: VecDeque<Output>,
    stopped: bool,
    /// The server clock's offset from ours, from ping round trips.
    clock_sync: ClockSync,
    /// Pings awaiting their pong: nonce and when sent.
    pings: VecDeque<(u64, MonoTime)>,
    /// When the next ping goes out (while online).
    next_ping: Option<MonoTime>,
    /// Pings sent since the last log-in (the first ones go out quickly).
    pings_sent: u32,
    /// Our entries of calls not yet shared (while sharing is on).
    to_share: Vec<Arc<TimelineEntry>>,
    /// The latest calls the server told us about: only their entries can be shared (it
    /// refuses the others').
    server_calls: VecDeque<String>,
    /// Calls whose shared entries the server refused: the rest of theirs are not sent.
    unshared_calls: VecDeque<String>,
    /// The quality warnings of the call whose media is open.
    quality: super::quality::QualityMonitor,
}

/// Pings sent quickly after each log-in, so the clock offset is known at once.
const PING_BURST: u32 = 8;
/// The spacing of the first pings.
const PING_BURST_SPACING: MonoTime = MonoTime::from_millis(100);
/// The spacing of later pings: the offset drifts slowly.
const PING_INTERVAL: MonoTime = MonoTime::from_millis(15_000);
/// Pings awaiting an answer at most (older ones are forgotten).
const PINGS_PENDING: usize = 8;
/// Servers before µs stamps stamp pongs in whole milliseconds.
const SERVER_MILLIS_RESOLUTION_MICROS: u64 = 1000;
/// Calls the server told us about that are remembered, for sharing.
const KNOWN_CALLS: usize = 16;
/// The entries of one shared message take at most this many bytes (within the frame limit).
const SHARED_BATCH_BYTES: usize = 48 * 1024;
/// Entries waiting to be shared at most (more are dropped: a call that long offline is over).
const UNSHARED_KEPT: usize = 1024;

impl std::fmt::Debug for Driver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Driver")
            .field("user_id", &self.config.user_id)
            .field("link", &self.link)
            .field("status", &self.machine.status())
            .finish_non_exhaustive()
    }
}

/// A random call id, `c-` and twelve hex digits.
pub fn random_call_id() -> String {
    use std::fmt::Write as _;
    let mut bytes = [0_u8; 6];
    // Without randomness, fall back to the clock: ids only need to be unique per server.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().fold(String::from("c-"), |mut id, byte| {
        // Writing into a String cannot fail.
        let _ = write!(id, "{byte:02x}");
        id
    })
}

impl Driver {
    /// A driver that connects as soon as its owner looks at [`Driver::poll_output`] at `now`.
    pub fn new(config: DriverConfig, kit: CallKit, call_ids: CallIds, now: MonoTime) -> Self {
        let machine = CallMachine::new(config.user_id.clone());
        Self {
            config,
            kit,
            machine,
            policy: ReconnectPolicy::default(),
            link: Link::Down { retry_at: now },
            call_ids,
            media_call: None,
            media_view: None,
            failed_peers: BTreeSet::new(),
            ended_by: None,
            state: EngineState::default(),
            generation: 1,
            out: VecDeque::new(),
            stopped: false,
            clock_sync: ClockSync::new(),
            pings: VecDeque::new(),
            next_ping: None,
            pings_sent: 0,
            to_share: Vec::new(),
            server_calls: VecDeque::new(),
            unshared_calls: VecDeque::new(),
            quality: super::quality::QualityMonitor::new(),
        }
    }

    /// The local user.
    pub fn user_id(&self) -> &str {
        &self.config.user_id
    }

    /// The kit entries are recorded through.
    pub fn kit(&self) -> &CallKit {
        &self.kit
    }

    /// The state as the UI shows it.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// Grows whenever [`Driver::state`] changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether [`Output::Stop`] has gone out.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Driver::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        let retry = match self.link {
            Link::Down { retry_at } => Some(retry_at),
            _ => None,
        };
        let grace = self
            .policy
            .grace_deadline()
            .filter(|_| self.machine.call_id().is_some());
        // Pings are due only while online (an outage would otherwise keep waking the owner).
        let ping = self.next_ping.filter(|_| self.link == Link::Online);
        [self.machine.poll_timeout(), retry, grace, ping]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed to `now`: ringing timeouts, a reconnect attempt, the end of an outage's grace.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        self.machine.handle_timeout(now);
        self.ping_if_due(now);
        if let Link::Down { retry_at } = self.link
            && retry_at <= now
        {
            self.link = Link::Connecting;
            self.set_connection(ConnectionState::Connecting);
            self.out.push_back(Output::Connect);
        }
        if self.machine.call_id().is_some()
            && self
                .policy
                .grace_deadline()
                .is_some_and(|deadline| deadline <= now)
        {
            self.input(
                now,
                Input::Abort {
                    reason: crate::model::EndReason::EndByServer,
                },
            );
        }
        self.flush(now);
    }

    /// The connection is open: log in.
    pub fn handle_connected(&mut self, now: MonoTime) {
        self.link = Link::LoggingIn;
        self.out.push_back(Output::Send(ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: self.config.user_id.clone(),
            user_sig: self.config.user_sig.clone(),
        }));
        self.flush(now);
    }

    /// The connection failed or was lost: ringing calls end now, a connected call after the
    /// outage's grace (or once the server turns out to have forgotten it); retry with backoff.
    pub fn handle_lost(&mut self, now: MonoTime, reason: &str) {
        self.lost_for(now, reason, None);
    }

    /// Drops the signaling connection on purpose for `for_millis`: as a lost connection,
    /// retried once the cut is over.
    fn cut_signaling(&mut self, now: MonoTime, for_millis: u64) {
        if !matches!(self.link, Link::Online | Link::LoggingIn) {
            return;
        }
        self.out.push_back(Output::Disconnect);
        let reason = format!(
            "signaling cut on purpose for {:.1} s",
            for_millis as f64 / 1000.0
        );
        self.lost_for(
            now,
            &reason,
            Some(std::time::Duration::from_millis(for_millis)),
        );
    }

    /// Applies an impairment rule to the media links and records what they do now.
    fn impair(&mut self, now: MonoTime, rule: &crate::media::impair::LinkRule) {
        self.state.link.apply(rule);
        self.changed();
        self.out.push_back(Output::Impair(self.state.link.clone()));
        let directions = match &rule.peer {
            Some(peer) => self.state.link.for_peer(peer),
            None => self.state.link.every_peer,
        };
        let event = Event::ImpairmentChanged {
            user_id: rule.peer.clone().unwrap_or_else(|| EVERY_PEER.to_owned()),
            send: directions.send.to_string(),
            receive: directions.receive.to_string(),
            cut_ms: 0,
        };
        let call_id = self.media_call.clone();
        self.record(now, call_id.as_deref(), Source::Local, event);
    }

    /// Cuts the current call's media both ways for a while.
    fn cut_media(&mut self, now: MonoTime, for_millis: u64) {
        let Some(call_id) = self.media_call.clone() else {
            self.out
                .push_back(Output::Notice("no call's media to cut".to_owned()));
            return;
        };
        self.tell_media(MediaCommand::CutMedia { for_millis });
        let directions = self.state.link.every_peer;
        let event = Event::ImpairmentChanged {
            user_id: EVERY_PEER.to_owned(),
            send: directions.send.to_string(),
            receive: directions.receive.to_string(),
            cut_ms: for_millis,
        };
        self.record(now, Some(&call_id), Source::Local, event);
    }

    fn lost_for(&mut self, now: MonoTime, reason: &str, cut: Option<std::time::Duration>) {
        if matches!(self.link, Link::LoggedOut) || self.stopped {
            return;
        }
        let backoff = self.policy.lost(now);
        let wait = cut.unwrap_or(backoff);
        self.link = Link::Down {
            retry_at: now + wait,
        };
        if self.machine.call_id().is_some() && !self.machine.status().is_calling() {
            self.input(
                now,
                Input::Abort {
                    reason: crate::model::EndReason::EndByServer,
                },
            );
        }
        self.set_connection(ConnectionState::Offline {
            reason: reason.to_owned(),
            retry_in_millis: wait.as_millis() as u64,
        });
        self.flush(now);
    }

    /// The devices were listed.
    pub fn handle_devices(&mut self, devices: DeviceList) {
        self.state.devices = Some(devices);
        self.changed();
    }

    /// A command of the UI (or of a demo peer's script).
    pub fn handle_command(&mut self, now: MonoTime, command: EngineCommand) {
        match command {
            EngineCommand::Dial {
                callees,
                media,
                group,
                timeout_secs,
            } => {
                let call_id = (self.call_ids)();
                self.input(
                    now,
                    Input::Dial {
                        call_id,
                        callees,
                        media,
                        group,
                        timeout_secs,
                    },
                );
            }
            EngineCommand::Accept => self.input(now, Input::Accept),
            EngineCommand::Reject => self.input(now, Input::Reject),
            EngineCommand::DeclineBusy => self.input(now, Input::DeclineBusy),
            EngineCommand::Hangup => self.input(now, Input::Hangup),
            EngineCommand::SwitchMedia(media) => self.input(now, Input::SwitchMedia(media)),
            EngineCommand::Minimize => self.input(now, Input::Minimize),
            EngineCommand::Restore => self.input(now, Input::Restore),
            EngineCommand::InviteMore(users) => self.input(now, Input::InviteMore { users }),
            EngineCommand::LogIn => self.log_in_again(now),
            EngineCommand::SimulateLoginElsewhere => self.out.push_back(Output::LoginElsewhere),
            EngineCommand::SimulateMediaLoss => self.tell_media(MediaCommand::Vanish),
            EngineCommand::RefreshContacts => self.send(ClientMessage::Contacts),
            EngineCommand::SetCamera(on) => self.set_camera(now, on),
            EngineCommand::SetMicrophone(on) => self.set_microphone(now, on),
            EngineCommand::ListDevices => self.out.push_back(Output::ListDevices),
            EngineCommand::ChooseDevices(choices) => {
                self.out.push_back(Output::ChooseDevices(choices));
            }
            EngineCommand::SetPrivateRinging(private) => {
                self.out.push_back(Output::PrivateRinging(private));
            }
            EngineCommand::ShareTraces(on) => self.share_traces(on),
            EngineCommand::CutSignaling { for_millis } => self.cut_signaling(now, for_millis),
            EngineCommand::Impair(rule) => self.impair(now, &rule),
            EngineCommand::CutMedia { for_millis } => self.cut_media(now, for_millis),
            EngineCommand::Shutdown => self.shut_down(now),
        }
        self.flush(now);
    }

    /// A message from the server.
    pub fn handle_server(&mut self, now: MonoTime, message: ServerMessage) {
        self.note_server_call(&message);
        match message {
            ServerMessage::Welcome {
                contacts, calls, ..
            } => self.welcome(now, contacts, &calls),
            ServerMessage::Contacts { contacts } => {
                self.state.contacts = contacts;
                self.changed();
            }
            ServerMessage::Call(signal) => self.input(now, signal.into()),
            ServerMessage::Sdp {
                call_id,
                from,
                description,
            } => self.remote_description(now, &call_id, from, description),
            ServerMessage::Ice {
                call_id,
                from,
                candidate,
            } => {
                if self.media_call.as_deref() == Some(call_id.as_str()) {
                    self.tell_media(MediaCommand::RemoteCandidate { from, candidate });
                }
            }
            ServerMessage::Kicked { by } => {
                self.log_out(&format!("logged in elsewhere: {by}"));
                self.input(now, Input::KickedOut { by });
            }
            ServerMessage::UserSigExpired => {
                self.log_out("the UserSig expired");
                self.input(now, Input::UserSigExpired);
            }
            ServerMessage::Error {
                code,
                message,
                call_id,
                request,
            } if request.as_deref() == Some("share_trace") => {
                self.share_refused(now, code, &message, call_id);
            }
            ServerMessage::Error {
                code,
                message,
                call_id,
                ..
            } => self.server_error(now, CallError::new(code, message), call_id),
            ServerMessage::Pong {
                nonce,
                server_ms,
                server_us,
            } => {
                let stamp = server_us.map(|micros| (micros, 1)).or_else(|| {
                    server_ms.map(|millis| {
                        (millis.saturating_mul(1000), SERVER_MILLIS_RESOLUTION_MICROS)
                    })
                });
                self.pong(now, nonce, stamp);
            }
            ServerMessage::Trace {
                call_id,
                name,
                user_id,
                server_us,
            } => self.server_trace(now, &call_id, name, user_id, server_us),
            ServerMessage::SharedTrace {
                call_id,
                from,
                entries,
            } => self.shared_trace(now, &call_id, &from, &entries),
        }
        self.flush(now);
    }

    /// Remembers the call a server message is about: the server knows it, so its entries can
    /// be shared.
    fn note_server_call(&mut self, message: &ServerMessage) {
        let about = match message {
            ServerMessage::Call(signal) => Some(&signal.call_id),
            ServerMessage::Trace { call_id, .. }
            | ServerMessage::SharedTrace { call_id, .. }
            | ServerMessage::Sdp { call_id, .. } => Some(call_id),
            _ => None,
        };
        if let Some(call_id) = about
            && !self.server_calls.contains(call_id)
        {
            if self.server_calls.len() == KNOWN_CALLS {
                // The oldest, but never the call in progress.
                let current = self.machine.call_id();
                if let Some(oldest) = self
                    .server_calls
                    .iter()
                    .position(|known| Some(known.as_str()) != current)
                {
                    self.server_calls.remove(oldest);
                }
            }
            self.server_calls.push_back(call_id.clone());
        }
    }

    /// Our shared entries were refused: said once, the call itself is not touched, and the
    /// rest of that call's entries stay here.
    fn share_refused(
        &mut self,
        now: MonoTime,
        code: ErrorCode,
        message: &str,
        call_id: Option<String>,
    ) {
        if let Some(call_id) = call_id {
            if self.unshared_calls.len() == KNOWN_CALLS {
                self.unshared_calls.pop_front();
            }
            self.to_share
                .retain(|entry| entry.call_id.as_deref() != Some(call_id.as_str()));
            self.unshared_calls.push_back(call_id);
        }
        let message = format!("the server did not forward our shared entries: {message}");
        self.record(
            now,
            None,
            Source::Remote,
            Event::Error(CallError::new(code, message)),
        );
    }

    /// The server's record of a routing step: on our clock through the server's, never after
    /// its receipt; at its receipt while our offset is not known.
    fn server_trace(
        &mut self,
        now: MonoTime,
        call_id: &str,
        name: String,
        user_id: String,
        server_us: Option<u64>,
    ) {
        let placed = server_us.and_then(|micros| {
            crate::timeline::server_time_on_our_clock(
                micros,
                self.kit.clock(),
                self.state.clock_offset,
            )
        });
        let (at, error) = placed.map_or((now, None), |(at, error)| (at.min(now), Some(error)));
        self.kit.record_other(
            at,
            error,
            Some(call_id),
            Origin::Server,
            "server",
            Event::ServerEvent { name, user_id },
        );
    }

    /// A frame from the server that is not a message of the protocol.
    pub fn handle_malformed(&mut self, now: MonoTime, reason: &str) {
        let error = CallError::new(ErrorCode::InvalidParameter, reason);
        self.record(now, None, Source::Remote, Event::Error(error));
    }

    /// A report of the media engine; reports about a call that is over are stale and dropped.
    pub fn handle_media(&mut self, now: MonoTime, report: MediaReport) {
        if self.media_call.as_deref() != Some(report.call_id.as_str()) {
            return;
        }
        let call_id = Some(report.call_id.as_str());
        let event = match report.event {
            MediaEvent::LocalDescription { to, description } => {
                self.send(ClientMessage::Sdp {
                    call_id: report.call_id.clone(),
                    to,
                    description,
                });
                None
            }
            MediaEvent::PeerFailed { user_id, error } => {
                self.record(
                    now,
                    call_id,
                    Source::Engine,
                    Event::Error(error.to_call_error()),
                );
                self.peer_failed(now, user_id);
                None
            }
            MediaEvent::Connection { user_id, state } => {
                Some(Event::ConnectionStateChanged { user_id, state })
            }
            MediaEvent::Video { user_id, available } => {
                Some(Event::UserVideoAvailable { user_id, available })
            }
            MediaEvent::Audio { user_id, available } => {
                Some(Event::UserAudioAvailable { user_id, available })
            }
            MediaEvent::Stats(stats) => Some(Event::CallStats(stats)),
            MediaEvent::Quality { user_id, quality } => {
                Some(Event::UserNetworkQualityChanged { user_id, quality })
            }
            MediaEvent::Volumes(volumes) => Some(Event::UserVoiceVolumeChanged { volumes }),
            MediaEvent::VideoStep {
                from,
                to,
                reason,
                limitation,
                budget_kbps,
            } => Some(Event::LocalVideoAdapted {
                from,
                to,
                reason,
                limitation,
                budget_kbps,
            }),
            MediaEvent::Error(error) => Some(Event::Error(error.to_call_error())),
            MediaEvent::Dropped(count) => {
                self.out.push_back(Output::Notice(format!(
                    "{count} media reports were dropped: the engine fell behind"
                )));
                None
            }
        };
        if let Some(event) = event {
            let warnings = match &event {
                Event::CallStats(stats) => self.quality.stats(stats),
                Event::UserVideoAvailable { user_id, available } => {
                    self.quality.video(user_id, *available)
                }
                Event::LocalVideoAdapted {
                    to,
                    reason,
                    budget_kbps,
                    ..
                } => self
                    .quality
                    .video_step(&self.config.user_id, to, *reason, *budget_kbps),
                // Our level is in the sample only while our microphone is on.
                Event::UserVoiceVolumeChanged { volumes } => {
                    let me = &self.config.user_id;
                    let level = volumes
                        .get(me)
                        .copied()
                        .filter(|_| self.state.microphone_on);
                    self.quality.local_level(me, level)
                }
                _ => Vec::new(),
            };
            self.record(now, Some(&report.call_id), Source::Engine, event);
            for warning in warnings {
                self.record(now, Some(&report.call_id), Source::Engine, warning);
            }
        }
        self.flush(now);
    }

    fn input(&mut self, now: MonoTime, input: Input) {
        // A refused input is recorded by the core as `onError`; nothing else to do here.
        let _ = self.machine.handle_input(now, input);
    }

    fn record(&mut self, now: MonoTime, call_id: Option<&str>, source: Source, event: Event) {
        let entry = self.kit.dispatch(now, call_id, source, event);
        self.keep_for_sharing(entry);
    }

    /// Turns sharing our entries on or off (from the next entry on).
    fn share_traces(&mut self, on: bool) {
        if self.config.share_traces == on {
            return;
        }
        self.config.share_traces = on;
        if !on {
            self.to_share.clear();
        }
        // Sharing means hearing the others' entries too.
        if on && !self.config.server_traces {
            self.config.server_traces = true;
            if self.link == Link::Online {
                self.send(ClientMessage::Traces { on: true });
            }
        }
    }

    /// Keeps an entry of ours about a call for its other participants, while sharing is on:
    /// what happened, not the periodic reports (stats, volumes), which would crowd it out.
    fn keep_for_sharing(&mut self, entry: Arc<TimelineEntry>) {
        if !self.config.share_traces || entry.origin != Origin::Local || entry.kind().is_periodic()
        {
            return;
        }
        let Some(call_id) = &entry.call_id else {
            return;
        };
        if self.unshared_calls.contains(call_id) {
            return;
        }
        if self.to_share.len() == UNSHARED_KEPT {
            self.to_share.remove(0);
        }
        self.to_share.push(entry);
    }

    /// Sends the entries kept for sharing, per call, after the actions that made them (so the
    /// server knows the call), while online; each message within the server's caps.
    fn send_shared(&mut self) {
        if self.link != Link::Online {
            // Entries of an outage are not kept: the server has forgotten the call by now.
            self.to_share.clear();
            return;
        }
        if self.to_share.is_empty() {
            return;
        }
        let offset = self.state.clock_offset;
        let mut batch: Vec<serde_json::Value> = Vec::new();
        let mut batch_call: Option<String> = None;
        let mut batch_bytes = 0;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.to_share)
            .into_iter()
            .partition(|entry| {
                entry
                    .call_id
                    .as_ref()
                    .is_some_and(|call_id| self.server_calls.contains(call_id))
            });
        // A call the server has not mentioned yet is still being placed (its answer is on its
        // way); any other it never knew (the invitation failed), so nobody can hear of it.
        let current = self.machine.call_id();
        self.to_share = waiting
            .into_iter()
            .filter(|entry| entry.call_id.as_deref() == current)
            .collect();
        for entry in ready {
            let json = crate::timeline::shared_json(&entry, offset);
            let bytes = json.to_string().len();
            if bytes > MAX_SHARED_ENTRY_BYTES {
                // Too large for the server to forward (a long error message): ours alone.
                continue;
            }
            let full =
                batch.len() == MAX_SHARED_ENTRIES || batch_bytes + bytes > SHARED_BATCH_BYTES;
            if batch_call != entry.call_id || full {
                if let Some(call_id) = batch_call.take() {
                    let entries = std::mem::take(&mut batch);
                    self.send(ClientMessage::ShareTrace { call_id, entries });
                }
                batch_call.clone_from(&entry.call_id);
                batch_bytes = 0;
            }
            batch_bytes += bytes;
            batch.push(json);
        }
        if let Some(call_id) = batch_call {
            self.send(ClientMessage::ShareTrace {
                call_id,
                entries: batch,
            });
        }
    }

    /// Another participant's entries of a call: placed on our clock and recorded as theirs.
    fn shared_trace(
        &mut self,
        now: MonoTime,
        call_id: &str,
        from: &str,
        values: &[serde_json::Value],
    ) {
        if values.is_empty() {
            return;
        }
        let ours = crate::timeline::local_entries(self.kit.timeline(), call_id);
        let placed = crate::timeline::place_shared(
            values,
            from,
            call_id,
            self.kit.clock(),
            self.state.clock_offset,
            now,
            &ours,
        );
        for entry in placed.entries {
            self.kit.record_shared(entry);
        }
        if placed.unreadable > 0 {
            let error = CallError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "{} of the entries {from} shared are not timeline entries; left out",
                    placed.unreadable
                ),
            );
            self.record(now, Some(call_id), Source::Remote, Event::Error(error));
        }
    }

    fn send(&mut self, message: ClientMessage) {
        self.out.push_back(Output::Send(message));
    }

    fn tell_media(&mut self, command: MediaCommand) {
        if self.media_call.is_some() {
            self.out.push_back(Output::Media(command));
        }
    }

    fn changed(&mut self) {
        self.generation += 1;
    }

    fn set_connection(&mut self, connection: ConnectionState) {
        if self.state.connection != connection {
            self.state.connection = connection;
            self.changed();
        }
    }

    /// Sends a ping when one is due, and plans the next.
    fn ping_if_due(&mut self, now: MonoTime) {
        if self.link != Link::Online || self.next_ping.is_none_or(|due| due > now) {
            return;
        }
        let nonce = u64::from(self.pings_sent) + 1;
        if self.pings.len() == PINGS_PENDING {
            self.pings.pop_front();
        }
        self.pings.push_back((nonce, now));
        self.out
            .push_back(Output::Send(ClientMessage::Ping { nonce }));
        self.pings_sent = self.pings_sent.saturating_add(1);
        let spacing = if self.pings_sent < PING_BURST {
            PING_BURST_SPACING
        } else {
            PING_INTERVAL
        };
        self.next_ping = Some(MonoTime::from_micros(now.as_micros() + spacing.as_micros()));
    }

    /// A pong: one round trip for the clock offset. `stamp`: the server's time in µs, and
    /// the resolution it was stamped with.
    fn pong(&mut self, now: MonoTime, nonce: u64, stamp: Option<(u64, u64)>) {
        let Some(position) = self.pings.iter().position(|(sent, _)| *sent == nonce) else {
            return;
        };
        let Some((_, sent)) = self.pings.remove(position) else {
            return;
        };
        let Some((server_micros, resolution_micros)) = stamp else {
            return;
        };
        let clock = self.kit.clock();
        self.clock_sync.add(
            clock.wall_micros(sent),
            server_micros,
            clock.wall_micros(now),
            resolution_micros,
        );
        let estimate = self.clock_sync.estimate();
        if estimate != self.state.clock_offset {
            self.state.clock_offset = estimate;
            self.changed();
        }
    }

    fn welcome(
        &mut self,
        now: MonoTime,
        contacts: Vec<crate::signaling::Contact>,
        held: &[String],
    ) {
        if self.config.server_traces {
            self.out
                .push_back(Output::Send(ClientMessage::Traces { on: true }));
        }
        self.pings.clear();
        self.pings_sent = 0;
        self.next_ping = Some(now);
        self.policy.online();
        self.link = Link::Online;
        self.set_connection(ConnectionState::Online);
        self.state.contacts = contacts;
        self.changed();
        let ours = self.machine.call_id().map(str::to_owned);
        // Calls the server held for this user that this client is not in (it logged in
        // elsewhere meanwhile): left, so nobody waits for us in them.
        for call_id in held
            .iter()
            .filter(|held| Some(held.as_str()) != ours.as_deref())
        {
            self.send(ClientMessage::Call(Action::Hangup {
                call_id: call_id.clone(),
            }));
        }
        if !self.machine.is_logged_in() {
            self.input(now, Input::LoggedIn);
        } else if let Some(call_id) = ours
            && !held.contains(&call_id)
        {
            // Back after an outage: the server has forgotten the call, so it cannot go on.
            self.input(
                now,
                Input::Abort {
                    reason: crate::model::EndReason::EndByServer,
                },
            );
        }
    }

    fn log_out(&mut self, reason: &str) {
        self.link = Link::LoggedOut;
        self.out.push_back(Output::Disconnect);
        self.set_connection(ConnectionState::LoggedOut {
            reason: reason.to_owned(),
        });
    }

    fn log_in_again(&mut self, now: MonoTime) {
        if self.link == Link::LoggedOut {
            self.policy.online();
            self.link = Link::Down { retry_at: now };
            self.handle_timeout(now);
        }
    }

    /// Whether `call_id` is a call the server told us of that is over here: messages about it
    /// may still cross ours on the way (with several nodes, one more hop apart).
    fn is_past_call(&self, call_id: &str) -> bool {
        self.machine.call_id() != Some(call_id)
            && self.server_calls.iter().any(|known| known == call_id)
    }

    fn server_error(&mut self, now: MonoTime, error: CallError, call_id: Option<String>) {
        if let Some(past) = call_id.as_deref()
            && self.is_past_call(past)
            && matches!(
                error.code,
                ErrorCode::RequestRefused | ErrorCode::PermissionDenied
            )
        {
            // The answer to a request sent before we knew the call was over: nothing the app
            // did wrong, so no `onError`.
            return;
        }
        let placing = self.machine.status() == CallStatus::Idle
            && call_id.is_some()
            && self.machine.call_id() == call_id.as_deref();
        if placing && let Some(call_id) = call_id {
            self.input(now, Input::InviteFailed { call_id, error });
            return;
        }
        if error.code == ErrorCode::UserSigInvalid && self.link != Link::Online {
            self.log_out(&error.message);
        }
        self.record(now, call_id.as_deref(), Source::Remote, Event::Error(error));
    }

    fn remote_description(
        &mut self,
        now: MonoTime,
        call_id: &str,
        from: String,
        description: String,
    ) {
        if self.media_call.as_deref() == Some(call_id) {
            self.tell_media(MediaCommand::RemoteDescription { from, description });
        } else if !self.is_past_call(call_id) {
            // (For a call over here, it was sent before its sender knew: dropped quietly.)
            let error = CallError::new(
                ErrorCode::InvalidParameter,
                format!("a session description from {from} for a call without media here"),
            );
            self.record(now, Some(call_id), Source::Remote, Event::Error(error));
        }
    }

    /// A participant's media failed. A call that has not connected is never ended by media
    /// (its answer is not even made while it rings); a connected call ends with `media-failed`
    /// once no participant's media is left.
    fn peer_failed(&mut self, now: MonoTime, user_id: String) {
        self.failed_peers.insert(user_id);
        if !self.machine.status().is_calling() {
            return;
        }
        let joined: Vec<String> = self
            .machine
            .participants()
            .into_iter()
            .filter(|(_, state)| *state == MemberState::Joined)
            .map(|(user, _)| user)
            .collect();
        if !joined.is_empty() && joined.iter().all(|user| self.failed_peers.contains(user)) {
            // The server still holds the call: the others hear of it through the hang-up.
            self.input(
                now,
                Input::Abort {
                    reason: crate::model::EndReason::MediaFailed,
                },
            );
        }
    }

    fn set_camera(&mut self, now: MonoTime, on: bool) {
        let Some(call_id) = self.media_call.clone() else {
            return;
        };
        self.state.camera_on = on;
        self.changed();
        self.tell_media(MediaCommand::SetCamera(on));
        let video = self.machine.media() == Some(MediaType::Video);
        let event = Event::UserVideoAvailable {
            user_id: self.config.user_id.clone(),
            available: on && video,
        };
        self.record(now, Some(&call_id), Source::Local, event);
    }

    fn set_microphone(&mut self, now: MonoTime, on: bool) {
        let Some(call_id) = self.media_call.clone() else {
            return;
        };
        self.state.microphone_on = on;
        self.changed();
        self.tell_media(MediaCommand::SetMicrophone(on));
        let event = Event::UserAudioAvailable {
            user_id: self.config.user_id.clone(),
            available: on,
        };
        self.record(now, Some(&call_id), Source::Local, event);
        if !on {
            // A muted microphone is silent on purpose.
            let me = self.config.user_id.clone();
            for warning in self.quality.local_level(&me, None) {
                self.record(now, Some(&call_id), Source::Engine, warning);
            }
        }
    }

    fn shut_down(&mut self, now: MonoTime) {
        if self.stopped {
            return;
        }
        if self.machine.status() != CallStatus::Idle {
            self.input(now, Input::Hangup);
        }
        self.flush(now);
        self.stopped = true;
        self.out.push_back(Output::Stop);
    }

    /// Sends the core's actions, records its events, brings the media in line, and updates
    /// the state.
    fn flush(&mut self, now: MonoTime) {
        loop {
            let mut busy = false;
            while let Some(action) = self.machine.poll_action() {
                busy = true;
                self.send_action(now, action);
            }
            while let Some(emitted) = self.machine.poll_event() {
                busy = true;
                self.observe(&emitted.event);
                let entry = self.kit.deliver(emitted);
                self.keep_for_sharing(entry);
            }
            if !busy {
                break;
            }
        }
        self.send_shared();
        self.sync_media();
        self.update_snapshot();
    }

    /// Takes what the UI shows after a call from the events that end it.
    fn observe(&mut self, event: &Event) {
        match event {
            Event::CallEnd { user_id, .. } | Event::CallNotConnected { user_id, .. } => {
                self.ended_by = Some(user_id.clone());
            }
            Event::AfterCalling(summary) => {
                self.state.last_outcome = Some(CallOutcome {
                    call_id: summary.call_id.clone(),
                    reason: summary.reason,
                    user_id: self.ended_by.take().unwrap_or_default(),
                    duration_millis: summary.duration_millis,
                });
                self.changed();
            }
            _ => {}
        }
    }

    fn send_action(&mut self, now: MonoTime, action: Action) {
        if self.link == Link::Online {
            self.send(ClientMessage::Call(action));
            return;
        }
        let error = CallError::new(
            ErrorCode::SignalingSendFailed,
            "signaling is not connected; the message was not sent",
        );
        match action {
            Action::Invite { call_id, .. } => {
                self.input(now, Input::InviteFailed { call_id, error });
            }
            other => {
                let call_id = other.call_id().to_owned();
                self.record(now, Some(&call_id), Source::Local, Event::Error(error));
            }
        }
    }

    /// Opens, updates or closes the call's media to match the call core. Camera and
    /// microphone start on in every call.
    fn sync_media(&mut self) {
        if !self.config.media {
            return;
        }
        let status = self.machine.status();
        let call_id = self
            .machine
            .call_id()
            .filter(|_| status != CallStatus::Idle)
            .map(str::to_owned);
        if self.media_call.is_some() && self.media_call != call_id {
            self.media_call = None;
            self.quality.reset();
            self.media_view = None;
            self.failed_peers.clear();
            self.out.push_back(Output::MediaClose);
        }
        let Some(call_id) = call_id else {
            return;
        };
        if self.media_call.is_none() {
            self.media_call = Some(call_id.clone());
            self.out.push_back(Output::MediaOpen { call_id });
            self.state.camera_on = true;
            self.state.microphone_on = true;
            self.changed();
        }
        let view = CallView {
            caller: self.machine.caller().unwrap_or_default().to_owned(),
            local_joined: self.machine.role() == Some(Role::Caller) || status.is_calling(),
            members: self
                .machine
                .participants()
                .into_iter()
                .map(|(user, state)| (user, state == MemberState::Joined))
                .collect(),
            media: self.machine.media().unwrap_or(MediaType::Audio),
        };
        if self.media_view.as_ref() != Some(&view) {
            self.media_view = Some(view.clone());
            self.out.push_back(Output::Media(MediaCommand::Sync(view)));
        }
    }

    fn update_snapshot(&mut self) {
        let snapshot = CallSnapshot {
            status: Some(self.machine.status()),
            call_id: self.machine.call_id().map(str::to_owned),
            role: self.machine.role(),
            caller: self.machine.caller().map(str::to_owned),
            media: self.machine.media(),
            view: self.machine.view_mode(),
            participants: self.machine.participants(),
        };
        if snapshot != self.state.call {
            self.state.call = snapshot;
            self.changed();
        }
    }
}
