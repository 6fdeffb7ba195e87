//! The signaling client: one async task per logged-in user that feeds the call core from the
//! server, sends its actions back, reconnects with backoff, and records every event.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::call::{
    Action, CallError, CallMachine, CallStatus, EndReason, ErrorCode, Input, MediaType, Role,
    Signal,
};
use crate::callbacks::{CallKit, Event};
use crate::media::{MediaConfig, MediaNote, MediaSession, Ringtone, SessionView, list_devices};
use crate::signaling::{ClientMessage, PROTOCOL_VERSION, ServerMessage, decode_server, encode};
use crate::timeline::Source;

use super::messages::{CallSnapshot, ConnectionState, EngineCommand, EngineMsg};
use super::policy::PeerPolicy;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where the engine's reports go (the UI's channel, or nowhere for a demo peer).
pub type Publish = Arc<dyn Fn(EngineMsg) + Send + Sync>;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A connected call survives a signaling outage this long at most.
const OUTAGE_GRACE: Duration = Duration::from_secs(10);

/// How a client logs in.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port` of the signaling server.
    pub server_url: String,
    /// Who logs in.
    pub user_id: String,
    /// Its UserSig.
    pub user_sig: String,
    /// For a demo peer, how it answers.
    pub policy: Option<PeerPolicy>,
    /// How calls carry audio and video; `None` for signaling only.
    pub media: Option<MediaConfig>,
}

enum Wake {
    Command(Option<EngineCommand>),
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Timer,
    Reconnect,
    Policy,
    Media(Option<MediaNote>),
}

/// Media-engine notes waiting for the client: a call's SDP messages and failures.
const MEDIA_NOTES: usize = 256;

/// One user's signaling session and call core.
pub struct Client {
    config: ClientConfig,
    kit: CallKit,
    machine: CallMachine,
    publish: Publish,
    socket: Option<Socket>,
    logged_out: bool,
    backoff: Duration,
    reconnect_at: Option<Instant>,
    outage_since: Option<Instant>,
    planned: Option<(Instant, EngineCommand)>,
    snapshot: CallSnapshot,
    media: Option<MediaSession>,
    media_notes: (mpsc::Sender<MediaNote>, mpsc::Receiver<MediaNote>),
    camera_on: bool,
    microphone_on: bool,
    ringing: Option<Ringtone>,
}

/// Runs a client until it is told to shut down or its command channel closes.
pub async fn run_client(
    config: ClientConfig,
    kit: CallKit,
    commands: mpsc::Receiver<EngineCommand>,
    publish: Publish,
) {
    let machine = CallMachine::new(config.user_id.clone());
    let mut client = Client {
        config,
        kit,
        machine,
        publish,
        socket: None,
        logged_out: false,
        backoff: FIRST_BACKOFF,
        reconnect_at: Some(Instant::now()),
        outage_since: None,
        planned: None,
        snapshot: CallSnapshot::default(),
        media: None,
        media_notes: mpsc::channel(MEDIA_NOTES),
        camera_on: true,
        microphone_on: true,
        ringing: None,
    };
    client.run(commands).await;
}

