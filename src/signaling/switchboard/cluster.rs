//! Several switchboards that share their users and calls: what one node tells the others
//! (through its driver's bus: Redis pub/sub under `callscope server --redis`) and what it does
//! with what they tell it.
//!
//! Each call is homed on one node, the one its caller is logged in to; that node alone decides
//! every step of it. A user logged in to another node is a stand-in session here: what the call
//! sends it goes to its node ([`NodeMessage::Deliver`]), and what it sends about the call comes
//! from its node ([`NodeMessage::Request`]). Its own node knows which of its calls are homed
//! elsewhere, counts them toward its limits, and answers an invitation beyond them as busy.
//! Who is logged in where is told to every node ([`Presence`]); of two log-ins of one user on
//! two nodes, the later one stays. A node that is lost takes the calls it homed with it, and its
//! users' calls elsewhere end.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::call::{Action, CallSignal, Signal};

use super::super::protocol::{ClientMessage, ServerMessage};
use super::limits::Bucket;
use super::{Attempt, CallKey, Output, Refusals, Session, SessionId, Switchboard};

/// How often the calls homed on a node are checked with the other nodes.
pub const CHECK_EVERY_MILLIS: u64 = 60_000;

/// Stand-in sessions are numbered from here, far above the driver's connection numbers.
const STAND_IN_BASE: SessionId = 1 << 48;

/// The relayer of a relay that came from another node: when its recipient cannot take it, it
/// is dropped (the relayer's node is not told).
pub const RELAYED_FROM_NODE: SessionId = 0;

/// What one node sends another, on that node's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeMessage {
    /// Send `message` to `user`, logged in to the receiving node.
    Deliver {
        /// The recipient.
        user: String,
        /// What to send it.
        message: ServerMessage,
        /// Another participant's media negotiation: dropped, not the recipient, when it does
        /// not fit.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        relayed: bool,
    },
    /// `user`, logged in to the sending node, sent `message` about a call homed on the
    /// receiving node.
    Request {
        /// The sender.
        user: String,
        /// What it sent.
        message: ClientMessage,
    },
    /// `user` is no longer a member of `call_id`, homed on the sending node.
    Left {
        /// The former member.
        user: String,
        /// The call.
        call_id: CallKey,
    },
    /// Close `user`'s connection: the call's home refused it too often.
    Close {
        /// Whose connection.
        user: String,
    },
    /// Every call homed on the sending node with members on the receiving one, with those
    /// members: sent when either may have missed messages while cut off from the bus (after a
    /// roster of the receiver's). What came before it on the channel is all applied, so a
    /// call or member of the receiver's that is not listed ended or left unheard.
    Check {
        /// Each call and its members on the receiving node.
        calls: Vec<(CallKey, Vec<String>)>,
    },
    /// The answer to a [`NodeMessage::Check`]: the listed members in no such call on the
    /// sending node (their leaving, or their invitation, was lost). The home lets them go.
    Gone {
        /// Each call and member.
        members: Vec<(CallKey, String)>,
    },
}

/// What a node tells every node, on the presence channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Presence {
    /// `user` logged in to `node` at `since_millis` (Unix ms).
    Online {
        /// The node.
        node: String,
        /// The user.
        user: String,
        /// When it logged in there.
        since_millis: u64,
    },
    /// `user` is no longer logged in to `node`.
    Offline {
        /// The node.
        node: String,
        /// The user.
        user: String,
        /// Its connection was lost and its connected calls wait for it (for the rejoin
        /// grace); false: it is gone for good (kicked, closed, expired) and leaves them now.
        held: bool,
    },
    /// Everyone logged in to `node` now, with when: sent when it (re)connects to the bus and
    /// when asked.
    Roster {
        /// The node.
        node: String,
        /// Each user and when it logged in.
        users: Vec<(String, u64)>,
    },
    /// `node` asks every node for its roster.
    RosterRequest {
        /// Who asks.
        node: String,
    },
    /// `user`, logged in to `node`, asked for the server's traces of its calls (`on`) or no
    /// longer does: the calls homed elsewhere send them through its node. Sent when it changes,
    /// and after each roster for every user who has them on.
    Traces {
        /// The node.
        node: String,
        /// The user.
        user: String,
        /// Whether it wants them.
        on: bool,
    },
    /// A log-in attempt for `user` at `node` with a UserSig that is not valid, within the limit:
    /// every node counts it against the user's refused attempts (and a log-in, told by its
    /// `online`, against its log-ins), so both limits hold per user across nodes.
    LogInRefused {
        /// The node.
        node: String,
        /// The user.
        user: String,
    },
}

