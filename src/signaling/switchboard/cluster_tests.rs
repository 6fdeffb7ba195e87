//! Three switchboards as nodes, their bus in memory, in virtual time at the default limits:
//! calls across nodes, kick-out and contacts across nodes, per-user limits counted on every
//! node, a lost node, a rejoin within the grace, and a roster that corrects stale presence.

use std::collections::{BTreeMap, VecDeque};

use super::{Limits, NodeMessage, Output, Presence, SessionId, Switchboard, SwitchboardConfig};
use crate::call::{Action, CallSignal, Signal};
use crate::model::MediaType;
use crate::signaling::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage, encode};
use crate::signaling::usersig::{Keyring, SigPolicy, UserSigClaims, sign};

const SECRET: &[u8] = b"cluster test secret";
const APP: u64 = 7;
const T0: u64 = 1_800_000_000_000;

/// What travels between the nodes, in order.
enum Carried {
    Node {
        to: usize,
        from: String,
        message: NodeMessage,
    },
    Presence {
        from: usize,
        presence: Presence,
    },
}

struct Nodes {
    boards: Vec<Switchboard>,
    /// Nodes cut off from the bus: nothing reaches them or leaves them.
    down: Vec<bool>,
    bus: VecDeque<Carried>,
    now: u64,
    inbox: BTreeMap<SessionId, Vec<ServerMessage>>,
    closed: Vec<SessionId>,
    /// Which node each session is on.
    node_of: BTreeMap<SessionId, usize>,
}

fn name(node: usize) -> String {
    format!("n{}", node + 1)
}

impl Nodes {
    fn new(count: usize) -> Self {
        let boards = (0..count)
            .map(|node| {
                Switchboard::new(SwitchboardConfig {
                    keys: Keyring::single(SECRET),
                    app_id: APP,
                    demo_contacts: Vec::new(),
                    list_online_users: true,
                    limits: Limits::default(),
                    policy: SigPolicy::default(),
                    webhooks: false,
                    node: Some(name(node)),
                })
            })
            .collect();
        let mut nodes = Self {
            boards,
            down: vec![false; count],
            bus: VecDeque::new(),
            now: T0,
            inbox: BTreeMap::new(),
            closed: Vec::new(),
            node_of: BTreeMap::new(),
        };
        for node in 0..count {
            nodes.boards[node].handle_bus_connected(T0);
        }
        nodes.settle();
        nodes
    }

    fn index(node: &str) -> usize {
        node.trim_start_matches('n')
            .parse::<usize>()
            .expect("nodes are named n1, n2, …")
            - 1
    }

    /// Moves everything until nothing is left to move.
    fn settle(&mut self) {
        loop {
            for node in 0..self.boards.len() {
                while let Some(output) = self.boards[node].poll_output() {
                    self.carry(node, output);
                }
            }
            let Some(carried) = self.bus.pop_front() else {
                return;
            };
            match carried {
                Carried::Node { to, from, message } => {
                    if !self.down[to] {
                        self.boards[to].handle_node_message(self.now, &from, message);
                    }
                }
                Carried::Presence { from, presence } => {
                    for node in 0..self.boards.len() {
                        if node != from && !self.down[node] {
                            self.boards[node].handle_presence(self.now, presence.clone());
                        }
                    }
                }
            }
        }
    }

    fn carry(&mut self, node: usize, output: Output) {
        match output {
            Output::Send {
                session, message, ..
            } => self.inbox.entry(session).or_default().push(message),
            Output::Close { session } => self.closed.push(session),
            Output::Publish { node: to, message } if !self.down[node] => {
                self.bus.push_back(Carried::Node {
                    to: Self::index(&to),
                    from: name(node),
                    message,
                });
            }
            Output::Announce(presence) if !self.down[node] => {
                self.bus.push_back(Carried::Presence {
                    from: node,
                    presence,
                });
            }
            Output::Publish { .. }
            | Output::Announce(_)
            | Output::Refused { .. }
            | Output::CallEvent(_)
            | Output::CallEnded(_) => {}
        }
    }

