//! The engine: the one thread that does IO. It owns the tokio runtime, the client task of the
//! local user (and, unless `--server` names another, an embedded signaling server with the
//! demo peers). The UI talks to it through a bounded command channel, reads its state from a
//! latest-value slot and its notices from a bounded crossbeam channel.
//!
//! # Layout
//! - [`driver`]: the sans-IO [`Driver`], where server messages, media reports and commands
//!   become call inputs, entries and wire messages;
//! - `connection`: the WebSocket and the pure [`ReconnectPolicy`];
//! - [`demo`]: the demo peers' scripts;
//! - `client`: the async task that carries out a driver's outputs;
//! - `state`: the latest-value slot and the notice channel.

mod client;
mod connection;
pub mod demo;
pub mod driver;
mod messages;
pub mod quality;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use tokio::sync::mpsc;

use crate::kit::CallKit;
use crate::media::{MediaConfig, Resolution};
use crate::signaling::usersig::{
    self, DEFAULT_APP_ID, DEFAULT_EXPIRE_SECS, Keyring, UserSigClaims,
};
use crate::signaling::{Contact, Server, ServerConfig};

pub use client::{ClientConfig, demo_kit, run_client};
pub use connection::{CONNECT_TIMEOUT, OUTAGE_GRACE, ReconnectPolicy};
pub use demo::{Behaviour, DEMO_PEERS, DemoPeer, FLAKY_LINK, Script, is_demo_peer};
pub use driver::{Driver, DriverConfig, Output};
pub use messages::{
    CallOutcome, CallSnapshot, ConnectionState, EngineCommand, EngineMsg, EngineState,
};
pub use state::{Reports, StateSlot};

/// Commands waiting for the engine; a full queue refuses the command (the UI says so).
const COMMAND_CAPACITY: usize = 64;
/// How long the embedded demo peers get to log in before our own log-in goes ahead.
const DEMO_LOGIN_WAIT: Duration = Duration::from_secs(10);

/// Which signaling server the engine uses.
#[derive(Debug, Clone)]
pub enum ServerChoice {
    /// Start one in-process on 127.0.0.1 with a random port and secret, with the demo peers.
    Embedded,
    /// Join a running server.
    Remote {
        /// `ws://host:port`.
        url: String,
        /// The user's UserSig for it.
        user_sig: String,
    },
}

/// How the engine starts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The local user.
    pub user_id: String,
    /// Which server.
    pub server: ServerChoice,
    /// How calls carry audio and video; `None` for signaling only.
    pub media: Option<MediaConfig>,
    /// The embedded demo peers record their side of every call into our timeline, as peer
    /// entries (a call trace of both sides).
    pub demo_peer_traces: bool,
    /// Share our entries of each call with its other participants, and record theirs.
    pub share_traces: bool,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine thread or its runtime could not start.
    #[error("the engine could not start: {0}")]
    Start(#[from] std::io::Error),
    /// No secure random source for the embedded server's secret.
    #[error("no random source for the embedded server's secret: {0}")]
    Random(String),
    /// The engine thread stopped before it reported.
    #[error("the engine thread stopped during start-up")]
    Stopped,
}

/// A running engine: send it commands, read its state and notices.
#[derive(Debug)]
pub struct Engine {
    commands: mpsc::Sender<EngineCommand>,
    notices: Receiver<EngineMsg>,
    state: StateSlot,
    kit: CallKit,
    server_url: String,
    thread: Option<JoinHandle<()>>,
}

/// The demo peers as contacts.
pub fn demo_contacts() -> Vec<Contact> {
    DEMO_PEERS
        .iter()
        .map(|peer| Contact {
            user_id: peer.user_id.to_owned(),
            online: false,
            demo: Some(peer.description.to_owned()),
        })
        .collect()
}

/// Signs a UserSig for `user_id` that lasts the default time, with `secret` (the default key).
pub fn sign_user_sig(secret: &[u8], user_id: &str) -> String {
    sign_user_sig_with(&Keyring::single(secret), user_id)
}

/// Signs a UserSig for `user_id` that lasts the default time, with the keyring's signing key.
pub fn sign_user_sig_with(keys: &Keyring, user_id: &str) -> String {
    keys.sign(&UserSigClaims {
        user_id: user_id.to_owned(),
        app_id: DEFAULT_APP_ID,
        issued_at: usersig::unix_now_secs(),
        expire_secs: DEFAULT_EXPIRE_SECS,
    })
}

/// What the demo peers send: the test pattern tinted after their name and a tone; what they
/// receive is counted, not decoded, to spare the CPU.
fn demo_media(resolution: Resolution) -> MediaConfig {
    MediaConfig {
        resolution,
        decode: false,
        ..MediaConfig::synthetic()
    }
}