/// A call of our users homed on another node.
#[derive(Debug, Clone)]
pub(super) struct RemoteCall {
    home: u16,
    members: BTreeSet<String>,
    /// Members who hung up, until the home says they left.
    leaving: BTreeSet<String>,
}

/// What a switchboard keeps about the other nodes.
#[derive(Debug, Default)]
pub(super) struct Cluster {
    /// This node's id; `None` when the switchboard is alone.
    pub own: Option<String>,
    /// Ids of the other nodes seen, by their number here.
    nodes: Vec<String>,
    /// Calls of our users homed elsewhere.
    remote_calls: HashMap<CallKey, RemoteCall>,
    /// The same, by user.
    remote_of_user: HashMap<String, HashSet<CallKey>>,
    /// The node of each stand-in user whose connection was lost there and whose calls here
    /// wait for it.
    pub away_node: HashMap<String, u16>,
    next_stand_in: SessionId,
    /// Stand-in sessions open.
    pub stand_ins: usize,
    /// When the calls homed here are next checked with the other nodes (0: not yet set).
    next_check_millis: u64,
}

impl Cluster {
    /// The cluster state of node `own` (`None`: alone).
    pub fn new(own: Option<String>) -> Self {
        Self {
            own,
            ..Self::default()
        }
    }

    fn node_index(&mut self, node: &str) -> u16 {
        if let Some(index) = self.nodes.iter().position(|known| known == node) {
            return u16::try_from(index).unwrap_or(u16::MAX);
        }
        self.nodes.push(node.to_owned());
        u16::try_from(self.nodes.len() - 1).unwrap_or(u16::MAX)
    }

    fn known_index(&self, node: &str) -> Option<u16> {
        self.nodes
            .iter()
            .position(|known| known == node)
            .and_then(|index| u16::try_from(index).ok())
    }

    fn name(&self, index: u16) -> String {
        self.nodes
            .get(usize::from(index))
            .cloned()
            .unwrap_or_default()
    }

    /// How many calls homed elsewhere `user` is in or invited into.
    pub fn remote_load(&self, user: &str) -> usize {
        self.remote_of_user.get(user).map_or(0, HashSet::len)
    }

    /// The calls homed elsewhere `user` is in or invited into, sorted.
    pub fn remote_calls_of(&self, user: &str) -> Vec<String> {
        let mut calls: Vec<String> = self
            .remote_of_user
            .get(user)
            .into_iter()
            .flatten()
            .map(|call| call.id.clone())
            .collect();
        calls.sort_unstable();
        calls
    }

    /// The call homed elsewhere by the id `id` that `user` is in or invited into.
    pub fn remote_call_named(&self, user: &str, id: &str) -> Option<&CallKey> {
        self.remote_of_user
            .get(user)?
            .iter()
            .find(|call| call.id == id)
    }

    fn add_remote(&mut self, call_id: &CallKey, home: u16, user: &str) {
        self.remote_calls
            .entry(call_id.clone())
            .or_insert_with(|| RemoteCall {
                home,
                members: BTreeSet::new(),
                leaving: BTreeSet::new(),
            })
            .members
            .insert(user.to_owned());
        self.remote_of_user
            .entry(user.to_owned())
            .or_default()
            .insert(call_id.clone());
    }

