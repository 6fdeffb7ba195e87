//! Real sockets on 127.0.0.1: a signaling server, clients running the real engine task (with
//! or without media), raw protocol clients, and waits that wake when a client reports. Every
//! client's timeline goes through the contract checker when the client is dropped.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use callscope::engine::{
    ClientConfig, ConnectionState, EngineCommand, EngineMsg, Reports, Script, StateSlot,
    run_client, sign_user_sig,
};
use callscope::event::{CallbackKind, Event};
use callscope::kit::CallKit;
use callscope::media::{FrameSlots, MediaConfig};
use callscope::model::{CallStatus, EndReason, ErrorCode, MediaType};
use callscope::signaling::usersig::Keyring;
use callscope::signaling::{
    ClientMessage, PROTOCOL_VERSION, Server, ServerConfig, ServerMessage, decode_server, encode,
};
use callscope::timeline::{CheckOptions, Query, TimelineEntry, check};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The secret of every test server.
pub const SECRET: &[u8] = b"a test secret that nobody else knows";
/// The longest any single wait of a test may take: generous, so that a loaded machine slows a
/// test down and never fails it (every wait ends as soon as its condition holds).
pub const WAIT: Duration = Duration::from_mins(1);
/// How often a wait looks again even without a report (frame counts report nothing).
const LOOK_AGAIN: Duration = Duration::from_millis(20);

/// A server on 127.0.0.1 and the runtime it runs on.
pub struct Net {
    pub runtime: Runtime,
    server: Option<Server>,
    addr: SocketAddr,
    /// Where the server records what it refused.
    pub server_kit: CallKit,
}

fn server_config(listen: SocketAddr, kit: &CallKit) -> ServerConfig {
    let mut config = ServerConfig::new(listen, Keyring::single(SECRET));
    config.kit = Some(kit.clone());
    // The peers of these tests look each other up in their contact lists.
    config.list_online_users = true;
    config
}