async fn next_frame(
    socket: Option<&mut Socket>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn random_call_id() -> String {
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

impl Client {
    async fn run(&mut self, mut commands: mpsc::Receiver<EngineCommand>) {
        loop {
            let timer = self
                .machine
                .poll_timeout()
                .map(|at| Instant::from_std(self.kit.clock().instant_of(at)));
            let reconnect = if self.socket.is_none() {
                self.reconnect_at
            } else {
                None
            };
            let planned = self.planned.as_ref().map(|(at, _)| *at);
            let wake = tokio::select! {
                command = commands.recv() => Wake::Command(command),
                frame = next_frame(self.socket.as_mut()) => Wake::Frame(frame),
                () = sleep_until(timer) => Wake::Timer,
                () = sleep_until(reconnect) => Wake::Reconnect,
                () = sleep_until(planned) => Wake::Policy,
                note = self.media_notes.1.recv() => Wake::Media(note),
            };
            match wake {
                Wake::Command(None | Some(EngineCommand::Shutdown)) => {
                    self.shut_down().await;
                    return;
                }
                Wake::Command(Some(command)) => self.command(command).await,
                Wake::Frame(Some(Ok(Message::Text(text)))) => self.frame(text.as_str()).await,
                Wake::Frame(Some(Ok(_))) | Wake::Media(None) => {}
                Wake::Frame(Some(Err(_)) | None) => {
                    self.lost_connection("the server closed the connection");
                }
                Wake::Timer => {
                    let now = self.kit.clock().now();
                    self.machine.handle_timeout(now);
                }
                Wake::Reconnect => self.connect().await,
                Wake::Policy => {
                    if let Some((_, command)) = self.planned.take() {
                        self.command(command).await;
                    }
                }
                Wake::Media(Some(note)) => self.media_note(note).await,
            }
            self.flush().await;
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.kit.clock().now();
        // A refused input is recorded by the core as `onError`; nothing else to do here.
        let _ = self.machine.handle_input(now, input);
    }

    fn signal(&mut self, call_id: String, signal: Signal) {
        self.input(Input::Signal { call_id, signal });
    }

    fn record_error(&self, error: CallError, call_id: Option<&str>) {
        let now = self.kit.clock().now();
        self.kit
            .dispatch(now, call_id, Source::Remote, Event::Error(error));
    }

    async fn command(&mut self, command: EngineCommand) {
        match command {
            EngineCommand::Dial {
                callees,
                media,
                group,
                timeout_secs,
            } => self.input(Input::Dial {
                call_id: random_call_id(),
                callees,
                media,
                group,
                timeout_secs,
            }),
            EngineCommand::Accept => self.input(Input::Accept),
            EngineCommand::Reject => self.input(Input::Reject),
            EngineCommand::Hangup => self.input(Input::Hangup),
            EngineCommand::SwitchMedia(media) => self.input(Input::SwitchMedia(media)),
            EngineCommand::Minimize => self.input(Input::Minimize),
            EngineCommand::Restore => self.input(Input::Restore),
            EngineCommand::InviteMore(users) => self.input(Input::InviteMore { users }),
            EngineCommand::SimulateLoginElsewhere => self.log_in_elsewhere(),
            EngineCommand::RefreshContacts => {
                self.send(&ClientMessage::Contacts).await;
            }
            EngineCommand::SimulateMediaLoss => {
                if let Some(session) = &self.media {
                    session.simulate_media_loss();
                }
            }
            EngineCommand::ListDevices => {
                let publish = Arc::clone(&self.publish);
                // Asking the system for devices may block; it runs off the client's task.
                tokio::task::spawn_blocking(move || {
                    publish(EngineMsg::Devices(list_devices()));
                });
            }
            EngineCommand::ChooseDevices(choices) => {
                if let Some(media) = &mut self.config.media {
                    media.camera = choices.camera;
                    media.microphone = choices.microphone;
                    media.speaker = choices.speaker;
                }
            }
            EngineCommand::SetCamera(on) => {
                self.camera_on = on;
                if let Some(session) = &mut self.media {
                    session.set_camera(on, self.machine.media().unwrap_or(MediaType::Audio));
                }
            }
            EngineCommand::SetMicrophone(on) => {
                self.microphone_on = on;
                if let Some(session) = &mut self.media {
                    session.set_microphone(on);
                }
            }
            EngineCommand::Shutdown => {}
        }
    }

    /// Logs the same user in from a second connection, as another device would.
    fn log_in_elsewhere(&self) {
        let url = self.config.server_url.clone();
        let login = ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: self.config.user_id.clone(),
            user_sig: self.config.user_sig.clone(),
        };
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
                let _ = socket.send(Message::text(encode(&login))).await;
                // Stay long enough for the server to kick the first session.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let _ = socket.close(None).await;
            }
        });
    }

    async fn connect(&mut self) {
        self.reconnect_at = None;
        (self.publish)(EngineMsg::Connection(ConnectionState::Connecting));
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async(self.config.server_url.as_str()),
        )
        .await;
        match attempt {
            Ok(Ok((socket, _))) => {
                self.socket = Some(socket);
                let login = ClientMessage::Login {
                    version: PROTOCOL_VERSION,
                    user_id: self.config.user_id.clone(),
                    user_sig: self.config.user_sig.clone(),
                };
                self.send(&login).await;
            }
            Ok(Err(error)) => self.lost_connection(&error.to_string()),
            Err(_) => self.lost_connection("the server did not answer in time"),
        }
    }

    /// The connection is gone: ringing calls end now, connected ones after a grace period
    /// or once the server turns out to have lost them; the engine retries with backoff.
    fn lost_connection(&mut self, reason: &str) {
        self.socket = None;
        if self.logged_out {
            return;
        }
        let now = Instant::now();
        let outage_since = *self.outage_since.get_or_insert(now);
        let status = self.machine.status();
        let call_lost = self.machine.call_id().is_some()
            && (!status.is_calling() || now.duration_since(outage_since) >= OUTAGE_GRACE);
        if call_lost {
            self.input(Input::Abort {
                reason: EndReason::EndByServer,
            });
        }
        self.reconnect_at = Some(now + self.backoff);
        (self.publish)(EngineMsg::Connection(ConnectionState::Offline {
            reason: reason.to_owned(),
            retry_in_millis: self.backoff.as_millis() as u64,
        }));
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    async fn send(&mut self, message: &ClientMessage) -> bool {
        let Some(socket) = &mut self.socket else {
            return false;
        };
        if socket.send(Message::text(encode(message))).await.is_ok() {
            return true;
        }
        self.lost_connection("sending to the server failed");
        false
    }

    async fn shut_down(&mut self) {
        if self.machine.status() != CallStatus::Idle {
            self.input(Input::Hangup);
            self.flush().await;
        }
        if let Some(session) = self.media.take() {
            session.close();
        }
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).await;
        }
    }

    /// Sends the core's actions, records its events, and tells the UI what changed.
    async fn flush(&mut self) {
        loop {
            let mut busy = false;
            while let Some(action) = self.machine.poll_action() {
                busy = true;
                self.send_action(action).await;
            }
            if !self.kit.drain(&mut self.machine).is_empty() {
                busy = true;
            }
            if !busy {
                break;
            }
        }
        self.sync_media();
        self.publish_snapshot();
    }

    /// Starts, updates or ends the call's media to match the call core.
    fn sync_media(&mut self) {
        let Some(media_config) = &self.config.media else {
            return;
        };
        let status = self.machine.status();
        let call_id = self
            .machine
            .call_id()
            .filter(|_| status != CallStatus::Idle);
        let current = self.media.as_ref().map(MediaSession::call_id);
        if current.is_some()
            && current != call_id
            && let Some(session) = self.media.take()
        {
            session.close();
        }
        let Some(call_id) = call_id else {
            return;
        };
        let media = self.machine.media().unwrap_or(MediaType::Audio);
        let session = self.media.get_or_insert_with(|| {
            let mut session = MediaSession::new(
                call_id,
                self.kit.clone(),
                media_config.clone(),
                self.media_notes.0.clone(),
            );
            // A muted microphone or a camera turned off stays so in the next call.
            if !self.microphone_on {
                session.set_microphone(false);
            }
            if !self.camera_on {
                session.set_camera(false, media);
            }
            session
        });
        let participants = self.machine.participants();
        session.sync(SessionView {
            caller: self.machine.caller().unwrap_or_default(),
            joined: self.machine.role() == Some(Role::Caller) || status.is_calling(),
            members: &participants,
            media,
        });
    }

    async fn media_note(&mut self, note: MediaNote) {
        match note {
            MediaNote::Send(message) => {
                self.send(&message).await;
            }
            MediaNote::PeerFailed {
                call_id,
                user_id,
                reason,
            } => {
                let Some(session) = &mut self.media else {
                    return;
                };
                if session.call_id() != call_id {
                    return;
                }
                let call_over = session.peer_failed(&user_id);
                self.record_error(
                    CallError::new(
                        ErrorCode::InitFailed,
                        format!("media with {user_id}: {reason}"),
                    ),
                    Some(&call_id),
                );
                if call_over {
                    self.input(Input::Abort {
                        reason: EndReason::MediaFailed,
                    });
                }
                self.flush().await;
            }
        }
    }

    async fn send_action(&mut self, action: Action) {
        let message = client_message(action.clone());
        if self.send(&message).await {
            return;
        }
        let error = CallError::new(
            ErrorCode::SignalingSendFailed,
            "signaling is not connected; the message was not sent",
        );
        match action {
            Action::Invite { call_id, .. } => {
                self.signal(call_id, Signal::InviteFailed { error });
            }
            other => {
                let call_id = action_call_id(&other).to_owned();
                self.record_error(error, Some(&call_id));
            }
        }
    }

    fn publish_snapshot(&mut self) {
        let snapshot = CallSnapshot {
            status: Some(self.machine.status()),
            call_id: self.machine.call_id().map(str::to_owned),
            role: self.machine.role(),
            caller: self.machine.caller().map(str::to_owned),
            media: self.machine.media(),
            view: self.machine.view_mode(),
            participants: self.machine.participants(),
        };
        if snapshot != self.snapshot {
            self.plan_policy(&snapshot);
            self.ring(&snapshot);
            self.snapshot = snapshot.clone();
            (self.publish)(EngineMsg::Call(snapshot));
        }
    }

    /// Rings while an invitation is waiting, if this client has a ringtone (and a speaker).
    fn ring(&mut self, snapshot: &CallSnapshot) {
        let ringing = snapshot.status == Some(CallStatus::BeInvited);
        match &self.config.media {
            Some(media) if media.ringtone && ringing && self.ringing.is_none() => {
                // Without a speaker the invitation is silent; the banner still shows it.
                self.ringing = Ringtone::start(&media.speaker).ok();
            }
            _ if !ringing => self.ringing = None,
            _ => {}
        }
    }

    /// A demo peer answers an invitation after its delay.
    fn plan_policy(&mut self, snapshot: &CallSnapshot) {
        let ringing_now = snapshot.status == Some(CallStatus::BeInvited)
            && self.snapshot.status != Some(CallStatus::BeInvited);
        if !ringing_now {
            return;
        }
        self.planned = match self.config.policy {
            Some(PeerPolicy::Accept { after }) => {
                Some((Instant::now() + after, EngineCommand::Accept))
            }
            Some(PeerPolicy::Decline { after }) => {
                Some((Instant::now() + after, EngineCommand::Reject))
            }
            _ => None,
        };
    }

    async fn frame(&mut self, text: &str) {
        let message = match decode_server(text) {
            Ok(message) => message,
            Err(error) => {
                self.record_error(error.to_call_error(), None);
                return;
            }
        };
        match message {
            ServerMessage::Welcome { contacts, .. } => {
                self.welcome();
                (self.publish)(EngineMsg::Contacts(contacts));
            }
            ServerMessage::Contacts { contacts } => (self.publish)(EngineMsg::Contacts(contacts)),
            ServerMessage::Invited { call_id, .. }
                if self.config.policy == Some(PeerPolicy::Busy) =>
            {
                self.send(&ClientMessage::LineBusy { call_id }).await;
            }
            ServerMessage::Kicked { by } => {
                self.log_out(&format!("logged in elsewhere: {by}"));
                self.input(Input::KickedOut { by });
            }
            ServerMessage::UserSigExpired => {
                self.log_out("the UserSig expired");
                self.input(Input::UserSigExpired);
            }
            ServerMessage::Error {
                code,
                message,
                call_id,
            } => self.server_error(CallError::new(code, message), call_id),
            ServerMessage::Sdp {
                call_id,
                from,
                description,
            } => match &mut self.media {
                Some(session) if session.call_id() == call_id => {
                    session.remote_description(&from, description);
                }
                _ => self.record_error(
                    CallError::new(
                        ErrorCode::InvalidParameter,
                        format!("a session description from {from} for a call without media here"),
                    ),
                    Some(&call_id),
                ),
            },
            ServerMessage::Ice {
                call_id,
                from,
                candidate,
            } => {
                if let Some(session) = &mut self.media
                    && session.call_id() == call_id
                {
                    session.remote_candidate(&from, candidate);
                }
            }
            ServerMessage::Pong { .. } => {}
            other => {
                if let Some((call_id, signal)) = signal_of(other) {
                    self.signal(call_id, signal);
                }
            }
        }
    }

    fn welcome(&mut self) {
        self.backoff = FIRST_BACKOFF;
        self.outage_since = None;
        (self.publish)(EngineMsg::Connection(ConnectionState::Online));
        if !self.machine.is_logged_in() {
            self.input(Input::LoggedIn);
        } else if self.machine.call_id().is_some() {
            // Back after an outage: the server has forgotten the call, so it cannot go on.
            self.input(Input::Abort {
                reason: EndReason::EndByServer,
            });
        }
    }

    fn log_out(&mut self, reason: &str) {
        self.logged_out = true;
        self.socket = None;
        self.reconnect_at = None;
        (self.publish)(EngineMsg::Connection(ConnectionState::LoggedOut {
            reason: reason.to_owned(),
        }));
    }

    fn server_error(&mut self, error: CallError, call_id: Option<String>) {
        let placing = self.machine.status() == CallStatus::Idle
            && call_id.is_some()
            && self.machine.call_id() == call_id.as_deref();
        if placing && let Some(call_id) = call_id {
            self.signal(call_id, Signal::InviteFailed { error });
            return;
        }
        if error.code == ErrorCode::UserSigInvalid {
            self.log_out(&error.message);
        }
        self.record_error(error, call_id.as_deref());
    }
}