    fn remove_remote(&mut self, call_id: &CallKey, user: &str) {
        if let Some(call) = self.remote_calls.get_mut(call_id) {
            call.members.remove(user);
            call.leaving.remove(user);
            if call.members.is_empty() {
                self.remote_calls.remove(call_id);
            }
        }
        if let Some(calls) = self.remote_of_user.get_mut(user) {
            calls.remove(call_id);
            if calls.is_empty() {
                self.remote_of_user.remove(user);
            }
        }
    }

    /// `user` is gone from this node for good: its calls elsewhere are forgotten here (their
    /// homes end its part in them when they hear it is gone).
    pub fn forget_user(&mut self, user: &str) {
        for call_id in self.remote_of_user.remove(user).unwrap_or_default() {
            if let Some(call) = self.remote_calls.get_mut(&call_id) {
                call.members.remove(user);
                call.leaving.remove(user);
                if call.members.is_empty() {
                    self.remote_calls.remove(&call_id);
                }
            }
        }
    }
}

/// The call a client message is about, if any.
fn call_of(message: &ClientMessage) -> Option<&str> {
    match message {
        ClientMessage::Call(action) => Some(action.call_id()),
        ClientMessage::Sdp { call_id, .. }
        | ClientMessage::Ice { call_id, .. }
        | ClientMessage::ShareTrace { call_id, .. } => Some(call_id),
        ClientMessage::Login { .. }
        | ClientMessage::Contacts
        | ClientMessage::Ping { .. }
        | ClientMessage::Traces { .. } => None,
    }
}

impl Switchboard {
    /// Whether this switchboard is one of several nodes.
    pub fn is_node(&self) -> bool {
        self.cluster.own.is_some()
    }

    /// Users logged in to this node, with when they logged in (for its presence records).
    pub fn roster(&self) -> Vec<(String, u64)> {
        self.online
            .iter()
            .filter_map(|(user, session)| {
                let state = self.sessions.get(session)?;
                state
                    .node
                    .is_none()
                    .then(|| (user.clone(), state.since_millis))
            })
            .collect()
    }

    /// The bus (re)connected: this node tells every node who is logged in here, and asks them
    /// the same.
    pub fn handle_bus_connected(&mut self, now_millis: u64) {
        self.now_millis = now_millis;
        let Some(own) = self.cluster.own.clone() else {
            return;
        };
        let users = self.roster();
        self.out.push_back(Output::Announce(Presence::Roster {
            node: own.clone(),
            users,
        }));
        self.announce_traces_on(&own);
        self.out
            .push_back(Output::Announce(Presence::RosterRequest { node: own }));
    }

    /// After a roster: which of our users want the server's traces.
    fn announce_traces_on(&mut self, own: &str) {
        let wanting: Vec<String> = self
            .online
            .iter()
            .filter(|(_, session)| {
                self.sessions
                    .get(session)
                    .is_some_and(|state| state.node.is_none() && state.traces)
            })
            .map(|(user, _)| user.clone())
            .collect();
        for user in wanting {
            self.out.push_back(Output::Announce(Presence::Traces {
                node: own.to_owned(),
                user,
                on: true,
            }));
        }
    }

    /// One of our users turned the server's traces on or off: every node is told.
    pub(super) fn announce_traces(&mut self, user: &str, on: bool) {
        if let Some(node) = self.cluster.own.clone() {
            self.out.push_back(Output::Announce(Presence::Traces {
                node,
                user: user.to_owned(),
                on,
            }));
        }
    }

