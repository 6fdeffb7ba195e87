//! How the switchboard routes call messages, who may send them, and how much.

use std::collections::{BTreeMap, BTreeSet};

use crate::call::{Action, Signal};
use crate::model::ids::{check_call_id, check_user_id};
use crate::model::{CallError, ErrorCode, MAX_PARTICIPANTS, MediaType};

use super::super::protocol::{ClientMessage, ServerMessage};
use super::record::{CallKey, CallRecord, Member};
use super::{Output, SessionId, Switchboard};
use crate::signaling::webhook::CallResult;

/// How a callee declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decline {
    Reject,
    Busy,
    Gone,
}

/// What is relayed between participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    Description,
    Candidate,
}

pub(super) fn invalid(message: impl Into<String>) -> CallError {
    CallError::new(ErrorCode::InvalidParameter, message)
}

pub(super) fn refused(message: impl Into<String>) -> CallError {
    CallError::new(ErrorCode::RequestRefused, message)
}

/// The one answer for a call the asker is not in: whether it exists, has ended or never did
/// is not told.
pub(super) fn not_yours(call_id: &str) -> CallError {
    CallError::new(
        ErrorCode::PermissionDenied,
        format!("call {call_id:?} is not a call of yours"),
    )
}

impl Switchboard {
    pub(super) fn handle_call_message(
        &mut self,
        session: SessionId,
        now_millis: u64,
        user: &str,
        message: ClientMessage,
    ) {
        let request = matches!(message, ClientMessage::ShareTrace { .. }).then_some("share_trace");
        let call_id = match &message {
            ClientMessage::Call(action) => Some(action.call_id().to_owned()),
            ClientMessage::Sdp { call_id, .. }
            | ClientMessage::Ice { call_id, .. }
            | ClientMessage::ShareTrace { call_id, .. } => Some(call_id.clone()),
            ClientMessage::Login { .. }
            | ClientMessage::Contacts
            | ClientMessage::Ping { .. }
            | ClientMessage::Traces { .. } => None,
        };
        let result = match message {
            ClientMessage::Call(action) => self.handle_action(user, now_millis, action),
            ClientMessage::Sdp {
                call_id,
                to,
                description,
            } => {
                let call = self.call_named(user, &call_id);
                let message = ServerMessage::Sdp {
                    call_id,
                    from: user.to_owned(),
                    description,
                };
                self.relay(session, user, &call, &to, Relay::Description, message)
            }
            ClientMessage::Ice {
                call_id,
                to,
                candidate,
            } => {
                let call = self.call_named(user, &call_id);
                let message = ServerMessage::Ice {
                    call_id,
                    from: user.to_owned(),
                    candidate,
                };
                self.relay(session, user, &call, &to, Relay::Candidate, message)
            }
            ClientMessage::ShareTrace { call_id, entries } => {
                let call = self.call_named(user, &call_id);
                self.share_trace(session, user, &call, &entries)
            }
            ClientMessage::Login { .. }
            | ClientMessage::Contacts
            | ClientMessage::Ping { .. }
            | ClientMessage::Traces { .. } => Ok(()),
        };
        if let Err(error) = result {
            // An id that breaks the rule is not echoed back.
            let echoed = call_id.filter(|call_id| check_call_id(call_id).is_ok());
            self.refuse_request(session, now_millis, &error, echoed.as_deref(), request);
        }
    }

    fn handle_action(
        &mut self,
        user: &str,
        now_millis: u64,
        action: Action,
    ) -> Result<(), CallError> {
        check_call_id(action.call_id()).map_err(invalid)?;
        let call = self.call_named(user, action.call_id());
        let call_id = &call;
        match action {
            Action::Invite {
                call_id: _,
                callees,
                media,
                group,
                timeout_secs,
            } => {
                let record = CallRecord {
                    caller: user.to_owned(),
                    media,
                    group,
                    timeout_secs,
                    members: BTreeMap::new(),
                    left: BTreeSet::new(),
                    relayed: std::collections::HashMap::new(),
                    started_millis: now_millis,
                    accepted_millis: None,
                    outcome: None,
                    total: 1 + callees.len(),
                };
                self.invite(call_id, now_millis, record, &callees)
            }
            Action::Cancel { .. } => self.cancel(user, call_id),
            Action::Accept { .. } => self.accept(user, call_id),
            Action::Reject { .. } => self.decline(user, call_id, Decline::Reject),
            Action::LineBusy { .. } => self.decline(user, call_id, Decline::Busy),
            Action::Hangup { .. } => self.hang_up(user, call_id),
            Action::InviteMore { users, .. } => self.invite_more(user, call_id, now_millis, &users),
            Action::SwitchMedia { media, .. } => self.switch_media(user, call_id, media),
        }
    }

