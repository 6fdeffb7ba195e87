//! The signaling server: WebSocket over TCP, one task per connection, one hub task that owns the
//! [`Switchboard`]. Standalone (`callscope server`) or embedded in the app on 127.0.0.1.
//!
//! The transport holds every client to its share: connections are admitted by [`Admission`]
//! (capped in all and per address; those not logged in yet get a bounded share, evicted and
//! timed out there), a stranger's bytes are counted as they are read ([`gate`]), a logged-in
//! connection's bytes against its rate before they are queued, the frames waiting for the hub
//! are bounded in bytes, a connection that sends nothing (not even the answer to a ping) is
//! closed, a send that does not finish in time closes its socket, and each outbox is bounded in
//! bytes. A relayed message that does not fit is dropped and its sender told; the recipient is
//! not punished for another's traffic.
//!
//! [`Admission`]: super::admission::Admission
//! [`gate`]: super::gate

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use crate::event::Event;
use crate::kit::CallKit;
use crate::model::{CallError, ErrorCode, Source};

use super::admission::AdmissionLimits;
use super::gate::{self, Gate, Metered, Place};
use super::protocol::{Contact, MAX_FRAME_BYTES, ServerMessage, encode};
use super::switchboard::{Bucket, Limits, Output, SessionId, Switchboard, SwitchboardConfig};
use super::usersig::{Keyring, Revocations, SigPolicy, unix_now_millis};

/// Frames up to this size are read (and refused if above [`MAX_FRAME_BYTES`]); larger ones
/// close the connection, so a client cannot make the server buffer much for it.
const HARD_FRAME_LIMIT: usize = 128 * 1024;
/// Messages waiting for one client; it is also bounded in bytes ([`TransportLimits`]).
const OUTBOX_CAPACITY: usize = 1024;
/// Events waiting for the hub; connection tasks wait for room (their clients slow down).
const HUB_CAPACITY: usize = 16_384;
/// Pending connections (not logged in yet) at most when no share is set.
const MAX_PENDING: usize = 2_048;
/// A pending connection's deadline while more than half the pending share is taken.
const PRESSED_PENDING: Duration = Duration::from_secs(3);
/// How often pending connections are checked against their deadline.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// File descriptors kept free for everything but connections (the database, the log).
const RESERVED_FDS: usize = 128;

/// What the transport allows each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportLimits {
    /// Connections at once, in all (0: the file-descriptor limit less a reserve).
    pub max_connections: usize,
    /// Connections at once from one address.
    pub max_connections_per_ip: usize,
    /// Connections from one address still in their WebSocket handshake.
    pub max_handshakes_per_ip: usize,
    /// Connections not logged in yet, at once, in all (0: half the connection cap, at most
    /// 2,048). When they are as many, the next one evicts one of them (see
    /// [`Admission`](super::admission::Admission)); logged-in connections are never evicted.
    pub max_pending: usize,
    /// Bytes one logged-in connection may send: a burst, then this many a second; a frame
    /// beyond it is refused as it is read, never queued.
    pub byte_burst: usize,
    /// See [`TransportLimits::byte_burst`].
    pub bytes_per_sec: usize,
    /// Bytes of frames read and waiting for the hub, from all connections together; a
    /// connection whose frame does not fit waits (it stops reading, so TCP slows its client).
    pub hub_bytes: usize,
    /// The WebSocket handshake must finish this soon after the TCP connection.
    pub handshake_timeout: Duration,
    /// A send to a client must finish this soon, or its socket is closed.
    pub write_timeout: Duration,
    /// Bytes waiting for one client at most, in its outbox.
    pub outbox_bytes: usize,
    /// The kernel's send buffer of each connection (what waits there is bounded too).
    pub send_buffer_bytes: usize,
    /// How often the server pings a quiet client.
    pub ping_interval: Duration,
    /// A client that sends nothing (no message, no pong) this long is closed.
    pub idle_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_connections_per_ip: 1024,
            max_handshakes_per_ip: 32,
            max_pending: 0,
            byte_burst: 1024 * 1024,
            bytes_per_sec: 256 * 1024,
            hub_bytes: 32 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            outbox_bytes: 1024 * 1024,
            send_buffer_bytes: 64 * 1024,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_mins(1),
        }
    }
}

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The keys UserSigs are signed with.
    pub keys: Keyring,
    /// The app id UserSigs must name.
    pub app_id: u64,
    /// Built-in peers to list in contact lists.
    pub demo_contacts: Vec<Contact>,
    /// Whether contact lists show who else is online.
    pub list_online_users: bool,
    /// Caps, rates and deadlines of the switchboard.
    pub limits: Limits,
    /// Lifetime and clock-skew bounds of UserSigs.
    pub policy: SigPolicy,
    /// What the transport allows each client.
    pub transport: TransportLimits,
    /// A revocation list (`USER UNIX_SECS` lines), read again whenever it changes.
    pub revocations: Option<PathBuf>,
    /// Where refused requests are recorded, if anywhere.
    pub kit: Option<CallKit>,
    /// Where call events and end-of-call records are posted, if anywhere.
    pub webhook: Option<super::WebhookConfig>,
    /// The Redis bus this node shares users and calls over with other nodes, if any.
    pub bus: Option<super::BusConfig>,
}

