//! The switchboard's rules in virtual time, at their default limits: deadlines, caps, rates,
//! relays, the one answer for calls you are not in, revocation and key rotation.

use std::collections::BTreeMap;

use super::{Limits, Output, SessionId, Switchboard, SwitchboardConfig};
use crate::call::{Action, CallSignal, Signal};
use crate::model::{ErrorCode, MediaType};
use crate::signaling::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage, encode};
use crate::signaling::usersig::{Keyring, Revocations, SigPolicy, UserSigClaims, sign, sign_with};

const SECRET: &[u8] = b"switchboard test secret";
const APP: u64 = 42;
/// Unix milliseconds the tests start at.
const T0: u64 = 1_800_000_000_000;

struct Board {
    switchboard: Switchboard,
    now: u64,
    /// What each session was sent, in order.
    inbox: BTreeMap<SessionId, Vec<ServerMessage>>,
    closed: Vec<SessionId>,
    refused_records: usize,
}

fn claims(user: &str, issued_at: u64, expire_secs: u64) -> UserSigClaims {
    UserSigClaims {
        user_id: user.into(),
        app_id: APP,
        issued_at,
        expire_secs,
    }
}

fn sig(user: &str) -> String {
    sign(SECRET, &claims(user, T0 / 1000, 3600))
}

impl Board {
    fn new() -> Self {
        Self::with(Keyring::single(SECRET))
    }

    fn with(keys: Keyring) -> Self {
        Self {
            switchboard: Switchboard::new(SwitchboardConfig {
                keys,
                app_id: APP,
                demo_contacts: Vec::new(),
                list_online_users: false,
                limits: Limits::default(),
                policy: SigPolicy::default(),
                webhooks: false,
                node: None,
            }),
            now: T0,
            inbox: BTreeMap::new(),
            closed: Vec::new(),
            refused_records: 0,
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.switchboard.poll_output() {
            match output {
                Output::Send {
                    session, message, ..
                } => self.inbox.entry(session).or_default().push(message),
                Output::Close { session } => self.closed.push(session),
                Output::Refused { .. } => self.refused_records += 1,
                Output::CallEvent(_)
                | Output::CallEnded(_)
                | Output::Publish { .. }
                | Output::Announce(_) => {}
            }
        }
    }

    fn open(&mut self, session: SessionId) {
        self.switchboard.open(session, self.now);
    }

    fn send(&mut self, session: SessionId, message: &ClientMessage) {
        self.switchboard
            .handle_frame(session, self.now, &encode(message));
        self.drain();
    }

    fn log_in(&mut self, session: SessionId, user: &str) {
        self.open(session);
        self.send(
            session,
            &ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: user.into(),
                user_sig: sig(user),
            },
        );
        assert!(
            matches!(self.last(session), Some(ServerMessage::Welcome { .. })),
            "{user} did not log in: {:?}",
            self.last(session)
        );
    }

    fn wait(&mut self, millis: u64) {
        let end = self.now + millis;
        while self.now < end {
            self.now = (self.now + 1000).min(end);
            self.switchboard.handle_tick(self.now);
            self.drain();
        }
    }

    fn last(&self, session: SessionId) -> Option<&ServerMessage> {
        self.inbox
            .get(&session)
            .and_then(|messages| messages.last())
    }