    fn send(&mut self, session: SessionId, message: &ClientMessage) {
        let node = self.node_of[&session];
        self.boards[node].handle_frame(session, self.now, &encode(message));
        self.settle();
    }

    fn log_in(&mut self, node: usize, session: SessionId, user: &str) {
        let claims = UserSigClaims {
            user_id: user.into(),
            app_id: APP,
            issued_at: self.now / 1000,
            expire_secs: 3600,
        };
        self.attempt(node, session, user, sign(SECRET, &claims));
        assert!(
            self.inbox[&session]
                .iter()
                .any(|message| matches!(message, ServerMessage::Welcome { .. })),
            "{user} did not log in"
        );
    }

    fn lose(&mut self, session: SessionId) {
        let node = self.node_of[&session];
        self.boards[node].close(session);
        self.settle();
    }

    fn wait(&mut self, millis: u64) {
        let end = self.now + millis;
        while self.now < end {
            self.now = (self.now + 1000).min(end);
            for node in 0..self.boards.len() {
                self.boards[node].handle_tick(self.now);
            }
            self.settle();
        }
    }

    fn signals(&self, session: SessionId) -> Vec<Signal> {
        self.inbox
            .get(&session)
            .into_iter()
            .flatten()
            .filter_map(|message| match message {
                ServerMessage::Call(CallSignal { signal, .. }) => Some(signal.clone()),
                _ => None,
            })
            .collect()
    }

    fn invite(&mut self, session: SessionId, call_id: &str, callees: &[&str]) {
        let action = Action::Invite {
            call_id: call_id.into(),
            callees: callees.iter().map(|callee| (*callee).to_owned()).collect(),
            media: MediaType::Video,
            group: callees.len() > 1,
            timeout_secs: 30,
        };
        self.send(session, &ClientMessage::Call(action));
    }

    fn act(&mut self, session: SessionId, action: Action) {
        self.send(session, &ClientMessage::Call(action));
    }
}

fn accept(call_id: &str) -> Action {
    Action::Accept {
        call_id: call_id.into(),
    }
}

fn hang_up(call_id: &str) -> Action {
    Action::Hangup {
        call_id: call_id.into(),
    }
}

const ALICE: SessionId = 1;
const BOB: SessionId = 2;
const CAROL: SessionId = 3;

/// Alice on n1, bob on n2, carol on n3.
fn three() -> Nodes {
    let mut nodes = Nodes::new(3);
    nodes.log_in(0, ALICE, "alice");
    nodes.log_in(1, BOB, "bob");
    nodes.log_in(2, CAROL, "carol");
    nodes
}

#[test]
fn a_call_across_nodes_rings_connects_relays_and_ends_on_both() {
    let mut nodes = three();
    nodes.invite(ALICE, "c-1", &["bob"]);
    assert!(matches!(
        nodes.signals(BOB).as_slice(),
        [Signal::Invited { caller, .. }] if caller == "alice"
    ));
    nodes.act(BOB, accept("c-1"));
    assert!(nodes.signals(ALICE).contains(&Signal::Accepted {
        user_id: "bob".into()
    }));
    // Media negotiation goes through the call's home, both ways.
    nodes.send(
        BOB,
        &ClientMessage::Sdp {
            call_id: "c-1".into(),
            to: "alice".into(),
            description: "answer".into(),
        },
    );
    assert!(nodes.inbox[&ALICE].iter().any(|message| matches!(
        message,
        ServerMessage::Sdp { from, description, .. } if from == "bob" && description == "answer"
    )));
    nodes.act(BOB, hang_up("c-1"));
    assert!(nodes.signals(ALICE).contains(&Signal::HungUp {
        user_id: "bob".into()
    }));
    assert_eq!(nodes.boards[0].call_count(), 0);
    // Bob's node forgot the call once its home said bob left it.
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 0);
    // And a late request about it is answered from the home: the call is over.
    nodes.act(BOB, hang_up("c-1"));
    assert!(matches!(
        nodes.inbox[&BOB].last(),
        Some(ServerMessage::Error { .. })
    ));
}