impl ServerConfig {
    /// A server on `listen` whose UserSigs are signed with `keys`, with the default limits.
    pub fn new(listen: SocketAddr, keys: Keyring) -> Self {
        Self {
            listen,
            keys,
            app_id: super::usersig::DEFAULT_APP_ID,
            demo_contacts: Vec::new(),
            list_online_users: false,
            limits: Limits::default(),
            policy: SigPolicy::default(),
            transport: TransportLimits::default(),
            revocations: None,
            kit: None,
            webhook: None,
            bus: None,
        }
    }
}

/// Live counters of a running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Open connections (handshaking ones too).
    pub connections: AtomicUsize,
    /// Of those, the ones not logged in yet.
    pub pending: AtomicUsize,
    /// Connections admitted so far.
    pub admitted: AtomicU64,
    /// Pending connections closed to admit another.
    pub evicted: AtomicU64,
    /// Pending connections closed at their deadline.
    pub expired: AtomicU64,
    /// Bytes read from connections not logged in yet (at most
    /// [`gate::BYTES_BEFORE_LOGIN`] each).
    pub pending_bytes: AtomicUsize,
    /// Bytes of frames read and not yet handled by the hub.
    pub queued_bytes: AtomicUsize,
    /// Bytes waiting in outboxes to be sent.
    pub outbox_bytes: AtomicUsize,
    /// Sessions the switchboard knows (handshake done).
    pub sessions: AtomicUsize,
    /// Logged-in users.
    pub online: AtomicUsize,
    /// Calls in progress.
    pub calls: AtomicUsize,
    /// Webhook bodies the backend took.
    pub webhooks_delivered: AtomicU64,
    /// Webhook events dropped: the queue (or the hand-over to it) was full.
    pub webhooks_dropped: AtomicU64,
    /// Webhook POSTs that failed (each is tried again later).
    pub webhook_failures: AtomicU64,
    /// Frames received so far.
    pub frames: AtomicU64,
    /// Connections turned away at once (over a cap).
    pub turned_away: AtomicU64,
    /// Connections closed by the transport (handshake or write timeout, idle, a broken frame).
    pub dropped: AtomicU64,
    /// Relayed messages dropped because their recipient was not keeping up.
    pub relays_dropped: AtomicU64,
    /// Connected to the Redis bus now.
    pub bus_connected: AtomicBool,
    /// Times the bus connection was lost and made again.
    pub bus_reconnects: AtomicU64,
    /// Messages for other nodes dropped: Redis was away, or the bus's queue was full.
    pub bus_dropped: AtomicU64,
    /// Other nodes found lost (their heartbeat stopped).
    pub nodes_lost: AtomicU64,
    /// Users logged in, on this node and the others it knows of.
    pub everyone_online: AtomicUsize,
}