    fn last_error(&self, session: SessionId) -> Option<(ErrorCode, String)> {
        self.inbox
            .get(&session)?
            .iter()
            .rev()
            .find_map(|message| match message {
                ServerMessage::Error { code, message, .. } => Some((*code, message.clone())),
                _ => None,
            })
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

    fn invite(&mut self, session: SessionId, call_id: &str, callees: &[&str], timeout_secs: u32) {
        let invite = Action::Invite {
            call_id: call_id.into(),
            callees: callees.iter().map(|c| (*c).to_owned()).collect(),
            media: MediaType::Audio,
            group: callees.len() > 1,
            timeout_secs,
        };
        self.send(session, &ClientMessage::Call(invite));
    }

    fn act(&mut self, session: SessionId, action: Action) {
        self.send(session, &ClientMessage::Call(action));
    }
}

#[test]
fn a_connection_that_does_not_log_in_within_ten_seconds_is_told_and_closed() {
    let mut board = Board::new();
    board.open(1);
    board.wait(9_000);
    assert!(board.closed.is_empty());
    board.wait(1_000);
    assert_eq!(board.closed, [1]);
    assert_eq!(
        board.last_error(1).map(|e| e.0),
        Some(ErrorCode::NotLoggedIn)
    );
    assert_eq!(board.switchboard.session_count(), 0);
}

#[test]
fn ping_before_log_in_is_refused_with_6014() {
    let mut board = Board::new();
    board.open(1);
    board.send(1, &ClientMessage::Ping { nonce: 7 });
    assert_eq!(
        board.last_error(1).map(|e| e.0),
        Some(ErrorCode::NotLoggedIn)
    );
}

#[test]
fn the_server_ends_a_ringing_invitation_at_its_timeout_and_a_late_accept_is_refused() {
    let mut board = Board::new();
    board.log_in(1, "alice");
    board.log_in(2, "bob");
    board.invite(1, "c-1", &["bob"], 5);
    // The clients' own timers come first; the server's after a grace.
    board.wait(5_000 + 1_000);
    assert_eq!(board.switchboard.call_count(), 1);
    board.wait(1_000);
    assert_eq!(board.switchboard.call_count(), 0);
    assert!(board.signals(1).contains(&Signal::NoResponse {
        user_id: "bob".into()
    }));
    assert!(board.signals(2).contains(&Signal::EndedByServer));
    board.wait(30_000);
    board.act(
        2,
        Action::Accept {
            call_id: "c-1".into(),
        },
    );
    assert_eq!(
        board.last_error(2).map(|e| e.0),
        Some(ErrorCode::RequestRefused)
    );
}

#[test]
fn calls_you_are_not_in_get_one_answer_whether_live_ended_or_unknown() {
    let mut board = Board::new();
    board.log_in(1, "alice");
    board.log_in(2, "bob");
    board.log_in(3, "mallory");
    board.invite(1, "c-live", &["bob"], 30);
    board.invite(1, "c-gone", &["bob"], 30);
    board.act(
        1,
        Action::Cancel {
            call_id: "c-gone".into(),
        },
    );
    let mut answers = Vec::new();
    for call_id in ["c-live", "c-gone", "c-never"] {
        board.act(
            3,
            Action::Hangup {
                call_id: call_id.into(),
            },
        );
        let (code, message) = board.last_error(3).expect("present");
        answers.push((code, message.replace(call_id, "ID")));
    }
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
    assert_eq!(answers[0].0, ErrorCode::PermissionDenied);
}

#[test]
fn a_strangers_invitation_by_anothers_call_id_collides_with_nothing_and_tells_nothing() {
    let mut board = Board::new();
    for (session, user) in [
        (1, "alice"),
        (2, "bob"),
        (3, "mallory"),
        (4, "eve"),
        (5, "trudy"),
    ] {
        board.log_in(session, user);
    }
    let id = |call_id: &str| call_id.to_owned();
    board.invite(1, "c-live", &["bob"], 30);
    board.act(
        2,
        Action::Accept {
            call_id: id("c-live"),
        },
    );
    board.invite(1, "c-gone", &["eve"], 30);
    board.act(
        1,
        Action::Cancel {
            call_id: id("c-gone"),
        },
    );
    // Mallory invites her accomplice by alice's live id, her ended one, and an unknown one:
    // the same answer each time, and each time eve is rung.
    for call_id in ["c-live", "c-gone", "c-never"] {
        board.invite(3, call_id, &["eve"], 30);
        let delivered = ServerMessage::call(
            call_id,
            Signal::InviteDelivered {
                offline: Vec::new(),
            },
        );
        assert_eq!(board.last(3), Some(&delivered), "{call_id}");
        let rung = matches!(
            board.last(4),
            Some(ServerMessage::Call(CallSignal { call_id: rung, signal: Signal::Invited { caller, .. } }))
                if rung == call_id && caller == "mallory"
        );
        assert!(rung, "eve was not rung by {call_id}: {:?}", board.last(4));
        board.act(
            4,
            Action::Reject {
                call_id: id(call_id),
            },
        );
        assert!(
            board
                .signals(3)
                .ends_with(&[Signal::Rejected { user_id: id("eve") }])
        );
    }
    // Her own ids are taken to her now; to another stranger bob, in a call by that id, is
    // busy (as anyone is who is in a call, once their client answers), and alice's call goes
    // on untouched.
    board.invite(3, "c-live", &["bob"], 30);
    assert_eq!(
        board.last_error(3).map(|e| e.0),
        Some(ErrorCode::RequestRepeated)
    );
    board.invite(5, "c-live", &["bob"], 30);
    assert!(
        board
            .signals(5)
            .ends_with(&[Signal::LineBusy { user_id: id("bob") }])
    );
    assert_eq!(board.switchboard.call_count(), 1);
    board.act(
        1,
        Action::Hangup {
            call_id: id("c-live"),
        },
    );
    assert!(board.signals(2).ends_with(&[Signal::HungUp {
        user_id: id("alice")
    }]));
    assert_eq!(board.switchboard.call_count(), 0);
    // Only alice's own ids are taken to her.
    board.invite(1, "c-gone", &["bob"], 30);
    assert_eq!(
        board.last_error(1).map(|e| e.0),
        Some(ErrorCode::RequestRepeated)
    );
}

#[test]
fn media_negotiation_is_relayed_only_within_a_call_and_never_in_bulk() {
    let mut board = Board::new();
    board.log_in(1, "alice");
    board.log_in(2, "bob");
    board.invite(1, "c-1", &["bob"], 30);
    let sdp = |to: &str, size: usize| ClientMessage::Sdp {
        call_id: "c-1".into(),
        to: to.into(),
        description: "x".repeat(size),
    };
    // The caller's offer reaches the ringing callee...
    board.send(1, &sdp("bob", 3000));
    assert!(matches!(board.last(2), Some(ServerMessage::Sdp { .. })));
    // ...and a callee that prepares early may answer it while it rings...
    board.send(2, &sdp("alice", 3000));
    assert!(matches!(board.last(1), Some(ServerMessage::Sdp { .. })));
    // ...but a ringing callee reaches no one else in a call.
    board.log_in(3, "carol");
    board.invite(1, "c-2", &["bob", "carol"], 30);
    board.send(
        2,
        &ClientMessage::Sdp {
            call_id: "c-2".into(),
            to: "carol".into(),
            description: "x".repeat(300),
        },
    );
    assert_eq!(
        board.last_error(2).map(|e| e.0),
        Some(ErrorCode::RequestRefused)
    );
    assert!(
        !board.inbox[&3]
            .iter()
            .any(|message| matches!(message, ServerMessage::Sdp { .. }))
    );
    // A description too large, and more than a few: refused.
    board.send(1, &sdp("bob", 20_000));
    assert_eq!(
        board.last_error(1).map(|e| e.0),
        Some(ErrorCode::InvalidParameter)
    );
    for _ in 0..10 {
        board.send(1, &sdp("bob", 100));
    }
    let relayed = board.inbox[&2]
        .iter()
        .filter(|message| matches!(message, ServerMessage::Sdp { .. }))
        .count();
    assert_eq!(
        relayed,
        Limits::default().max_descriptions_per_pair as usize
    );
    // Bob was never disconnected for alice's traffic.
    assert!(board.closed.is_empty());
}

#[test]
fn a_caller_has_a_few_unanswered_calls_at_once_and_a_callee_a_few_invitations() {
    let mut board = Board::new();
    board.log_in(1, "mallory");
    for (session, user) in [
        (2, "bob"),
        (3, "carol"),
        (4, "dave"),
        (5, "erin"),
        (6, "fred"),
    ] {
        board.log_in(session, user);
    }
    for (number, callee) in ["bob", "carol", "dave", "erin", "fred"].iter().enumerate() {
        board.invite(1, &format!("c-{number}"), &[callee], 0);
    }
    assert_eq!(
        board.switchboard.call_count(),
        Limits::default().max_unanswered_calls
    );
    assert_eq!(
        board.last_error(1).map(|e| e.0),
        Some(ErrorCode::RequestRefused)
    );
    // Many callers ringing one callee: past the cap it is busy for the rest.
    let mut board = Board::new();
    board.log_in(100, "bob");
    for caller in 0..10 {
        let session = 1 + caller;
        board.log_in(session, &format!("caller{caller}"));
        board.invite(session, &format!("c-{caller}"), &["bob"], 0);
    }
    let ringing = board
        .signals(100)
        .iter()
        .filter(|signal| matches!(signal, Signal::Invited { .. }))
        .count();
    assert_eq!(ringing, Limits::default().max_calls_per_user);
    assert!(board.signals(10).contains(&Signal::LineBusy {
        user_id: "bob".into()
    }));
}

#[test]
fn ids_that_break_the_rule_are_refused_and_not_echoed() {
    let mut board = Board::new();
    board.open(1);
    for user in ["", "a\u{202e}b", "nul\0", &"u".repeat(10 * 1024)] {
        board.send(
            1,
            &ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: user.into(),
                user_sig: sig("alice"),
            },
        );
    }
    // Three failed log-ins close the connection.
    assert_eq!(board.closed, [1]);
    board.log_in(2, "alice");
    let long_id = "c".repeat(32 * 1024);
    board.invite(2, &long_id, &["bob"], 30);
    let ServerMessage::Error {
        code,
        call_id,
        message,
        ..
    } = board.last(2).expect("present")
    else {
        panic!("no error")
    };
    assert_eq!(*code, ErrorCode::InvalidParameter);
    assert_eq!(*call_id, None);
    assert!(message.len() < 400, "{} bytes", message.len());
}