impl Net {
    /// A server on a free port.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// A server on a free port, its configuration changed by `adjust` first.
    pub fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let server_kit = CallKit::builder().user("server").build();
        let mut config = server_config(SocketAddr::from(([127, 0, 0, 1], 0)), &server_kit);
        adjust(&mut config);
        let server = runtime
            .block_on(Server::start(config))
            .expect("the server starts");
        let addr = server.local_addr();
        Self {
            runtime,
            server: Some(server),
            addr,
            server_kit,
        }
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Stops the server and starts a new one (knowing no call) on the same port.
    pub fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
        let server = self
            .runtime
            .block_on(Server::start(server_config(self.addr, &self.server_kit)))
            .expect("the server restarts");
        self.server = Some(server);
    }

    /// A client as `user`, signaling only, not waited for.
    pub fn peer(&self, user: &str) -> Client {
        self.client_with(user, &sign_user_sig(SECRET, user), None, None)
    }

    /// A logged-in client as `user` whose wall clock reads `shift_micros` ahead of the
    /// server's (behind when negative).
    pub fn online_shifted(&self, user: &str, shift_micros: i64) -> Client {
        let kit = CallKit::builder()
            .user(user)
            .clock(callscope::timeline::Clock::start_shifted(shift_micros))
            .build();
        let client = self.client_with_kit(kit, &sign_user_sig(SECRET, user), None, None, false);
        client.wait_online();
        client
    }

    /// A logged-in client as `user` that asks for the server's records of its calls, driven
    /// by `script` if given.
    pub fn online_traced(&self, user: &str, script: Option<Script>) -> Client {
        let kit = CallKit::builder().user(user).build();
        let client = self.client_with_kit(kit, &sign_user_sig(SECRET, user), None, script, true);
        client.wait_online();
        client
    }

    /// A client as `user` that logs in with `user_sig`.
    pub fn peer_with_sig(&self, user: &str, user_sig: &str) -> Client {
        self.client_with(user, user_sig, None, None)
    }

    /// A logged-in client as `user`, signaling only.
    pub fn online(&self, user: &str) -> Client {
        let client = self.peer(user);
        client.wait_online();
        client
    }

    /// A logged-in client as `user`, signaling only, driven by `script`.
    pub fn scripted(&self, user: &str, script: Script) -> Client {
        let client = self.client_with(user, &sign_user_sig(SECRET, user), None, Some(script));
        client.wait_online();
        client
    }

    /// A logged-in client as `user` with `media`, driven by `script` if given.
    pub fn media_client(&self, user: &str, script: Option<Script>, media: MediaConfig) -> Client {
        let client = self.client_with(user, &sign_user_sig(SECRET, user), Some(media), script);
        client.wait_online();
        client
    }

    fn client_with(
        &self,
        user: &str,
        user_sig: &str,
        media: Option<MediaConfig>,
        script: Option<Script>,
    ) -> Client {
        let kit = CallKit::builder().user(user).build();
        self.client_with_kit(kit, user_sig, media, script, false)
    }

    /// A client as `user` of the servers at `urls` (separated by commas, tried in turn),
    /// driven by `script` if given, run on this runtime; not waited for.
    pub fn client_of(&self, urls: &str, user: &str, script: Option<Script>) -> Client {
        let kit = CallKit::builder().user(user).build();
        self.spawn_client(urls, kit, &sign_user_sig(SECRET, user), None, script, false)
    }

    fn client_with_kit(
        &self,
        kit: CallKit,
        user_sig: &str,
        media: Option<MediaConfig>,
        script: Option<Script>,
        server_traces: bool,
    ) -> Client {
        self.spawn_client(&self.url(), kit, user_sig, media, script, server_traces)
    }

    fn spawn_client(
        &self,
        urls: &str,
        kit: CallKit,
        user_sig: &str,
        media: Option<MediaConfig>,
        script: Option<Script>,
        server_traces: bool,
    ) -> Client {
        let user = kit.user_id().to_owned();
        let user = user.as_str();
        let (commands, receiver) = mpsc::channel(16);
        let state = StateSlot::default();
        let (wake_tx, wake) = crossbeam_channel::bounded(1);
        let (reports, notices) = Reports::to_ui(
            state.clone(),
            Arc::new(move || {
                let _ = wake_tx.try_send(());
            }),
        );
        let frames = media
            .as_ref()
            .map_or_else(FrameSlots::default, |media| media.frames.clone());
        let config = ClientConfig {
            server_url: urls.to_owned(),
            user_id: user.to_owned(),
            user_sig: user_sig.to_owned(),
            media,
            server_traces,
            share_traces: false,
        };
        self.runtime
            .spawn(run_client(config, kit.clone(), receiver, reports, script));
        Client {
            kit,
            commands,
            state,
            wake,
            notices,
            frames,
            check: Mutex::new(Some(CheckOptions::default())),
        }
    }

    /// A raw WebSocket to the server.
    pub fn raw(&self) -> Raw {
        self.try_raw_from(std::net::Ipv4Addr::LOCALHOST)
            .expect("the server accepts")
    }

    /// A raw WebSocket to the server from `source` (any 127.x.y.z address is this machine).
    pub fn try_raw_from(&self, source: std::net::Ipv4Addr) -> Result<Raw, String> {
        self.runtime.block_on(async {
            let stream = self.tcp_from(source).await?;
            let (socket, _) =
                tokio::time::timeout(WAIT, tokio_tungstenite::client_async(self.url(), stream))
                    .await
                    .map_err(|_| "the handshake timed out".to_owned())?
                    .map_err(|error| error.to_string())?;
            Ok(Raw { socket })
        })
    }

    /// A bare TCP connection to the server from `source`.
    pub async fn tcp_from(
        &self,
        source: std::net::Ipv4Addr,
    ) -> Result<tokio::net::TcpStream, String> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|error| error.to_string())?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .map_err(|error| error.to_string())?;
        let stream = socket
            .connect(self.addr)
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// The server's live counters.
    pub fn stats(&self) -> &callscope::signaling::ServerStats {
        self.server.as_ref().expect("a running server").stats()
    }
}

/// One client running the engine task, and what it recorded.
pub struct Client {
    pub kit: CallKit,
    commands: mpsc::Sender<EngineCommand>,
    state: StateSlot,
    wake: crossbeam_channel::Receiver<()>,
    notices: crossbeam_channel::Receiver<EngineMsg>,
    pub frames: FrameSlots,
    /// How the timeline is checked when the client is dropped (`None`: not checked).
    check: Mutex<Option<CheckOptions>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // A test that failed already says why; a second panic would only hide it.
        if std::thread::panicking() {
            return;
        }
        let options = *self.check.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(options) = options {
            self.assert_contract_with(&options);
        }
    }
}

impl Client {
    /// The user.
    pub fn user(&self) -> &str {
        self.kit.user_id()
    }

    /// The server clock's offset from this client's, once measured.
    pub fn clock_offset(&self) -> Option<callscope::timeline::ClockOffset> {
        self.state.latest().clock_offset
    }

    /// Sends a command to the engine.
    pub fn send(&self, command: EngineCommand) {
        self.commands
            .try_send(command)
            .expect("the client takes commands");
    }

    /// Places a call.
    pub fn dial(&self, callees: &[&str], media: MediaType, timeout_secs: u32) {
        self.send(EngineCommand::Dial {
            callees: callees.iter().map(|c| (*c).to_owned()).collect(),
            media,
            group: callees.len() > 1,
            timeout_secs,
        });
    }