#[test]
fn two_callers_on_two_nodes_may_use_one_call_id_and_each_call_keeps_to_itself() {
    let mut nodes = three();
    nodes.log_in(0, 40, "dave");
    nodes.log_in(2, 41, "erin");
    // Alice (n1) calls bob (n2); carol (n3) calls dave (n1), by the same id.
    nodes.invite(ALICE, "c-1", &["bob"]);
    nodes.invite(CAROL, "c-1", &["dave"]);
    assert!(
        matches!(nodes.signals(40).as_slice(), [Signal::Invited { caller, .. }] if caller == "carol")
    );
    nodes.act(BOB, accept("c-1"));
    nodes.act(40, accept("c-1"));
    assert!(nodes.signals(ALICE).contains(&Signal::Accepted {
        user_id: "bob".into()
    }));
    assert!(nodes.signals(CAROL).contains(&Signal::Accepted {
        user_id: "dave".into()
    }));
    // Erin (n3) invites bob by that id too: bob is in a call by it, so busy for hers.
    nodes.invite(41, "c-1", &["bob"]);
    assert!(nodes.signals(41).contains(&Signal::LineBusy {
        user_id: "bob".into()
    }));
    // Each hang-up ends its own call only.
    nodes.act(BOB, hang_up("c-1"));
    assert!(nodes.signals(ALICE).contains(&Signal::HungUp {
        user_id: "bob".into()
    }));
    assert!(
        !nodes
            .signals(CAROL)
            .iter()
            .any(|signal| matches!(signal, Signal::HungUp { .. }))
    );
    assert_eq!(nodes.boards[2].call_count(), 1);
    nodes.act(40, hang_up("c-1"));
    assert!(nodes.signals(CAROL).contains(&Signal::HungUp {
        user_id: "dave".into()
    }));
    assert_eq!(
        nodes
            .boards
            .iter()
            .map(Switchboard::call_count)
            .sum::<usize>(),
        0
    );
}

#[test]
fn a_group_call_spans_three_nodes() {
    let mut nodes = three();
    nodes.invite(ALICE, "g-1", &["bob", "carol"]);
    nodes.act(BOB, accept("g-1"));
    nodes.act(CAROL, accept("g-1"));
    assert!(nodes.signals(ALICE).contains(&Signal::Accepted {
        user_id: "carol".into()
    }));
    assert!(nodes.signals(BOB).contains(&Signal::Accepted {
        user_id: "carol".into()
    }));
    nodes.act(CAROL, hang_up("g-1"));
    assert!(nodes.signals(BOB).contains(&Signal::HungUp {
        user_id: "carol".into()
    }));
    assert_eq!(nodes.boards[0].call_count(), 1, "alice and bob go on");
    nodes.act(ALICE, hang_up("g-1"));
    assert_eq!(nodes.boards[0].call_count(), 0);
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 0);
    assert_eq!(nodes.boards[2].cluster.remote_load("carol"), 0);
}

#[test]
fn a_log_in_on_another_node_kicks_the_first_and_contacts_list_everyone() {
    let mut nodes = three();
    let contacts = |nodes: &Nodes, session| -> Vec<String> {
        nodes.inbox[&session]
            .iter()
            .find_map(|message| match message {
                ServerMessage::Welcome { contacts, .. } => Some(
                    contacts
                        .iter()
                        .map(|contact| contact.user_id.clone())
                        .collect(),
                ),
                _ => None,
            })
            .expect("a welcome")
    };
    assert_eq!(contacts(&nodes, CAROL), ["alice", "bob"]);
    nodes.now += 1000;
    nodes.log_in(2, 4, "bob");
    assert!(nodes.inbox[&BOB].iter().any(|message| matches!(
        message,
        ServerMessage::Kicked { by } if by.contains("node n3")
    )));
    assert!(nodes.closed.contains(&BOB));
    // Everyone now reaches bob on n3.
    nodes.invite(ALICE, "c-2", &["bob"]);
    assert!(matches!(
        nodes.signals(4).as_slice(),
        [Signal::Invited { .. }]
    ));
    assert_eq!(nodes.boards[1].online_count(), 0);
}

