//! The Redis bus of a signaling node (`callscope server --redis URL --node-id N`): the tokio
//! driver that carries the switchboard's node messages and presence between nodes.
//!
//! - Each node subscribes to its own channel, `callscope:node:{id}`, and to the presence
//!   channel, `callscope:presence`, on one connection, and publishes on another: what one node
//!   sends arrives in the order it was sent.
//! - Presence records: `callscope:user:{user}` holds `{node} {since_ms}` for each user logged in,
//!   with a TTL refreshed by heartbeats, so a node that dies leaves no record behind for long.
//!   `callscope:alive:{node}` is the node's own heartbeat, with a short TTL.
//! - A node whose heartbeat key is gone is lost: the switchboard ends what it homed.
//! - Redis going away: what is to be sent meanwhile is dropped and counted; the bus reconnects
//!   (waiting longer each time, up to a second), and the switchboard then publishes its roster
//!   and asks for everyone else's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::server::ServerStats;
use super::switchboard::{NodeMessage, Presence};

/// The channel every node hears presence on.
pub const PRESENCE_CHANNEL: &str = "callscope:presence";
/// How long a user's presence record lives without a heartbeat.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// How long a node's heartbeat key lives; it is renewed every [`HEARTBEAT`].
pub const ALIVE_TTL: Duration = Duration::from_secs(3);
/// How often a node renews its heartbeat and checks the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Presence records are renewed this often.
const PRESENCE_REFRESH: Duration = Duration::from_secs(5);
/// Heartbeat checks a node's key may be missing in before it counts as lost.
const MISSES_BEFORE_LOST: u32 = 2;
/// How long after a node dies the others find it lost, at most: its heartbeat key expires,
/// then it is missed twice.
pub const NODE_LOST_AFTER: Duration =
    Duration::from_secs(ALIVE_TTL.as_secs() + HEARTBEAT.as_secs() * MISSES_BEFORE_LOST as u64);
/// The longest wait between two attempts to reach Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Messages waiting for the bus at most; beyond, they are dropped and counted.
pub(super) const BUS_CAPACITY: usize = 65_536;
/// Messages sent to Redis in one round trip at most.
const BATCH: usize = 512;
/// Presence records renewed in one round trip at most.
const RENEW_BATCH: usize = 500;

/// The channel of one node.
pub fn node_channel(node: &str) -> String {
    format!("callscope:node:{node}")
}

/// Where a node finds the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// `redis://HOST:PORT` (or `redis://HOST:PORT/DB`).
    pub url: String,
    /// This node's id, unique among the nodes.
    pub node: String,
}

/// What the switchboard hands the bus.
#[derive(Debug)]
pub(super) enum ToBus {
    Publish { node: String, message: NodeMessage },
    Announce(Presence),
}

/// What the bus hands the switchboard.
#[derive(Debug)]
pub(super) enum FromBus {
    /// (Re)connected to Redis.
    Connected,
    /// A node message for this node.
    Node { from: String, message: NodeMessage },
    /// Presence told to every node.
    Presence(Presence),
    /// A node's heartbeat stopped.
    NodeLost(String),
}

/// A node message on the wire: who sent it, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    message: NodeMessage,
}

/// Deletes a presence record only if it is still this node's (a later log-in elsewhere may
/// have replaced it).
const DELETE_IF_OURS: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn user_key(user: &str) -> String {
    format!("callscope:user:{user}")
}

fn alive_key(node: &str) -> String {
    format!("callscope:alive:{node}")
}

/// Checks a Redis URL.
pub fn check_url(url: &str) -> Result<(), String> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|error| format!("not a Redis URL ({url}): {error}"))
}

/// Starts the bus; what it hears goes to `hub`.
pub(super) fn start(
    config: BusConfig,
    hub: mpsc::Sender<FromBus>,
    stats: Arc<ServerStats>,
) -> mpsc::Sender<ToBus> {
    let (to_bus, from_board) = mpsc::channel(BUS_CAPACITY);
    tokio::spawn(run(config, from_board, hub, stats));
    to_bus
}