    /// Checks this client's timeline with `options` when it is dropped.
    pub fn check_with(&self, options: CheckOptions) {
        *self.check.lock().unwrap_or_else(PoisonError::into_inner) = Some(options);
    }

    /// Checks the calls of this client as placed with a `secs` ringing timeout.
    pub fn ring_timeout(&self, secs: u64) {
        self.check_with(CheckOptions {
            ring_timeout: Duration::from_secs(secs),
            ..CheckOptions::default()
        });
    }

    /// Asserts the timeline keeps the contract, checked with `options`.
    pub fn assert_contract_with(&self, options: &CheckOptions) {
        let entries: Vec<TimelineEntry> = self.entries().iter().map(|e| (**e).clone()).collect();
        let findings = check(&entries, options);
        assert!(
            findings.is_empty(),
            "{}'s timeline breaks the contract:\n{}",
            self.user(),
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The connection now.
    pub fn connection(&self) -> ConnectionState {
        self.state.latest().connection
    }

    /// The contact list now.
    pub fn contacts(&self) -> Vec<callscope::signaling::Contact> {
        self.state.latest().contacts
    }

    /// The call's status now.
    pub fn status(&self) -> CallStatus {
        self.state.latest().call.status()
    }

    /// Notices the engine gave so far.
    pub fn notices(&self) -> Vec<String> {
        self.notices
            .try_iter()
            .map(|EngineMsg::Notice(text)| text)
            .collect()
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<Arc<TimelineEntry>> {
        self.kit.timeline().query(&Query::all())
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.entries().iter().map(|e| e.event.clone()).collect()
    }

    /// Whether an event so far is `wanted`.
    pub fn has(&self, wanted: impl Fn(&Event) -> bool) -> bool {
        self.entries().iter().any(|e| wanted(&e.event))
    }

    /// Waits until online.
    pub fn wait_online(&self) {
        self.wait_for("to log in", |c| c.connection() == ConnectionState::Online);
    }

    /// Waits (woken by the client's reports) until `done`, at most [`WAIT`].
    pub fn wait_for(&self, what: &str, done: impl Fn(&Self) -> bool) {
        self.wait_for_within(what, WAIT, done);
    }

    /// Waits until `done`, at most `limit`.
    pub fn wait_for_within(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            let left = limit.saturating_sub(started.elapsed());
            assert!(
                !left.is_zero(),
                "{} timed out waiting {what}; kinds: {:?}",
                self.user(),
                self.entries()
                    .iter()
                    .map(|e| e.kind().as_str())
                    .collect::<Vec<_>>()
            );
            let _ = self.wake.recv_timeout(left.min(LOOK_AGAIN));
        }
    }

    /// Ends whatever call is going on (hangs up, or rejects a ringing one) and waits until it
    /// has ended here.
    pub fn end_call(&self) {
        if self.status() == CallStatus::Idle {
            return;
        }
        let ended = self.count(CallbackKind::AfterCalling);
        self.send(EngineCommand::Hangup);
        self.wait_for("for the call to end", |c| {
            c.count(CallbackKind::AfterCalling) > ended && c.status() == CallStatus::Idle
        });
    }

    /// Waits until this client is in no call (its last call ended).
    pub fn wait_idle(&self) {
        self.wait_for("to be in no call", |c| c.status() == CallStatus::Idle);
    }

    /// How many entries of `kind` so far.
    pub fn count(&self, kind: CallbackKind) -> usize {
        self.kit.timeline().count(&Query::all().kind(kind))
    }

    /// Waits until there are `count` entries of `kind`.
    pub fn wait_count(&self, kind: CallbackKind, count: usize) {
        self.wait_for(&format!("for {count} {kind}"), |c| c.count(kind) >= count);
    }

    /// The kinds of the entries about calls, in order (log-in noise left out).
    pub fn kinds(&self) -> Vec<&'static str> {
        self.entries()
            .iter()
            .filter(|e| e.call_id.is_some())
            .map(|e| e.kind().as_str())
            .collect()
    }

    /// The kinds of the call entries that are not media reports, in order.
    pub fn call_kinds(&self) -> Vec<&'static str> {
        self.entries()
            .iter()
            .filter(|e| e.call_id.is_some() && !is_media_report(&e.event))
            .map(|e| e.kind().as_str())
            .collect()
    }