impl Nodes {
    /// A log-in attempt with `user_sig` on a new connection; the error it got, if any.
    fn attempt(
        &mut self,
        node: usize,
        session: SessionId,
        user: &str,
        user_sig: String,
    ) -> Option<String> {
        self.node_of.insert(session, node);
        self.boards[node].open(session, self.now);
        self.send(
            session,
            &ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: user.into(),
                user_sig,
            },
        );
        self.inbox[&session]
            .iter()
            .find_map(|message| match message {
                ServerMessage::Error { message, .. } => Some(message.clone()),
                _ => None,
            })
    }
}

#[test]
fn log_in_attempts_for_one_user_are_counted_on_every_node() {
    let mut nodes = Nodes::new(3);
    let sig = |key: &[u8], issued_at| {
        let claims = UserSigClaims {
            user_id: "mallory".into(),
            app_id: APP,
            issued_at,
            expire_secs: 3600,
        };
        sign(key, &claims)
    };
    let forged = sig(b"not the secret", T0 / 1000);
    let too_many = |refused: Option<String>| {
        refused.is_some_and(|error| error.contains("too many log-in attempts"))
    };
    // Forged attempts, three on n1 and one on n3, and an expired UserSig on n3 (the burst): n2
    // refuses the next one at once.
    for (node, session) in [(0, 101), (0, 102), (0, 103), (2, 104)] {
        let refused = nodes.attempt(node, session, "mallory", forged.clone());
        assert!(refused.is_some() && !too_many(refused));
    }
    let expired = sig(SECRET, T0 / 1000 - 7200);
    assert_eq!(nodes.attempt(2, 105, "mallory", expired), None);
    assert!(nodes.inbox[&105].contains(&ServerMessage::UserSigExpired));
    assert!(too_many(nodes.attempt(1, 106, "mallory", forged.clone())));
    // They never keep out the right UserSig; log-ins have a limit of their own, on every node.
    for (node, session) in [(1, 107), (0, 108), (2, 109), (1, 110), (0, 111)] {
        nodes.log_in(node, session, "mallory");
    }
    for (node, session) in [(0, 112), (1, 113), (2, 114)] {
        let refused = nodes.attempt(node, session, "mallory", sig(SECRET, nodes.now / 1000));
        assert!(too_many(refused.clone()), "node {node}: {refused:?}");
    }
    // One more every 5 s, wherever it is made.
    nodes.wait(5_001);
    nodes.log_in(2, 115, "mallory");
    assert!(too_many(nodes.attempt(
        0,
        116,
        "mallory",
        sig(SECRET, nodes.now / 1000)
    )));
}

#[test]
fn a_user_in_as_many_calls_as_allowed_on_other_nodes_is_busy_for_the_next() {
    let mut nodes = three();
    let max = Limits::default().max_calls_per_user;
    // Callers on two nodes fill bob's calls, each call homed on its caller's node.
    for call in 0..max {
        let (session, node) = if call % 2 == 0 { (10, 0) } else { (11, 2) };
        if !nodes.node_of.contains_key(&session) {
            nodes.log_in(node, session, &format!("caller{session}"));
        }
        nodes.invite(session, &format!("c-{call}"), &["bob"]);
    }
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), max);
    nodes.invite(ALICE, "c-over", &["bob"]);
    assert!(
        nodes.signals(ALICE).contains(&Signal::LineBusy {
            user_id: "bob".into()
        }),
        "{:?}",
        nodes.signals(ALICE)
    );
    assert_eq!(
        nodes.signals(BOB).len(),
        max,
        "the extra invitation never rang"
    );
}

