//! The engine: the one thread that does IO. It owns the tokio runtime, the signaling client,
//! and (unless `--server` names another) an embedded signaling server with the demo peers.
//! The UI talks to it through bounded crossbeam channels only.

mod client;
mod messages;
mod policy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::mpsc;

use crate::callbacks::CallKit;
use crate::media::{MediaConfig, Resolution};
use crate::signaling::usersig::{self, DEFAULT_APP_ID, DEFAULT_EXPIRE_SECS, UserSigClaims};
use crate::signaling::{Contact, Server, ServerConfig};

pub use client::{ClientConfig, Publish, run_client};
pub use messages::{CallSnapshot, ConnectionState, EngineCommand, EngineMsg};
pub use policy::{DEMO_PEERS, DemoPeer, PeerPolicy};

/// Commands waiting for the engine.
const COMMAND_CAPACITY: usize = 64;
/// How often the command bridge checks that the client is still there.
const BRIDGE_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// How long the embedded demo peers get to log in before the engine reports ready.
const DEMO_LOGIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Reports waiting for the UI; when full, the oldest state is stale anyway and new ones drop.
const MESSAGE_CAPACITY: usize = 256;

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

/// A running engine: send it commands, drain its reports.
#[derive(Debug)]
pub struct Engine {
    commands: Sender<EngineCommand>,
    messages: Receiver<EngineMsg>,
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

/// Signs a UserSig for `user_id` that lasts the default time.
pub fn sign_user_sig(secret: &[u8], user_id: &str) -> String {
    usersig::sign(
        secret,
        &UserSigClaims {
            user_id: user_id.to_owned(),
            app_id: DEFAULT_APP_ID,
            issued_at: usersig::unix_now_secs(),
            expire_secs: DEFAULT_EXPIRE_SECS,
        },
    )
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
/// runs until its command sender is dropped (or the runtime stops).
pub fn spawn_demo_peers(
    url: &str,
    secret: &[u8],
    resolution: Resolution,
) -> Vec<mpsc::Sender<EngineCommand>> {
    DEMO_PEERS
        .iter()
        .map(|peer| {
            let (sender, receiver) = mpsc::channel(8);
            let config = ClientConfig {
                server_url: url.to_owned(),
                user_id: peer.user_id.to_owned(),
                user_sig: sign_user_sig(secret, peer.user_id),
                policy: Some(peer.policy),
                media: Some(demo_media(resolution)),
            };
            let kit = CallKit::builder().user(peer.user_id).build();
            let publish: Publish = Arc::new(|_| {});
            tokio::spawn(run_client(config, kit, receiver, publish));
            sender
        })
        .collect()
}

impl Engine {
    /// Starts the engine thread; `repaint` is called after every report (the UI's wake-up).
    pub fn start(
        config: EngineConfig,
        kit: CallKit,
        repaint: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, EngineError> {
        let (command_tx, command_rx) = crossbeam_channel::bounded(COMMAND_CAPACITY);
        let (message_tx, message_rx) = crossbeam_channel::bounded(MESSAGE_CAPACITY);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread_kit = kit.clone();
        let thread = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                run_engine(
                    config, thread_kit, command_rx, message_tx, repaint, &ready_tx,
                );
            })?;
        let server_url = ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Self {
            commands: command_tx,
            messages: message_rx,
            kit,
            server_url,
            thread: Some(thread),
        })
    }

    /// Sends a command; false if the engine is gone or its queue is full.
    pub fn send(&self, command: EngineCommand) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// The next report, if one is waiting.
    pub fn try_recv(&self) -> Option<EngineMsg> {
        self.messages.try_recv().ok()
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
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self
            .commands
            .send_timeout(EngineCommand::Shutdown, std::time::Duration::from_secs(1));
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

type Ready = Sender<Result<String, EngineError>>;

fn run_engine(
    config: EngineConfig,
    kit: CallKit,
    commands: Receiver<EngineCommand>,
    messages: Sender<EngineMsg>,
    repaint: Arc<dyn Fn() + Send + Sync>,
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
        let Some((client, server)) = start_session(config, kit, ready).await else {
            return;
        };
        let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        // Bridge the UI's crossbeam channel into the async world on a blocking thread.
        tokio::task::spawn_blocking(move || {
            while !command_tx.is_closed() {
                match commands.recv_timeout(BRIDGE_POLL) {
                    Ok(command) => {
                        if command_tx.blocking_send(command).is_err() {
                            return;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        let publish: Publish = Arc::new(move |message| {
            // A full queue means the UI is behind; the next report carries the newer state.
            let _ = messages.try_send(message);
            repaint();
        });
        run_client(client, server.kit, command_rx, publish).await;
        if let Some((server, peers)) = server.embedded {
            drop(peers);
            server.shutdown().await;
        }
    });
    // Demo peers and connection tasks may still be running; they end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
}

struct Running {
    kit: CallKit,
    /// The embedded server and its demo peers' command channels (which keep them running).
    embedded: Option<(Server, Vec<mpsc::Sender<EngineCommand>>)>,
}

async fn start_session(
    config: EngineConfig,
    kit: CallKit,
    ready: &Ready,
) -> Option<(ClientConfig, Running)> {
    let media = config.media;
    let (url, user_sig, embedded) = match config.server {
        ServerChoice::Remote { url, user_sig } => (url, user_sig, None),
        ServerChoice::Embedded => match start_embedded().await {
            Ok((server, secret)) => {
                let resolution = media
                    .as_ref()
                    .map_or(Resolution::default(), |media| media.resolution);
                let peers = spawn_demo_peers(&server.url(), &secret, resolution);
                wait_for_demo_peers(&server).await;
                let user_sig = sign_user_sig(&secret, &config.user_id);
                (server.url(), user_sig, Some((server, peers)))
            }
            Err(error) => {
                let _ = ready.send(Err(error));
                return None;
            }
        },
    };
    let _ = ready.send(Ok(url.clone()));
    let client = ClientConfig {
        server_url: url,
        user_id: config.user_id,
        user_sig,
        policy: None,
        media,
    };
    Some((client, Running { kit, embedded }))
}

/// Waits until every demo peer is logged in, so the first call to one finds it online.
async fn wait_for_demo_peers(server: &Server) {
    let started = tokio::time::Instant::now();
    while server
        .stats()
        .online
        .load(std::sync::atomic::Ordering::Relaxed)
        < DEMO_PEERS.len()
        && started.elapsed() < DEMO_LOGIN_WAIT
    {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn start_embedded() -> Result<(Server, Vec<u8>), EngineError> {
    let secret =
        usersig::random_secret().map_err(|error| EngineError::Random(error.to_string()))?;
    let server = Server::start(ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        secret: secret.clone(),
        app_id: DEFAULT_APP_ID,
        demo_contacts: demo_contacts(),
        // The client records the errors it is answered with; the server need not repeat them.
        kit: None,
    })
    .await?;
    Ok((server, secret))
}