#[test]
fn a_flooding_connection_is_slowed_then_closed_and_its_refusals_are_recorded_a_few_times() {
    let mut board = Board::new();
    board.open(1);
    for _ in 0..1000 {
        board
            .switchboard
            .handle_frame(1, board.now, "{\"type\":\"teleport\"}");
    }
    board.drain();
    assert_eq!(board.closed, [1]);
    assert!(
        board.refused_records <= Limits::default().refusals_recorded as usize,
        "{} records",
        board.refused_records
    );
    let counted: u64 = board.switchboard.refusal_counts().by_code.values().sum();
    assert!(counted > u64::from(Limits::default().refusals_before_close));
}

#[test]
fn log_ins_are_bounded_per_user_id_across_connections() {
    let mut board = Board::new();
    let forged = sign(b"not the secret", &claims("bob", T0 / 1000, 3600));
    // A log-in attempt of bob on a new connection.
    let attempt = |board: &mut Board, session: SessionId, user_sig: String| {
        board.open(session);
        board.send(
            session,
            &ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: "bob".into(),
                user_sig,
            },
        );
    };
    for session in 1..=10 {
        attempt(&mut board, session, forged.clone());
    }
    let throttled = (1..=10)
        .filter(|session| {
            board
                .last_error(*session)
                .is_some_and(|(code, _)| code == ErrorCode::RequestRefused)
        })
        .count();
    assert_eq!(throttled, 10 - Limits::default().login_burst as usize);
    // Forged attempts never keep out whoever holds the right UserSig: they are counted apart.
    board.log_in(20, "bob");
    // Log-ins themselves are bounded too: the burst (each one kicks the one before), then none.
    let burst = Limits::default().login_burst;
    for session in 21..20 + burst {
        board.log_in(session, "bob");
    }
    let refused = |board: &mut Board, session: SessionId| {
        attempt(board, session, sig("bob"));
        board.last_error(session).is_some_and(|(code, message)| {
            code == ErrorCode::RequestRefused && message.contains("too many log-in attempts")
        })
    };
    assert!(refused(&mut board, 30));
    // Twelve a minute: one every 5 s, not sooner.
    board.wait(4_000);
    assert!(refused(&mut board, 31));
    board.wait(1_001);
    board.log_in(32, "bob");
}

