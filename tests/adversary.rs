//! Attacks on the real server over real sockets, one test per attack. Each asserts the refusal
//! and that, at the same time, a legitimate pair logs in and completes invite, accept and hang
//! up. Attackers connect from 127.0.0.2 (loopback too), so the per-address caps they hit are
//! theirs alone.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use callscope::call::{Action, CallSignal, Signal};
use callscope::engine::{Behaviour, ConnectionState, EngineCommand, Script, sign_user_sig};
use callscope::event::CallbackKind;
use callscope::model::{CallStatus, EndReason, ErrorCode, MediaType};
use callscope::signaling::usersig::{self, DEFAULT_APP_ID, Revocations, UserSigClaims};
use callscope::signaling::{ClientMessage, PROTOCOL_VERSION, ServerMessage, encode};
use callscope::timeline::Query;
use common::net::{Client, Net, Raw, SECRET, WAIT};

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A legitimate pair that logs in, calls, answers and hangs up; how long it took.
fn legitimate_call(net: &Net, dialer: &str, answerer: &str) -> Duration {
    let started = Instant::now();
    let answering = Script::new(Behaviour::Answer {
        after: Duration::ZERO,
    });
    let bob = net.scripted(answerer, answering);
    let alice = net.online(dialer);
    alice.dial(&[answerer], MediaType::Audio, 30);
    alice.wait_count(CallbackKind::CallBegin, 1);
    alice.send(EngineCommand::Hangup);
    alice.wait_count(CallbackKind::AfterCalling, 1);
    bob.wait_count(CallbackKind::AfterCalling, 1);
    assert_eq!(alice.end_reasons(), [EndReason::Hangup]);
    started.elapsed()
}

/// Runs `attack` while a legitimate pair calls; the pair must succeed.
fn during(net: &Net, attack: impl FnOnce() + Send) {
    std::thread::scope(|scope| {
        let attacker = std::thread::Builder::new()
            .name("attacker".into())
            .spawn_scoped(scope, attack)
            .unwrap();
        // Let the attack get going first.
        std::thread::sleep(Duration::from_millis(100));
        let took = legitimate_call(net, "legit-a", "legit-b");
        println!("the legitimate call took {took:?} during the attack");
        attacker.join().unwrap();
    });
}

fn log_in_raw(net: &Net, user: &str, from: Ipv4Addr) -> Raw {
    let mut raw = net.try_raw_from(from).unwrap();
    raw.send(
        net,
        &ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: user.into(),
            user_sig: sign_user_sig(SECRET, user),
        },
    );
    assert!(matches!(raw.receive(net), ServerMessage::Welcome { .. }));
    raw
}

fn invite(call_id: &str, callee: &str, timeout_secs: u32) -> ClientMessage {
    ClientMessage::Call(Action::Invite {
        call_id: call_id.into(),
        callees: vec![callee.into()],
        media: MediaType::Audio,
        group: false,
        timeout_secs,
    })
}

#[test]
fn an_sdp_flood_at_a_user_in_a_call_neither_drops_it_nor_ends_its_call() {
    let net = Net::start();
    let answering = Script::new(Behaviour::Answer {
        after: Duration::ZERO,
    });
    let victim = net.scripted("victim", answering);
    let friend = net.online("friend");
    friend.dial(&["victim"], MediaType::Audio, 30);
    victim.wait_count(CallbackKind::CallBegin, 1);
    during(&net, || {
        let mut mallory = log_in_raw(&net, "mallory", ATTACKER);
        mallory.send(&net, &invite("c-flood", "victim", 30));
        let blob = "x".repeat(60 * 1024);
        for _ in 0..600 {
            let sdp = ClientMessage::Sdp {
                call_id: "c-flood".into(),
                to: "victim".into(),
                description: blob.clone(),
            };
            if !mallory.try_send_text(&net, encode(&sdp)) {
                break;
            }
        }
        // The flood was refused and mallory shown the door.
        assert!(mallory.closed_within(&net, Duration::from_secs(15)));
    });
    // The victim stayed online and its call with its friend goes on.
    assert_eq!(victim.connection(), ConnectionState::Online);
    assert!(victim.status().is_calling());
    assert!(friend.status().is_calling());
    assert!(!victim.has(|e| matches!(e, callscope::event::Event::Error(_))));
    friend.end_call();
    victim.wait_idle();
}