/// Starts the demo peers as clients of the server at `url`, sending video at `resolution`; each
/// runs until its command sender is dropped (or the runtime stops). With `trace`, they record
/// their entries into it as peer entries; otherwise each keeps its own in memory.
pub fn spawn_demo_peers(
    url: &str,
    keys: &Keyring,
    resolution: Resolution,
    trace: Option<&crate::timeline::Timeline>,
) -> Vec<mpsc::Sender<EngineCommand>> {
    let clock = crate::timeline::Clock::start();
    DEMO_PEERS
        .iter()
        .map(|peer| {
            let (sender, receiver) = mpsc::channel(8);
            let config = ClientConfig {
                server_url: url.to_owned(),
                user_id: peer.user_id.to_owned(),
                user_sig: sign_user_sig_with(keys, peer.user_id),
                media: Some(demo_media(resolution)),
                server_traces: false,
                // A demo peer shares its side with a participant who asks, unless it records
                // into that participant's own timeline (the window's) already.
                share_traces: trace.is_none(),
            };
            let kit = match trace {
                Some(timeline) => CallKit::builder()
                    .user(peer.user_id)
                    .clock(clock)
                    .timeline(timeline.clone())
                    .origin(crate::timeline::Origin::Peer)
                    .build(),
                None => demo_kit(peer.user_id, clock),
            };
            let script = Script::new(peer.behaviour);
            tokio::spawn(run_client(
                config,
                kit,
                receiver,
                Reports::none(),
                Some(script),
            ));
            sender
        })
        .collect()
}

impl Engine {
    /// Starts the engine thread; `wake` is called after every report (the UI's repaint).
    pub fn start(
        config: EngineConfig,
        kit: CallKit,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, EngineError> {
        let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let state = StateSlot::default();
        let (reports, notices) = Reports::to_ui(state.clone(), wake);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread_kit = kit.clone();
        let thread = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || run_engine(config, thread_kit, command_rx, reports, &ready_tx))?;
        let server_url = ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Self {
            commands: command_tx,
            notices,
            state,
            kit,
            server_url,
            thread: Some(thread),
        })
    }

    /// Sends a command; false if the engine is gone or its queue is full.
    pub fn send(&self, command: EngineCommand) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// The newest state if it is newer than generation `seen`, with its generation.
    pub fn state_newer_than(&self, seen: u64) -> Option<(u64, EngineState)> {
        self.state.newer_than(seen)
    }

    /// The newest state.
    pub fn state(&self) -> EngineState {
        self.state.latest()
    }

    /// The next notice, if one is waiting.
    pub fn try_recv(&self) -> Option<EngineMsg> {
        self.notices.try_recv().ok()
    }

    /// The kit every event is recorded through.
    pub fn kit(&self) -> &CallKit {
        &self.kit
    }

    /// The signaling server in use.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Hangs up if in a call, stops the engine and waits for its thread.
    pub fn shutdown(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // A full queue still stops the engine: closing the channel is a shutdown too.
        let _ = self.commands.try_send(EngineCommand::Shutdown);
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

type Ready = crossbeam_channel::Sender<Result<String, EngineError>>;

fn run_engine(
    config: EngineConfig,
    kit: CallKit,
    commands: mpsc::Receiver<EngineCommand>,
    reports: Reports,
    ready: &Ready,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine-io")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(EngineError::Start(error)));
            return;
        }
    };
    runtime.block_on(async move {
        let trace = kit.timeline().clone();
        let Some((client, embedded)) = start_session(config, &trace, ready).await else {
            return;
        };
        run_client(client, kit, commands, reports, None).await;
        if let Some((server, peers)) = embedded {
            drop(peers);
            server.shutdown().await;
        }
    });
    // Demo peers and connection tasks may still be running; they end with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(200));
}

/// The embedded server and its demo peers' command channels (which keep them running).
type Embedded = (Server, Vec<mpsc::Sender<EngineCommand>>);

async fn start_session(
    config: EngineConfig,
    trace: &crate::timeline::Timeline,
    ready: &Ready,
) -> Option<(ClientConfig, Option<Embedded>)> {
    let media = config.media;
    let (url, user_sig, embedded) = match config.server {
        ServerChoice::Remote { url, user_sig } => (url, user_sig, None),
        ServerChoice::Embedded => match start_embedded().await {
            Ok((server, secret)) => {
                let resolution = media
                    .as_ref()
                    .map_or(Resolution::default(), |media| media.resolution);
                let trace = config.demo_peer_traces.then_some(trace);
                let peers =
                    spawn_demo_peers(&server.url(), &Keyring::single(&secret), resolution, trace);
                // The caller (a window) goes on at once and shows the engine connecting; our
                // own log-in waits for the demo peers, so a first call finds them online.
                let _ = ready.send(Ok(server.url()));
                server.wait_online(DEMO_PEERS.len(), DEMO_LOGIN_WAIT).await;
                let user_sig = sign_user_sig(&secret, &config.user_id);
                (server.url(), user_sig, Some((server, peers)))
            }
            Err(error) => {
                let _ = ready.send(Err(error));
                return None;
            }
        },
    };
    if embedded.is_none() {
        let _ = ready.send(Ok(url.clone()));
    }
    let client = ClientConfig {
        server_url: url,
        user_id: config.user_id,
        user_sig,
        media,
        // The window that shows the demo peers' side shows the server's too.
        server_traces: config.demo_peer_traces,
        share_traces: config.share_traces,
    };
    Some((client, embedded))
}

async fn start_embedded() -> Result<(Server, Vec<u8>), EngineError> {
    let secret =
        usersig::random_secret().map_err(|error| EngineError::Random(error.to_string()))?;
    let mut config = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Keyring::single(&secret),
    );
    config.demo_contacts = demo_contacts();
    // Only this machine can reach it: its contact list may show who is online. The client
    // records the errors it is answered with; the server need not repeat them (no kit).
    config.list_online_users = true;
    let server = Server::start(config).await?;
    Ok((server, secret))
}
