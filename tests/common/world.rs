//! A whole callscope deployment in virtual time: the real switchboard, one real engine
//! `Driver` per user (demo peers with their real scripts), and per call the real media mesh and
//! negotiation machines over a modelled network. Nothing sleeps and no socket opens: time jumps
//! from one due event to the next, so a 30 s ring takes microseconds, with every default timer
//! (ringing timeouts, the connect deadline, the ICE give-up timers, reconnect backoff) running.
//!
//! The model of the network: a message takes `HOP` each way between a client and the server;
//! a connection's checks succeed `ICE_CONNECT` after both ends have set both descriptions; a
//! path whose far end stops answering goes `disconnected` after `ICE_DISCONNECT` and `failed`
//! `ICE_FAIL` later, as the WebRTC stack is configured to.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use callscope::engine::{
    DEMO_PEERS, Driver, DriverConfig, EngineCommand, EngineState, Output, Script,
};
use callscope::kit::CallKit;
use callscope::media::mesh::{Mesh, MeshStep};
use callscope::media::negotiation::{
    DescriptionKind, IceState, Negotiation, Report, Ringing, Step, description_kind,
};
use callscope::media::{MediaCommand, MediaEvent, MediaReport};
use callscope::model::MonoTime;
use callscope::signaling::switchboard::{
    Output as BoardOutput, SessionId, Switchboard, SwitchboardConfig,
};
use callscope::signaling::usersig::{self, DEFAULT_APP_ID, Keyring, UserSigClaims};
use callscope::signaling::{ClientMessage, ServerMessage, decode_server, encode};
use callscope::timeline::{CheckOptions, Clock, Finding, TimelineEntry, check};

/// One way between a client and the server.
pub const HOP: Duration = Duration::from_millis(1);
/// From both ends ready to connected.
pub const ICE_CONNECT: Duration = Duration::from_millis(12);
/// No answer from the far end for this long: `disconnected` (the stack's setting).
pub const ICE_DISCONNECT: Duration = callscope::media::ICE_DISCONNECTED_AFTER;
/// Then this much longer: `failed` (the stack's setting).
pub const ICE_FAIL: Duration = callscope::media::ICE_FAILED_AFTER;
/// Gathering the candidates of a local description.
pub const GATHER: Duration = Duration::from_millis(1);

const SECRET: &[u8] = b"the virtual world's secret";
/// The Unix time the world starts at (UserSigs are checked against it).
const UNIX_START: u64 = 1_800_000_000;

/// Something due at a time.
#[derive(Debug, Clone)]
enum Due {
    /// A frame reaches the server.
    ToServer { session: SessionId, frame: String },
    /// A frame reaches a client.
    ToClient { session: SessionId, frame: String },
    /// The server closed a session; its client notices.
    Closed { session: SessionId },
    /// A connection attempt of `user` completes.
    Connected { user: String },
    /// A media fact for the connection `user` → `remote`.
    Ice {
        user: String,
        call_id: String,
        remote: String,
        state: IceState,
    },
    /// The candidates of `user`'s local description to `remote` are gathered.
    Gathered {
        user: String,
        call_id: String,
        remote: String,
    },
    /// A command a test planned.
    Command {
        user: String,
        command: EngineCommand,
    },
    /// A node message reaches the node `to`.
    ToNode {
        to: usize,
        from: String,
        message: callscope::signaling::switchboard::NodeMessage,
    },
    /// Presence a node told reaches every other node.
    Presence {
        from: usize,
        presence: callscope::signaling::switchboard::Presence,
    },
    /// The live nodes find that `node` is lost.
    NodeLost { node: usize },
}

/// One modelled peer connection of one user.
#[derive(Debug)]
struct SimPeer {
    negotiation: Negotiation,
    local: Option<DescriptionKind>,
    remote: bool,
    connected: bool,
    /// The far end was cut off: checks go unanswered.
    cut: bool,
    /// Grows with every change that makes pending timers stale.
    epoch: u64,
}

/// The media of one user's open call.
#[derive(Debug)]
struct SimMedia {
    call_id: String,
    /// Whether its connections ring privately (the user's setting when the call began).
    private_ringing: bool,
    mesh: Mesh,
    peers: BTreeMap<String, SimPeer>,
}

/// One user: the real driver (and script, for a demo peer) and its modelled media.
struct Node {
    driver: Driver,
    script: Option<Script>,
    session: Option<SessionId>,
    media: Option<SimMedia>,
    notices: Vec<String>,
    /// The ringing setting for the next call.
    private_ringing: bool,
}