#[test]
fn connections_that_never_finish_their_handshake_are_capped_and_timed_out() {
    let net = Net::start();
    let limits = callscope::signaling::TransportLimits::default();
    during(&net, || {
        let streams: Vec<_> = net.runtime.block_on(async {
            let mut streams = Vec::new();
            for _ in 0..300 {
                if let Ok(stream) = net.tcp_from(ATTACKER).await {
                    streams.push(stream);
                }
            }
            streams
        });
        assert_eq!(streams.len(), 300);
        // All but the address's handshake allowance were closed at once.
        let started = Instant::now();
        while net.stats().turned_away.load(Ordering::Relaxed)
            < 300 - limits.max_handshakes_per_ip as u64
        {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "not turned away"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The rest go when their handshake time is up.
        while net.stats().connections.load(Ordering::Relaxed) > 2 {
            assert!(
                started.elapsed() < limits.handshake_timeout + Duration::from_secs(3),
                "{} connections still open",
                net.stats().connections.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(streams);
    });
}

#[test]
fn a_connection_that_never_logs_in_is_told_and_closed_after_ten_seconds() {
    let net = Net::start();
    during(&net, || {
        let mut idle = net.try_raw_from(ATTACKER).unwrap();
        let started = Instant::now();
        let told = idle.receive_within(&net, Duration::from_secs(13));
        assert!(
            matches!(
                told,
                Some(ServerMessage::Error {
                    code: ErrorCode::NotLoggedIn,
                    ..
                })
            ),
            "{told:?}"
        );
        assert!(started.elapsed() >= Duration::from_secs(9));
        assert!(idle.closed_within(&net, Duration::from_secs(2)));
    });
}

#[test]
fn a_frame_too_large_to_read_gets_an_error_then_a_close() {
    let net = Net::start();
    during(&net, || {
        let mut mallory = net.try_raw_from(ATTACKER).unwrap();
        let huge = format!(
            r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#,
            "x".repeat(1024 * 1024)
        );
        let _ = mallory.try_send_text(&net, huge);
        let told = mallory.receive_within(&net, Duration::from_secs(5));
        assert!(
            matches!(&told, Some(ServerMessage::Error { code: ErrorCode::InvalidParameter, message, .. }) if message.contains("closed")),
            "{told:?}"
        );
        assert!(mallory.closed_within(&net, Duration::from_secs(5)));
    });
}

#[test]
fn a_client_that_never_reads_is_dropped_alone() {
    // A small outbox, so the test need not wait for megabytes to pile up.
    let net = Net::start_with(|config| {
        config.transport.outbox_bytes = 16 * 1024;
        config.transport.write_timeout = Duration::from_secs(2);
    });
    let others: Vec<Client> = (0..20).map(|n| net.online(&format!("user{n}"))).collect();
    let observer = &others[0];
    let listed = |name: &str| {
        observer.send(EngineCommand::RefreshContacts);
        std::thread::sleep(Duration::from_millis(50));
        observer
            .contacts()
            .iter()
            .any(|contact| contact.user_id == name)
    };
    during(&net, || {
        let (mut socket, _) = net.runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.bind((ATTACKER, 0).into()).unwrap();
            let address = net.url().trim_start_matches("ws://").parse().unwrap();
            let stream = socket.connect(address).await.unwrap();
            tokio_tungstenite::client_async(net.url(), stream)
                .await
                .unwrap()
        });
        let send = |socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
                    message: &ClientMessage| {
            use futures_util::SinkExt as _;
            let frame = tokio_tungstenite::tungstenite::Message::text(encode(message));
            net.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_millis(50), socket.send(frame)).await;
            });
        };
        let login = ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: "sleeper".into(),
            user_sig: sign_user_sig(SECRET, "sleeper"),
        };
        send(&mut socket, &login);
        let started = Instant::now();
        while !listed("sleeper") {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the sleeper never showed: {:?}",
                observer.contacts()
            );
        }
        // It asks for the contact list over and over, and never reads an answer.
        let started = Instant::now();
        while listed("sleeper") {
            for _ in 0..5 {
                send(&mut socket, &ClientMessage::Contacts);
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the sleeper was never dropped"
            );
        }
    });
    for other in &others {
        assert_eq!(other.connection(), ConnectionState::Online);
    }
}

