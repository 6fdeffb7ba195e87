//! How a built-in demo peer answers: the behaviours that let a newcomer fire every callback alone.

use std::time::Duration;

/// What a demo peer does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPolicy {
    /// Rings for `after`, then accepts.
    Accept {
        /// How long it rings.
        after: Duration,
    },
    /// Rings for `after`, then rejects.
    Decline {
        /// How long it rings.
        after: Duration,
    },
    /// Answers every invitation with line-busy at once.
    Busy,
    /// Lets it ring until the caller gives up.
    NoAnswer,
}

/// A built-in demo peer: its user id, what it does, and how the contact list describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPeer {
    /// Its user id.
    pub user_id: &'static str,
    /// How it answers.
    pub policy: PeerPolicy,
    /// What the contact list says about it.
    pub description: &'static str,
}

/// The demo peers hosted next to an embedded server.
pub const DEMO_PEERS: [DemoPeer; 6] = [
    DemoPeer {
        user_id: "echo",
        policy: PeerPolicy::Accept {
            after: Duration::from_secs(1),
        },
        description: "rings about 1 s, then answers",
    },
    DemoPeer {
        user_id: "decline",
        policy: PeerPolicy::Decline {
            after: Duration::from_secs(1),
        },
        description: "rings about 1 s, then rejects",
    },
    DemoPeer {
        user_id: "busy",
        policy: PeerPolicy::Busy,
        description: "is always in another call",
    },
    DemoPeer {
        user_id: "noanswer",
        policy: PeerPolicy::NoAnswer,
        description: "never answers; the call times out",
    },
    DemoPeer {
        user_id: "group-a",
        policy: PeerPolicy::Accept {
            after: Duration::from_millis(800),
        },
        description: "answers after 0.8 s; call it with group-b for a 3-person call",
    },
    DemoPeer {
        user_id: "group-b",
        policy: PeerPolicy::Accept {
            after: Duration::from_millis(1500),
        },
        description: "answers after 1.5 s; call it with group-a for a 3-person call",
    },
];