/// The wire message for an action of the call core.
fn client_message(action: Action) -> ClientMessage {
    match action {
        Action::Invite {
            call_id,
            callees,
            media,
            group,
            timeout_secs,
        } => ClientMessage::Invite {
            call_id,
            callees,
            media,
            group,
            timeout_secs,
        },
        Action::Cancel { call_id } => ClientMessage::Cancel { call_id },
        Action::Accept { call_id } => ClientMessage::Accept { call_id },
        Action::Reject { call_id } => ClientMessage::Reject { call_id },
        Action::LineBusy { call_id } => ClientMessage::LineBusy { call_id },
        Action::Hangup { call_id } => ClientMessage::Hangup { call_id },
        Action::SwitchMedia { call_id, media } => ClientMessage::SwitchMedia { call_id, media },
        Action::InviteMore { call_id, users } => ClientMessage::InviteMore { call_id, users },
    }
}

fn action_call_id(action: &Action) -> &str {
    match action {
        Action::Invite { call_id, .. }
        | Action::Cancel { call_id }
        | Action::Accept { call_id }
        | Action::Reject { call_id }
        | Action::LineBusy { call_id }
        | Action::Hangup { call_id }
        | Action::SwitchMedia { call_id, .. }
        | Action::InviteMore { call_id, .. } => call_id,
    }
}