#[test]
fn unauthenticated_garbage_is_throttled_closed_and_recorded_a_few_times_only() {
    let net = Net::start();
    let recorded_before = net.server_kit.timeline().len();
    during(&net, || {
        let mut mallory = net.try_raw_from(ATTACKER).unwrap();
        let garbage = format!(r#"{{"type":"{}"}}"#, "t".repeat(60 * 1024 - 20));
        let mut sent = 0;
        for _ in 0..3000 {
            if !mallory.try_send_text(&net, garbage.clone()) {
                break;
            }
            sent += 1;
        }
        // Before log-in it may send 16 KiB: the server closes it long before the 3,000th frame.
        assert!(sent < 3000, "all {sent} frames were taken");
        assert!(mallory.closed_within(&net, WAIT));
    });
    let recorded: Vec<_> = net
        .server_kit
        .timeline()
        .query(&Query::all())
        .into_iter()
        .skip(recorded_before)
        .collect();
    assert!(recorded.len() <= 10, "{} refusals recorded", recorded.len());
    for entry in &recorded {
        let text = entry.event.to_string();
        assert!(
            text.len() < 600,
            "a recorded refusal of {} bytes",
            text.len()
        );
    }
}

#[test]
fn invitations_are_capped_and_the_server_ends_one_that_rings_past_its_timeout() {
    let net = Net::start();
    let mut callees: Vec<Raw> = (0..6)
        .map(|n| log_in_raw(&net, &format!("callee{n}"), ATTACKER))
        .collect();
    during(&net, || {
        let mut mallory = log_in_raw(&net, "mallory", ATTACKER);
        let huge_id = "c".repeat(32 * 1024);
        mallory.send(&net, &invite(&huge_id, "callee0", 30));
        assert_eq!(mallory.expect_error(&net).0, ErrorCode::InvalidParameter);
        for n in 0..6 {
            mallory.send(&net, &invite(&format!("c-{n}"), &format!("callee{n}"), 1));
        }
        let mut refused = 0;
        let mut timed_out = 0;
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline && timed_out < 4 {
            match mallory.receive_within(&net, Duration::from_millis(500)) {
                Some(ServerMessage::Error {
                    code: ErrorCode::RequestRefused,
                    ..
                }) => refused += 1,
                Some(ServerMessage::Call(CallSignal {
                    signal: Signal::NoResponse { .. },
                    ..
                })) => {
                    timed_out += 1;
                }
                _ => {}
            }
        }
        assert_eq!(refused, 2, "two invitations over the cap of four");
        assert_eq!(timed_out, 4, "the server ended the four that rang past 1 s");
    });
    // The callee's late accept is refused: the call is over.
    let callee = &mut callees[0];
    let ended = (0..4).find_map(
        |_| match callee.receive_within(&net, Duration::from_secs(1)) {
            Some(ServerMessage::Call(CallSignal {
                signal: Signal::EndedByServer,
                call_id,
            })) => Some(call_id),
            _ => None,
        },
    );
    let call_id = ended.expect("the ringing callee heard the call end");
    callee.send(&net, &ClientMessage::Call(Action::Accept { call_id }));
    assert_eq!(callee.expect_error(&net).0, ErrorCode::RequestRefused);
}

#[test]
fn forged_and_out_of_policy_user_sigs_are_refused_and_a_log_in_flood_is_closed() {
    let net = Net::start();
    during(&net, || {
        let now = usersig::unix_now_secs();
        let claims = |issued_at, expire_secs| UserSigClaims {
            user_id: "mallory".into(),
            app_id: DEFAULT_APP_ID,
            issued_at,
            expire_secs,
        };
        let ahead = usersig::sign(SECRET, &claims(now + 10 * 365 * 24 * 3600, 60));
        let forever = usersig::sign(SECRET, &claims(now, u64::MAX));
        let forged = sign_user_sig(b"a guessed secret", "mallory");
        let mut mallory = net.try_raw_from(ATTACKER).unwrap();
        for user_sig in [ahead, forever, forged] {
            mallory.send(
                &net,
                &ClientMessage::Login {
                    version: PROTOCOL_VERSION,
                    user_id: "mallory".into(),
                    user_sig,
                },
            );
            assert_eq!(mallory.expect_error(&net).0, ErrorCode::UserSigInvalid);
        }
        // Three failures on one connection close it.
        assert!(mallory.closed_within(&net, Duration::from_secs(2)));
    });
}

#[test]
fn a_revoked_user_is_logged_out_and_its_old_user_sig_refused() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("revoked");
    std::fs::write(&list, "").unwrap();
    let path = list.clone();
    let net = Net::start_with(move |config| config.revocations = Some(path));
    let bob = net.online("bob");
    let old_sig = sign_user_sig(SECRET, "bob");
    during(&net, || {
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(
            &list,
            Revocations::line("bob", usersig::unix_now_secs() + 1),
        )
        .unwrap();
        bob.wait_for("to be logged out", |b| {
            matches!(b.connection(), ConnectionState::LoggedOut { .. })
        });
        let mut again = net.try_raw_from(ATTACKER).unwrap();
        again.send(
            &net,
            &ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: "bob".into(),
                user_sig: old_sig.clone(),
            },
        );
        let (code, message) = again.expect_error(&net);
        assert_eq!(code, ErrorCode::UserSigInvalid);
        assert!(message.contains("revoked"), "{message}");
    });
    assert!(bob.errors().contains(&ErrorCode::UserSigInvalid));
}

#[test]
fn user_ids_that_break_the_rule_are_refused() {
    let net = Net::start();
    during(&net, || {
        for user in ["", "a b", "nul\0x", "line\nbreak", "rtl\u{202e}x", "аlice"] {
            let mut raw = net.try_raw_from(ATTACKER).unwrap();
            raw.send(
                &net,
                &ClientMessage::Login {
                    version: PROTOCOL_VERSION,
                    user_id: user.into(),
                    user_sig: sign_user_sig(SECRET, user),
                },
            );
            assert_eq!(
                raw.expect_error(&net).0,
                ErrorCode::InvalidParameter,
                "{user:?}"
            );
        }
        let mut mallory = log_in_raw(&net, "mallory", ATTACKER);
        mallory.send(&net, &invite("c-1", &"x".repeat(10 * 1024), 30));
        assert_eq!(mallory.expect_error(&net).0, ErrorCode::InvalidParameter);
    });
}