#[test]
fn a_revocation_closes_the_users_sessions_and_refuses_its_old_user_sigs() {
    let mut board = Board::new();
    board.log_in(1, "bob");
    board.log_in(2, "alice");
    let mut revocations = Revocations::default();
    revocations.revoke("bob", T0 / 1000 + 1);
    board.switchboard.handle_revocations(board.now, revocations);
    board.drain();
    assert_eq!(board.closed, [1]);
    assert_eq!(
        board.last_error(1).map(|e| e.0),
        Some(ErrorCode::UserSigInvalid)
    );
    board.open(3);
    board.send(
        3,
        &ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: "bob".into(),
            user_sig: sig("bob"),
        },
    );
    assert_eq!(
        board.last_error(3).map(|e| e.0),
        Some(ErrorCode::UserSigInvalid)
    );
    board.now += 2000;
    board.open(4);
    let fresh = sign(SECRET, &claims("bob", board.now / 1000, 3600));
    board.send(
        4,
        &ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: "bob".into(),
            user_sig: fresh,
        },
    );
    assert!(matches!(board.last(4), Some(ServerMessage::Welcome { .. })));
}

#[test]
fn after_a_key_rotation_old_and_new_user_sigs_log_in() {
    let keys =
        Keyring::parse(b"k2 rotated-secret\ndefault switchboard test secret\n").expect("present");
    let mut board = Board::with(keys);
    board.log_in(1, "alice");
    board.open(2);
    let new = sign_with("k2", b"rotated-secret", &claims("bob", T0 / 1000, 3600));
    board.send(
        2,
        &ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: "bob".into(),
            user_sig: new,
        },
    );
    assert!(matches!(board.last(2), Some(ServerMessage::Welcome { .. })));
}