#[test]
fn a_lost_node_ends_the_calls_it_homed_and_its_users_calls_elsewhere() {
    let mut nodes = three();
    // Homed on n2 (bob's), with carol on n3.
    nodes.invite(BOB, "on-n2", &["carol"]);
    nodes.act(CAROL, accept("on-n2"));
    // Homed on n1 (alice's), with bob on n2.
    nodes.invite(ALICE, "on-n1", &["bob"]);
    nodes.act(BOB, accept("on-n1"));
    nodes.down[1] = true;
    for node in [0, 2] {
        nodes.boards[node].handle_node_lost(nodes.now, "n2");
    }
    nodes.settle();
    let ended = |nodes: &Nodes, session| {
        nodes
            .signals(session)
            .iter()
            .filter(|signal| **signal == Signal::EndedByServer)
            .count()
    };
    assert_eq!(ended(&nodes, CAROL), 1, "carol's call homed on n2");
    assert_eq!(ended(&nodes, ALICE), 1, "alice's call with bob of n2");
    assert_eq!(nodes.boards[0].call_count(), 0);
    assert_eq!(nodes.boards[2].cluster.remote_load("carol"), 0);
    // Bob comes back through n3: reachable again, in no call.
    nodes.down[1] = false;
    nodes.now += 1000;
    nodes.log_in(2, 5, "bob");
    assert!(nodes.inbox[&5].iter().any(|message| matches!(
        message,
        ServerMessage::Welcome { calls, .. } if calls.is_empty()
    )));
    nodes.invite(ALICE, "again", &["bob"]);
    assert!(matches!(
        nodes.signals(5).as_slice(),
        [Signal::Invited { .. }]
    ));
}

#[test]
fn a_user_back_on_its_node_within_the_grace_keeps_its_call_homed_elsewhere() {
    let mut nodes = three();
    nodes.invite(ALICE, "c-1", &["bob"]);
    nodes.act(BOB, accept("c-1"));
    nodes.lose(BOB);
    nodes.wait(3000);
    nodes.log_in(1, 6, "bob");
    assert!(
        nodes.inbox[&6].iter().any(|message| matches!(
            message,
            ServerMessage::Welcome { calls, .. } if calls == &["c-1".to_owned()]
        )),
        "{:?}",
        nodes.inbox[&6]
    );
    nodes.wait(Limits::default().rejoin_grace_millis + 2000);
    assert_eq!(nodes.boards[0].call_count(), 1, "the call went on");
    nodes.act(6, hang_up("c-1"));
    assert!(nodes.signals(ALICE).contains(&Signal::HungUp {
        user_id: "bob".into()
    }));
}

#[test]
fn a_user_gone_past_the_grace_ends_its_call_elsewhere_with_ended_by_server() {
    let mut nodes = three();
    nodes.invite(ALICE, "c-1", &["bob"]);
    nodes.act(BOB, accept("c-1"));
    nodes.lose(BOB);
    nodes.wait(Limits::default().rejoin_grace_millis + 1000);
    assert_eq!(
        nodes
            .signals(ALICE)
            .iter()
            .filter(|signal| **signal == Signal::EndedByServer)
            .count(),
        1
    );
    assert_eq!(nodes.boards[0].call_count(), 0);
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 0);
}

#[test]
fn a_roster_after_the_bus_came_back_closes_the_stand_ins_of_users_gone_meanwhile() {
    let mut nodes = three();
    assert_eq!(nodes.boards[0].everyone_online_count(), 3);
    // Bob leaves while n2 is cut off from the bus: nobody hears it.
    nodes.down[1] = true;
    nodes.lose(BOB);
    assert_eq!(nodes.boards[0].everyone_online_count(), 3);
    nodes.down[1] = false;
    nodes.boards[1].handle_bus_connected(nodes.now);
    nodes.settle();
    assert_eq!(nodes.boards[0].everyone_online_count(), 2);
    assert_eq!(nodes.boards[2].everyone_online_count(), 2);
    nodes.invite(ALICE, "c-1", &["bob"]);
    assert!(matches!(
        nodes.signals(ALICE).as_slice(),
        [Signal::InviteDelivered { offline }] if offline == &["bob".to_owned()]
    ));
}

