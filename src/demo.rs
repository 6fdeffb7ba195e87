//! A scripted pair of calls through the call core, with no network: every one of the five
//! component callbacks fires. Used by `callscope demo` and `examples/bind_callbacks.rs`.

use std::time::Duration;

use crate::call::{CallMachine, Input, Signal};
use crate::kit::CallKit;
use crate::model::MediaType;

/// One step of the script: how long after the previous step, and what happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Time since the previous step.
    pub after: Duration,
    /// What happens.
    pub input: Input,
}

fn step(after_millis: u64, input: Input) -> Step {
    Step {
        after: Duration::from_millis(after_millis),
        input,
    }
}

fn signal(call_id: &str, signal: Signal) -> Input {
    Input::Signal {
        call_id: call_id.into(),
        signal,
    }
}

/// The script for `user`: a video call to `bob` (dial, bob answers, minimize, restore, hang up),
/// then an audio call from `carol` cut short by a log-in of `user` on another device.
pub fn script(user: &str) -> Vec<Step> {
    let accepted = Signal::Accepted {
        user_id: "bob".into(),
    };
    let invited = Signal::Invited {
        caller: "carol".into(),
        callees: vec![user.to_owned()],
        joined: Vec::new(),
        media: MediaType::Audio,
        group: false,
        timeout_secs: 30,
    };
    vec![
        step(0, Input::LoggedIn),
        step(
            10,
            Input::Dial {
                call_id: "demo-1".into(),
                callees: vec!["bob".into()],
                media: MediaType::Video,
                group: false,
                timeout_secs: 30,
            },
        ),
        step(
            5,
            signal("demo-1", Signal::InviteDelivered { offline: vec![] }),
        ),
        step(1200, signal("demo-1", accepted)),
        step(2000, Input::Minimize),
        step(1500, Input::Restore),
        step(1000, Input::Hangup),
        step(500, signal("demo-2", invited)),
        step(800, Input::Accept),
        step(
            3000,
            Input::KickedOut {
                by: format!("{user} on another device"),
            },
        ),
    ]
}

/// Plays the script through a fresh machine of the kit's user, dispatching every event to the
/// kit. Time is the kit's clock now plus the script's offsets (nothing sleeps).
pub fn play(kit: &CallKit) -> CallMachine {
    let mut machine = CallMachine::new(kit.user_id());
    let mut now = kit.clock().now();
    for step in script(kit.user_id()) {
        now = now + step.after;
        // The script only makes legal moves; a refusal would still be recorded as `onError`.
        let _ = machine.handle_input(now, step.input);
        while let Some(emitted) = machine.poll_event() {
            kit.deliver(emitted);
        }
    }
    machine
}
