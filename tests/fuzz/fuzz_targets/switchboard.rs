//! Any lines as the frames of three connections to one switchboard (the first byte of a line
//! picks the connection, the rest is its frame; `\x01` opens it again after a close, `\x02`
//! lets a second pass): answers and refusals, never a panic, and every connection it was told
//! to close is closed once. Alice (connection 0) and Bob (1) are logged in first, so calls can
//! be made; the corpus starts from real frames.
#![no_main]

use std::collections::HashSet;

use callscope::signaling::switchboard::{Limits, Output, Switchboard, SwitchboardConfig};
use callscope::signaling::usersig::{Keyring, SigPolicy, UserSigClaims, sign};
use callscope::signaling::{ClientMessage, PROTOCOL_VERSION, encode};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzzing secret";
const APP: u64 = 7;
const T0: u64 = 1_800_000_000_000;

fn login(user: &str) -> String {
    let claims = UserSigClaims {
        user_id: user.into(),
        app_id: APP,
        issued_at: T0 / 1000,
        expire_secs: 3600,
    };
    encode(&ClientMessage::Login {
        version: PROTOCOL_VERSION,
        user_id: user.into(),
        user_sig: sign(SECRET, &claims),
    })
}

fn drain(board: &mut Switchboard, closed: &mut HashSet<u64>) {
    while let Some(output) = board.poll_output() {
        if let Output::Close { session } = output {
            assert!(closed.insert(session), "connection {session} closed twice");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut board = Switchboard::new(SwitchboardConfig {
        keys: Keyring::single(SECRET),
        app_id: APP,
        demo_contacts: Vec::new(),
        list_online_users: true,
        limits: Limits::default(),
        policy: SigPolicy::default(),
        webhooks: true,
        node: None,
    });
    let mut now = T0;
    let mut closed = HashSet::new();
    for (session, user) in [(0, "alice"), (1, "bob"), (2, "carol")] {
        board.open(session, now);
        if session < 2 {
            board.handle_frame(session, now, &login(user));
        }
    }
    drain(&mut board, &mut closed);
    for line in data.split(|&byte| byte == b'\n') {
        let Some((&first, frame)) = line.split_first() else {
            continue;
        };
        let session = u64::from(first % 3);
        match first {
            1 => {
                board.close(session);
                closed.remove(&session);
                board.open(session, now);
            }
            2 => {
                now += 1_000;
                board.handle_tick(now);
            }
            _ if !closed.contains(&session) => {
                board.handle_frame(session, now, &String::from_utf8_lossy(frame));
            }
            _ => {}
        }
        drain(&mut board, &mut closed);
    }
});