/// The server's traces each of alice and bob got, in order: (call, name, about whom).
fn server_traces(nodes: &Nodes, session: SessionId) -> Vec<(String, String, String)> {
    nodes
        .inbox
        .get(&session)
        .into_iter()
        .flatten()
        .filter_map(|message| match message {
            ServerMessage::Trace {
                call_id,
                name,
                user_id,
                ..
            } => Some((call_id.clone(), name.clone(), user_id.clone())),
            _ => None,
        })
        .collect()
}

/// Alice and bob (each on `nodes[i]`), traces on, share entries and place a call.
fn traced_call(alice_node: usize, bob_node: usize, count: usize) -> Nodes {
    let mut nodes = Nodes::new(count);
    nodes.log_in(alice_node, ALICE, "alice");
    nodes.log_in(bob_node, BOB, "bob");
    for session in [ALICE, BOB] {
        nodes.send(session, &ClientMessage::Traces { on: true });
    }
    nodes.invite(ALICE, "c-1", &["bob"]);
    nodes.act(BOB, accept("c-1"));
    nodes.send(
        BOB,
        &ClientMessage::ShareTrace {
            call_id: "c-1".into(),
            entries: vec![serde_json::json!({"kind": "onCallBegin"})],
        },
    );
    nodes.act(ALICE, hang_up("c-1"));
    nodes
}

#[test]
fn server_traces_and_shared_entries_reach_members_on_other_nodes_as_on_one() {
    let one = traced_call(0, 0, 1);
    let across = traced_call(0, 1, 3);
    for session in [ALICE, BOB] {
        let expected = server_traces(&one, session);
        assert!(expected.len() >= 3, "{expected:?}");
        assert_eq!(server_traces(&across, session), expected);
    }
    // What bob shared reached alice, across the nodes too.
    let shared = |nodes: &Nodes| {
        nodes.inbox[&ALICE]
            .iter()
            .filter(|message| matches!(message, ServerMessage::SharedTrace { from, .. } if from == "bob"))
            .count()
    };
    assert_eq!(shared(&one), 1);
    assert_eq!(shared(&across), 1);
}

#[test]
fn traces_turned_off_on_one_node_stop_reaching_it_and_a_roster_tells_who_has_them_on() {
    let mut nodes = Nodes::new(2);
    nodes.log_in(0, ALICE, "alice");
    nodes.log_in(1, BOB, "bob");
    nodes.send(BOB, &ClientMessage::Traces { on: true });
    nodes.send(BOB, &ClientMessage::Traces { on: false });
    nodes.invite(ALICE, "c-1", &["bob"]);
    assert!(server_traces(&nodes, BOB).is_empty());
    nodes.act(ALICE, hang_up("c-1"));
    // n1 forgets what it knew of bob's flag (its stand-in made again from n2's roster) and
    // learns it from what n2 sends after its roster.
    nodes.send(BOB, &ClientMessage::Traces { on: true });
    let stand_in = nodes.boards[0].online["bob"];
    nodes.boards[0]
        .sessions
        .get_mut(&stand_in)
        .expect("bob's stand-in on n1")
        .traces = false;
    nodes.boards[1].handle_bus_connected(nodes.now);
    nodes.settle();
    nodes.invite(ALICE, "c-2", &["bob"]);
    assert!(
        server_traces(&nodes, BOB)
            .iter()
            .any(|(call, _, _)| call == "c-2"),
        "{:?}",
        server_traces(&nodes, BOB)
    );
}

/// Cuts n2 (bob's node) off the bus while `cut_off` runs, then brings it back.
fn with_n2_cut_off(nodes: &mut Nodes, cut_off: impl FnOnce(&mut Nodes)) {
    nodes.down[1] = true;
    cut_off(nodes);
    nodes.down[1] = false;
    nodes.boards[1].handle_bus_connected(nodes.now);
    nodes.settle();
}

