//! The signaling server: WebSocket over TCP, one task per connection, one hub task that owns the
//! [`Switchboard`]. Standalone (`callscope server`) or embedded in the app on 127.0.0.1.
//!
//! The transport holds every client to its share: connections are capped in all and per
//! address (and those still in their handshake more tightly), a handshake must finish in
//! seconds, a connection that sends nothing (not even the answer to a ping) is closed, a send
//! that does not finish in time closes its socket, and each outbox is bounded in bytes. A
//! relayed message that does not fit is dropped and its sender told; the recipient is not
//! punished for another's traffic.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use crate::event::Event;
use crate::kit::CallKit;
use crate::model::{CallError, ErrorCode, Source};

use super::protocol::{Contact, MAX_FRAME_BYTES, ServerMessage, encode};
use super::switchboard::{Limits, Output, SessionId, Switchboard, SwitchboardConfig};
use super::usersig::{Keyring, Revocations, SigPolicy, unix_now_millis};

/// Frames up to this size are read (and refused if above [`MAX_FRAME_BYTES`]); larger ones
/// close the connection, so a client cannot make the server buffer much for it.
const HARD_FRAME_LIMIT: usize = 128 * 1024;
/// Messages waiting for one client; it is also bounded in bytes ([`TransportLimits`]).
const OUTBOX_CAPACITY: usize = 1024;
/// Events waiting for the hub; connection tasks wait for room (their clients slow down).
const HUB_CAPACITY: usize = 16_384;
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
    Open { session: SessionId, outbox: Outbox },
    Frame { session: SessionId, text: Utf8Bytes },
    Oversized { session: SessionId, bytes: usize },
    Binary { session: SessionId, bytes: usize },
    Closed { session: SessionId },
}

enum Outgoing {
    Text(Utf8Bytes),
}

/// One client's queue: bounded in messages and in bytes.
#[derive(Clone)]
struct Outbox {
    sender: mpsc::Sender<Outgoing>,
    queued_bytes: Arc<AtomicUsize>,
    limit_bytes: usize,
    /// Rung to close the connection even when its queue is full.
    closing: Arc<tokio::sync::Notify>,
}