#[test]
fn contacts_show_only_the_demo_peers_unless_the_server_lists_who_is_online() {
    let mut board = Board::new();
    board.log_in(1, "alice");
    board.log_in(2, "bob");
    board.send(1, &ClientMessage::Contacts);
    assert_eq!(
        board.last(1),
        Some(&ServerMessage::Contacts {
            contacts: Vec::new()
        })
    );
}

fn share(board: &mut Board, session: SessionId, call_id: &str, count: usize) {
    let entries = (0..count)
        .map(|seq| serde_json::json!({"seq": seq, "kind": "statusChanged"}))
        .collect();
    board.send(
        session,
        &ClientMessage::ShareTrace {
            call_id: call_id.into(),
            entries,
        },
    );
}

fn shared_from(board: &Board, session: SessionId) -> Vec<(String, usize)> {
    board
        .inbox
        .get(&session)
        .into_iter()
        .flatten()
        .filter_map(|message| match message {
            ServerMessage::SharedTrace { from, entries, .. } => Some((from.clone(), entries.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn shared_entries_reach_only_the_calls_other_participants_who_asked_within_caps() {
    let mut board = Board::new();
    for (session, user) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        board.log_in(session, user);
        board.send(session, &ClientMessage::Traces { on: true });
    }
    board.invite(1, "c-1", &["bob"], 30);
    share(&mut board, 1, "c-1", 3);
    // The ringing callee hears the caller's; carol and dave, who asked too, hear nothing.
    assert_eq!(shared_from(&board, 2), [("alice".to_owned(), 3)]);
    for outsider in [3, 4] {
        assert_eq!(shared_from(&board, outsider), []);
    }
    // An outsider's share about the call is refused with the one answer, naming the request.
    share(&mut board, 3, "c-1", 1);
    let Some(ServerMessage::Error { code, request, .. }) = board.last(3) else {
        panic!("carol was not answered: {:?}", board.last(3));
    };
    assert_eq!(
        (*code, request.as_deref()),
        (ErrorCode::PermissionDenied, Some("share_trace"))
    );
    assert_eq!(shared_from(&board, 1), []);
    // Too many in one message, or one too large: refused, nothing forwarded.
    share(
        &mut board,
        2,
        "c-1",
        crate::signaling::MAX_SHARED_ENTRIES + 1,
    );
    assert_eq!(
        board.last_error(2).map(|(code, _)| code),
        Some(ErrorCode::InvalidParameter)
    );
    let big = serde_json::json!({"payload": "x".repeat(5000)});
    board.send(
        2,
        &ClientMessage::ShareTrace {
            call_id: "c-1".into(),
            entries: vec![big],
        },
    );
    assert!(
        board
            .last_error(2)
            .is_some_and(|(_, message)| message.contains("larger"))
    );
    assert_eq!(shared_from(&board, 1), []);
    // The callee accepts and hangs up: the call is over, and its afterCalling still goes.
    board.act(
        2,
        Action::Accept {
            call_id: "c-1".into(),
        },
    );
    board.act(
        2,
        Action::Hangup {
            call_id: "c-1".into(),
        },
    );
    share(&mut board, 2, "c-1", 2);
    assert_eq!(shared_from(&board, 1), [("bob".to_owned(), 2)]);
    // A participant shares at most its cap of one call; the rest is refused.
    let cap = Limits::default().max_shared_entries_per_call as usize;
    for _ in 0..=cap / 64 {
        board.wait(1000);
        share(&mut board, 1, "c-1", 64);
    }
    let forwarded: usize = shared_from(&board, 2).iter().map(|(_, count)| count).sum();
    assert!(forwarded <= cap, "{forwarded} forwarded");
    assert!(forwarded > cap - 64, "{forwarded} forwarded");
    assert!(
        board
            .last_error(1)
            .is_some_and(|(code, _)| code == ErrorCode::RequestRefused)
    );
    for outsider in [3, 4] {
        assert_eq!(shared_from(&board, outsider), []);
    }
}

#[test]
fn a_group_calls_ringing_invitee_and_a_decliner_hear_nothing_shared_and_refusals_close_nothing() {
    let mut board = Board::new();
    for (session, user) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        board.log_in(session, user);
        board.send(session, &ClientMessage::Traces { on: true });
    }
    board.invite(1, "g-1", &["bob", "carol", "dave"], 30);
    board.act(
        2,
        Action::Accept {
            call_id: "g-1".into(),
        },
    );
    board.act(
        4,
        Action::Reject {
            call_id: "g-1".into(),
        },
    );
    share(&mut board, 1, "g-1", 2);
    // Bob joined; carol still rings and dave declined: neither hears the conversation.
    assert_eq!(shared_from(&board, 2), [("alice".to_owned(), 2)]);
    assert_eq!(shared_from(&board, 3), []);
    assert_eq!(shared_from(&board, 4), []);
    // The decliner was never in it: its share is refused like an outsider's.
    share(&mut board, 4, "g-1", 1);
    assert_eq!(
        board.last_error(4).map(|(code, _)| code),
        Some(ErrorCode::PermissionDenied)
    );
    // Carol's own entries, while she rings, reach those who joined.
    share(&mut board, 3, "g-1", 1);
    assert_eq!(shared_from(&board, 1), [("carol".to_owned(), 1)]);
    // An empty share is refused; refused shares never close the connection.
    share(&mut board, 2, "g-1", 0);
    assert_eq!(
        board.last_error(2).map(|(code, _)| code),
        Some(ErrorCode::InvalidParameter)
    );
    for _ in 0..100 {
        board.wait(100);
        share(&mut board, 4, "g-1", 1);
    }
    assert!(
        !board.closed.contains(&4),
        "a refused share closed dave's connection"
    );
}

#[test]
fn a_lost_connection_keeps_its_connected_calls_for_the_grace_then_the_others_hear_it_ended() {
    let mut board = Board::new();
    board.log_in(1, "alice");
    board.log_in(2, "bob");
    board.invite(1, "c-1", &["bob"], 30);
    board.act(
        2,
        Action::Accept {
            call_id: "c-1".into(),
        },
    );
    // Alice's connection drops: bob hears nothing, the call is held.
    board.switchboard.close(1);
    board.drain();
    board.wait(5_000);
    assert!(!board.signals(2).contains(&Signal::EndedByServer));
    // Back within the grace: the welcome names the call, which goes on.
    board.log_in(3, "alice");
    let Some(ServerMessage::Welcome { calls, .. }) = board.last(3) else {
        panic!("no welcome: {:?}", board.last(3));
    };
    assert_eq!(calls, &["c-1".to_owned()]);
    assert_eq!(board.switchboard.call_count(), 1);
    // Dropped again, for longer than the grace: bob's call ends by the server.
    board.switchboard.close(3);
    board.drain();
    board.wait(Limits::default().rejoin_grace_millis + 1_000);
    assert!(board.signals(2).contains(&Signal::EndedByServer));
    assert_eq!(board.switchboard.call_count(), 0);
    board.log_in(4, "alice");
    assert!(
        matches!(board.last(4), Some(ServerMessage::Welcome { calls, .. }) if calls.is_empty())
    );
}

mod fuzz {
    //! Random traffic from a handful of connections, valid and not: the switchboard never
    //! panics, never grows past its caps, and forgets everything once everyone has gone.

    use proptest::prelude::*;

    use super::{Board, sig};
    use crate::call::Action;
    use crate::model::MediaType;
    use crate::signaling::protocol::{ClientMessage, PROTOCOL_VERSION, encode};
    use crate::signaling::switchboard::Limits;

    #[derive(Debug, Clone)]
    enum Op {
        Open(u64),
        Close(u64),
        Frame(u64, String),
        Tick(u64),
    }

    fn user() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("u0"),
            Just("u1"),
            Just("u2"),
            Just("u3"),
            Just("bad id")
        ]
        .prop_map(str::to_owned)
    }

    fn call_id() -> impl Strategy<Value = String> {
        prop_oneof![Just("c-0"), Just("c-1"), Just("c-2")].prop_map(str::to_owned)
    }

    fn message() -> impl Strategy<Value = String> {
        let action = prop_oneof![
            (
                call_id(),
                proptest::collection::vec(user(), 1..3),
                any::<bool>(),
                0u32..40
            )
                .prop_map(|(call_id, callees, group, timeout_secs)| Action::Invite {
                    call_id,
                    callees,
                    media: MediaType::Audio,
                    group,
                    timeout_secs,
                }),
            call_id().prop_map(|call_id| Action::Accept { call_id }),
            call_id().prop_map(|call_id| Action::Reject { call_id }),
            call_id().prop_map(|call_id| Action::Hangup { call_id }),
            call_id().prop_map(|call_id| Action::Cancel { call_id }),
            call_id().prop_map(|call_id| Action::LineBusy { call_id }),
            (call_id(), user()).prop_map(|(call_id, user)| Action::InviteMore {
                call_id,
                users: vec![user]
            }),
        ];
        prop_oneof![
            4 => user().prop_map(|user_id| encode(&ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_sig: sig(&user_id),
                user_id,
            })),
            6 => action.prop_map(|action| encode(&ClientMessage::Call(action))),
            2 => (call_id(), user(), 0usize..20_000).prop_map(|(call_id, to, size)| {
                encode(&ClientMessage::Sdp { call_id, to, description: "v".repeat(size) })
            }),
            1 => Just(encode(&ClientMessage::Contacts)),
            1 => any::<u64>().prop_map(|nonce| encode(&ClientMessage::Ping { nonce })),
            1 => ".{0,80}",
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0u64..4).prop_map(Op::Open),
            1 => (0u64..4).prop_map(Op::Close),
            12 => ((0u64..4), message()).prop_map(|(session, frame)| Op::Frame(session, frame)),
            2 => (0u64..40_000).prop_map(Op::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_traffic_keeps_the_switchboard_within_bounds(ops in proptest::collection::vec(op(), 1..150)) {
            let mut board = Board::new();
            for op in ops {
                match op {
                    Op::Open(session) => board.open(session),
                    Op::Close(session) => board.switchboard.close(session),
                    Op::Frame(session, frame) => {
                        board.switchboard.handle_frame(session, board.now, &frame);
                    }
                    Op::Tick(millis) => {
                        board.now += millis;
                        board.switchboard.handle_tick(board.now);
                    }
                }
                board.drain();
                let limits = Limits::default();
                prop_assert!(board.switchboard.call_count() <= 4 * limits.max_calls_per_user);
                prop_assert!(board.switchboard.online_count() <= board.switchboard.session_count());
            }
            for session in 0..4 {
                board.switchboard.close(session);
            }
            board.drain();
            prop_assert_eq!(board.switchboard.session_count(), 0);
            prop_assert_eq!(board.switchboard.online_count(), 0);
            prop_assert_eq!(board.switchboard.call_count(), 0);
            prop_assert!(board.switchboard.calls_of_user.values().all(std::collections::HashSet::is_empty));
        }
    }
}
