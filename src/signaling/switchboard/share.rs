//! Shared traces: the entries a participant's kit recorded about one of its calls, forwarded
//! only to the call's other participants who asked for traces, within caps per message, per
//! entry and per participant and call. While a call goes on, its entries reach those who
//! joined it (and the ringing callee of a 1:1 call, whose invitation they are about), never a
//! group call's ringing invitee; once it ended, those who were in it at its end. A refused share
//! is answered, and not counted against the connection (its call goes on). The server reads no
//! more of the entries than their sizes.

use std::collections::BTreeSet;

use crate::model::CallError;
use crate::model::ids::check_call_id;

use super::super::protocol::{MAX_SHARED_ENTRIES, ServerMessage};
use super::calls::{invalid, not_yours, refused};
use super::{CallKey, SessionId, Switchboard};

impl Switchboard {
    /// `user` shares `entries` about `call_id`: a call it is in, was in, or has just ended.
    pub(super) fn share_trace(
        &mut self,
        session: SessionId,
        user: &str,
        call_id: &CallKey,
        entries: &[serde_json::Value],
    ) -> Result<(), CallError> {
        check_call_id(call_id).map_err(invalid)?;
        let limits = self.config.limits;
        if entries.is_empty() {
            return Err(invalid("a shared trace holds at least one entry"));
        }
        if entries.len() > MAX_SHARED_ENTRIES {
            return Err(invalid(format!(
                "{} entries in one message; at most {MAX_SHARED_ENTRIES}",
                entries.len()
            )));
        }
        if entries.iter().any(|entry| !entry.is_object()) {
            return Err(invalid("each shared entry is a JSON object"));
        }
        // The frame is at most 64 KiB, so measuring its entries costs no more than reading it.
        let largest = entries
            .iter()
            .map(|entry| serde_json::to_string(entry).map_or(0, |text| text.len()))
            .max()
            .unwrap_or(0);
        if largest > limits.max_shared_entry_bytes {
            return Err(invalid(format!(
                "a shared entry of {largest} bytes is larger than the {}-byte limit",
                limits.max_shared_entry_bytes
            )));
        }
        let others = self.sharing_partners(user, call_id)?;
        let count = self
            .shared
            .entry(call_id.clone())
            .or_default()
            .entry(user.to_owned())
            .or_default();
        let max = limits.max_shared_entries_per_call;
        let adding = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        if count.saturating_add(adding) > max {
            return Err(refused(format!(
                "at most {max} entries of one call may be shared; {count} were"
            )));
        }
        *count += adding;
        let recipients: Vec<SessionId> = others
            .iter()
            .filter_map(|other| self.online.get(other).copied())
            .filter(|target| self.sessions.get(target).is_some_and(|state| state.traces))
            .collect();
        for target in recipients {
            let message = ServerMessage::SharedTrace {
                call_id: call_id.id.clone(),
                from: user.to_owned(),
                entries: entries.to_vec(),
            };
            // The sharer's traffic: a recipient that cannot take it is not punished for it.
            // A recipient on another node is reached through it.
            self.emit(target, message, Some(session));
        }
        Ok(())
    }

    /// Who hears what `user` shares about `call_id`: while it goes on (`user` in it, ringing
    /// in it, or gone after joining), its other members who joined, and a 1:1 call's ringing
    /// callee; once it ended, everyone else who was in it.
    fn sharing_partners(
        &self,
        user: &str,
        call_id: &CallKey,
    ) -> Result<BTreeSet<String>, CallError> {
        if let Some(record) = self.calls.get(call_id) {
            if !record.members.contains_key(user) && !record.left.contains(user) {
                return Err(not_yours(call_id));
            }
            return Ok(record
                .members
                .iter()
                .filter(|(member, state)| {
                    member.as_str() != user && (state.joined || !record.group)
                })
                .map(|(member, _)| member.clone())
                .collect());
        }
        match self.ended_members.get(call_id) {
            Some(members) if members.contains(user) => Ok(members
                .iter()
                .filter(|member| member.as_str() != user)
                .cloned()
                .collect()),
            _ => Err(not_yours(call_id)),
        }
    }
}