    /// What another node told every node.
    pub fn handle_presence(&mut self, now_millis: u64, presence: Presence) {
        self.now_millis = now_millis;
        let Some(own) = self.cluster.own.clone() else {
            return;
        };
        match presence {
            Presence::Online {
                node,
                user,
                since_millis,
            } if node != own => {
                // A log-in there is an attempt here too.
                self.count_log_in_attempt(&user, Attempt::Valid, now_millis);
                self.remote_online(&own, &node, &user, since_millis);
            }
            Presence::LogInRefused { node, user } if node != own => {
                self.count_log_in_attempt(&user, Attempt::Refused, now_millis);
            }
            Presence::Offline { node, user, held } if node != own => {
                self.remote_offline(&node, &user, held);
            }
            Presence::Roster { node, users } if node != own => {
                let listed: HashSet<&str> = users.iter().map(|(user, _)| user.as_str()).collect();
                let index = self.cluster.node_index(&node);
                let gone: Vec<String> = self
                    .stand_ins_of(index)
                    .into_iter()
                    .filter(|(user, _)| !listed.contains(user.as_str()))
                    .map(|(user, _)| user)
                    .collect();
                for user in gone {
                    self.remote_offline(&node, &user, true);
                }
                for (user, since_millis) in &users {
                    self.remote_online(&own, &node, user, *since_millis);
                }
                // It is on the bus (again): what either missed meanwhile is settled. (A node
                // that comes back sends its roster before asking for the others', so each pair
                // of nodes is checked both ways.)
                self.send_check(index);
            }
            Presence::RosterRequest { node } if node != own => {
                let users = self.roster();
                self.out.push_back(Output::Announce(Presence::Roster {
                    node: own.clone(),
                    users,
                }));
                self.announce_traces_on(&own);
            }
            Presence::Traces { node, user, on } if node != own => {
                let index = self.cluster.known_index(&node);
                if let Some(session) = self.online.get(&user).copied()
                    && let Some(state) = self.sessions.get_mut(&session)
                    && index.is_some()
                    && state.node == index
                {
                    state.traces = on;
                }
            }
            // Our own, heard back.
            Presence::Online { .. }
            | Presence::Offline { .. }
            | Presence::Roster { .. }
            | Presence::RosterRequest { .. }
            | Presence::Traces { .. }
            | Presence::LogInRefused { .. } => {}
        }
    }

    fn stand_ins_of(&self, index: u16) -> Vec<(String, SessionId)> {
        self.online
            .iter()
            .filter(|(_, session)| {
                self.sessions
                    .get(session)
                    .is_some_and(|state| state.node == Some(index))
            })
            .map(|(user, session)| (user.clone(), *session))
            .collect()
    }

    fn remote_online(&mut self, own: &str, node: &str, user: &str, since_millis: u64) {
        let index = self.cluster.node_index(node);
        match self.online.get(user).copied() {
            Some(session) => {
                let Some(state) = self.sessions.get(&session) else {
                    return;
                };
                match state.node {
                    None => {
                        // Logged in here and there: the later log-in stays (the node id breaks
                        // a tie the same way on both).
                        if (since_millis, node) <= (state.since_millis, own) {
                            return;
                        }
                        let by = format!("a new log-in of {user} on node {node}");
                        self.send(session, ServerMessage::Kicked { by });
                        self.close_session(session);
                    }
                    Some(at) if at == index => {
                        if let Some(state) = self.sessions.get_mut(&session) {
                            state.since_millis = since_millis;
                        }
                        return;
                    }
                    Some(_) if since_millis < state.since_millis => return,
                    Some(_) => {
                        // Moved to another node, which does not know its calls here: they
                        // end now.
                        self.drop_stand_in(user, session);
                        self.end_calls_of_gone(user);
                    }
                }
            }
            None => {
                if self.away.remove(user).is_some() {
                    let back_where_it_was = self.cluster.away_node.get(user) == Some(&index);
                    if !back_where_it_was {
                        self.end_calls_of_gone(user);
                    }
                    self.cluster.away_node.remove(user);
                }
            }
        }
        self.add_stand_in(user, index, since_millis);
    }

    fn remote_offline(&mut self, node: &str, user: &str, held: bool) {
        let Some(index) = self.cluster.known_index(node) else {
            return;
        };
        if let Some(session) = self.online.get(user).copied()
            && self
                .sessions
                .get(&session)
                .is_some_and(|state| state.node == Some(index))
        {
            self.close_holding(session, held);
        }
    }

