//! `CallRecord`: what the server knows about one call in progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::MediaType;

/// A member of a call on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    /// In the call (the caller from the start, a callee once it accepted).
    pub joined: bool,
    /// When its invitation was sent (ringing members), Unix milliseconds.
    pub invited_at_millis: u64,
}

/// What one participant relayed to another in a call: descriptions and candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Relayed {
    pub descriptions: u32,
    pub candidates: u32,
}

/// One call in progress on the server.
#[derive(Debug, Clone)]
pub(super) struct CallRecord {
    /// Who placed it.
    pub caller: String,
    /// Audio or video now.
    pub media: MediaType,
    /// Group call.
    pub group: bool,
    /// Ringing timeout of its invitations, in seconds (0: none).
    pub timeout_secs: u32,
    /// Everyone in or invited into it (the caller too).
    pub members: BTreeMap<String, Member>,
    /// Who was a member and left while the call went on (they may still share their trace).
    pub left: BTreeSet<String>,
    /// Media negotiation relayed so far, by (from, to).
    pub relayed: HashMap<(String, String), Relayed>,
}

impl CallRecord {
    /// Whether `user` is invited and has not answered.
    pub fn is_ringing(&self, user: &str) -> bool {
        self.members.get(user).is_some_and(|member| !member.joined)
    }

    /// Whether `user` is in the call.
    pub fn has_joined(&self, user: &str) -> bool {
        self.members.get(user).is_some_and(|member| member.joined)
    }

    /// Everyone in or invited into the call except `user`.
    pub fn others(&self, user: &str) -> Vec<String> {
        self.members
            .keys()
            .filter(|member| member.as_str() != user)
            .cloned()
            .collect()
    }

    /// Everyone who joined, except `user`.
    pub fn joined_others(&self, user: &str) -> Vec<String> {
        self.members
            .iter()
            .filter(|(member, state)| state.joined && member.as_str() != user)
            .map(|(member, _)| member.clone())
            .collect()
    }

    /// Whether anyone but the caller joined.
    pub fn anyone_answered(&self) -> bool {
        self.members
            .iter()
            .any(|(member, state)| state.joined && *member != self.caller)
    }

    /// Ringing members whose invitation is older than `timeout + grace` at `now_millis`.
    pub fn expired(&self, now_millis: u64, grace_millis: u64) -> Vec<String> {
        if self.timeout_secs == 0 {
            return Vec::new();
        }
        let limit = u64::from(self.timeout_secs) * 1000 + grace_millis;
        self.members
            .iter()
            .filter(|(_, member)| {
                !member.joined && now_millis.saturating_sub(member.invited_at_millis) >= limit
            })
            .map(|(user, _)| user.clone())
            .collect()
    }
}