#[test]
fn calls_you_are_not_in_look_alike_and_contacts_list_no_strangers() {
    let net = Net::start_with(|config| config.list_online_users = false);
    let answering = Script::new(Behaviour::Answer {
        after: Duration::ZERO,
    });
    let bob = net.scripted("bob", answering);
    let carol = net.online("carol");
    carol.dial(&["bob"], MediaType::Audio, 30);
    carol.wait_count(CallbackKind::CallBegin, 1);
    let live = carol.last_call_id();
    during(&net, || {
        let mut mallory = log_in_raw(&net, "mallory", ATTACKER);
        let mut answers = Vec::new();
        for call_id in [live.as_str(), "c-unknown"] {
            mallory.send(
                &net,
                &ClientMessage::Call(Action::Hangup {
                    call_id: call_id.into(),
                }),
            );
            let (code, message) = mallory.expect_error(&net);
            answers.push((code, message.replace(call_id, "ID")));
        }
        assert_eq!(answers[0], answers[1]);
        mallory.send(&net, &ClientMessage::Contacts);
        assert_eq!(
            mallory.receive(&net),
            ServerMessage::Contacts {
                contacts: Vec::new()
            }
        );
        // Before log-in, even a ping is refused.
        let mut anonymous = net.try_raw_from(ATTACKER).unwrap();
        anonymous.send(&net, &ClientMessage::Ping { nonce: 1 });
        assert_eq!(anonymous.expect_error(&net).0, ErrorCode::NotLoggedIn);
    });
    assert_eq!(bob.status(), CallStatus::CallingC2cAudio);
    carol.end_call();
    bob.wait_idle();
}

/// Media with synthetic sources and the default ICE set-up (loopback and every interface).
fn default_ice_media(private_ringing: bool) -> callscope::media::MediaConfig {
    callscope::media::MediaConfig {
        ice: callscope::media::IceConfig::default(),
        ringing: callscope::media::Ringing::private(private_ringing),
        ..callscope::media::MediaConfig::synthetic()
    }
}

/// The next session description `raw` receives (other messages are skipped), within `limit`.
fn next_description(net: &Net, raw: &mut Raw, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match raw.receive_within(net, left) {
            Some(ServerMessage::Sdp { description, .. }) => return Some(description),
            Some(_) => {}
            None => return None,
        }
    }
    None
}

/// The candidate lines of a description's SDP.
fn candidates(description: &str) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(description).unwrap();
    json["sdp"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("a=candidate:"))
        .map(str::to_owned)
        .collect()
}

/// `description` with every section's candidates replaced by one at `address`.
fn pointing_at(description: &str, address: std::net::SocketAddr) -> String {
    let mut json: serde_json::Value = serde_json::from_str(description).unwrap();
    let candidate = format!(
        "a=candidate:1 1 udp 2130706431 {} {} typ host",
        address.ip(),
        address.port()
    );
    let mut lines = Vec::new();
    let mut placed = false;
    for line in json["sdp"].as_str().unwrap().lines() {
        if line.starts_with("m=") {
            placed = false;
        }
        if line.starts_with("a=candidate:") {
            if !placed {
                lines.push(candidate.clone());
                placed = true;
            }
        } else {
            lines.push(line.to_owned());
        }
    }
    json["sdp"] = serde_json::Value::String(lines.join("\r\n") + "\r\n");
    json.to_string()
}

/// Whether a STUN packet reaches `socket` within `limit`.
fn stun_within(socket: &std::net::UdpSocket, limit: Duration) -> bool {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut packet = [0_u8; 1500];
    // A STUN message starts with two zero bits and carries the magic cookie at byte 4.
    socket.recv_from(&mut packet).is_ok_and(|(size, _)| {
        size >= 20 && packet[0] & 0xc0 == 0 && packet[4..8] == [0x21, 0x12, 0xa4, 0x42]
    })
}

