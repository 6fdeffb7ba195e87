//! `CallRecord`: what the server knows about one call in progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::MediaType;
use crate::signaling::webhook::CallResult;

/// A call as the switchboard keys it: the id its caller gave it, within the caller's own
/// namespace, so that nobody's id can collide with, or find out about, another user's call.
/// It reads as that id (its members know the call by it): [`Deref`](std::ops::Deref) and
/// [`Display`](std::fmt::Display) give the id alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallKey {
    /// Who placed it.
    pub caller: String,
    /// Its id, as its members know it.
    pub id: String,
}

impl CallKey {
    /// The call `id` placed by `caller`.
    pub fn new(caller: &str, id: &str) -> Self {
        Self {
            caller: caller.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl std::ops::Deref for CallKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Display for CallKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.id)
    }
}

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
    /// When it was placed, Unix milliseconds.
    pub started_millis: u64,
    /// When it was first accepted.
    pub accepted_millis: Option<u64>,
    /// How it is ending, as far as its steps tell.
    pub outcome: Option<CallResult>,
    /// Everyone ever in it or invited into it, the caller too.
    pub total: usize,
}

impl CallRecord {
    /// A step of the call (named as its webhook event) at `now_millis`.
    pub fn note(&mut self, name: &str, now_millis: u64) {
        let outcome = match name {
            "callee_accept_call" => {
                self.accepted_millis.get_or_insert(now_millis);
                return;
            }
            // A caller gives up by itself when its ringing timeout passes: that is no answer.
            "caller_cancel_call" if self.rang_out(now_millis) => CallResult::NotAnswer,
            "caller_cancel_call" => CallResult::Cancel,
            "callee_reject_call" => CallResult::Reject,
            "caller_call_busy" => CallResult::CallBusy,
            "callee_not_answer_call" => CallResult::NotAnswer,
            "caller_call_interrupted" | "callee_call_interrupted" => CallResult::Interrupt,
            _ => return,
        };
        // Once it connected, only an interruption changes how it ends.
        if self.accepted_millis.is_none() || outcome == CallResult::Interrupt {
            self.outcome = Some(outcome);
        }
    }

    /// Whether the ringing timeout has passed by `now_millis` (within half a second, the
    /// caller's clock and the hop).
    fn rang_out(&self, now_millis: u64) -> bool {
        self.timeout_secs > 0
            && now_millis.saturating_sub(self.started_millis) + 500
                >= u64::from(self.timeout_secs) * 1000
    }

    /// How it ended, when it ends now.
    pub fn result(&self) -> CallResult {
        match (self.accepted_millis, self.outcome) {
            (Some(_), Some(CallResult::Interrupt)) | (None, None) => CallResult::Interrupt,
            (Some(_), _) => CallResult::NormalEnd,
            (None, Some(outcome)) => outcome,
        }
    }

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