    fn add_stand_in(&mut self, user: &str, node: u16, since_millis: u64) {
        self.cluster.next_stand_in += 1;
        let session = STAND_IN_BASE + self.cluster.next_stand_in;
        let now = self.now_millis;
        self.sessions.insert(
            session,
            Session {
                user_id: Some(user.to_owned()),
                issued_at_secs: u64::MAX,
                expires_at_secs: u64::MAX,
                opened_at_millis: now,
                messages: Bucket::full(1, 1, now),
                login_failures: 0,
                refusals: Refusals {
                    window_start_millis: now,
                    ..Refusals::default()
                },
                traces: false,
                node: Some(node),
                since_millis,
            },
        );
        self.cluster.stand_ins += 1;
        self.online.insert(user.to_owned(), session);
        self.online_sorted.insert(user.to_owned());
    }

    /// Forgets a stand-in without ending its calls.
    pub(super) fn drop_stand_in(&mut self, user: &str, session: SessionId) {
        if self.sessions.remove(&session).is_some() {
            self.cluster.stand_ins -= 1;
        }
        if self.online.get(user) == Some(&session) {
            self.online.remove(user);
            self.online_sorted.remove(user);
        }
    }

    /// A node is lost (its heartbeat stopped): its users' calls here end, and the calls it
    /// homed end for our users in them with `ended_by_server`.
    pub fn handle_node_lost(&mut self, now_millis: u64, node: &str) {
        self.now_millis = now_millis;
        let Some(index) = self.cluster.known_index(node) else {
            return;
        };
        for (user, session) in self.stand_ins_of(index) {
            self.drop_stand_in(&user, session);
            self.end_calls_of_gone(&user);
        }
        let away: Vec<String> = self
            .cluster
            .away_node
            .iter()
            .filter(|(_, at)| **at == index)
            .map(|(user, _)| user.clone())
            .collect();
        for user in away {
            self.away.remove(&user);
            self.end_calls_of_gone(&user);
            self.cluster.away_node.remove(&user);
        }
        let homed: Vec<(CallKey, BTreeSet<String>)> = self
            .cluster
            .remote_calls
            .iter()
            .filter(|(_, call)| call.home == index)
            .map(|(call_id, call)| (call_id.clone(), call.members.clone()))
            .collect();
        for (call_id, members) in homed {
            for member in members {
                self.cluster.remove_remote(&call_id, &member);
                self.send_to_user(
                    &member,
                    ServerMessage::call(&call_id, Signal::EndedByServer),
                );
            }
        }
    }

    /// What another node sent this one.
    pub fn handle_node_message(&mut self, now_millis: u64, from: &str, message: NodeMessage) {
        self.now_millis = now_millis;
        if self.cluster.own.is_none() {
            return;
        }
        let index = self.cluster.node_index(from);
        match message {
            NodeMessage::Deliver {
                user,
                message,
                relayed,
            } => self.deliver_from(index, &user, message, relayed),
            NodeMessage::Request { user, message } => {
                let session = match self.online.get(&user).copied() {
                    Some(session)
                        if self
                            .sessions
                            .get(&session)
                            .is_some_and(|state| state.node == Some(index)) =>
                    {
                        session
                    }
                    // Logged in here or elsewhere as far as we know: which log-in stays is
                    // being settled, and this request is not taken meanwhile.
                    Some(_) => return,
                    None => {
                        self.add_stand_in(&user, index, now_millis);
                        self.online.get(&user).copied().unwrap_or_default()
                    }
                };
                self.handle_call_message(session, now_millis, &user, message);
            }
            NodeMessage::Left { user, call_id } => self.cluster.remove_remote(&call_id, &user),
            NodeMessage::Check { calls } => self.check_from(index, &calls),
            NodeMessage::Gone { members } => {
                for (call_id, user) in members {
                    if self.member_node(&user) == Some(index) {
                        self.end_call_of_gone(&user, &call_id);
                    }
                }
            }
            NodeMessage::Close { user } => {
                if let Some(session) = self.local_session(&user) {
                    self.counts.closed += 1;
                    self.close_session(session);
                }
            }
        }
    }

    fn local_session(&self, user: &str) -> Option<SessionId> {
        let session = self.online.get(user).copied()?;
        self.sessions
            .get(&session)
            .is_some_and(|state| state.node.is_none())
            .then_some(session)
    }