#[test]
fn a_hang_up_lost_while_the_bus_stays_up_is_settled_within_a_minute() {
    let mut nodes = three();
    nodes.invite(ALICE, "c-1", &["bob"]);
    nodes.act(BOB, accept("c-1"));
    // Only alice's hang-up is lost: no roster follows.
    nodes.down[1] = true;
    nodes.act(ALICE, hang_up("c-1"));
    nodes.down[1] = false;
    nodes.wait(1_000);
    assert!(!nodes.signals(BOB).contains(&Signal::EndedByServer));
    nodes.wait(super::cluster::CHECK_EVERY_MILLIS);
    assert_eq!(nodes.signals(BOB).last(), Some(&Signal::EndedByServer));
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 0);
}

#[test]
fn what_a_cut_off_node_missed_of_a_call_is_settled_once_it_is_back() {
    let mut nodes = three();
    // Alice hangs up while bob's node hears nothing: bob is told the call ended, and it no
    // longer counts against him.
    nodes.invite(ALICE, "c-1", &["bob"]);
    nodes.act(BOB, accept("c-1"));
    with_n2_cut_off(&mut nodes, |nodes| nodes.act(ALICE, hang_up("c-1")));
    assert_eq!(nodes.signals(BOB).last(), Some(&Signal::EndedByServer));
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 0);
    // Bob hangs up while his node is cut off: the call's home lets him go, and ends it.
    nodes.invite(ALICE, "c-2", &["bob"]);
    nodes.act(BOB, accept("c-2"));
    with_n2_cut_off(&mut nodes, |nodes| nodes.act(BOB, hang_up("c-2")));
    assert_eq!(nodes.signals(ALICE).last(), Some(&Signal::EndedByServer));
    assert_eq!(nodes.boards[0].call_count(), 0);
    // An invitation lost on the way: bob never rang, and alice hears he did not answer.
    with_n2_cut_off(&mut nodes, |nodes| nodes.invite(ALICE, "c-3", &["bob"]));
    assert_eq!(
        nodes.signals(ALICE).last(),
        Some(&Signal::NoResponse {
            user_id: "bob".into()
        })
    );
    assert_eq!(nodes.boards[0].call_count(), 0);
    // Nothing missed, nothing changes: a call going on when the node comes back goes on.
    nodes.invite(ALICE, "c-4", &["bob"]);
    nodes.act(BOB, accept("c-4"));
    let (alice_heard, bob_heard) = (nodes.signals(ALICE).len(), nodes.signals(BOB).len());
    with_n2_cut_off(&mut nodes, |_| {});
    assert_eq!(nodes.signals(ALICE).len(), alice_heard);
    assert_eq!(nodes.signals(BOB).len(), bob_heard);
    assert_eq!(nodes.boards[0].call_count(), 1);
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 1);
    // A request the home refuses (a reject after accepting) is not taken for a lost leaving.
    nodes.act(
        BOB,
        Action::Reject {
            call_id: "c-4".into(),
        },
    );
    with_n2_cut_off(&mut nodes, |_| {});
    assert_eq!(nodes.boards[0].call_count(), 1);
    // Bob's connection is lost on n2 and he comes back on n1, the call's home, within the
    // grace: n1 checks nothing of his with n2 any more (so n2 lets go of what it kept of his
    // call), and the call goes on.
    nodes.lose(BOB);
    nodes.log_in(0, 9, "bob");
    let alice_heard = nodes.signals(ALICE).len();
    with_n2_cut_off(&mut nodes, |_| {});
    assert_eq!(nodes.boards[1].cluster.remote_load("bob"), 0);
    assert_eq!(nodes.signals(ALICE).len(), alice_heard);
    assert_eq!(nodes.boards[0].call_count(), 1);
    nodes.act(ALICE, hang_up("c-4"));
    assert!(nodes.signals(9).contains(&Signal::HungUp {
        user_id: "alice".into()
    }));
}