/// The deployment.
pub struct World {
    now: MonoTime,
    clock: Clock,
    /// The signaling nodes: one switchboard alone, or several sharing a bus.
    boards: Vec<Switchboard>,
    /// Nodes killed: they handle nothing more.
    dead: Vec<bool>,
    /// The node each user connects to first (the first one unless placed).
    placed: BTreeMap<String, usize>,
    /// The node of each open session.
    node_of: BTreeMap<SessionId, usize>,
    nodes: BTreeMap<String, Node>,
    sessions: BTreeMap<SessionId, String>,
    next_session: SessionId,
    queue: BinaryHeap<Reverse<(MonoTime, u64)>>,
    due: BTreeMap<u64, Due>,
    next_due: u64,
    next_tick: MonoTime,
    /// While set, connection attempts fail (the server is down).
    server_down: bool,
    /// Ice events carry the epoch they were scheduled in.
    ice_epochs: BTreeMap<u64, u64>,
    /// Every media negotiation message a client received: when, to whom, from whom.
    negotiation_messages: Vec<(MonoTime, String, String)>,
    /// The end-of-call records the server made for the webhooks, in order.
    pub call_records: Vec<callscope::signaling::webhook::CallRecordEvent>,
    /// The call events the server made for the webhooks, in order.
    pub call_events: Vec<callscope::signaling::webhook::CallEvent>,
}

impl World {
    /// The switchboard with the demo peers listed and logged in, and nobody else yet.
    pub fn with_demo_peers() -> Self {
        let mut world = Self::empty();
        for peer in DEMO_PEERS {
            world.add(peer.user_id, Some(Script::new(peer.behaviour)));
        }
        world.run_for(Duration::from_millis(50));
        world
    }

    /// An empty deployment.
    pub fn empty() -> Self {
        Self::with_boards(vec![Switchboard::new(board_config(
            callscope::engine::demo_contacts(),
            None,
        ))])
    }

    /// An empty deployment of `count` signaling nodes sharing a bus (the order of a Redis
    /// bus: what one node sends arrives in order, [`BUS_HOP`] later).
    pub fn nodes(count: usize) -> Self {
        let boards = (0..count)
            .map(|node| {
                Switchboard::new(board_config(
                    callscope::engine::demo_contacts(),
                    Some(node_name(node)),
                ))
            })
            .collect();
        let mut world = Self::with_boards(boards);
        for node in 0..count {
            let millis = world.unix_millis();
            world.boards[node].handle_bus_connected(millis);
            world.drain_board(node);
        }
        world
    }

    /// Users that connect to `node` first (the others to the first node).
    pub fn place(&mut self, user: &str, node: usize) {
        self.placed.insert(user.to_owned(), node);
    }

    /// The demo peers, each on the node `node_of(peer)`, logged in.
    pub fn add_demo_peers(&mut self, node_of: impl Fn(usize) -> usize) {
        for (index, peer) in DEMO_PEERS.iter().enumerate() {
            self.place(peer.user_id, node_of(index));
            self.add(peer.user_id, Some(Script::new(peer.behaviour)));
        }
        self.run_for(Duration::from_millis(50));
    }

    /// The node `user` is connected to now.
    pub fn node_of_user(&self, user: &str) -> Option<usize> {
        let session = self.nodes.get(user)?.session?;
        self.node_of.get(&session).copied()
    }

    /// A node dies at once (as with kill -9): its connections drop, it handles nothing more,
    /// and the other nodes find it lost when its heartbeat key expires.
    pub fn kill_node(&mut self, node: usize) {
        self.dead[node] = true;
        let sessions: Vec<SessionId> = self
            .node_of
            .iter()
            .filter(|(_, at)| **at == node)
            .map(|(session, _)| *session)
            .collect();
        for session in sessions {
            self.node_of.remove(&session);
            self.schedule(HOP, Due::Closed { session });
        }
        let found = callscope::signaling::NODE_LOST_AFTER;
        self.schedule(found, Due::NodeLost { node });
    }

    fn with_boards(boards: Vec<Switchboard>) -> Self {
        Self {
            now: MonoTime::from_millis(1),
            clock: Clock::start(),
            dead: vec![false; boards.len()],
            boards,
            placed: BTreeMap::new(),
            node_of: BTreeMap::new(),
            nodes: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            queue: BinaryHeap::new(),
            due: BTreeMap::new(),
            next_due: 0,
            next_tick: MonoTime::from_millis(1000),
            server_down: false,
            ice_epochs: BTreeMap::new(),
            negotiation_messages: Vec::new(),
            call_records: Vec::new(),
            call_events: Vec::new(),
        }
    }