#[test]
fn a_caller_learns_nothing_of_a_privately_ringing_callee_and_no_offer_has_a_wildcard_address() {
    let net = Net::start();
    // A real offer, from a real client with the default ICE set-up.
    let alice = net.media_client("alice", None, default_ice_media(true));
    let mut mallory = log_in_raw(&net, "mallory", ATTACKER);
    alice.dial(&["mallory"], MediaType::Audio, 30);
    let offer = next_description(&net, &mut mallory, WAIT).expect("alice's offer");
    let offered = candidates(&offer);
    assert!(
        offered.iter().any(|line| line.contains(" 127.0.0.1 ")),
        "{offered:?}"
    );
    for line in &offered {
        let address: std::net::IpAddr = line.split_whitespace().nth(4).unwrap().parse().unwrap();
        assert!(!address.is_unspecified(), "{line}");
    }
    alice.end_call();
    // Mallory calls bob with that offer, its candidates pointing at a socket of hers: bob
    // rings, and for three seconds neither an answer nor a connectivity check reaches her.
    let bob = net.media_client("bob", None, default_ice_media(true));
    let socket = std::net::UdpSocket::bind((ATTACKER, 0)).unwrap();
    let trap = socket.local_addr().unwrap();
    during(&net, || {
        mallory.send(&net, &invite("c-private", "bob", 30));
        mallory.send(
            &net,
            &ClientMessage::Sdp {
                call_id: "c-private".into(),
                to: "bob".into(),
                description: pointing_at(&offer, trap),
            },
        );
        bob.wait_for("bob rings", |bob| bob.status() == CallStatus::BeInvited);
        assert!(!stun_within(&socket, Duration::from_secs(3)));
        assert_eq!(
            next_description(&net, &mut mallory, Duration::from_millis(100)),
            None
        );
    });
    mallory.send(
        &net,
        &ClientMessage::Call(Action::Cancel {
            call_id: "c-private".into(),
        }),
    );
    bob.wait_idle();
    // The same call to carol, who prepares while she rings: her answer and her checks come
    // at once (what privacy saves her from).
    let carol = net.media_client("carol", None, default_ice_media(false));
    mallory.send(&net, &invite("c-prepared", "carol", 30));
    mallory.send(
        &net,
        &ClientMessage::Sdp {
            call_id: "c-prepared".into(),
            to: "carol".into(),
            description: pointing_at(&offer, trap),
        },
    );
    let answer = next_description(&net, &mut mallory, WAIT).expect("carol's answer");
    assert!(!candidates(&answer).is_empty());
    assert!(stun_within(&socket, Duration::from_secs(3)));
    assert_eq!(carol.status(), CallStatus::BeInvited);
    mallory.send(
        &net,
        &ClientMessage::Call(Action::Cancel {
            call_id: "c-prepared".into(),
        }),
    );
    carol.wait_idle();
}

/// The `index`-th of many attacking addresses, 127.0.0.2 to 127.0.0.254 in turn.
fn stranger(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(index % 253).unwrap())
}

/// A runtime of its own for attackers: the server and the legitimate pair never wait behind
/// them in a scheduler queue, only for the machine's cores.
fn attackers_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn tcp_from(from: Ipv4Addr, server: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    socket.connect(server).await
}

async fn websocket_from(from: Ipv4Addr, server: SocketAddr) -> Option<Socket> {
    let stream = tcp_from(from, server).await.ok()?;
    let url = format!("ws://{server}");
    let handshake = tokio_tungstenite::client_async(url, stream);
    Some(tokio::time::timeout(WAIT, handshake).await.ok()?.ok()?.0)
}

/// How a connection that the server should close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Told why with an error of this code, then closed.
    Told(ErrorCode),
    /// Closed (or reset) without a message read.
    Closed,
    /// Still open at the deadline.
    Open,
}