impl Outbox {
    /// Queues `text`; false if it does not fit.
    fn try_send(&self, text: Utf8Bytes) -> bool {
        let bytes = text.len();
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if queued + bytes > self.limit_bytes || self.sender.try_send(Outgoing::Text(text)).is_err()
        {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
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

/// Connections at once by address, and in all.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, (usize, usize)>,
}

/// Holds one connection's place in the counts; giving it back when dropped.
struct Place {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
    handshaking: bool,
    stats: Arc<ServerStats>,
}

impl Place {
    fn handshake_done(&mut self) {
        if std::mem::replace(&mut self.handshaking, false) {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = counts.by_ip.get_mut(&self.ip) {
                entry.1 -= 1;
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.handshake_done();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(entry) = counts.by_ip.get_mut(&self.ip) {
            entry.0 -= 1;
            if entry.0 == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
        self.stats
            .connections
            .store(counts.total, Ordering::Relaxed);
    }
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
        let accept = tokio::spawn(accept_loop(
            listener,
            hub_tx,
            shutdown_rx,
            transport,
            Arc::clone(&stats),
        ));
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
    transport: TransportLimits,
    stats: Arc<ServerStats>,
) {
    let next_session = AtomicU64::new(1);
    let counts = Arc::new(Mutex::new(Counts::default()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(place) = take_place(&counts, peer.ip(), &transport, &stats) else {
                        // Over a cap: closed at once, before it costs more than its socket.
                        stats.turned_away.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    };
                    // Small messages, sent at once; little waiting in the kernel for one client.
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(transport.send_buffer_bytes);
                    let session = next_session.fetch_add(1, Ordering::Relaxed);
                    let connection = Connection {
                        session,
                        hub: hub.clone(),
                        transport,
                        stats: Arc::clone(&stats),
                    };
                    tokio::spawn(connection.start(stream, place, shutdown.clone()));
                }
                // Out of file descriptors or similar: wait a moment and go on accepting.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = shutdown.changed() => return,
        }
    }
}

fn take_place(
    counts: &Arc<Mutex<Counts>>,
    ip: IpAddr,
    transport: &TransportLimits,
    stats: &Arc<ServerStats>,
) -> Option<Place> {
    let mut guard = counts.lock().unwrap_or_else(PoisonError::into_inner);
    let total = guard.total;
    let entry = guard.by_ip.entry(ip).or_default();
    if total >= transport.max_connections
        || entry.0 >= transport.max_connections_per_ip
        || entry.1 >= transport.max_handshakes_per_ip
    {
        if entry.0 == 0 {
            guard.by_ip.remove(&ip);
        }
        return None;
    }
    entry.0 += 1;
    entry.1 += 1;
    guard.total += 1;
    stats.connections.store(guard.total, Ordering::Relaxed);
    Some(Place {
        counts: Arc::clone(counts),
        ip,
        handshaking: true,
        stats: Arc::clone(stats),
    })
}

/// One client's connection task.
struct Connection {
    session: SessionId,
    hub: mpsc::Sender<HubEvent>,
    transport: TransportLimits,
    stats: Arc<ServerStats>,
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

impl Connection {
    /// Waits for the client's first bytes in a small task; only then is the (much larger)
    /// state of a WebSocket connection allocated. The handshake deadline counts from here.
    async fn start(self, stream: TcpStream, place: Place, shutdown: watch::Receiver<bool>) {
        let deadline = tokio::time::Instant::now() + self.transport.handshake_timeout;
        // `peek` waits for real bytes (readiness alone may be a false positive).
        let mut first = [0_u8; 1];
        if !matches!(
            tokio::time::timeout_at(deadline, stream.peek(&mut first)).await,
            Ok(Ok(1))
        ) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Box::pin(self.run(stream, place, shutdown, deadline)).await;
    }

    async fn run(
        self,
        stream: TcpStream,
        mut place: Place,
        shutdown: watch::Receiver<bool>,
        deadline: tokio::time::Instant,
    ) {
        let handshake = tokio::time::timeout_at(
            deadline,
            tokio_tungstenite::accept_async_with_config(stream, Some(websocket_config())),
        )
        .await;
        let Ok(Ok(websocket)) = handshake else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        place.handshake_done();
        let (outbox_tx, outgoing) = mpsc::channel(OUTBOX_CAPACITY);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let closing = Arc::new(tokio::sync::Notify::new());
        let outbox = Outbox {
            sender: outbox_tx,
            queued_bytes: Arc::clone(&queued_bytes),
            limit_bytes: self.transport.outbox_bytes,
            closing: Arc::clone(&closing),
        };
        let opened = HubEvent::Open {
            session: self.session,
            outbox,
        };
        if self.hub.send(opened).await.is_err() {
            return;
        }
        let ended = self
            .serve(websocket, outgoing, &queued_bytes, &closing, shutdown)
            .await;
        match ended {
            Ended::Shutdown => {}
            Ended::Dropped => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                let _ = self
                    .hub
                    .send(HubEvent::Closed {
                        session: self.session,
                    })
                    .await;
            }
            Ended::Normally => {
                let _ = self
                    .hub
                    .send(HubEvent::Closed {
                        session: self.session,
                    })
                    .await;
            }
        }
        drop(place);
    }

    async fn serve(
        &self,
        websocket: tokio_tungstenite::WebSocketStream<TcpStream>,
        mut outgoing: mpsc::Receiver<Outgoing>,
        queued_bytes: &AtomicUsize,
        closing: &tokio::sync::Notify,
        mut shutdown: watch::Receiver<bool>,
    ) -> Ended {
        let mut socket = websocket;
        let write_timeout = self.transport.write_timeout;
        let mut ping = tokio::time::interval(self.transport.ping_interval);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        // Made once: each ends the loop when it fires.
        let closed_by_hub = closing.notified();
        tokio::pin!(closed_by_hub);
        let shutting_down = shutdown.changed();
        tokio::pin!(shutting_down);
        loop {
            tokio::select! {
                frame = socket.next() => {
                    last_heard = tokio::time::Instant::now();
                    let session = self.session;
                    let event = match frame {
                        Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                            HubEvent::Oversized { session, bytes: text.len() }
                        }
                        Some(Ok(Message::Text(text))) => HubEvent::Frame { session, text },
                        Some(Ok(Message::Binary(data))) => HubEvent::Binary { session, bytes: data.len() },
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => return Ended::Normally,
                        Some(Err(error)) => {
                            // A frame the protocol cannot read (too large, malformed): say so,
                            // then close, as the connection can no longer be read.
                            let error = CallError::new(
                                ErrorCode::InvalidParameter,
                                format!("the connection is closed: {error}"),
                            );
                            let text = encode(&ServerMessage::error(&error, None));
                            let _ = send_within(&mut socket, Message::Text(text.into()), write_timeout).await;
                            return Ended::Dropped;
                        }
                    };
                    if self.hub.send(event).await.is_err() {
                        return Ended::Normally;
                    }
                }
                // The hub is done with this client: what it queued before (the error that says
                // why, say) still goes out, as long as the client takes it in time.
                () = &mut closed_by_hub => {
                    while let Ok(Outgoing::Text(text)) = outgoing.try_recv() {
                        let bytes = text.len();
                        let sent = send_within(&mut socket, Message::Text(text), write_timeout).await;
                        queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                        if !sent {
                            return Ended::Dropped;
                        }
                    }
                    let _ = send_within(&mut socket, Message::Close(None), write_timeout).await;
                    return Ended::Normally;
                }
                message = outgoing.recv() => match message {
                    Some(Outgoing::Text(text)) => {
                        let bytes = text.len();
                        let sent = send_within(&mut socket, Message::Text(text), write_timeout).await;
                        queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                        if !sent {
                            return Ended::Dropped;
                        }
                    }
                    None => {
                        let _ = send_within(&mut socket, Message::Close(None), write_timeout).await;
                        return Ended::Normally;
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.transport.idle_timeout {
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

/// Sends `message`, giving up after `limit`; whether it went. Most sends finish at once, and
/// those take no timer.
async fn send_within(
    socket: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    message: Message,
    limit: Duration,
) -> bool {
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
        HubEvent::Frame { session, text } => {
            stats.frames.fetch_add(1, Ordering::Relaxed);
            board.handle_frame(session, now, text.as_str());
        }
        HubEvent::Oversized { session, bytes } => board.handle_oversized(session, now, bytes),
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