/// The call-core signal a server message carries, if it is about a call.
fn signal_of(message: ServerMessage) -> Option<(String, Signal)> {
    let pair = match message {
        ServerMessage::InviteDelivered { call_id, offline } => {
            (call_id, Signal::InviteDelivered { offline })
        }
        ServerMessage::Invited {
            call_id,
            caller,
            callees,
            joined,
            media,
            group,
            timeout_secs,
        } => (
            call_id,
            Signal::Invited {
                caller,
                callees,
                joined,
                media,
                group,
                timeout_secs,
            },
        ),
        ServerMessage::Accepted { call_id, user_id } => (call_id, Signal::Accepted { user_id }),
        ServerMessage::Rejected { call_id, user_id } => (call_id, Signal::Rejected { user_id }),
        ServerMessage::LineBusy { call_id, user_id } => (call_id, Signal::LineBusy { user_id }),
        ServerMessage::NoResponse { call_id, user_id } => (call_id, Signal::NoResponse { user_id }),
        ServerMessage::Canceled { call_id, user_id } => (call_id, Signal::Canceled { user_id }),
        ServerMessage::HungUp { call_id, user_id } => (call_id, Signal::HungUp { user_id }),
        ServerMessage::MembersInvited { call_id, users } => {
            (call_id, Signal::MembersInvited { users })
        }
        ServerMessage::MediaSwitched {
            call_id,
            user_id,
            media,
        } => (call_id, Signal::MediaSwitched { user_id, media }),
        ServerMessage::CallEnded { call_id } => (call_id, Signal::EndedByServer),
        _ => return None,
    };
    Some(pair)
}