    /// Adds a user (with a script for a demo peer); it connects at once.
    pub fn add(&mut self, user: &str, script: Option<Script>) {
        let kit = CallKit::builder().user(user).clock(self.clock).build();
        let config = DriverConfig {
            server_traces: false,
            share_traces: false,
            user_id: user.to_owned(),
            user_sig: user_sig(user),
            media: true,
        };
        let mut counter = 0_u32;
        let prefix = format!("c-{user}-");
        let call_ids = Box::new(move || {
            counter += 1;
            format!("{prefix}{counter}")
        });
        let driver = Driver::new(config, kit, call_ids, self.now);
        self.nodes.insert(
            user.to_owned(),
            Node {
                driver,
                script,
                session: None,
                media: None,
                notices: Vec::new(),
                private_ringing: true,
            },
        );
        self.settle(user);
    }

    /// Virtual time now.
    pub fn now(&self) -> MonoTime {
        self.now
    }

    /// The virtual time since the world started.
    pub fn elapsed(&self) -> Duration {
        self.now.since(MonoTime::from_millis(1))
    }

    /// `user`'s engine state.
    pub fn state(&self, user: &str) -> &EngineState {
        self.nodes[user].driver.state()
    }

    /// `user`'s timeline.
    pub fn entries(&self, user: &str) -> Vec<TimelineEntry> {
        self.nodes[user]
            .driver
            .kit()
            .timeline()
            .query(&callscope::timeline::Query::all())
            .iter()
            .map(|entry| (**entry).clone())
            .collect()
    }

