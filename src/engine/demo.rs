//! The demo peers: ordinary clients of the embedded server whose [`Script`] plays the part of
//! a person, answering, declining or calling back after a delay, so a newcomer can fire every
//! callback alone. A script only watches the state a UI would see and sends the commands a UI
//! would send; nothing in the engine treats a demo peer specially.

use std::time::Duration;

use crate::media::impair::{Impairment, LinkRule};
use crate::model::{CallStatus, MediaType, MonoTime};

use super::messages::{EngineCommand, EngineState};

/// What a demo peer does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Rings for `after`, then accepts.
    Answer {
        /// How long it rings.
        after: Duration,
    },
    /// Rings for `after`, then rejects.
    Decline {
        /// How long it rings.
        after: Duration,
    },
    /// Declines every invitation as busy at once.
    Busy,
    /// Lets it ring until the caller gives up.
    NoAnswer,
    /// Rings for `after`, then accepts; leaves once nobody but demo peers is left in the call.
    Group {
        /// How long it rings.
        after: Duration,
    },
    /// Rings for `after`, rejects, and calls the caller back (video) `call_back_after` later.
    Ringback {
        /// How long it rings.
        after: Duration,
        /// How long after the rejected call it calls back.
        call_back_after: Duration,
    },
    /// Rings for `answer_after`, accepts, and hangs up `hang_up_after` after the call connects.
    HangUp {
        /// How long it rings.
        answer_after: Duration,
        /// How long it stays in the call.
        hang_up_after: Duration,
    },
    /// Rings for `after` and accepts; once connected, its own media link turns bad
    /// ([`FLAKY_LINK`] both ways) for `phase`, then good for `phase`, and so on until the call
    /// ends: the other side sees its warnings and network quality change alone.
    Flaky {
        /// How long it rings.
        after: Duration,
        /// How long each bad and each good spell lasts.
        phase: Duration,
    },
}

/// How the flaky peer's link behaves in a bad spell: lossy in bursts, late and uneven.
pub const FLAKY_LINK: Impairment = Impairment {
    loss_pct: 8.0,
    burst: 2.0,
    delay: Duration::from_millis(220),
    jitter: Duration::from_millis(40),
    rate_kbit: None,
};

/// How long a flaky call starts clean, before the first bad spell.
const FLAKY_CLEAN_START: Duration = Duration::from_secs(3);

/// A built-in demo peer: its user id, what it does, and how the contact list describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPeer {
    /// Its user id.
    pub user_id: &'static str,
    /// How it answers.
    pub behaviour: Behaviour,
    /// What the contact list says about it.
    pub description: &'static str,
}

/// The demo peers hosted next to an embedded server.
pub const DEMO_PEERS: [DemoPeer; 11] = [
    DemoPeer {
        user_id: "echo",
        behaviour: Behaviour::Answer {
            after: Duration::from_secs(1),
        },
        description: "rings about 1 s, then answers",
    },
    DemoPeer {
        user_id: "decline",
        behaviour: Behaviour::Decline {
            after: Duration::from_secs(1),
        },
        description: "rings about 1 s, then rejects",
    },
    DemoPeer {
        user_id: "busy",
        behaviour: Behaviour::Busy,
        description: "is always in another call",
    },
    DemoPeer {
        user_id: "noanswer",
        behaviour: Behaviour::NoAnswer,
        description: "never answers; rings until your timeout",
    },
    DemoPeer {
        user_id: "group-a",
        behaviour: Behaviour::Group {
            after: Duration::from_millis(800),
        },
        description: "answers after 0.8 s; call it with group-b for a 3-person call",
    },
    DemoPeer {
        user_id: "group-b",
        behaviour: Behaviour::Group {
            after: Duration::from_millis(1500),
        },
        description: "answers after 1.5 s; call it with group-a for a 3-person call",
    },
    DemoPeer {
        user_id: "group-c",
        behaviour: Behaviour::Group {
            after: Duration::from_millis(1100),
        },
        description: "answers after 1.1 s; with group-a and group-b: a 4-person call",
    },
    DemoPeer {
        user_id: "group-d",
        behaviour: Behaviour::Group {
            after: Duration::from_millis(1300),
        },
        description: "answers after 1.3 s; with group-a, b and c: a 5-person call",
    },
    DemoPeer {
        user_id: "ringback",
        behaviour: Behaviour::Ringback {
            after: Duration::from_secs(1),
            call_back_after: Duration::from_secs(2),
        },
        description: "rejects, then calls you back 2 s later (video)",
    },
    DemoPeer {
        user_id: "hangup",
        behaviour: Behaviour::HangUp {
            answer_after: Duration::from_secs(1),
            hang_up_after: Duration::from_secs(3),
        },
        description: "answers after 1 s and hangs up on you 3 s later",
    },
    DemoPeer {
        user_id: "flaky",
        behaviour: Behaviour::Flaky {
            after: Duration::from_secs(1),
            phase: Duration::from_secs(12),
        },
        description: "answers after 1 s; its network turns bad for 12 s, then good, in turn",
    },
];

/// Whether `user_id` is one of the built-in demo peers.
pub fn is_demo_peer(user_id: &str) -> bool {
    DEMO_PEERS.iter().any(|peer| peer.user_id == user_id)
}