    /// The call `call_id` if `user` is in or invited into it.
    fn member_call(&self, user: &str, call_id: &CallKey) -> Result<&CallRecord, CallError> {
        match self.calls.get(call_id) {
            Some(record) if record.members.contains_key(user) => Ok(record),
            None if self
                .ended_members
                .get(call_id)
                .is_some_and(|members| members.contains(user)) =>
            {
                Err(refused(format!("call {call_id} has already ended")))
            }
            _ => Err(not_yours(call_id)),
        }
    }

    /// The calls `user` is in or invited into, and of those the ones it placed that nobody
    /// answered yet.
    /// Calls homed on other nodes count too (the user is a callee there).
    fn load_of(&self, user: &str) -> (usize, usize) {
        let remote = self.cluster.remote_load(user);
        let Some(calls) = self.calls_of_user.get(user) else {
            return (remote, 0);
        };
        let unanswered = calls
            .iter()
            .filter_map(|call_id| self.calls.get(call_id))
            .filter(|record| record.caller == user && !record.anyone_answered())
            .count();
        (calls.len() + remote, unanswered)
    }

    /// Whether `user` is invited into or in as many calls as the limit allows.
    pub(super) fn saturated(&self, user: &str) -> bool {
        self.load_of(user).0 >= self.config.limits.max_calls_per_user
    }
}

/// Checks people about to be invited into a call that already holds `existing` people.
fn check_new_people(inviter: &str, users: &[String], existing: usize) -> Result<(), CallError> {
    if users.is_empty() {
        return Err(invalid("name at least one callee"));
    }
    for user in users {
        check_user_id(user).map_err(invalid)?;
    }
    if users.iter().any(|user| user == inviter) {
        return Err(invalid("you cannot call yourself"));
    }
    if users.iter().collect::<BTreeSet<_>>().len() != users.len() {
        return Err(invalid("a callee is listed twice"));
    }
    if existing + users.len() > MAX_PARTICIPANTS {
        return Err(invalid(format!(
            "a call holds at most {MAX_PARTICIPANTS} people"
        )));
    }
    Ok(())
}

impl Switchboard {
    fn invite(
        &mut self,
        call_id: &CallKey,
        now_millis: u64,
        mut record: CallRecord,
        callees: &[String],
    ) -> Result<(), CallError> {
        // Taken means one of the caller's own calls has the id: it is in it, was in it, or
        // placed it before. Another user's call by the same id is never seen from here.
        if call_id.caller != record.caller
            || self.calls.contains_key(call_id)
            || self.ended_members.contains_key(call_id)
        {
            return Err(CallError::new(
                ErrorCode::RequestRepeated,
                format!("call id {call_id} is taken"),
            ));
        }
        if !record.group && callees.len() != 1 {
            return Err(invalid("a 1:1 call has exactly one callee"));
        }
        check_new_people(&record.caller, callees, 1)?;
        let limits = self.config.limits;
        let (calls, unanswered) = self.load_of(&record.caller);
        if unanswered >= limits.max_unanswered_calls || calls >= limits.max_calls_per_user {
            return Err(refused(format!(
                "too many calls at once ({calls} in progress, {unanswered} not answered)"
            )));
        }
        let (online, offline): (Vec<String>, Vec<String>) = callees
            .iter()
            .cloned()
            .partition(|callee| self.online.contains_key(callee));
        // A callee already ringing in as many calls as allowed, or in a call by the same id
        // (placed by someone else), is busy for this one.
        let (busy, reached): (Vec<String>, Vec<String>) = online
            .into_iter()
            .partition(|callee| self.saturated(callee) || self.in_call_named(callee, call_id));
        let caller = record.caller.clone();
        let only_caller = [caller.clone()];
        // Not a call on the board yet: its first events are told here.
        self.call_event(call_id, "caller_start_call", &caller, &caller, record.media);
        self.trace(call_id, "caller_start_call", &caller, &only_caller);
        self.send_to_user(
            &caller,
            ServerMessage::call(call_id, Signal::InviteDelivered { offline }),
        );
        for user_id in &busy {
            self.call_event(call_id, "caller_call_busy", user_id, &caller, record.media);
            self.trace(call_id, "caller_call_busy", user_id, &only_caller);
        }
        let busy_count = busy.len();
        for user_id in busy {
            self.send_to_user(
                &caller,
                ServerMessage::call(call_id, Signal::LineBusy { user_id }),
            );
        }
        if reached.is_empty() {
            // Nobody could be reached: the call is over as it starts.
            record.outcome = Some(if busy_count > 0 {
                CallResult::CallBusy
            } else {
                CallResult::NotAnswer
            });
            self.call_ended(call_id, &record);
            self.remember_ended(call_id.clone(), BTreeSet::from([caller]));
            return Ok(());
        }
        record.members.insert(
            caller.clone(),
            Member {
                joined: true,
                invited_at_millis: now_millis,
            },
        );
        for callee in &reached {
            record.members.insert(
                callee.clone(),
                Member {
                    joined: false,
                    invited_at_millis: now_millis,
                },
            );
        }
        let message = ServerMessage::call(
            call_id,
            Signal::Invited {
                caller: caller.clone(),
                callees: reached.clone(),
                joined: Vec::new(),
                media: record.media,
                group: record.group,
                timeout_secs: record.timeout_secs,
            },
        );
        self.add_call(call_id, record);
        for callee in &reached {
            self.send_to_user(callee, message.clone());
        }
        for callee in &reached {
            self.trace(call_id, "callee_receive_call", callee, &[]);
        }
        Ok(())
    }