    /// `user`'s entries' kinds, in order.
    pub fn kinds(&self, user: &str) -> Vec<&'static str> {
        self.entries(user)
            .iter()
            .map(|entry| entry.kind().as_str())
            .collect()
    }

    /// Notices `user`'s engine gave.
    pub fn notices(&self, user: &str) -> &[String] {
        &self.nodes[user].notices
    }

    /// Whether `user` has a media connection open to `remote`, and its negotiation's phase.
    pub fn media_phase(
        &self,
        user: &str,
        remote: &str,
    ) -> Option<callscope::media::negotiation::Phase> {
        let media = self.nodes[user].media.as_ref()?;
        media.peers.get(remote).map(|peer| peer.negotiation.phase())
    }

    /// When `to` received media negotiation (a description or a candidate) from `from`.
    pub fn negotiation_received(&self, to: &str, from: &str) -> Vec<MonoTime> {
        self.negotiation_messages
            .iter()
            .filter(|(_, at, by)| at == to && by == from)
            .map(|(when, _, _)| *when)
            .collect()
    }

    /// Whether `user` has any call media open.
    pub fn has_media(&self, user: &str) -> bool {
        self.nodes[user].media.is_some()
    }

    /// The contract checker's findings on every user's timeline (`ring_timeout` as placed).
    pub fn findings(&self, options: &CheckOptions) -> Vec<Finding> {
        let mut all = Vec::new();
        for user in self.nodes.keys() {
            all.extend(check(&self.entries(user), options));
        }
        all
    }

    /// Lets what is in flight land (a second), then asserts that every timeline keeps the
    /// contract.
    pub fn assert_contract(&mut self) {
        self.run_for(Duration::from_secs(1));
        self.assert_contract_with(&CheckOptions::default());
    }

    /// Asserts that every timeline keeps the contract, checked with `options`.
    pub fn assert_contract_with(&self, options: &CheckOptions) {
        let findings = self.findings(options);
        assert!(
            findings.is_empty(),
            "contract violations:\n{}",
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// `user` sends `command` now.
    pub fn command(&mut self, user: &str, command: EngineCommand) {
        let now = self.now;
        if let Some(node) = self.nodes.get_mut(user) {
            node.driver.handle_command(now, command);
        }
        self.settle(user);
    }

    /// `user` will send `command` after `delay`.
    pub fn command_after(&mut self, delay: Duration, user: &str, command: EngineCommand) {
        self.schedule(
            delay,
            Due::Command {
                user: user.to_owned(),
                command,
            },
        );
    }

    /// The server goes away: every session closes and connection attempts fail until
    /// [`World::restart_server`]; the restarted server remembers no call.
    pub fn stop_server(&mut self) {
        self.server_down = true;
        let sessions: Vec<SessionId> = self.sessions.keys().copied().collect();
        for session in sessions {
            if let Some(node) = self.node_of.remove(&session) {
                self.boards[node].close(session);
            }
            self.schedule(HOP, Due::Closed { session });
        }
        // What the closing sessions cause reaches nobody: every connection is down first.
        for node in 0..self.boards.len() {
            self.drain_board(node);
        }
    }

    /// The server is back, empty.
    pub fn restart_server(&mut self) {
        self.server_down = false;
        self.boards = vec![Switchboard::new(board_config(
            callscope::engine::demo_contacts(),
            None,
        ))];
        self.dead = vec![false];
    }

    /// Runs until `done` holds (checked after every event), at most `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            let Some(next) = self.next_time() else {
                return false;
            };
            if next > end {
                self.now = end;
                return done(self);
            }
            self.step(next);
        }
    }

    /// Runs `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }

    fn next_time(&self) -> Option<MonoTime> {
        let queued = self.queue.peek().map(|Reverse((at, _))| *at);
        let timers = self.nodes.values().flat_map(|node| {
            let media = node.media.iter().flat_map(|media| {
                media
                    .peers
                    .values()
                    .filter_map(|peer| peer.negotiation.poll_timeout())
            });
            [
                node.driver.poll_timeout(),
                node.script.as_ref().and_then(Script::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .chain(media)
        });
        queued
            .into_iter()
            .chain(timers)
            .chain(std::iter::once(self.next_tick))
            .min()
            .map(|at| at.max(self.now))
    }

    fn step(&mut self, at: MonoTime) {
        self.now = at;
        while let Some(Reverse((when, id))) = self.queue.peek().copied() {
            if when > at {
                break;
            }
            self.queue.pop();
            if let Some(due) = self.due.remove(&id) {
                self.happen(id, due);
            }
        }
        if self.next_tick <= at {
            self.next_tick = at + Duration::from_secs(1);
            for node in self.live_nodes() {
                let millis = self.unix_millis();
                self.boards[node].handle_tick(millis);
                self.drain_board(node);
            }
        }
        let users: Vec<String> = self.nodes.keys().cloned().collect();
        for user in users {
            self.timers(&user);
        }
    }

    /// Fires `user`'s due timers: the driver's, the script's, its negotiations'.
    fn timers(&mut self, user: &str) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(user) else {
            return;
        };
        if node.driver.poll_timeout().is_some_and(|at| at <= now) {
            node.driver.handle_timeout(now);
        }
        if node
            .script
            .as_ref()
            .and_then(Script::poll_timeout)
            .is_some_and(|at| at <= now)
            && let Some(command) = node
                .script
                .as_mut()
                .and_then(|script| script.handle_timeout(now))
        {
            node.driver.handle_command(now, command);
        }
        if let Some(media) = &mut node.media {
            for peer in media.peers.values_mut() {
                if peer.negotiation.poll_timeout().is_some_and(|at| at <= now) {
                    peer.negotiation.handle_timeout(now);
                }
            }
        }
        self.settle(user);
    }

    fn schedule(&mut self, delay: Duration, due: Due) -> u64 {
        let id = self.next_due;
        self.next_due += 1;
        self.queue.push(Reverse((self.now + delay, id)));
        self.due.insert(id, due);
        id
    }

    fn unix_millis(&self) -> u64 {
        UNIX_START * 1000 + self.elapsed().as_millis() as u64
    }

    fn happen(&mut self, id: u64, due: Due) {
        let now = self.now;
        match due {
            Due::ToServer { session, frame } => {
                if self.sessions.contains_key(&session)
                    && let Some(node) = self.node_of.get(&session).copied()
                {
                    let millis = self.unix_millis();
                    self.boards[node].handle_frame(session, millis, &frame);
                    self.drain_board(node);
                }
            }
            Due::ToNode { to, from, message } => {
                if !self.dead[to] {
                    let millis = self.unix_millis();
                    self.boards[to].handle_node_message(millis, &from, message);
                    self.drain_board(to);
                }
            }
            Due::Presence { from, presence } => {
                for node in self.live_nodes() {
                    if node != from {
                        let millis = self.unix_millis();
                        self.boards[node].handle_presence(millis, presence.clone());
                        self.drain_board(node);
                    }
                }
            }
            Due::NodeLost { node: lost } => {
                for node in self.live_nodes() {
                    let millis = self.unix_millis();
                    self.boards[node].handle_node_lost(millis, &node_name(lost));
                    self.drain_board(node);
                }
            }
            Due::ToClient { session, frame } => {
                let Some(user) = self.user_of(session) else {
                    return;
                };
                if let Ok(ServerMessage::Sdp { from, .. } | ServerMessage::Ice { from, .. }) =
                    decode_server(&frame)
                {
                    self.negotiation_messages.push((now, user.clone(), from));
                }
                if let Some(node) = self.nodes.get_mut(&user) {
                    match decode_server(&frame) {
                        Ok(message) => node.driver.handle_server(now, message),
                        Err(error) => node.driver.handle_malformed(now, &error.to_string()),
                    }
                }
                self.settle(&user);
            }
            Due::Closed { session } => {
                self.sessions.remove(&session);
                let Some(user) = self
                    .nodes
                    .iter()
                    .find(|(_, node)| node.session == Some(session))
                    .map(|(user, _)| user.clone())
                else {
                    return;
                };
                if let Some(node) = self.nodes.get_mut(&user) {
                    node.session = None;
                    node.driver
                        .handle_lost(now, "the server closed the connection");
                }
                self.settle(&user);
            }
            Due::Connected { user } => self.connected(&user),
            Due::Ice {
                user,
                call_id,
                remote,
                state,
            } => {
                let epoch = self.ice_epochs.remove(&id);
                if let Some(peer) = self.peer_mut(&user, &call_id, &remote)
                    && epoch.is_none_or(|epoch| epoch == peer.epoch)
                {
                    if state == IceState::Connected {
                        peer.connected = true;
                    }
                    peer.negotiation.handle_ice(now, state);
                }
                self.settle(&user);
            }
            Due::Gathered {
                user,
                call_id,
                remote,
            } => {
                if let Some(peer) = self.peer_mut(&user, &call_id, &remote) {
                    peer.negotiation.handle_gathered(now);
                }
                self.settle(&user);
            }
            Due::Command { user, command } => self.command(&user, command),
        }
    }

    fn user_of(&self, session: SessionId) -> Option<String> {
        self.sessions.get(&session).cloned()
    }

    fn peer_mut(&mut self, user: &str, call_id: &str, remote: &str) -> Option<&mut SimPeer> {
        let media = self.nodes.get_mut(user)?.media.as_mut()?;
        if media.call_id != call_id {
            return None;
        }
        media.peers.get_mut(remote)
    }

    fn connected(&mut self, user: &str) {
        let now = self.now;
        if self.server_down {
            if let Some(node) = self.nodes.get_mut(user) {
                node.driver.handle_lost(now, "connection refused");
            }
            self.settle(user);
            return;
        }
        // The client tries the servers in turn, from the one it was placed on.
        let first = self.placed.get(user).copied().unwrap_or(0);
        let count = self.boards.len();
        let Some(node) = (0..count)
            .map(|step| (first + step) % count)
            .find(|node| !self.dead[*node])
        else {
            if let Some(node) = self.nodes.get_mut(user) {
                node.driver.handle_lost(now, "connection refused");
            }
            self.settle(user);
            return;
        };
        let session = self.next_session;
        self.next_session += 1;
        let millis = self.unix_millis();
        self.boards[node].open(session, millis);
        self.node_of.insert(session, node);
        self.sessions.insert(session, user.to_owned());
        if let Some(node) = self.nodes.get_mut(user) {
            node.session = Some(session);
            node.driver.handle_connected(now);
        }
        self.settle(user);
    }

    /// Carries out everything `user`'s driver and media have to do, until nothing is left.
    fn settle(&mut self, user: &str) {
        for _ in 0..1000 {
            let mut busy = false;
            while let Some(output) = self
                .nodes
                .get_mut(user)
                .and_then(|node| node.driver.poll_output())
            {
                busy = true;
                self.carry_out(user, output);
            }
            if self.media_work(user) {
                busy = true;
            }
            if !busy {
                break;
            }
        }
        let now = self.now;
        if let Some(node) = self.nodes.get_mut(user)
            && let Some(script) = &mut node.script
        {
            script.observe(now, node.driver.state());
        }
    }

    fn carry_out(&mut self, user: &str, output: Output) {
        match output {
            Output::Send(message) => self.send(user, &message),
            Output::Connect => {
                self.schedule(
                    HOP * 2,
                    Due::Connected {
                        user: user.to_owned(),
                    },
                );
            }
            Output::Disconnect => {
                if let Some(session) = self
                    .nodes
                    .get_mut(user)
                    .and_then(|node| node.session.take())
                {
                    self.sessions.remove(&session);
                    if let Some(node) = self.node_of.remove(&session) {
                        self.boards[node].close(session);
                        self.drain_board(node);
                    }
                }
            }
            Output::MediaOpen { call_id } => {
                if let Some(node) = self.nodes.get_mut(user) {
                    node.media = Some(SimMedia {
                        call_id,
                        private_ringing: node.private_ringing,
                        mesh: Mesh::new(user),
                        peers: BTreeMap::new(),
                    });
                }
            }
            Output::Media(command) => self.media_command(user, command),
            Output::MediaClose => self.close_media(user),
            Output::LoginElsewhere => self.log_in_elsewhere(user),
            Output::ListDevices => {
                if let Some(node) = self.nodes.get_mut(user) {
                    node.driver
                        .handle_devices(callscope::media::DeviceList::default());
                }
            }
            Output::PrivateRinging(private) => {
                if let Some(node) = self.nodes.get_mut(user) {
                    node.private_ringing = private;
                }
            }
            // The simulated links carry no packets to impair.
            Output::ChooseDevices(_) | Output::Impair(_) | Output::Stop => {}
            Output::Notice(text) => {
                if let Some(node) = self.nodes.get_mut(user) {
                    node.notices.push(text);
                }
            }
        }
    }

    fn send(&mut self, user: &str, message: &ClientMessage) {
        if let Some(session) = self.nodes.get(user).and_then(|node| node.session) {
            self.schedule(
                HOP,
                Due::ToServer {
                    session,
                    frame: encode(message),
                },
            );
        }
    }

    fn live_nodes(&self) -> Vec<usize> {
        (0..self.boards.len())
            .filter(|node| !self.dead[*node])
            .collect()
    }

    fn drain_board(&mut self, node: usize) {
        while let Some(output) = self.boards[node].poll_output() {
            match output {
                BoardOutput::Send {
                    session, message, ..
                } => {
                    self.schedule(
                        HOP,
                        Due::ToClient {
                            session,
                            frame: encode(&message),
                        },
                    );
                }
                BoardOutput::Close { session } => {
                    self.schedule(HOP, Due::Closed { session });
                }
                BoardOutput::Refused { .. } => {}
                BoardOutput::CallEvent(event) => self.call_events.push(event),
                BoardOutput::CallEnded(record) => self.call_records.push(record),
                BoardOutput::Publish { node: to, message } => {
                    let to = node_index(&to);
                    let from = node_name(node);
                    self.schedule(BUS_HOP, Due::ToNode { to, from, message });
                }
                BoardOutput::Announce(presence) => {
                    self.schedule(
                        BUS_HOP,
                        Due::Presence {
                            from: node,
                            presence,
                        },
                    );
                }
            }
        }
    }

    /// A second session logs in as `user`, as another device would.
    fn log_in_elsewhere(&mut self, user: &str) {
        let session = self.next_session;
        self.next_session += 1;
        // With several nodes, the other device reaches the next one.
        let node = self
            .nodes
            .get(user)
            .and_then(|node| node.session)
            .and_then(|session| self.node_of.get(&session).copied())
            .map_or(0, |node| (node + 1) % self.boards.len());
        let millis = self.unix_millis();
        self.boards[node].open(session, millis);
        self.node_of.insert(session, node);
        let login = ClientMessage::Login {
            version: callscope::signaling::PROTOCOL_VERSION,
            user_id: user.to_owned(),
            user_sig: user_sig(user),
        };
        // Not routed to any node: its replies go nowhere, like the other device's screen.
        self.schedule(
            HOP * 3,
            Due::ToServer {
                session,
                frame: encode(&login),
            },
        );
        self.sessions.insert(session, format!("{user} elsewhere"));
    }

    fn media_command(&mut self, user: &str, command: MediaCommand) {
        let now = self.now;
        let mut cuts: Vec<(String, String)> = Vec::new();
        {
            let Some(media) = self
                .nodes
                .get_mut(user)
                .and_then(|node| node.media.as_mut())
            else {
                return;
            };
            let call_id = media.call_id.clone();
            let mut steps = match command {
                MediaCommand::Sync(view) => media.mesh.sync(&view),
                MediaCommand::RemoteDescription { from, description } => {
                    let mut steps = media.mesh.remote_description(&from);
                    open_peers(media, &steps);
                    if let Some(peer) = media.peers.get_mut(&from) {
                        match description_kind(&description) {
                            Ok(kind) => {
                                peer.negotiation
                                    .handle_remote_description(now, kind, description);
                            }
                            Err(reason) => panic!("the world made a bad description: {reason}"),
                        }
                    }
                    steps.retain(|step| !matches!(step, MeshStep::Open { .. }));
                    steps
                }
                MediaCommand::RemoteCandidate { from, candidate } => {
                    if let Some(peer) = media.peers.get_mut(&from) {
                        peer.negotiation.handle_remote_candidate(candidate);
                    }
                    Vec::new()
                }
                MediaCommand::SetCamera(_)
                | MediaCommand::SetMicrophone(_)
                | MediaCommand::Impair(_)
                | MediaCommand::CutMedia { .. } => Vec::new(),
                MediaCommand::Vanish => {
                    for remote in media.peers.keys() {
                        cuts.push((remote.clone(), call_id.clone()));
                    }
                    media.peers.clear();
                    Vec::new()
                }
            };
            open_peers(media, &steps);
            for step in steps.drain(..) {
                match step {
                    MeshStep::Membership {
                        user_id,
                        local_joined,
                        remote_joined,
                    } => {
                        if let Some(peer) = media.peers.get_mut(&user_id) {
                            peer.negotiation
                                .handle_membership(now, local_joined, remote_joined);
                        }
                    }
                    MeshStep::Close { user_id } => {
                        if media.peers.remove(&user_id).is_some() {
                            cuts.push((user_id, call_id.clone()));
                        }
                    }
                    MeshStep::Join | MeshStep::Open { .. } => {}
                }
            }
        }
        for (remote, call_id) in cuts {
            self.cut(&remote, &call_id, user);
        }
    }

    /// `user` stops answering `remote`'s checks in `call_id`.
    fn cut(&mut self, remote: &str, call_id: &str, user: &str) {
        let Some(peer) = self.peer_mut(remote, call_id, user) else {
            return;
        };
        if peer.cut {
            return;
        }
        peer.cut = true;
        peer.epoch += 1;
        let epoch = peer.epoch;
        if peer.connected || peer.remote {
            self.ice_later(
                remote,
                call_id,
                user,
                ICE_DISCONNECT,
                IceState::Disconnected,
                epoch,
            );
            self.ice_later(
                remote,
                call_id,
                user,
                ICE_DISCONNECT + ICE_FAIL,
                IceState::Failed,
                epoch,
            );
        }
    }

    fn ice_later(
        &mut self,
        user: &str,
        call_id: &str,
        remote: &str,
        delay: Duration,
        state: IceState,
        epoch: u64,
    ) {
        let id = self.schedule(
            delay,
            Due::Ice {
                user: user.to_owned(),
                call_id: call_id.to_owned(),
                remote: remote.to_owned(),
                state,
            },
        );
        self.ice_epochs.insert(id, epoch);
    }

    fn close_media(&mut self, user: &str) {
        let Some(media) = self.nodes.get_mut(user).and_then(|node| node.media.take()) else {
            return;
        };
        for remote in media.peers.keys() {
            self.cut(remote, &media.call_id, user);
        }
    }

    /// Carries out the steps of `user`'s negotiations and hands their reports to its driver;
    /// whether anything happened.
    fn media_work(&mut self, user: &str) -> bool {
        let now = self.now;
        let mut work = Vec::new();
        let mut reports = Vec::new();
        {
            let Some(media) = self
                .nodes
                .get_mut(user)
                .and_then(|node| node.media.as_mut())
            else {
                return false;
            };
            let call_id = media.call_id.clone();
            for (remote, peer) in &mut media.peers {
                while let Some(step) = peer.negotiation.poll_step() {
                    work.push((call_id.clone(), remote.clone(), step));
                }
                while let Some(report) = peer.negotiation.poll_report() {
                    reports.push(media_report(&call_id, remote, report));
                }
            }
        }
        let busy = !work.is_empty() || !reports.is_empty();
        for (call_id, remote, step) in work {
            self.carry_out_step(user, &call_id, &remote, &step);
        }
        if let Some(node) = self.nodes.get_mut(user) {
            for report in reports {
                node.driver.handle_media(now, report);
            }
        }
        busy
    }

    fn carry_out_step(&mut self, user: &str, call_id: &str, remote: &str, step: &Step) {
        let gather = Due::Gathered {
            user: user.to_owned(),
            call_id: call_id.to_owned(),
            remote: remote.to_owned(),
        };
        match step {
            Step::CreateOffer | Step::CreateAnswer => {
                let kind = if *step == Step::CreateOffer {
                    DescriptionKind::Offer
                } else {
                    DescriptionKind::Answer
                };
                if let Some(peer) = self.peer_mut(user, call_id, remote) {
                    peer.local = Some(kind);
                }
                self.schedule(GATHER, gather);
                self.check_ready(user, call_id, remote);
            }
            Step::ApplyRemote(_) => {
                if let Some(peer) = self.peer_mut(user, call_id, remote) {
                    peer.remote = true;
                }
                self.check_ready(user, call_id, remote);
            }
            Step::Rollback => {
                if let Some(peer) = self.peer_mut(user, call_id, remote) {
                    peer.local = None;
                }
            }
            Step::SendLocal => {
                let kind = self
                    .peer_mut(user, call_id, remote)
                    .and_then(|peer| peer.local);
                let description = match kind {
                    Some(DescriptionKind::Offer) => r#"{"type":"offer","sdp":"v=0 world"}"#,
                    _ => r#"{"type":"answer","sdp":"v=0 world"}"#,
                };
                let report = MediaReport {
                    call_id: call_id.to_owned(),
                    event: MediaEvent::LocalDescription {
                        to: remote.to_owned(),
                        description: description.to_owned(),
                    },
                };
                let now = self.now;
                if let Some(node) = self.nodes.get_mut(user) {
                    node.driver.handle_media(now, report);
                }
            }
            Step::AddCandidate(_) | Step::StartSending => {}
            Step::Close => {
                let call_id = call_id.to_owned();
                self.cut(remote, &call_id, user);
            }
        }
    }

    /// The stack starts its checks once a remote description is set (as webrtc does); once
    /// both ends check, the checks succeed; an end whose far end does not check gets no answer
    /// and gives up on the stack's timers.
    fn check_ready(&mut self, user: &str, call_id: &str, remote: &str) {
        let ready = |world: &mut Self, a: &str, b: &str| {
            world
                .peer_mut(a, call_id, b)
                .is_some_and(|peer| peer.remote && !peer.cut)
        };
        if !ready(self, user, remote) {
            return;
        }
        // The other end's media may be another call's by now: then it never answers.
        if ready(self, remote, user) {
            for (a, b) in [(user, remote), (remote, user)] {
                // Pending give-up timers of either end are stale now.
                let epoch = self.peer_mut(a, call_id, b).map_or(0, |peer| {
                    peer.epoch += 1;
                    peer.epoch
                });
                self.ice_later(a, call_id, b, Duration::ZERO, IceState::Checking, epoch);
                self.ice_later(a, call_id, b, ICE_CONNECT, IceState::Connected, epoch);
            }
        } else {
            let epoch = self
                .peer_mut(user, call_id, remote)
                .map_or(0, |peer| peer.epoch);
            self.ice_later(
                user,
                call_id,
                remote,
                Duration::ZERO,
                IceState::Checking,
                epoch,
            );
            self.ice_later(
                user,
                call_id,
                remote,
                ICE_DISCONNECT,
                IceState::Disconnected,
                epoch,
            );
            self.ice_later(
                user,
                call_id,
                remote,
                ICE_DISCONNECT + ICE_FAIL,
                IceState::Failed,
                epoch,
            );
        }
    }
}