    /// Every status transition so far.
    pub fn transitions(&self) -> Vec<(CallStatus, CallStatus)> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::StatusChanged {
                    old_status,
                    new_status,
                } => Some((*old_status, *new_status)),
                _ => None,
            })
            .collect()
    }

    /// Every `afterCalling` reason so far.
    pub fn end_reasons(&self) -> Vec<EndReason> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::AfterCalling(summary) => Some(summary.reason),
                _ => None,
            })
            .collect()
    }

    /// The first `afterCalling` reason, if the call ended.
    pub fn ended_with(&self) -> Option<EndReason> {
        self.end_reasons().first().copied()
    }

    /// Every error code so far (`onError` and failed `beforeCalling`).
    pub fn errors(&self) -> Vec<ErrorCode> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::Error(error)
                | Event::BeforeCalling {
                    error: Some(error), ..
                } => Some(error.code),
                _ => None,
            })
            .collect()
    }

    /// The call id of the newest entry that has one.
    pub fn last_call_id(&self) -> String {
        self.entries()
            .iter()
            .rev()
            .find_map(|e| e.call_id.clone())
            .expect("a call")
    }

    /// Frames decoded from `from` so far.
    pub fn decoded(&self, from: &str) -> u64 {
        self.frames.get(from).map_or(0, |slot| {
            slot.counters.frames_decoded.load(Ordering::Relaxed)
        })
    }
}

/// Whether `event` is one the media engine reported (it interleaves with the call's flow).
pub fn is_media_report(event: &Event) -> bool {
    matches!(
        event,
        Event::ConnectionStateChanged { .. }
            | Event::UserVideoAvailable { .. }
            | Event::UserAudioAvailable { .. }
            | Event::CallStats(_)
            | Event::UserNetworkQualityChanged { .. }
            | Event::UserVoiceVolumeChanged { .. }
    )
}

/// A raw protocol client.
pub struct Raw {
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
}

impl Raw {
    /// Sends a text frame as is.
    pub fn send_text(&mut self, net: &Net, text: String) {
        net.runtime
            .block_on(self.socket.send(Message::text(text)))
            .expect("sent");
    }

    /// Sends a message.
    pub fn send(&mut self, net: &Net, message: &ClientMessage) {
        self.send_text(net, encode(message));
    }

    /// The next message from the server.
    pub fn receive(&mut self, net: &Net) -> ServerMessage {
        net.runtime.block_on(async {
            loop {
                let frame = tokio::time::timeout(WAIT, self.socket.next())
                    .await
                    .expect("a frame in time")
                    .expect("the connection is open")
                    .expect("a frame");
                if let Message::Text(text) = frame {
                    return decode_server(text.as_str()).expect("a server message");
                }
            }
        })
    }

    /// Logs in as `user`.
    pub fn log_in(&mut self, net: &Net, user: &str) {
        let user_sig = sign_user_sig(SECRET, user);
        self.send(
            net,
            &ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: user.into(),
                user_sig,
            },
        );
        assert!(matches!(self.receive(net), ServerMessage::Welcome { .. }));
    }

    /// The next message, which must be an error.
    pub fn expect_error(&mut self, net: &Net) -> (ErrorCode, String) {
        match self.receive(net) {
            ServerMessage::Error { code, message, .. } => (code, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// The next message from the server within `limit`, or `None` when the connection closed
    /// (or nothing came). A frame that is no server message fails the test: garbage is never
    /// taken for silence.
    pub fn receive_within(&mut self, net: &Net, limit: Duration) -> Option<ServerMessage> {
        net.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                let frame = tokio::time::timeout_at(deadline, self.socket.next()).await;
                match frame {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let message = decode_server(text.as_str());
                        return Some(message.unwrap_or_else(|error| {
                            panic!("the server sent {text:?}, no server message: {error}")
                        }));
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_)) | None) | Err(_) => return None,
                }
            }
        })
    }

    /// Whether the server closed this connection within `limit` (reading, and dropping,
    /// whatever comes first).
    pub fn closed_within(&mut self, net: &Net, limit: Duration) -> bool {
        net.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                match tokio::time::timeout_at(deadline, self.socket.next()).await {
                    Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return true,
                    Ok(Some(Ok(_))) => {}
                    Err(_) => return false,
                }
            }
        })
    }

    /// Sends as many text frames as the connection takes; false once it fails.
    pub fn try_send_text(&mut self, net: &Net, text: String) -> bool {
        net.runtime
            .block_on(async {
                tokio::time::timeout(WAIT, self.socket.send(Message::text(text))).await
            })
            .is_ok_and(|sent| sent.is_ok())
    }

    /// The connection still answers.
    pub fn assert_usable(&mut self, net: &Net) {
        self.send(net, &ClientMessage::Ping { nonce: 42 });
        let answer = self.receive(net);
        assert!(
            matches!(
                answer,
                ServerMessage::Pong {
                    nonce: 42,
                    server_ms: Some(_),
                    server_us: Some(_),
                }
            ),
            "{answer:?}"
        );
    }
}