impl ServerStats {
    /// Bytes of frames the server holds for its clients now, read or to be sent.
    pub fn held_bytes(&self) -> usize {
        self.pending_bytes.load(Ordering::Relaxed)
            + self.queued_bytes.load(Ordering::Relaxed)
            + self.outbox_bytes.load(Ordering::Relaxed)
    }
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
        outbox: Outbox,
    },
    Frame {
        session: SessionId,
        text: Utf8Bytes,
        _held: Held,
    },
    Oversized {
        session: SessionId,
        bytes: usize,
    },
    OverBudget {
        session: SessionId,
        bytes: usize,
    },
    Binary {
        session: SessionId,
        bytes: usize,
    },
    Closed {
        session: SessionId,
    },
}

enum Outgoing {
    Text(Utf8Bytes),
}

/// A frame's bytes in the hub's budget, given back when the hub is done with it.
struct Held {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
    stats: Arc<ServerStats>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stats
            .queued_bytes
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The bytes in one outbox, counted in the server's too.
struct Queued {
    bytes: AtomicUsize,
    stats: Arc<ServerStats>,
}

impl Queued {
    /// Adds `bytes`; what was queued before.
    fn add(&self, bytes: usize) -> usize {
        self.stats.outbox_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::AcqRel)
    }

    fn sub(&self, bytes: usize) {
        self.stats.outbox_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let left = self.bytes.load(Ordering::Acquire);
        self.stats.outbox_bytes.fetch_sub(left, Ordering::Relaxed);
    }
}

/// One client's queue: bounded in messages and in bytes.
#[derive(Clone)]
struct Outbox {
    sender: mpsc::Sender<Outgoing>,
    queued: Arc<Queued>,
    limit_bytes: usize,
    /// Rung to close the connection even when its queue is full.
    closing: Arc<tokio::sync::Notify>,
    /// The connection's place, told when its user logs in.
    place: Arc<Place>,
}

impl Outbox {
    /// Queues `text`; false if it does not fit.
    fn try_send(&self, text: Utf8Bytes) -> bool {
        let bytes = text.len();
        let queued = self.queued.add(bytes);
        if queued + bytes > self.limit_bytes || self.sender.try_send(Outgoing::Text(text)).is_err()
        {
            self.queued.sub(bytes);
            return false;
        }
        true
    }

    fn close(&self) {
        self.closing.notify_one();
    }
}

fn websocket_config() -> WebSocketConfig {
    // Small buffers: an idle session must stay cheap (tens of thousands per server).
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(HARD_FRAME_LIMIT))
        .max_frame_size(Some(HARD_FRAME_LIMIT))
}

/// A client's WebSocket settings: signaling frames are small, so it reads in small chunks (a
/// read buffer is zeroed up to its size before each read; the default's 128 KiB would cost
/// more than the frame it reads).
pub fn client_websocket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