    fn deliver_from(&mut self, home: u16, user: &str, message: ServerMessage, relayed: bool) {
        let Some(session) = self.local_session(user) else {
            return;
        };
        if let ServerMessage::Call(CallSignal {
            call_id,
            signal: Signal::Invited { caller, .. },
        }) = &message
        {
            let call = CallKey::new(caller, call_id);
            if self.saturated(user) || self.in_call_named(user, call_id) {
                // As busy as the limit allows, counting its calls on every node; or in
                // another call by the same id.
                let busy = ClientMessage::Call(Action::LineBusy {
                    call_id: call_id.clone(),
                });
                self.publish(
                    home,
                    NodeMessage::Request {
                        user: user.to_owned(),
                        message: busy,
                    },
                );
                return;
            }
            self.cluster.add_remote(&call, home, user);
        }
        self.out.push_back(Output::Send {
            session,
            message,
            relayed_from: relayed.then_some(RELAYED_FROM_NODE),
        });
    }

    fn publish(&mut self, node: u16, message: NodeMessage) {
        let node = self.cluster.name(node);
        self.out.push_back(Output::Publish { node, message });
    }

    /// Where a local user's message goes when it is about a call homed on another node.
    pub(super) fn route_to_home(
        &mut self,
        user: &str,
        message: ClientMessage,
    ) -> Option<ClientMessage> {
        let Some(key) = call_of(&message)
            .and_then(|call_id| self.cluster.remote_call_named(user, call_id))
            .cloned()
        else {
            return Some(message);
        };
        let Some(call) = self.cluster.remote_calls.get_mut(&key) else {
            return Some(message);
        };
        let home = call.home;
        // A hang-up is never refused to a member: until the home says it left, and should the
        // request be lost, a check tells the home so. (A lost reject leaves it ringing until the
        // home's own timeout.)
        if let ClientMessage::Call(Action::Hangup { .. }) = &message {
            call.leaving.insert(user.to_owned());
        }
        self.publish(
            home,
            NodeMessage::Request {
                user: user.to_owned(),
                message,
            },
        );
        None
    }

    /// Sends to a session here, or through its node for a stand-in.
    pub(super) fn emit(
        &mut self,
        session: SessionId,
        message: ServerMessage,
        relayed_from: Option<SessionId>,
    ) {
        let Some(state) = self.sessions.get(&session) else {
            return;
        };
        match (state.node, &state.user_id) {
            (Some(node), Some(user)) => {
                let deliver = NodeMessage::Deliver {
                    user: user.clone(),
                    message,
                    relayed: relayed_from.is_some(),
                };
                self.publish(node, deliver);
            }
            _ => self.out.push_back(Output::Send {
                session,
                message,
                relayed_from,
            }),
        }
    }

    /// Asks a stand-in's node to close its user's connection.
    pub(super) fn emit_close(&mut self, session: SessionId, user: String) {
        if let Some(node) = self.node_of_session(session) {
            self.publish(node, NodeMessage::Close { user });
        }
    }

    /// The node of a stand-in session, if `session` is one.
    pub(super) fn node_of_session(&self, session: SessionId) -> Option<u16> {
        self.sessions.get(&session).and_then(|state| state.node)
    }

    /// Tells `user`'s node, when it is another, that it left `call_id`.
    pub(super) fn tell_left(&mut self, call_id: &CallKey, user: &str) {
        let node = self
            .online
            .get(user)
            .and_then(|session| self.node_of_session(*session))
            .or_else(|| self.cluster.away_node.get(user).copied());
        if let Some(node) = node {
            let left = NodeMessage::Left {
                user: user.to_owned(),
                call_id: call_id.clone(),
            };
            self.publish(node, left);
        }
    }

    /// The node a member of a call homed here is on, when it is another (it is logged in there,
    /// or its connection was lost there and its calls wait for it).
    fn member_node(&self, user: &str) -> Option<u16> {
        match self.online.get(user) {
            Some(session) => self.node_of_session(*session),
            None => self.cluster.away_node.get(user).copied(),
        }
    }

