//! The seed's Step 1 and 2 in Rust: bind the five callbacks, then drive scripted calls through the
//! call core with no network, so all five fire.
//!
//! Run with `cargo run --example bind_callbacks`.

use std::time::Duration;

use callscope::call::{CallMachine, Input, MediaType, MonoTime, Signal};
use callscope::callbacks::CallKit;

fn main() {
    // Step 1 and 2: bind the callbacks, each with a closure that logs what it gets.
    let kit = CallKit::builder()
        .user("alice")
        .before_calling(|call_type, error| {
            let error = error.map_or_else(|| "null".to_owned(), ToString::to_string);
            println!("[Callkit Demo] beforeCalling: {} {error}", call_type.as_str());
        })
        .after_calling(|summary| {
            println!(
                "[Callkit Demo] afterCalling: {} ({} ms, reason {})",
                summary.call_id, summary.duration_millis, summary.reason
            );
        })
        .on_minimized(|old, new| {
            println!(
                "[Callkit Demo] onMinimized: {} -> {}",
                old.as_str(),
                new.as_str()
            );
        })
        .kicked_out(|info| println!("[Callkit Demo] handleKickedOut: by {}", info.by))
        .status_changed(|change| {
            println!(
                "[Callkit Demo] handleStatusChanged: {} -> {}",
                change.old_status, change.new_status
            );
        })
        .build();

    let mut alice = CallMachine::new("alice");
    let mut now = MonoTime::default();
    let mut step = |machine: &mut CallMachine, after_millis: u64, input: Input| {
        now = now + Duration::from_millis(after_millis);
        if let Err(error) = machine.handle_input(now, input) {
            println!("refused: {error}");
        }
        kit.drain(machine);
    };

    // An outgoing video call to bob: dial, bob answers, minimize, restore, hang up.
    step(&mut alice, 0, Input::LoggedIn);
    step(&mut alice, 10, dial("c-1", "bob"));
    step(&mut alice, 5, signal("c-1", Signal::InviteDelivered { offline: vec![] }));
    let accepted = Signal::Accepted {
        user_id: "bob".into(),
    };
    step(&mut alice, 1200, signal("c-1", accepted));
    step(&mut alice, 2000, Input::Minimize);
    step(&mut alice, 1500, Input::Restore);
    step(&mut alice, 1000, Input::Hangup);

    // An incoming call from carol, cut short by a log-in of alice on another device.
    let invited = Signal::Invited {
        caller: "carol".into(),
        callees: vec!["alice".into()],
        media: MediaType::Audio,
        group: false,
        timeout_secs: 30,
    };
    step(&mut alice, 500, signal("c-2", invited));
    step(&mut alice, 800, Input::Accept);
    let kick = Input::KickedOut {
        by: "alice on another device".into(),
    };
    step(&mut alice, 3000, kick);

    println!(
        "{} timeline entries recorded; every one is in `kit.timeline()`.",
        kit.timeline().len()
    );
}

fn dial(call_id: &str, callee: &str) -> Input {
    Input::Dial {
        call_id: call_id.into(),
        callees: vec![callee.into()],
        media: MediaType::Video,
        group: false,
        timeout_secs: 30,
    }
}

fn signal(call_id: &str, signal: Signal) -> Input {
    Input::Signal {
        call_id: call_id.into(),
        signal,
    }
}