/// The connection cap when none is set: the file-descriptor limit, raised as far as allowed,
/// less a reserve.
fn default_max_connections() -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_FDS)
        .max(16)
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
        let mut transport = config.transport;
        if transport.max_connections == 0 {
            transport.max_connections = default_max_connections();
        }
        let webhooks = match config.webhook {
            Some(webhook) => {
                let target = super::parse_url(&webhook.url).map_err(|reason| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, reason)
                })?;
                Some(super::webhook_post::start(
                    webhook,
                    target,
                    Arc::clone(&stats),
                ))
            }
            None => None,
        };
        let (bus, bus_events) = match config.bus {
            Some(bus) => {
                super::bus::check_url(&bus.url).map_err(|reason| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, reason)
                })?;
                let node = bus.node.clone();
                let (events_tx, events) = mpsc::channel(HUB_CAPACITY);
                let to_bus = super::bus::start(bus, events_tx, Arc::clone(&stats));
                (Some((node, to_bus)), Some(events))
            }
            None => (None, None),
        };
        let admission = admission_limits(&transport, &config.limits);
        let board = Switchboard::new(SwitchboardConfig {
            keys: config.keys,
            app_id: config.app_id,
            demo_contacts: config.demo_contacts,
            list_online_users: config.list_online_users,
            limits: config.limits,
            policy: config.policy,
            webhooks: webhooks.is_some(),
            node: bus.as_ref().map(|(node, _)| node.clone()),
        });
        let hub = tokio::spawn(run_hub(
            hub_rx,
            board,
            Hub {
                kit: config.kit,
                stats: Arc::clone(&stats),
                online: online_tx,
                revocations: config.revocations,
                webhooks,
                bus: bus.map(|(_, to_bus)| to_bus),
            },
            bus_events,
            shutdown_rx.clone(),
        ));
        let gate = Gate::new(admission);
        let shared = Shared {
            hub: hub_tx,
            hub_budget: Arc::new(Semaphore::new(transport.hub_bytes.max(HARD_FRAME_LIMIT))),
            transport,
            stats: Arc::clone(&stats),
        };
        let accept = tokio::spawn(accept_loop(listener, shared, gate, shutdown_rx));
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

/// What admission allows under `transport`, with `limits`' log-in deadline.
fn admission_limits(transport: &TransportLimits, limits: &Limits) -> AdmissionLimits {
    let max_pending = match transport.max_pending {
        0 => (transport.max_connections / 2).clamp(1, MAX_PENDING),
        set => set.min(transport.max_connections),
    };
    let normal = transport.handshake_timeout + Duration::from_millis(limits.login_deadline_millis);
    AdmissionLimits {
        max_connections: transport.max_connections,
        max_per_ip: transport.max_connections_per_ip,
        max_handshakes_per_ip: transport.max_handshakes_per_ip,
        max_pending,
        pending_millis: u64::try_from(normal.as_millis()).unwrap_or(u64::MAX),
        pressed_pending_millis: u64::try_from(PRESSED_PENDING.as_millis()).unwrap_or(u64::MAX),
    }
}

/// What every connection task shares.
#[derive(Clone)]
struct Shared {
    hub: mpsc::Sender<HubEvent>,
    /// Bytes of frames that may wait for the hub ([`TransportLimits::hub_bytes`]).
    hub_budget: Arc<Semaphore>,
    transport: TransportLimits,
    stats: Arc<ServerStats>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Shared,
    gate: Arc<Mutex<Gate>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut next_session: SessionId = 1;
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let stats = Arc::clone(&shared.stats);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let session = next_session;
                    next_session += 1;
                    let Ok(place) = gate::enter(&gate, session, peer.ip(), &stats) else {
                        // Over a cap: closed at once, before it costs more than its socket.
                        stats.turned_away.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    };
                    // Small messages, sent at once; little waiting in the kernel for one client.
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(shared.transport.send_buffer_bytes);
                    let connection = Connection {
                        session,
                        shared: shared.clone(),
                    };
                    tokio::spawn(connection.start(stream, place, shutdown.clone()));
                }
                // Out of file descriptors or similar: wait a moment and go on accepting.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = sweep.tick() => gate::sweep(&gate, &stats),
            _ = shutdown.changed() => return,
        }
    }
}

/// One client's connection task.
struct Connection {
    session: SessionId,
    shared: Shared,
}

/// Why a connection task ended.
enum Ended {
    /// The client went, or the hub closed it.
    Normally,
    /// The transport gave up on it.
    Dropped,
    /// The server is shutting down: no call ends for it.
    Shutdown,
}

/// What the hub sends one connection: its outbox's other end.
struct Inbound {
    outgoing: mpsc::Receiver<Outgoing>,
    queued: Arc<Queued>,
    closing: Arc<tokio::sync::Notify>,
}