    /// Checks the calls homed here with every other node once every [`CHECK_EVERY_MILLIS`],
    /// besides after each roster: a message dropped while the bus stayed up (its queue full,
    /// say) is settled too.
    pub(super) fn check_now_and_then(&mut self, now_millis: u64) {
        if !self.is_node() {
            return;
        }
        if self.cluster.next_check_millis == 0 {
            self.cluster.next_check_millis = now_millis + CHECK_EVERY_MILLIS;
        }
        if now_millis < self.cluster.next_check_millis {
            return;
        }
        self.cluster.next_check_millis = now_millis + CHECK_EVERY_MILLIS;
        for node in 0..self.cluster.nodes.len() {
            if let Ok(node) = u16::try_from(node) {
                self.send_check(node);
            }
        }
    }

    /// Sends `node` the calls homed here with members on it ([`NodeMessage::Check`]).
    fn send_check(&mut self, node: u16) {
        let mut calls = Vec::new();
        for (call_id, record) in &self.calls {
            let members: Vec<String> = record
                .members
                .keys()
                .filter(|member| self.member_node(member) == Some(node))
                .cloned()
                .collect();
            if !members.is_empty() {
                calls.push((call_id.clone(), members));
            }
        }
        calls.sort_unstable();
        self.publish(node, NodeMessage::Check { calls });
    }

    /// The calls `home` homes with members here: ours it no longer lists ended unheard, and
    /// those it lists that are not ours here are told back as gone.
    fn check_from(&mut self, home: u16, calls: &[(CallKey, Vec<String>)]) {
        let listed: HashSet<(&CallKey, &str)> = calls
            .iter()
            .flat_map(|(call_id, members)| {
                members.iter().map(move |member| (call_id, member.as_str()))
            })
            .collect();
        // Each with whether it hung up (and so knows).
        let unheard: Vec<(CallKey, String, bool)> = self
            .cluster
            .remote_calls
            .iter()
            .filter(|(_, call)| call.home == home)
            .flat_map(|(call_id, call)| {
                call.members
                    .iter()
                    .filter(|member| !listed.contains(&(call_id, member.as_str())))
                    .map(|member| {
                        (
                            call_id.clone(),
                            member.clone(),
                            call.leaving.contains(member),
                        )
                    })
            })
            .collect();
        let gone: Vec<(CallKey, String)> = listed
            .iter()
            .filter(|(call_id, member)| {
                !self.cluster.remote_calls.get(call_id).is_some_and(|call| {
                    call.home == home
                        && call.members.contains(*member)
                        && !call.leaving.contains(*member)
                })
            })
            .map(|(call_id, member)| ((*call_id).clone(), (*member).to_owned()))
            .collect();
        for (call_id, member, left) in unheard {
            self.cluster.remove_remote(&call_id, &member);
            // Told only here: a member who moved to another node hears from there.
            if !left && self.local_session(&member).is_some() {
                self.send_to_user(
                    &member,
                    ServerMessage::call(&call_id, Signal::EndedByServer),
                );
            }
        }
        if !gone.is_empty() {
            let mut members = gone;
            members.sort_unstable();
            self.publish(home, NodeMessage::Gone { members });
        }
    }

    /// Tells the other nodes of a log-in attempt for `user` that counted here and was refused.
    pub(super) fn announce_log_in_refused(&mut self, user: &str) {
        if let Some(node) = self.cluster.own.clone() {
            self.out.push_back(Output::Announce(Presence::LogInRefused {
                node,
                user: user.to_owned(),
            }));
        }
    }

    /// Tells the other nodes that a user of ours logged in or out.
    pub(super) fn announce(&mut self, user: &str, online: Option<u64>, held: bool) {
        let Some(node) = self.cluster.own.clone() else {
            return;
        };
        let presence = match online {
            Some(since_millis) => Presence::Online {
                node,
                user: user.to_owned(),
                since_millis,
            },
            None => Presence::Offline {
                node,
                user: user.to_owned(),
                held,
            },
        };
        self.out.push_back(Output::Announce(presence));
    }
}