/// Opens the connections the mesh asked for.
fn open_peers(media: &mut SimMedia, steps: &[MeshStep]) {
    for step in steps {
        if let MeshStep::Open {
            user_id,
            side,
            polite,
        } = step
        {
            let private = media.private_ringing;
            media
                .peers
                .entry(user_id.clone())
                .or_insert_with(|| SimPeer {
                    negotiation: Negotiation::new(user_id, *side, *polite)
                        .ringing(Ringing::private(private)),
                    local: None,
                    remote: false,
                    connected: false,
                    cut: false,
                    epoch: 0,
                });
        }
    }
}

fn media_report(call_id: &str, remote: &str, report: Report) -> MediaReport {
    MediaReport {
        call_id: call_id.to_owned(),
        event: MediaEvent::of_negotiation(remote, report),
    }
}

/// The switchboard of the world: the default limits, the demo peers listed, others too.
fn board_config(
    demo_contacts: Vec<callscope::signaling::Contact>,
    node: Option<String>,
) -> SwitchboardConfig {
    SwitchboardConfig {
        keys: Keyring::single(SECRET),
        app_id: DEFAULT_APP_ID,
        demo_contacts,
        list_online_users: true,
        limits: callscope::signaling::switchboard::Limits::default(),
        policy: callscope::signaling::usersig::SigPolicy::default(),
        webhooks: true,
        node,
    }
}

/// A UserSig for `user` valid for a week of the world's time.
/// A node message takes this long from one node to another (through Redis).
const BUS_HOP: Duration = Duration::from_millis(1);

fn node_name(node: usize) -> String {
    format!("n{}", node + 1)
}

fn node_index(node: &str) -> usize {
    node.trim_start_matches('n')
        .parse::<usize>()
        .map_or(0, |number| number.saturating_sub(1))
}

pub fn user_sig(user: &str) -> String {
    usersig::sign(
        SECRET,
        &UserSigClaims {
            user_id: user.to_owned(),
            app_id: DEFAULT_APP_ID,
            issued_at: UNIX_START,
            expire_secs: 7 * 24 * 3600,
        },
    )
}
