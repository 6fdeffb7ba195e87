//! `ActiveCall`: what the core knows about the call in progress, and its participants.

use std::collections::BTreeMap;

use crate::model::{CallStatus, CallType, MediaType, MonoTime, Role, ViewMode};

/// Where a participant other than us stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Invited, not answered yet.
    Ringing,
    /// In the call.
    Joined,
}

/// A participant other than us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    /// Ringing or joined.
    pub state: MemberState,
    /// When an unanswered invitation times out here (only the inviter keeps one).
    pub deadline: Option<MonoTime>,
}

/// The call in progress.
#[derive(Debug, Clone)]
pub(super) struct ActiveCall {
    /// The call's id.
    pub call_id: String,
    /// Caller or callee.
    pub role: Role,
    /// Who placed the call.
    pub caller: String,
    /// Group call.
    pub group: bool,
    /// Audio or video now.
    pub media: MediaType,
    /// The status reported last (`idle` until the invitation is delivered).
    pub status: CallStatus,
    /// Whether `beforeCalling` announced the call without an error.
    pub announced: bool,
    /// The user hung up while the invitation was being delivered: cancel once it is.
    pub cancel_on_delivery: bool,
    /// Full or minimized view.
    pub view: ViewMode,
    /// When the call connected.
    pub connected_at: Option<MonoTime>,
    /// When our own ringing times out (callee).
    pub deadline: Option<MonoTime>,
    /// Ringing timeout for invitations we send, in seconds; 0 = never.
    pub timeout_secs: u32,
    /// Everyone else in or invited into the call.
    pub members: BTreeMap<String, Member>,
}

impl ActiveCall {
    /// The `type` that `beforeCalling` reports for this call.
    pub fn call_type(&self) -> CallType {
        match (self.role, self.group) {
            (Role::Callee, _) => CallType::Invited,
            (Role::Caller, false) => CallType::Call,
            (Role::Caller, true) => CallType::GroupCall,
        }
    }

    /// The deadline for an invitation sent at `now`.
    pub fn invite_deadline(&self, now: MonoTime) -> Option<MonoTime> {
        (self.timeout_secs > 0)
            .then(|| now + std::time::Duration::from_secs(u64::from(self.timeout_secs)))
    }

    /// The earliest deadline still pending.
    pub fn next_deadline(&self) -> Option<MonoTime> {
        let own = if self.status == CallStatus::BeInvited {
            self.deadline
        } else {
            None
        };
        self.members
            .values()
            .filter(|member| member.state == MemberState::Ringing)
            .filter_map(|member| member.deadline)
            .chain(own)
            .min()
    }

    /// Whether `user` is ringing in this call.
    pub fn is_ringing(&self, user: &str) -> bool {
        self.members
            .get(user)
            .is_some_and(|member| member.state == MemberState::Ringing)
    }

    /// Whether `user` has joined this call.
    pub fn has_joined(&self, user: &str) -> bool {
        self.members
            .get(user)
            .is_some_and(|member| member.state == MemberState::Joined)
    }
}