    fn add_call(&mut self, call_id: &CallKey, record: CallRecord) {
        for member in record.members.keys() {
            self.calls_of_user
                .entry(member.clone())
                .or_default()
                .insert(call_id.clone());
        }
        self.calls.insert(call_id.clone(), record);
        self.name(call_id);
    }

    fn cancel(&mut self, user: &str, call_id: &CallKey) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if record.caller != user {
            return Err(CallError::new(
                ErrorCode::PermissionDenied,
                format!("only the caller may cancel call {call_id}"),
            ));
        }
        if record.anyone_answered() {
            return self.hang_up(user, call_id);
        }
        self.trace(call_id, "caller_cancel_call", user, &[]);
        let record = self.member_call(user, call_id)?;
        for other in record.others(user) {
            let message = ServerMessage::call(
                call_id,
                Signal::Canceled {
                    user_id: user.to_owned(),
                },
            );
            self.send_to_user(&other, message);
        }
        self.end_call(call_id);
        Ok(())
    }

    fn accept(&mut self, user: &str, call_id: &CallKey) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if !record.is_ringing(user) {
            return Err(refused(format!("{user} already joined call {call_id}")));
        }
        let others = record.others(user);
        if let Some(member) = self
            .calls
            .get_mut(call_id)
            .and_then(|record| record.members.get_mut(user))
        {
            member.joined = true;
        }
        for other in others {
            let message = ServerMessage::call(
                call_id,
                Signal::Accepted {
                    user_id: user.to_owned(),
                },
            );
            self.send_to_user(&other, message);
        }
        self.trace(call_id, "callee_accept_call", user, &[]);
        Ok(())
    }

    fn decline(&mut self, user: &str, call_id: &CallKey, how: Decline) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if !record.is_ringing(user) {
            return Err(refused(format!("{user} already joined call {call_id}")));
        }
        for other in record.others(user) {
            let user_id = user.to_owned();
            let signal = match how {
                Decline::Reject => Signal::Rejected { user_id },
                Decline::Busy => Signal::LineBusy { user_id },
                Decline::Gone => Signal::NoResponse { user_id },
            };
            self.send_to_user(&other, ServerMessage::call(call_id, signal));
        }
        let name = match how {
            Decline::Reject => "callee_reject_call",
            Decline::Busy => "caller_call_busy",
            Decline::Gone => "callee_not_answer_call",
        };
        self.trace(call_id, name, user, &[]);
        self.remove_member(call_id, user);
        Ok(())
    }

    fn hang_up(&mut self, user: &str, call_id: &CallKey) -> Result<(), CallError> {
        self.leave(user, call_id, false)
    }

    /// `user` leaves a call it joined: it hung up, or (`interrupted`) its connection closed.
    fn leave(&mut self, user: &str, call_id: &CallKey, interrupted: bool) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if record.is_ringing(user) {
            return self.decline(user, call_id, Decline::Reject);
        }
        if record.caller == user && !record.anyone_answered() {
            return self.cancel(user, call_id);
        }
        for other in record.others(user) {
            let message = ServerMessage::call(
                call_id,
                Signal::HungUp {
                    user_id: user.to_owned(),
                },
            );
            self.send_to_user(&other, message);
        }
        let record = self.member_call(user, call_id)?;
        let name = match (record.caller == user, interrupted) {
            (true, false) => "caller_call_end",
            (false, false) => "callee_call_end",
            (true, true) => "caller_call_interrupted",
            (false, true) => "callee_call_interrupted",
        };
        self.trace(call_id, name, user, &[]);
        self.remove_member(call_id, user);
        Ok(())
    }

    fn invite_more(
        &mut self,
        user: &str,
        call_id: &CallKey,
        now_millis: u64,
        users: &[String],
    ) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if !record.has_joined(user) {
            return Err(refused("answer the call before inviting others"));
        }
        if !record.group {
            return Err(refused("only a group call takes more people"));
        }
        if users.iter().any(|new| record.members.contains_key(new)) {
            return Err(invalid("someone invited is already in the call"));
        }
        check_new_people(user, users, record.members.len())?;
        let (reached, gone): (Vec<String>, Vec<String>) = users.iter().cloned().partition(|new| {
            self.online.contains_key(new)
                && !self.saturated(new)
                && !self.in_call_named(new, call_id)
        });
        let record = record.clone();
        for gone in gone {
            let message = ServerMessage::call(call_id, Signal::NoResponse { user_id: gone });
            self.send_to_user(user, message);
        }
        if reached.is_empty() {
            return Ok(());
        }
        for other in record.others(user) {
            let message = ServerMessage::call(
                call_id,
                Signal::MembersInvited {
                    users: reached.clone(),
                },
            );
            self.send_to_user(&other, message);
        }
        let joined = record.joined_others(&record.caller);
        let ringing: Vec<String> = record
            .members
            .iter()
            .filter(|(_, member)| !member.joined)
            .map(|(member, _)| member.clone())
            .chain(reached.iter().cloned())
            .collect();
        for new in &reached {
            let message = ServerMessage::call(
                call_id,
                Signal::Invited {
                    caller: record.caller.clone(),
                    callees: ringing.iter().chain(&joined).cloned().collect(),
                    joined: joined.clone(),
                    media: record.media,
                    group: true,
                    timeout_secs: record.timeout_secs,
                },
            );
            self.send_to_user(new, message);
            self.calls_of_user
                .entry(new.clone())
                .or_default()
                .insert(call_id.clone());
        }
        if let Some(record) = self.calls.get_mut(call_id) {
            for new in &reached {
                let member = Member {
                    joined: false,
                    invited_at_millis: now_millis,
                };
                record.members.insert(new.clone(), member);
            }
            record.total += reached.len();
        }
        for new in &reached {
            self.trace(call_id, "invite_user", new, &[]);
        }
        Ok(())
    }

    fn switch_media(
        &mut self,
        user: &str,
        call_id: &CallKey,
        media: MediaType,
    ) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if !record.has_joined(user) {
            return Err(refused("answer the call before switching its media"));
        }
        if record.media == media {
            return Err(refused(format!("the call is already {}", media.as_str())));
        }
        let others = record.joined_others(user);
        if let Some(record) = self.calls.get_mut(call_id) {
            record.media = media;
        }
        for other in others {
            let message = ServerMessage::call(
                call_id,
                Signal::MediaSwitched {
                    user_id: user.to_owned(),
                    media,
                },
            );
            self.send_to_user(&other, message);
        }
        Ok(())
    }

    /// Relays media negotiation from `user` to `to`: within a call, between members who both
    /// joined, or between the caller and a ringing callee (the caller's offer, and the answer
    /// of a callee that prepares early: only the callee's own messages tell the caller where
    /// it is); never in bulk, and never between a ringing callee and anyone else.
    fn relay(
        &mut self,
        session: SessionId,
        user: &str,
        call_id: &CallKey,
        to: &str,
        what: Relay,
        message: ServerMessage,
    ) -> Result<(), CallError> {
        let limits = self.config.limits;
        let record = self.member_call(user, call_id)?;
        if to == user || !record.members.contains_key(to) {
            return Err(not_yours(call_id));
        }
        let both_joined = record.has_joined(user) && record.has_joined(to);
        let ringing_pair = (user == record.caller && record.is_ringing(to))
            || (to == record.caller && record.is_ringing(user));
        if !both_joined && !ringing_pair {
            return Err(refused(
                "media negotiation flows only between participants who both joined",
            ));
        }
        let (size, max_size) = match (&message, what) {
            (ServerMessage::Sdp { description, .. }, Relay::Description) => {
                (description.len(), limits.max_description_bytes)
            }
            (ServerMessage::Ice { candidate, .. }, Relay::Candidate) => {
                (candidate.len(), limits.max_candidate_bytes)
            }
            _ => (0, 0),
        };
        if size > max_size {
            return Err(invalid(format!(
                "a relayed message of {size} bytes is larger than the {max_size}-byte limit"
            )));
        }
        let Some(record) = self.calls.get_mut(call_id) else {
            return Err(not_yours(call_id));
        };
        let counts = record
            .relayed
            .entry((user.to_owned(), to.to_owned()))
            .or_default();
        let (count, max) = match what {
            Relay::Description => (&mut counts.descriptions, limits.max_descriptions_per_pair),
            Relay::Candidate => (&mut counts.candidates, limits.max_candidates_per_pair),
        };
        if *count >= max {
            return Err(refused(format!(
                "at most {max} of these may be sent to {to} in one call"
            )));
        }
        *count += 1;
        if let Some(target) = self.online.get(to).copied() {
            self.emit(target, message, Some(session));
        }
        Ok(())
    }

    /// `user` left `call_id`; a call with one person left is over.
    fn remove_member(&mut self, call_id: &CallKey, user: &str) {
        if let Some(calls) = self.calls_of_user.get_mut(user) {
            calls.remove(call_id);
        }
        if self.calls.contains_key(call_id) {
            self.tell_left(call_id, user);
        }
        let remaining = self.calls.get_mut(call_id).map(|record| {
            // Who joined and left may still share its side; who declined was never in it.
            if record
                .members
                .remove(user)
                .is_some_and(|member| member.joined)
            {
                record.left.insert(user.to_owned());
            }
            record.members.len()
        });
        if remaining.is_some_and(|count| count <= 1) {
            self.end_call(call_id);
            // The member whose leaving ended it hears "already ended" too.
            if let Some(members) = self.ended_members.get_mut(call_id) {
                members.insert(user.to_owned());
            }
        }
    }

    /// The end-of-call record of `call_id`, ending now, for the webhooks (when they are on).
    fn call_ended(&mut self, call_id: &CallKey, record: &CallRecord) {
        if !self.config.webhooks {
            return;
        }
        let ended = crate::signaling::webhook::CallRecordEvent {
            call_id: call_id.id.clone(),
            caller: record.caller.clone(),
            call_result: record.result(),
            start_call_ts: record.started_millis,
            accept_ts: record.accepted_millis.unwrap_or(0),
            end_ts: self.now_millis,
            total_num: record.total,
            media_type: record.media.as_str().to_owned(),
        };
        self.out.push_back(Output::CallEnded(ended));
    }

    fn end_call(&mut self, call_id: &CallKey) {
        let mut members = BTreeSet::new();
        if let Some(record) = self.calls.remove(call_id) {
            self.call_ended(call_id, &record);
            for member in record.members.keys() {
                if let Some(calls) = self.calls_of_user.get_mut(member) {
                    calls.remove(call_id);
                }
                self.tell_left(call_id, member);
                members.insert(member.clone());
            }
            members.extend(record.left);
            members.insert(record.caller);
        }
        self.remember_ended(call_id.clone(), members);
    }

    /// Ringing invitations past their timeout (and the grace) end: the others hear
    /// `no_response`, the callee that it is over.
    pub(super) fn end_expired_invitations(&mut self, now_millis: u64) {
        let grace = self.config.limits.ring_grace_millis;
        let expired: Vec<(CallKey, Vec<String>)> = self
            .calls
            .iter()
            .map(|(call_id, record)| (call_id.clone(), record.expired(now_millis, grace)))
            .filter(|(_, users)| !users.is_empty())
            .collect();
        for (call_id, users) in expired {
            for user in users {
                self.send_to_user(&user, ServerMessage::call(&call_id, Signal::EndedByServer));
                // The callee is a member, so this is never refused.
                let _ = self.decline(&user, &call_id, Decline::Gone);
            }
        }
    }

    /// `user`'s connection was lost: it leaves its ringing invitations and the calls nobody
    /// answered now, and keeps the connected calls it joined (true when there are some), for
    /// it to log in again within the grace.
    pub(super) fn hold_calls(&mut self, user: &str) -> bool {
        let calls: Vec<CallKey> = self
            .calls_of_user
            .get(user)
            .map(|calls| calls.iter().cloned().collect())
            .unwrap_or_default();
        let mut held = false;
        for call_id in calls {
            let Some(record) = self.calls.get(&call_id) else {
                continue;
            };
            if record.has_joined(user) && record.anyone_answered() {
                held = true;
            } else {
                self.leave_gone(user, &call_id);
            }
        }
        // Its calls homed on other nodes wait for it here too; their homes decide on them.
        held || self.cluster.remote_load(user) > 0
    }

    /// Users away longer than the grace leave the calls held for them: a call that needs
    /// them (one other member left) ends for the others with `ended_by_server`; a group call
    /// goes on without them.
    pub(super) fn end_away_calls(&mut self, now_millis: u64) {
        let grace = self.config.limits.rejoin_grace_millis;
        let gone: Vec<String> = self
            .away
            .iter()
            .filter(|(_, since)| now_millis.saturating_sub(**since) >= grace)
            .map(|(user, _)| user.clone())
            .collect();
        for user in gone {
            self.away.remove(&user);
            self.end_calls_of_gone(&user);
            self.cluster.away_node.remove(&user);
            self.cluster.forget_user(&user);
        }
    }

    /// `user` is not coming back to its calls: a call that needs it (one other member left)
    /// ends for the others with `ended_by_server`; a group call goes on without it.
    pub(super) fn end_calls_of_gone(&mut self, user: &str) {
        let user = user.to_owned();
        let calls: Vec<CallKey> = self
            .calls_of_user
            .remove(&user)
            .map(|calls| calls.into_iter().collect())
            .unwrap_or_default();
        for call_id in calls {
            self.end_call_of_gone(&user, &call_id);
        }
    }

    /// `user` is not coming back to `call_id` (see [`Switchboard::end_calls_of_gone`]).
    pub(super) fn end_call_of_gone(&mut self, user: &str, call_id: &CallKey) {
        let Some(record) = self.calls.get(call_id) else {
            return;
        };
        if !record.members.contains_key(user) {
            return;
        }
        if record.is_ringing(user) || !record.anyone_answered() {
            // Not connected yet: it did not answer, or its call is called off.
            self.leave_gone(user, call_id);
        } else if record.members.len() <= 2 {
            let name = if record.caller == user {
                "caller_call_interrupted"
            } else {
                "callee_call_interrupted"
            };
            let others = record.others(user);
            self.trace(call_id, name, user, &[]);
            for other in others {
                self.send_to_user(&other, ServerMessage::call(call_id, Signal::EndedByServer));
            }
            self.end_call(call_id);
        } else {
            let outcome = self.leave(user, call_id, true);
            debug_assert!(outcome.is_ok());
        }
    }

    /// `user` went offline: it leaves every call as if it hung up, or never answered.
    pub(super) fn leave_all_calls(&mut self, user: &str) {
        let calls: Vec<CallKey> = self
            .calls_of_user
            .remove(user)
            .map(|calls| calls.into_iter().collect())
            .unwrap_or_default();
        for call_id in calls {
            self.leave_gone(user, &call_id);
        }
        self.calls_of_user.remove(user);
    }

    /// `user`, gone, leaves `call_id` (if it is still on): as a callee that never answered
    /// while it rang, else as a participant whose connection was interrupted.
    fn leave_gone(&mut self, user: &str, call_id: &CallKey) {
        let Some(record) = self.calls.get(call_id) else {
            return;
        };
        let outcome = if record.is_ringing(user) {
            self.decline(user, call_id, Decline::Gone)
        } else {
            self.leave(user, call_id, true)
        };
        // The user is a member of each of its calls, so none of these is refused.
        debug_assert!(outcome.is_ok());
    }
}