/// A command planned for later, valid only while the call it was planned for goes on.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    at: MonoTime,
    call_id: Option<String>,
    command: EngineCommand,
}

/// A demo peer's part: it watches the state and plans its commands.
#[derive(Debug, Clone)]
pub struct Script {
    behaviour: Behaviour,
    plan: Option<Plan>,
    status: CallStatus,
    call_id: Option<String>,
    /// Who placed the ringing call.
    caller: Option<String>,
    /// Who to call back once the rejected call is over.
    call_back: Option<String>,
    /// The flaky peer's link is bad now.
    link_bad: bool,
}

impl Script {
    /// A script that behaves as `behaviour`.
    pub fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            plan: None,
            status: CallStatus::Idle,
            call_id: None,
            caller: None,
            call_back: None,
            link_bad: false,
        }
    }

    /// When [`Script::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        self.plan.as_ref().map(|plan| plan.at)
    }

    /// Time passed: the planned command, if it is due and its call still goes on.
    pub fn handle_timeout(&mut self, now: MonoTime) -> Option<EngineCommand> {
        if self.plan.as_ref().is_none_or(|plan| plan.at > now) {
            return None;
        }
        let plan = self.plan.take()?;
        if plan.call_id != self.call_id {
            return None;
        }
        if matches!(self.behaviour, Behaviour::Ringback { .. })
            && plan.command == EngineCommand::Reject
        {
            self.call_back.clone_from(&self.caller);
        }
        if let (Behaviour::Flaky { phase, .. }, EngineCommand::Impair(rule)) =
            (self.behaviour, &plan.command)
        {
            self.link_bad = !rule.impairment.is_none();
            if self.status.is_calling() {
                self.schedule(now, phase, flaky_spell(!self.link_bad));
            }
        }
        Some(plan.command)
    }

    /// Looks at the state after a change and plans what to do.
    pub fn observe(&mut self, now: MonoTime, state: &EngineState) {
        let status = state.call.status();
        let call_id = state
            .call
            .call_id
            .clone()
            .filter(|_| status != CallStatus::Idle);
        let new_call = call_id != self.call_id;
        let entered = status != self.status || new_call;
        let was_in_call = self.call_id.is_some();
        self.status = status;
        self.call_id.clone_from(&call_id);
        if new_call {
            self.plan = None;
        }
        if entered && status == CallStatus::BeInvited {
            self.invited(now, state);
        } else if entered && status.is_calling() {
            self.connected(now);
        } else if status == CallStatus::Idle && was_in_call {
            self.ended(now);
        }
        if status.is_calling()
            && matches!(self.behaviour, Behaviour::Group { .. })
            && self.plan.is_none()
            && !state
                .call
                .participants
                .iter()
                .any(|(user, _)| !is_demo_peer(user))
        {
            // Nobody but demo peers is left: there is no one to talk to.
            self.schedule(now, Duration::ZERO, EngineCommand::Hangup);
        }
    }

    fn invited(&mut self, now: MonoTime, state: &EngineState) {
        self.caller.clone_from(&state.call.caller);
        match self.behaviour {
            Behaviour::Answer { after }
            | Behaviour::Group { after }
            | Behaviour::Flaky { after, .. } => {
                self.schedule(now, after, EngineCommand::Accept);
            }
            Behaviour::HangUp { answer_after, .. } => {
                self.schedule(now, answer_after, EngineCommand::Accept);
            }
            Behaviour::Decline { after } => self.schedule(now, after, EngineCommand::Reject),
            Behaviour::Ringback { after, .. } => {
                self.schedule(now, after, EngineCommand::Reject);
            }
            Behaviour::Busy => self.schedule(now, Duration::ZERO, EngineCommand::DeclineBusy),
            Behaviour::NoAnswer => {}
        }
    }

    fn connected(&mut self, now: MonoTime) {
        match self.behaviour {
            Behaviour::HangUp { hang_up_after, .. } => {
                self.schedule(now, hang_up_after, EngineCommand::Hangup);
            }
            Behaviour::Flaky { .. } => {
                self.schedule(now, FLAKY_CLEAN_START, flaky_spell(true));
            }
            _ => {}
        }
    }

    fn ended(&mut self, now: MonoTime) {
        self.plan = None;
        if self.link_bad {
            // The next call starts clean.
            self.schedule(now, Duration::ZERO, flaky_spell(false));
        }
        if let Behaviour::Ringback {
            call_back_after, ..
        } = self.behaviour
            && let Some(caller) = self.call_back.take()
        {
            let dial = EngineCommand::Dial {
                callees: vec![caller],
                media: MediaType::Video,
                group: false,
                timeout_secs: 30,
            };
            self.schedule(now, call_back_after, dial);
        }
    }

    fn schedule(&mut self, now: MonoTime, after: Duration, command: EngineCommand) {
        self.plan = Some(Plan {
            at: now + after,
            call_id: self.call_id.clone(),
            command,
        });
    }
}

/// The flaky peer's link, bad or good, both ways to every peer.
fn flaky_spell(bad: bool) -> EngineCommand {
    EngineCommand::Impair(LinkRule {
        peer: None,
        direction: crate::media::impair::Direction::Both,
        impairment: if bad {
            FLAKY_LINK
        } else {
            Impairment::default()
        },
    })
}