/// Reads `socket` until the server closes it, up to `limit`.
async fn ending(socket: &mut Socket, limit: Duration) -> Ending {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + limit;
    let mut told = None;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Ending::Open,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                if let Ok(ServerMessage::Error { code, .. }) =
                    callscope::signaling::decode_server(text.as_str())
                {
                    told = Some(code);
                }
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)) | None) => {
                return told.map_or(Ending::Closed, Ending::Told);
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Bytes of a masked client text frame's header announcing `length` (< 64 KiB) bytes, its
/// mask all zeros (so the payload goes as is).
fn frame_header(length: u16) -> Vec<u8> {
    let [high, low] = length.to_be_bytes();
    vec![0x81, 0x80 | 0x7e, high, low, 0, 0, 0, 0]
}

/// The strangers of a flood before log-in: how many are holding their first part, and
/// whether they may go on.
#[derive(Default)]
struct Flood {
    holding: AtomicUsize,
    go: AtomicBool,
}

/// One stranger that opens a WebSocket and never logs in: it sends the first 15 KB of a
/// 60 KB frame, holds until the others have too, then sends the rest and 69 more such frames
/// as fast as the server takes them. How its connection ended (`None`: never opened).
async fn flood_before_login(
    from: Ipv4Addr,
    server: SocketAddr,
    flood: Arc<Flood>,
) -> Option<Ending> {
    use tokio::io::AsyncWriteExt as _;
    const LENGTH: u16 = 60_000;
    let mut socket = websocket_from(from, server).await?;
    let mut frame = frame_header(LENGTH);
    frame.resize(frame.len() + usize::from(LENGTH), b'x');
    let (first, rest) = frame.split_at(15_000);
    let stream = socket.get_mut();
    if stream.write_all(first).await.is_ok() {
        flood.holding.fetch_add(1, Ordering::Relaxed);
        while !flood.go.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stream.write_all(rest).await;
        for _ in 1..70 {
            if stream.write_all(&frame).await.is_err() {
                break;
            }
        }
    }
    Some(ending(&mut socket, WAIT).await)
}

/// Polls `read` every few milliseconds on a thread of its own until `stop`; the largest value.
fn peak_of(stop: &AtomicBool, read: impl Fn() -> usize) -> usize {
    let mut peak = 0;
    while !stop.load(Ordering::Relaxed) {
        peak = peak.max(read());
        std::thread::sleep(Duration::from_millis(2));
    }
    peak
}

#[test]
fn a_byte_flood_before_log_in_from_many_addresses_is_closed_as_it_is_read_and_nothing_stays_held() {
    const STRANGERS: usize = 1_000;
    let net = Net::start();
    let server = net.url().trim_start_matches("ws://").parse().unwrap();
    let stop = AtomicBool::new(false);
    let (peak_held, peak_pending) = std::thread::scope(|scope| {
        let held = scope.spawn(|| peak_of(&stop, || net.stats().held_bytes()));
        let pending =
            scope.spawn(|| peak_of(&stop, || net.stats().pending_bytes.load(Ordering::Relaxed)));
        during(&net, || {
            let attackers = attackers_runtime();
            let flood = Arc::new(Flood::default());
            let endings = attackers.block_on(async {
                let floods: Vec<_> = (0..STRANGERS)
                    .map(|index| {
                        let flood = Arc::clone(&flood);
                        tokio::spawn(flood_before_login(stranger(index), server, flood))
                    })
                    .collect();
                // All hold their first part at once, then all go on.
                let started = Instant::now();
                while flood.holding.load(Ordering::Relaxed) < STRANGERS && started.elapsed() < WAIT
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                flood.go.store(true, Ordering::Relaxed);
                let mut endings = Vec::new();
                for flood in floods {
                    endings.push(flood.await.unwrap());
                }
                endings
            });
            let opened: Vec<Ending> = endings.into_iter().flatten().collect();
            let told = opened
                .iter()
                .filter(|ending| **ending == Ending::Told(ErrorCode::InvalidParameter))
                .count();
            println!(
                "{} of {STRANGERS} strangers connected, {told} told why they were closed",
                opened.len()
            );
            assert!(
                opened.len() >= STRANGERS * 9 / 10,
                "only {} connected",
                opened.len()
            );
            assert!(
                !opened.contains(&Ending::Open),
                "a stranger's connection stayed open"
            );
            assert!(told > 0, "no stranger was told why: {opened:?}");
        });
        stop.store(true, Ordering::Relaxed);
        (held.join().unwrap(), pending.join().unwrap())
    });
    println!("held at most {peak_held} bytes, {peak_pending} of them read before log-in");
    // The strangers' first parts were all held at once, and what the server held of the
    // flood stayed within the allowance of 16 KiB each (a little more for the read in
    // flight), never the 4 GB sent.
    assert!(
        peak_pending > STRANGERS * 10 * 1024,
        "the flood never arrived: {peak_pending}"
    );
    assert!(peak_held <= STRANGERS * 20 * 1024, "held {peak_held} bytes");
    // Afterwards it holds nothing for them.
    let started = Instant::now();
    while net.stats().held_bytes() > 0 || net.stats().pending.load(Ordering::Relaxed) > 0 {
        assert!(
            started.elapsed() < WAIT,
            "still held: {} bytes",
            net.stats().held_bytes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    legitimate_call(&net, "after-a", "after-b");
}

/// A `callscope server` in its own process with at most 1,024 open files (a cap of 896
/// connections), printing its counters every second; killed with it.
struct LimitedServer {
    child: std::process::Child,
    address: SocketAddr,
    stats: Arc<std::sync::Mutex<serde_json::Value>>,
    _dir: tempfile::TempDir,
}

impl LimitedServer {
    fn start() -> Self {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let mut child = std::process::Command::new("prlimit")
            .arg("--nofile=1024:1024")
            .arg(env!("CARGO_BIN_EXE_callscope"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--secret-file")
            .arg(&secret)
            .args(["--stats-every", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stats = Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let latest = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("server counters".into())
            .spawn(move || {
                for line in lines.map_while(Result::ok) {
                    if let Ok(value) = serde_json::from_str(&line) {
                        *latest.lock().unwrap() = value;
                    }
                }
            })
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "the server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            stats,
            _dir: dir,
        }
    }

    /// A counter of the latest line it printed.
    fn counter(&self, name: &str) -> u64 {
        self.stats.lock().unwrap()[name].as_u64().unwrap_or(0)
    }

    /// Waits for a line printed after now, so that counters read next are current.
    fn fresh_counters(&self) {
        let seen = self.stats.lock().unwrap().clone();
        let started = Instant::now();
        while *self.stats.lock().unwrap() == seen {
            assert!(
                started.elapsed() < WAIT,
                "the server stopped printing its counters"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Legitimate connections made again after admission closed them before their handshake ended.
static REMADE: AtomicU64 = AtomicU64::new(0);

/// The next message on `socket`, up to the generous deadline.
async fn next_message(socket: &mut Socket) -> Result<ServerMessage, String> {
    use futures_util::StreamExt as _;
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .map_err(|_| "no message in time".to_owned())?
            .ok_or("closed")?
            .map_err(|error| error.to_string())?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return callscope::signaling::decode_server(text.as_str()).map_err(|e| e.to_string());
        }
    }
}

async fn send_message(socket: &mut Socket, message: &ClientMessage) -> Result<(), String> {
    use futures_util::SinkExt as _;
    let frame = tokio_tungstenite::tungstenite::Message::text(encode(message));
    socket.send(frame).await.map_err(|error| error.to_string())
}

/// `user` logs in from 127.0.0.1. A connection closed before its handshake ended, or closed
/// by admission before its log-in was answered (admission may evict or expire a pending one
/// while strangers hold the pending share, and a log-in answered slowly on a loaded machine
/// stays pending), is made again after a backoff, 200 ms doubling, as the app's engine does;
/// each time is counted in [`REMADE`].
async fn logged_in(server: SocketAddr, user: &str) -> Result<Socket, String> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        let outcome = match websocket_from(Ipv4Addr::LOCALHOST, server).await {
            Some(socket) => log_in(socket, user).await,
            None => Err("not admitted".to_owned()),
        };
        match outcome {
            Ok(socket) => return Ok(socket),
            Err(why) if started.elapsed() >= WAIT => return Err(why),
            Err(_) => {
                REMADE.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends `user`'s log-in on `socket`: the socket once welcomed; an error if admission closed
/// it first. Anything else the server says fails the test at once.
async fn log_in(mut socket: Socket, user: &str) -> Result<Socket, String> {
    let login = ClientMessage::Login {
        version: PROTOCOL_VERSION,
        user_id: user.into(),
        user_sig: sign_user_sig(SECRET, user),
    };
    send_message(&mut socket, &login).await?;
    match next_message(&mut socket).await? {
        ServerMessage::Welcome { .. } => Ok(socket),
        ServerMessage::Error {
            code: ErrorCode::NotLoggedIn,
            message,
            ..
        } => Err(format!("closed by admission: {message}")),
        other => panic!("{user} not welcomed: {other:?}"),
    }
}

/// Waits on `socket` for a call signal that `wanted` accepts.
async fn signal(socket: &mut Socket, wanted: impl Fn(&Signal) -> bool) -> Result<(), String> {
    loop {
        if let ServerMessage::Call(CallSignal { signal, .. }) = next_message(socket).await?
            && wanted(&signal)
        {
            return Ok(());
        }
    }
}

/// A legitimate pair on 127.0.0.1 logs in, calls, answers and hangs up over the protocol.
async fn protocol_call(server: SocketAddr, round: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let (dialer, answerer) = (format!("legit-a{round}"), format!("legit-b{round}"));
    let (mut dialing, mut answering) =
        tokio::try_join!(logged_in(server, &dialer), logged_in(server, &answerer))?;
    let call_id = format!("legit-{round}");
    send_message(&mut dialing, &invite(&call_id, &answerer, 30)).await?;
    signal(&mut answering, |s| matches!(s, Signal::Invited { .. })).await?;
    let accept = ClientMessage::Call(Action::Accept {
        call_id: call_id.clone(),
    });
    send_message(&mut answering, &accept).await?;
    signal(&mut dialing, |s| matches!(s, Signal::Accepted { .. })).await?;
    let took = started.elapsed();
    send_message(
        &mut dialing,
        &ClientMessage::Call(Action::Hangup { call_id }),
    )
    .await?;
    signal(&mut answering, |s| matches!(s, Signal::HungUp { .. })).await?;
    Ok(took)
}

/// Strangers from 253 addresses keep `connections` connections open, each made anew as soon
/// as the server closes it; with `websocket` they finish the handshake (and never log in),
/// without it they never send a byte. They stop when `stop` is set.
async fn hold_slots(
    server: SocketAddr,
    connections: usize,
    websocket: bool,
    stop: Arc<AtomicBool>,
) {
    use tokio::io::AsyncReadExt as _;
    let holders: Vec<_> = (0..connections)
        .map(|index| {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let from = stranger(index);
                    if websocket {
                        if let Some(mut socket) = websocket_from(from, server).await {
                            let _ = ending(&mut socket, Duration::from_mins(1)).await;
                        }
                    } else if let Ok(mut stream) = tcp_from(from, server).await {
                        let mut byte = [0_u8; 1];
                        let _ =
                            tokio::time::timeout(Duration::from_mins(1), stream.read(&mut byte))
                                .await;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for holder in holders {
        holder.abort();
    }
}

/// Three legitimate calls on `server` while `connections` strangers hold slots (see
/// [`hold_slots`]): the calls' times; each must succeed.
fn calls_while_strangers_hold(
    server: &LimitedServer,
    connections: usize,
    websocket: bool,
) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let attackers = attackers_runtime();
    let holding = attackers.spawn(hold_slots(
        server.address,
        connections,
        websocket,
        Arc::clone(&stop),
    ));
    // The strangers fill the share of slots for connections not logged in (half of 896)
    // before the first call.
    let started = Instant::now();
    while server.counter("pending") < 440 {
        assert!(
            started.elapsed() < WAIT,
            "the strangers took {} slots",
            server.counter("pending")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let times = (0..3)
        .map(|round| {
            let round = round + usize::from(websocket) * 10;
            runtime
                .block_on(protocol_call(server.address, round))
                .unwrap_or_else(|error| panic!("legitimate call {round} failed: {error}"))
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    attackers.block_on(holding).unwrap();
    attackers.shutdown_background();
    times
}

#[test]
fn strangers_from_many_addresses_holding_more_connections_than_slots_never_keep_a_user_out() {
    // Raise this process's own limit: it holds the strangers' side of every connection.
    rlimit::increase_nofile_limit(8_192).unwrap();
    let server = LimitedServer::start();
    // Idle TCP connections that never send a byte, more than the server has slots.
    let idle = calls_while_strangers_hold(&server, 1_265, false);
    server.fresh_counters();
    let evicted_idle = server.counter("evicted");
    println!(
        "idle flood: calls took {idle:?}; {evicted_idle} evicted, {} expired",
        server.counter("expired")
    );
    assert!(
        evicted_idle > 0,
        "no stranger was evicted: the slots were never full"
    );
    // WebSockets that finish their handshake and never log in.
    let silent = calls_while_strangers_hold(&server, 1_100, true);
    server.fresh_counters();
    let evicted = server.counter("evicted") - evicted_idle;
    println!(
        "silent WebSocket flood: calls took {silent:?}; {evicted} evicted; \
         legitimate connections made again: {}",
        REMADE.load(Ordering::Relaxed)
    );
    assert!(
        evicted > 0,
        "no stranger was evicted: the slots were never full"
    );
    // And afterwards.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(protocol_call(server.address, 99)).unwrap();
}

#[test]
fn strangers_probing_call_ids_from_many_addresses_learn_nothing_and_touch_no_call() {
    let net = Net::start_with(|config| config.list_online_users = false);
    let answering = Script::new(Behaviour::Answer {
        after: Duration::ZERO,
    });
    let bob = net.scripted("bob", answering.clone());
    let carol = net.online("carol");
    carol.dial(&["bob"], MediaType::Audio, 30);
    carol.wait_count(CallbackKind::CallBegin, 1);
    let live = carol.last_call_id();
    // An ended call of theirs too.
    carol.send(EngineCommand::Hangup);
    carol.wait_count(CallbackKind::AfterCalling, 1);
    bob.wait_idle();
    let ended = live;
    carol.dial(&["bob"], MediaType::Audio, 30);
    carol.wait_count(CallbackKind::CallBegin, 2);
    let live = carol.last_call_id();
    during(&net, || {
        let mut accomplice = log_in_raw(&net, "eve", ATTACKER);
        for index in 0..20 {
            let user = format!("mallory{index}");
            let mut mallory = log_in_raw(&net, &user, stranger(index));
            let mut answers = Vec::new();
            for call_id in [live.as_str(), ended.as_str(), "c-unknown"] {
                mallory.send(&net, &invite(call_id, "eve", 30));
                let answer = mallory.receive(&net);
                let rung = accomplice.receive(&net);
                assert!(
                    matches!(&rung, ServerMessage::Call(CallSignal { call_id: id, signal: Signal::Invited { caller, .. } }) if id == call_id && *caller == user),
                    "{rung:?}"
                );
                let reject = ClientMessage::Call(Action::Reject {
                    call_id: call_id.into(),
                });
                accomplice.send(&net, &reject);
                let after = mallory.receive(&net);
                answers.push(format!("{answer:?} {after:?}").replace(call_id, "ID"));
            }
            assert!(
                answers.iter().all(|answer| *answer == answers[0]),
                "{answers:?}"
            );
            assert!(answers[0].contains("InviteDelivered"), "{answers:?}");
        }
    });
    // Carol and bob's call went on untouched.
    assert_eq!(bob.status(), CallStatus::CallingC2cAudio);
    assert!(carol.status().is_calling());
    carol.end_call();
    bob.wait_idle();
}
