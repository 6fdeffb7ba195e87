//! The signaling server: WebSocket over TCP, one task per connection, one hub task that owns the
//! [`Switchboard`]. Standalone (`callscope server`) or embedded in the app on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::event::Event;
use crate::kit::CallKit;
use crate::model::{CallError, Source};

use super::protocol::{Contact, MAX_FRAME_BYTES, encode};
use super::switchboard::{Output, SessionId, Switchboard, SwitchboardConfig};
use super::usersig::unix_now_secs;

/// Frames up to this size are read (and refused if above [`MAX_FRAME_BYTES`]); larger ones
/// close the connection, so a client cannot make the server buffer without limit.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;
/// Messages waiting for one slow client before the server gives up on it.
const OUTBOX_CAPACITY: usize = 256;
/// Events waiting for the hub.
const HUB_CAPACITY: usize = 16_384;

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The secret UserSigs are signed with.
    pub secret: Vec<u8>,
    /// The app id UserSigs must name.
    pub app_id: u64,
    /// Built-in peers to list in contact lists.
    pub demo_contacts: Vec<Contact>,
    /// Where refused requests are recorded, if anywhere.
    pub kit: Option<CallKit>,
}

/// Live counters of a running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Open connections.
    pub sessions: AtomicUsize,
    /// Logged-in users.
    pub online: AtomicUsize,
    /// Calls in progress.
    pub calls: AtomicUsize,
    /// Frames received so far.
    pub frames: AtomicU64,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    hub: JoinHandle<()>,
    stats: Arc<ServerStats>,
    online: watch::Receiver<usize>,
}

enum HubEvent {
    Open {
        session: SessionId,
        outbox: mpsc::Sender<Outgoing>,
    },
    Frame {
        session: SessionId,
        text: Utf8Bytes,
    },
    Oversized {
        session: SessionId,
        bytes: usize,
    },
    Binary {
        session: SessionId,
    },
    Closed {
        session: SessionId,
    },
}

enum Outgoing {
    Text(Utf8Bytes),
    Close,
}

fn websocket_config() -> WebSocketConfig {
    // Small buffers: an idle session must stay cheap (tens of thousands per server).
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(HARD_FRAME_LIMIT))
        .max_frame_size(Some(HARD_FRAME_LIMIT))
}