/// This node's users and when they logged in, as the switchboard announced them.
#[derive(Debug, Default)]
struct Local {
    users: HashMap<String, u64>,
}

impl Local {
    fn note(&mut self, own: &str, presence: &Presence) {
        match presence {
            Presence::Online {
                node,
                user,
                since_millis,
            } if node == own => {
                self.users.insert(user.clone(), *since_millis);
            }
            Presence::Offline { node, user, .. } if node == own => {
                self.users.remove(user);
            }
            Presence::Roster { node, users } if node == own => {
                self.users = users.iter().cloned().collect();
            }
            _ => {}
        }
    }
}

fn record(own: &str, since_millis: u64) -> String {
    format!("{own} {since_millis}")
}

/// Writes `user`'s presence record (logged in to `own` since `since_millis`), with its TTL.
fn set_presence(pipe: &mut redis::Pipeline, own: &str, user: &str, since_millis: u64) {
    pipe.cmd("SET")
        .arg(user_key(user))
        .arg(record(own, since_millis))
        .arg("EX")
        .arg(PRESENCE_TTL.as_secs())
        .ignore();
}

async fn run(
    config: BusConfig,
    mut from_board: mpsc::Receiver<ToBus>,
    hub: mpsc::Sender<FromBus>,
    stats: Arc<ServerStats>,
) {
    let Ok(client) = redis::Client::open(config.url.as_str()) else {
        return;
    };
    let mut local = Local::default();
    // Nodes heard from, and how many heartbeat checks in a row found them silent: kept across
    // reconnections, so a node that died while Redis was away is still found lost.
    let mut nodes: HashMap<String, u32> = HashMap::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Ok((connection, messages)) = connect(&client, &config.node).await {
            backoff = Duration::from_millis(100);
            stats.bus_connected.store(true, Ordering::Relaxed);
            if hub.send(FromBus::Connected).await.is_err() {
                return;
            }
            let link = Link {
                own: &config.node,
                connection,
                hub: &hub,
                stats: &stats,
            };
            let stop = link
                .serve(messages, &mut from_board, &mut local, &mut nodes)
                .await;
            stats.bus_connected.store(false, Ordering::Relaxed);
            if stop {
                return;
            }
            stats.bus_reconnects.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // Nothing can be sent meanwhile: what the switchboard hands over is dropped.
        let waited = tokio::time::sleep(backoff);
        tokio::pin!(waited);
        loop {
            tokio::select! {
                () = &mut waited => break,
                next = from_board.recv() => match next {
                    Some(ToBus::Announce(presence)) => {
                        local.note(&config.node, &presence);
                        stats.bus_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(ToBus::Publish { .. }) => {
                        stats.bus_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn connect(
    client: &redis::Client,
    own: &str,
) -> redis::RedisResult<(redis::aio::MultiplexedConnection, redis::aio::PubSubStream)> {
    let limit = Duration::from_secs(2);
    let mut pubsub = tokio::time::timeout(limit, client.get_async_pubsub())
        .await
        .map_err(timed_out)??;
    pubsub
        .subscribe(&[node_channel(own), PRESENCE_CHANNEL.to_owned()])
        .await?;
    let connection = tokio::time::timeout(limit, client.get_multiplexed_async_connection())
        .await
        .map_err(timed_out)??;
    Ok((connection, pubsub.into_on_message()))
}

fn timed_out(_: tokio::time::error::Elapsed) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

/// One connection to Redis, while it lasts.
struct Link<'a> {
    own: &'a str,
    connection: redis::aio::MultiplexedConnection,
    hub: &'a mpsc::Sender<FromBus>,
    stats: &'a ServerStats,
}

/// Nodes heard from, and how many heartbeat checks in a row found each silent: the hearing
/// part of a link resets a node's count, its heartbeat part counts.
type Heard<'a> = Mutex<&'a mut HashMap<String, u32>>;

impl Link<'_> {
    /// Carries messages both ways until the connection breaks (false) or the server stops
    /// (true). Hearing, sending and the heartbeat go on at once: a batch waiting for Redis's
    /// reply holds up neither what the other nodes send here nor the heartbeat, and renewing
    /// many presence records holds up no message.
    async fn serve(
        self,
        messages: redis::aio::PubSubStream,
        from_board: &mut mpsc::Receiver<ToBus>,
        local: &mut Local,
        nodes: &mut HashMap<String, u32>,
    ) -> bool {
        for misses in nodes.values_mut() {
            *misses = 0;
        }
        let nodes: Heard<'_> = Mutex::new(nodes);
        tokio::select! {
            stop = self.hear(messages, &nodes) => stop,
            stop = self.send_all(from_board, local) => stop,
            stop = self.watch(&nodes) => stop,
        }
    }

    /// Hands what is heard on the channels to the switchboard. A place in its queue is taken
    /// before a message is read, so none read is dropped when the link stops.
    async fn hear(&self, mut messages: redis::aio::PubSubStream, nodes: &Heard<'_>) -> bool {
        loop {
            let Ok(place) = self.hub.reserve().await else {
                return true;
            };
            let Some(message) = messages.next().await else {
                return false;
            };
            if let Some(heard) = self.read(&message, nodes) {
                place.send(heard);
            }
        }
    }

    /// Sends what the switchboard hands over, in batches of one round trip each, in order;
    /// every [`PRESENCE_REFRESH`] this node's presence records are renewed along with them, a
    /// share per batch.
    async fn send_all(&self, from_board: &mut mpsc::Receiver<ToBus>, local: &mut Local) -> bool {
        let mut connection = self.connection.clone();
        // The first tick is at once: the records are renewed as soon as Redis is back.
        let mut refresh = tokio::time::interval(PRESENCE_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due: VecDeque<String> = VecDeque::new();
        loop {
            let mut batch = Vec::new();
            if due.is_empty() {
                tokio::select! {
                    next = from_board.recv() => match next {
                        Some(first) => batch.push(first),
                        None => return true,
                    },
                    _ = refresh.tick() => {
                        due = local.users.keys().cloned().collect();
                        continue;
                    }
                }
            }
            while batch.len() < BATCH {
                match from_board.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return true,
                }
            }
            let renew: Vec<String> = due.drain(..due.len().min(RENEW_BATCH)).collect();
            if self
                .send(&mut connection, batch, &renew, local)
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Renews this node's heartbeat every [`HEARTBEAT`] and checks the others'.
    async fn watch(&self, nodes: &Heard<'_>) -> bool {
        let mut connection = self.connection.clone();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        // After a stall, one beat: two at once would count two misses within milliseconds.
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The others reconnect too, within a second of each other: they are not judged until
        // they had the time to renew their heartbeats.
        let judge_from = tokio::time::Instant::now() + ALIVE_TTL;
        loop {
            heartbeat.tick().await;
            let judge = tokio::time::Instant::now() >= judge_from;
            let Ok(lost) = self.beat(&mut connection, judge, nodes).await else {
                return false;
            };
            for node in lost {
                if self
                    .hub
                    .send(FromBus::NodeLost(node.clone()))
                    .await
                    .is_err()
                {
                    return true;
                }
                // Forgotten once the switchboard is told: a link that stops before leaves it
                // to be judged again on the next.
                lock(nodes).remove(&node);
                self.stats.nodes_lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// What a message heard on a channel means, if anything.
    fn read(&self, message: &redis::Msg, nodes: &Heard<'_>) -> Option<FromBus> {
        let payload: String = message.get_payload().ok()?;
        if message.get_channel_name() == PRESENCE_CHANNEL {
            let presence: Presence = serde_json::from_str(&payload).ok()?;
            let node = match &presence {
                Presence::Online { node, .. }
                | Presence::Offline { node, .. }
                | Presence::Roster { node, .. }
                | Presence::RosterRequest { node }
                | Presence::Traces { node, .. }
                | Presence::LogInRefused { node, .. } => node,
            };
            if node != self.own {
                heard_from(nodes, node);
            }
            return Some(FromBus::Presence(presence));
        }
        let envelope: Envelope = serde_json::from_str(&payload).ok()?;
        heard_from(nodes, &envelope.from);
        Some(FromBus::Node {
            from: envelope.from,
            message: envelope.message,
        })
    }

    /// Sends a batch in one round trip, and renews the presence records of `renew` still
    /// logged in here.
    async fn send(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
        batch: Vec<ToBus>,
        renew: &[String],
        local: &mut Local,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for item in batch {
            match item {
                ToBus::Publish { node, message } => {
                    let envelope = Envelope {
                        from: self.own.to_owned(),
                        message,
                    };
                    let Ok(payload) = serde_json::to_string(&envelope) else {
                        continue;
                    };
                    pipe.cmd("PUBLISH")
                        .arg(node_channel(&node))
                        .arg(payload)
                        .ignore();
                }
                ToBus::Announce(presence) => {
                    match &presence {
                        Presence::Online {
                            node,
                            user,
                            since_millis,
                        } if node == self.own => {
                            set_presence(&mut pipe, self.own, user, *since_millis);
                        }
                        // Its record is deleted only if it still says it logged in here then.
                        Presence::Offline { node, user, .. } if node == self.own => {
                            if let Some(ours) = local.users.get(user) {
                                pipe.cmd("EVAL")
                                    .arg(DELETE_IF_OURS)
                                    .arg(1)
                                    .arg(user_key(user))
                                    .arg(record(self.own, *ours))
                                    .ignore();
                            }
                        }
                        _ => {}
                    }
                    // After the record is written or deleted: the note forgets who leaves.
                    local.note(self.own, &presence);
                    let Ok(payload) = serde_json::to_string(&presence) else {
                        continue;
                    };
                    pipe.cmd("PUBLISH")
                        .arg(PRESENCE_CHANNEL)
                        .arg(payload)
                        .ignore();
                }
            }
        }
        // After the batch's own announcements: a user who just logged out is not renewed.
        for user in renew {
            if let Some(since) = local.users.get(user) {
                set_presence(&mut pipe, self.own, user, *since);
            }
        }
        if pipe.is_empty() {
            // Only users who have logged out since were due: nothing to send.
            return Ok(());
        }
        pipe.query_async::<()>(connection).await
    }

    /// Renews this node's heartbeat and checks the other nodes'; the nodes found lost.
    async fn beat(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
        judge: bool,
        nodes: &Heard<'_>,
    ) -> redis::RedisResult<Vec<String>> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(alive_key(self.own))
            .arg(1)
            .arg("PX")
            .arg(u64::try_from(ALIVE_TTL.as_millis()).unwrap_or(u64::MAX))
            .ignore();
        let known: Vec<String> = lock(nodes).keys().cloned().collect();
        for node in &known {
            pipe.cmd("EXISTS").arg(alive_key(node));
        }
        let alive: Vec<bool> = pipe.query_async(connection).await?;
        let mut nodes = lock(nodes);
        let mut lost = Vec::new();
        for (node, alive) in known.into_iter().zip(alive) {
            let misses = nodes.entry(node.clone()).or_default();
            *misses = if alive || !judge { 0 } else { *misses + 1 };
            if *misses >= MISSES_BEFORE_LOST {
                lost.push(node);
            }
        }
        Ok(lost)
    }
}

/// The nodes heard from, locked (never across an `.await`).
fn lock<'a, 'b>(nodes: &'a Heard<'b>) -> std::sync::MutexGuard<'a, &'b mut HashMap<String, u32>> {
    nodes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A message from `node` was heard: it is alive.
fn heard_from(nodes: &Heard<'_>, node: &str) {
    let mut nodes = lock(nodes);
    match nodes.get_mut(node) {
        Some(misses) => *misses = 0,
        None => {
            nodes.insert(node.to_owned(), 0);
        }
    }
}
