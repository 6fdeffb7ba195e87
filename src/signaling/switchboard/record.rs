//! `CallRecord`: what the server knows about one call in progress.

use std::collections::BTreeMap;

use crate::model::MediaType;

/// One call in progress on the server.
#[derive(Debug, Clone)]
pub(super) struct CallRecord {
    /// Who placed it.
    pub caller: String,
    /// Audio or video now.
    pub media: MediaType,
    /// Group call.
    pub group: bool,
    /// Ringing timeout of its invitations, in seconds.
    pub timeout_secs: u32,
    /// Everyone in or invited into it (the caller too): `true` once joined.
    pub members: BTreeMap<String, bool>,
}

impl CallRecord {
    /// Whether `user` is invited and has not answered.
    pub fn is_ringing(&self, user: &str) -> bool {
        self.members.get(user) == Some(&false)
    }

    /// Whether `user` is in the call.
    pub fn has_joined(&self, user: &str) -> bool {
        self.members.get(user) == Some(&true)
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
            .filter(|(member, joined)| **joined && member.as_str() != user)
            .map(|(member, _)| member.clone())
            .collect()
    }

    /// Whether anyone but the caller joined.
    pub fn anyone_answered(&self) -> bool {
        self.members
            .iter()
            .any(|(member, joined)| *joined && *member != self.caller)
    }
}