impl Server {
    /// Binds and starts serving.
    #[expect(
        clippy::unused_async,
        reason = "it spawns its tasks, so it must run inside a runtime; being async says so"
    )]
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        let socket = if config.listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // A restarted server takes its port back at once.
        socket.set_reuseaddr(true)?;
        socket.bind(config.listen)?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (hub_tx, hub_rx) = mpsc::channel(HUB_CAPACITY);
        let stats = Arc::new(ServerStats::default());
        let (online_tx, online) = watch::channel(0);
        let board = Switchboard::new(SwitchboardConfig {
            secret: config.secret,
            app_id: config.app_id,
            demo_contacts: config.demo_contacts,
        });
        let hub = tokio::spawn(run_hub(
            hub_rx,
            board,
            config.kit,
            shutdown_rx.clone(),
            Hub {
                stats: Arc::clone(&stats),
                online: online_tx,
            },
        ));
        let accept = tokio::spawn(accept_loop(listener, hub_tx, shutdown_rx));
        Ok(Self {
            addr,
            shutdown,
            accept,
            hub,
            stats,
            online,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to: `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Live counters.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Waits until at least `users` are logged in, up to `limit`; whether they are.
    pub async fn wait_online(&self, users: usize, limit: Duration) -> bool {
        let mut online = self.online.clone();
        tokio::time::timeout(limit, online.wait_for(|count| *count >= users))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// Stops accepting, closes every connection, and waits for the tasks to end.
    pub async fn shutdown(self) {
        // Receivers may be gone already; then everything has stopped anyway.
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
        let _ = self.hub.await;
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    hub: mpsc::Sender<HubEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let next_session = AtomicU64::new(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small messages, sent at once.
                    let _ = stream.set_nodelay(true);
                    let session = next_session.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(connection(stream, session, hub.clone(), shutdown.clone()));
                }
                // Out of file descriptors or similar: wait a moment and go on accepting.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn connection(
    stream: TcpStream,
    session: SessionId,
    hub: mpsc::Sender<HubEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(websocket) =
        tokio_tungstenite::accept_async_with_config(stream, Some(websocket_config())).await
    else {
        return;
    };
    let (mut sink, mut source) = websocket.split();
    let (outbox, mut outgoing) = mpsc::channel(OUTBOX_CAPACITY);
    if hub.send(HubEvent::Open { session, outbox }).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = source.next() => {
                let event = match frame {
                    Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                        HubEvent::Oversized { session, bytes: text.len() }
                    }
                    Some(Ok(Message::Text(text))) => HubEvent::Frame { session, text },
                    Some(Ok(Message::Binary(_))) => HubEvent::Binary { session },
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if hub.send(event).await.is_err() {
                    break;
                }
            }
            message = outgoing.recv() => match message {
                Some(Outgoing::Text(text)) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            // A server going down ends no calls: its clients find out on their own, as after a crash.
            _ = shutdown.changed() => return,
        }
    }
    let _ = hub.send(HubEvent::Closed { session }).await;
}

/// Where the hub reports its counts.
struct Hub {
    stats: Arc<ServerStats>,
    online: watch::Sender<usize>,
}

async fn run_hub(
    mut events: mpsc::Receiver<HubEvent>,
    mut board: Switchboard,
    kit: Option<CallKit>,
    mut shutdown: watch::Receiver<bool>,
    hub: Hub,
) {
    let stats = hub.stats;
    let mut outboxes: HashMap<SessionId, mpsc::Sender<Outgoing>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            // Shutdown first: once it is on, no closing connection may end calls for others.
            biased;
            _ = shutdown.changed() => return,
            event = events.recv() => match event {
                Some(event) => apply(&mut board, &mut outboxes, event, &stats),
                None => return,
            },
            _ = tick.tick() => board.handle_tick(unix_now_secs()),
        }
        deliver(&mut board, &mut outboxes, kit.as_ref());
        stats
            .sessions
            .store(board.session_count(), Ordering::Relaxed);
        stats.online.store(board.online_count(), Ordering::Relaxed);
        hub.online.send_if_modified(|online| {
            let changed = *online != board.online_count();
            *online = board.online_count();
            changed
        });
        stats.calls.store(board.call_count(), Ordering::Relaxed);
    }
}

fn apply(
    board: &mut Switchboard,
    outboxes: &mut HashMap<SessionId, mpsc::Sender<Outgoing>>,
    event: HubEvent,
    stats: &ServerStats,
) {
    match event {
        HubEvent::Open { session, outbox } => {
            outboxes.insert(session, outbox);
            board.open(session);
        }
        HubEvent::Frame { session, text } => {
            stats.frames.fetch_add(1, Ordering::Relaxed);
            board.handle_frame(session, unix_now_secs(), text.as_str());
        }
        HubEvent::Oversized { session, bytes } => board.handle_oversized(session, bytes),
        HubEvent::Binary { session } => board.handle_binary(session),
        HubEvent::Closed { session } => {
            outboxes.remove(&session);
            board.close(session);
        }
    }
}

fn deliver(
    board: &mut Switchboard,
    outboxes: &mut HashMap<SessionId, mpsc::Sender<Outgoing>>,
    kit: Option<&CallKit>,
) {
    while let Some(output) = board.poll_output() {
        match output {
            Output::Send { session, message } => {
                let Some(outbox) = outboxes.get(&session) else {
                    continue;
                };
                if outbox
                    .try_send(Outgoing::Text(encode(&message).into()))
                    .is_err()
                {
                    // A client this far behind (or gone) is dropped rather than buffered forever.
                    let _ = outbox.try_send(Outgoing::Close);
                    outboxes.remove(&session);
                    board.close(session);
                }
            }
            Output::Close { session } => {
                if let Some(outbox) = outboxes.remove(&session) {
                    let _ = outbox.try_send(Outgoing::Close);
                }
            }
            Output::Refused { user, error } => {
                if let Some(kit) = kit {
                    let message = format!("server refused a request of {user}: {}", error.message);
                    let event = Event::Error(CallError::new(error.code, message));
                    kit.dispatch(kit.clock().now(), None, Source::Remote, event);
                }
            }
        }
    }
}