type Socket = tokio_tungstenite::WebSocketStream<Metered<TcpStream>>;

impl Connection {
    /// Waits for the client's first bytes in a small task; only then is the (much larger)
    /// state of a WebSocket connection allocated. The handshake deadline counts from here.
    async fn start(self, stream: TcpStream, place: Arc<Place>, shutdown: watch::Receiver<bool>) {
        let deadline = tokio::time::Instant::now() + self.shared.transport.handshake_timeout;
        // `peek` waits for real bytes (readiness alone may be a false positive).
        let mut first = [0_u8; 1];
        let stats = Arc::clone(&self.shared.stats);
        let handshake = async {
            let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut first)).await;
            if !matches!(peeked, Ok(Ok(1))) {
                return None;
            }
            let stream = Metered::new(stream, Arc::clone(&place));
            let accept =
                tokio_tungstenite::accept_async_with_config(stream, Some(websocket_config()));
            tokio::time::timeout_at(deadline, accept).await.ok()?.ok()
        };
        // Evicted or late before its handshake is done: closed at once.
        let websocket = tokio::select! {
            websocket = Box::pin(handshake) => websocket,
            () = place.closed_by_gate() => None,
        };
        let Some(websocket) = websocket else {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        place.handshake_done();
        Box::pin(self.run(websocket, place, shutdown)).await;
    }

    async fn run(self, websocket: Socket, place: Arc<Place>, shutdown: watch::Receiver<bool>) {
        let (outbox_tx, outgoing) = mpsc::channel(OUTBOX_CAPACITY);
        let inbound = Inbound {
            outgoing,
            queued: Arc::new(Queued {
                bytes: AtomicUsize::new(0),
                stats: Arc::clone(&self.shared.stats),
            }),
            closing: Arc::new(tokio::sync::Notify::new()),
        };
        let outbox = Outbox {
            sender: outbox_tx,
            queued: Arc::clone(&inbound.queued),
            limit_bytes: self.shared.transport.outbox_bytes,
            closing: Arc::clone(&inbound.closing),
            place: Arc::clone(&place),
        };
        let opened = HubEvent::Open {
            session: self.session,
            outbox,
        };
        if self.shared.hub.send(opened).await.is_err() {
            return;
        }
        let ended = self.serve(websocket, inbound, &place, shutdown).await;
        if matches!(ended, Ended::Dropped) {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if !matches!(ended, Ended::Shutdown) {
            let closed = HubEvent::Closed {
                session: self.session,
            };
            let _ = self.shared.hub.send(closed).await;
        }
    }

    /// What the hub gets for a text frame of `text`: the frame itself when it is within the
    /// connection's byte rate and fits the hub's budget (waited for), else only its size.
    async fn frame_event(&self, text: Utf8Bytes, rate: &mut Bucket, started: Instant) -> HubEvent {
        let session = self.session;
        let bytes = text.len();
        if bytes > MAX_FRAME_BYTES {
            return HubEvent::Oversized { session, bytes };
        }
        if !within(rate, bytes, started) {
            return HubEvent::OverBudget { session, bytes };
        }
        let permits = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
        let budget = Arc::clone(&self.shared.hub_budget);
        let Ok(permit) = budget.acquire_many_owned(permits).await else {
            return HubEvent::OverBudget { session, bytes };
        };
        let stats = Arc::clone(&self.shared.stats);
        stats.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        HubEvent::Frame {
            session,
            text,
            _held: Held {
                _permit: permit,
                bytes,
                stats,
            },
        }
    }

    async fn serve(
        &self,
        mut socket: Socket,
        mut inbound: Inbound,
        place: &Place,
        mut shutdown: watch::Receiver<bool>,
    ) -> Ended {
        let transport = self.shared.transport;
        let write_timeout = transport.write_timeout;
        let mut ping = tokio::time::interval(transport.ping_interval);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        let started = Instant::now();
        let mut rate = Bucket::full(
            transport.byte_burst as u64,
            transport.bytes_per_sec as u64,
            0,
        );
        // Made once: each ends the loop when it fires.
        let closed_by_hub = inbound.closing.notified();
        tokio::pin!(closed_by_hub);
        let closed_by_gate = place.closed_by_gate();
        tokio::pin!(closed_by_gate);
        let shutting_down = shutdown.changed();
        tokio::pin!(shutting_down);
        loop {
            tokio::select! {
                frame = socket.next() => {
                    last_heard = tokio::time::Instant::now();
                    let session = self.session;
                    let event = match frame {
                        Some(Ok(Message::Text(text))) => {
                            place.sent_before_login();
                            self.frame_event(text, &mut rate, started).await
                        }
                        Some(Ok(Message::Binary(data))) if within(&mut rate, data.len(), started) => {
                            HubEvent::Binary { session, bytes: data.len() }
                        }
                        Some(Ok(Message::Binary(data))) => HubEvent::OverBudget { session, bytes: data.len() },
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => return Ended::Normally,
                        Some(Err(error)) => {
                            // A frame the protocol cannot read (too large, malformed, past
                            // the allowance before log-in): say so, then close, as the
                            // connection can no longer be read.
                            let error = CallError::new(
                                ErrorCode::InvalidParameter,
                                format!("the connection is closed: {error}"),
                            );
                            say_and_close(&mut socket, &error, write_timeout).await;
                            return Ended::Dropped;
                        }
                    };
                    if self.shared.hub.send(event).await.is_err() {
                        return Ended::Normally;
                    }
                }
                // The hub is done with this client: what it queued before (the error that says
                // why, say) still goes out, as long as the client takes it in time.
                () = &mut closed_by_hub => {
                    while let Ok(Outgoing::Text(text)) = inbound.outgoing.try_recv() {
                        if !send_queued(&mut socket, text, &inbound.queued, write_timeout).await {
                            return Ended::Dropped;
                        }
                    }
                    let _ = send_within(&mut socket, Message::Close(None), write_timeout).await;
                    return Ended::Normally;
                }
                // Not logged in in time, or evicted for a newer connection.
                () = &mut closed_by_gate => {
                    let error = CallError::new(
                        ErrorCode::NotLoggedIn,
                        "the connection is closed: the server is busy and it did not log in soon enough",
                    );
                    say_and_close(&mut socket, &error, write_timeout).await;
                    return Ended::Dropped;
                }
                message = inbound.outgoing.recv() => match message {
                    Some(Outgoing::Text(text)) => {
                        if !send_queued(&mut socket, text, &inbound.queued, write_timeout).await {
                            return Ended::Dropped;
                        }
                    }
                    None => {
                        let _ = send_within(&mut socket, Message::Close(None), write_timeout).await;
                        return Ended::Normally;
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() >= transport.idle_timeout {
                        return Ended::Dropped;
                    }
                    if !send_within(&mut socket, Message::Ping(Bytes::new()), write_timeout).await {
                        return Ended::Dropped;
                    }
                }
                // A server going down ends no calls: its clients find out on their own, as after a crash.
                _ = &mut shutting_down => return Ended::Shutdown,
            }
        }
    }
}

/// Takes `bytes` from a connection's byte `rate` (its clock started at `started`); whether they
/// were within it.
fn within(rate: &mut Bucket, bytes: usize, started: Instant) -> bool {
    let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    rate.take(bytes as u64, now)
}

/// Sends `error`, then a close, each given up after `limit`.
async fn say_and_close(socket: &mut Socket, error: &CallError, limit: Duration) {
    let text = encode(&ServerMessage::error(error, None));
    if send_within(socket, Message::Text(text.into()), limit).await {
        let _ = send_within(socket, Message::Close(None), limit).await;
    }
}

/// Sends a message from the outbox, taking its bytes off the count; whether it went in time.
async fn send_queued(
    socket: &mut Socket,
    text: Utf8Bytes,
    queued: &Queued,
    limit: Duration,
) -> bool {
    let bytes = text.len();
    let sent = send_within(socket, Message::Text(text), limit).await;
    queued.sub(bytes);
    sent
}

/// Sends `message`, giving up after `limit`; whether it went. Most sends finish at once, and
/// those take no timer.
async fn send_within(socket: &mut Socket, message: Message, limit: Duration) -> bool {
    let mut send = socket.send(message);
    if let Some(done) = (&mut send).now_or_never() {
        return done.is_ok();
    }
    matches!(tokio::time::timeout(limit, send).await, Ok(Ok(())))
}

/// What the hub holds besides the switchboard.
struct Hub {
    kit: Option<CallKit>,
    stats: Arc<ServerStats>,
    online: watch::Sender<usize>,
    revocations: Option<PathBuf>,
    webhooks: Option<mpsc::Sender<super::webhook_post::Outgoing>>,
    bus: Option<mpsc::Sender<super::bus::ToBus>>,
}

async fn run_hub(
    mut events: mpsc::Receiver<HubEvent>,
    mut board: Switchboard,
    mut hub: Hub,
    mut bus_events: Option<mpsc::Receiver<super::bus::FromBus>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut outboxes: HashMap<SessionId, Outbox> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut revocations_seen: Option<SystemTime> = None;
    loop {
        tokio::select! {
            // Shutdown first: once it is on, no closing connection may end calls for others.
            biased;
            _ = shutdown.changed() => return,
            event = events.recv() => match event {
                Some(event) => apply(&mut board, &mut outboxes, event, &hub.stats),
                None => return,
            },
            Some(event) = next_bus_event(&mut bus_events) => apply_bus(&mut board, event),
            _ = tick.tick() => {
                let now = unix_now_millis();
                if let Some(revocations) = reread(hub.revocations.as_ref(), &mut revocations_seen) {
                    board.handle_revocations(now, revocations);
                }
                board.handle_tick(now);
            }
        }
        deliver(&mut board, &mut outboxes, &mut hub);
        let stats = &hub.stats;
        stats
            .sessions
            .store(board.session_count(), Ordering::Relaxed);
        stats.online.store(board.online_count(), Ordering::Relaxed);
        stats
            .everyone_online
            .store(board.everyone_online_count(), Ordering::Relaxed);
        stats.calls.store(board.call_count(), Ordering::Relaxed);
        hub.online.send_if_modified(|online| {
            let changed = *online != board.online_count();
            *online = board.online_count();
            changed
        });
    }
}

/// The next event of the bus; never, without one.
async fn next_bus_event(
    events: &mut Option<mpsc::Receiver<super::bus::FromBus>>,
) -> Option<super::bus::FromBus> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

fn apply_bus(board: &mut Switchboard, event: super::bus::FromBus) {
    use super::bus::FromBus;
    let now = unix_now_millis();
    match event {
        FromBus::Connected => board.handle_bus_connected(now),
        FromBus::Node { from, message } => board.handle_node_message(now, &from, message),
        FromBus::Presence(presence) => board.handle_presence(now, presence),
        FromBus::NodeLost(node) => board.handle_node_lost(now, &node),
    }
}

/// The revocation list, when it changed since `seen`.
fn reread(path: Option<&PathBuf>, seen: &mut Option<SystemTime>) -> Option<Revocations> {
    let path = path?;
    let modified = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()?;
    if *seen == Some(modified) {
        return None;
    }
    *seen = Some(modified);
    let text = std::fs::read_to_string(path).ok()?;
    Some(Revocations::parse(&text))
}

fn apply(
    board: &mut Switchboard,
    outboxes: &mut HashMap<SessionId, Outbox>,
    event: HubEvent,
    stats: &ServerStats,
) {
    let now = unix_now_millis();
    match event {
        HubEvent::Open { session, outbox } => {
            outboxes.insert(session, outbox);
            board.open(session, now);
        }
        HubEvent::Frame { session, text, .. } => {
            stats.frames.fetch_add(1, Ordering::Relaxed);
            board.handle_frame(session, now, text.as_str());
        }
        HubEvent::Oversized { session, bytes } => board.handle_oversized(session, now, bytes),
        HubEvent::OverBudget { session, bytes } => board.handle_over_budget(session, now, bytes),
        HubEvent::Binary { session, bytes } => board.handle_binary(session, now, bytes),
        HubEvent::Closed { session } => {
            outboxes.remove(&session);
            board.close(session);
        }
    }
}

fn deliver(board: &mut Switchboard, outboxes: &mut HashMap<SessionId, Outbox>, hub: &mut Hub) {
    while let Some(output) = board.poll_output() {
        match output {
            Output::Send {
                session,
                mut message,
                relayed_from,
            } => {
                let Some(outbox) = outboxes.get(&session) else {
                    continue;
                };
                // A welcome means the session logged in: it keeps its connection's slot.
                if matches!(message, ServerMessage::Welcome { .. }) {
                    outbox.place.logged_in();
                }
                message.stamp(unix_now_micros);
                if outbox.try_send(encode(&message).into()) {
                    continue;
                }
                if let Some(relayer) = relayed_from {
                    // Another's traffic that does not fit is dropped, not the recipient.
                    hub.stats.relays_dropped.fetch_add(1, Ordering::Relaxed);
                    board.handle_undelivered(relayer, session, unix_now_millis());
                } else {
                    // The server's own messages are bounded by the switchboard's caps: a client
                    // this far behind on them is not reading, and is dropped.
                    outbox.close();
                    outboxes.remove(&session);
                    board.close(session);
                }
            }
            Output::Close { session } => {
                if let Some(outbox) = outboxes.remove(&session) {
                    outbox.close();
                }
            }
            Output::Refused {
                user,
                error,
                unrecorded,
            } => record_refusal(hub.kit.as_ref(), &user, &error, unrecorded),
            Output::CallEvent(event) => hand_over(hub, super::webhook_post::Outgoing::Event(event)),
            Output::CallEnded(record) => {
                hand_over(hub, super::webhook_post::Outgoing::Ended(record));
            }
            Output::Publish { node, message } => {
                to_bus(hub, super::bus::ToBus::Publish { node, message });
            }
            Output::Announce(presence) => to_bus(hub, super::bus::ToBus::Announce(presence)),
        }
    }
}

/// Gives the bus a message for other nodes without waiting; a full queue drops and counts it.
fn to_bus(hub: &Hub, item: super::bus::ToBus) {
    if let Some(bus) = &hub.bus
        && bus.try_send(item).is_err()
    {
        hub.stats.bus_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Gives the webhooks' driver an event without waiting; a full hand-over drops and counts it.
fn hand_over(hub: &Hub, outgoing: super::webhook_post::Outgoing) {
    if let Some(webhooks) = &hub.webhooks
        && webhooks.try_send(outgoing).is_err()
    {
        hub.stats.webhooks_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The wall clock in µs since the Unix epoch, for the stamps clients align their clocks on.
fn unix_now_micros() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

fn record_refusal(kit: Option<&CallKit>, user: &str, error: &CallError, unrecorded: u64) {
    let Some(kit) = kit else {
        return;
    };
    let also = if unrecorded > 0 {
        format!(" ({unrecorded} more of this connection's refusals were counted, not recorded)")
    } else {
        String::new()
    };
    let message = format!(
        "server refused a request of {user}: {}{also}",
        error.message
    );
    let event = Event::Error(CallError::new(error.code, message));
    kit.dispatch(kit.clock().now(), None, Source::Remote, event);
}
