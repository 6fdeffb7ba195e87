//! How the switchboard routes call messages, and who may send them.

use std::collections::{BTreeMap, BTreeSet};

use crate::call::{Action, Signal};
use crate::model::{CallError, ErrorCode, MAX_PARTICIPANTS, MediaType};

use super::super::protocol::{ClientMessage, ServerMessage};
use super::record::CallRecord;
use super::{SessionId, Switchboard};

/// How a callee declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decline {
    Reject,
    Busy,
    Gone,
}

fn invalid(message: impl Into<String>) -> CallError {
    CallError::new(ErrorCode::InvalidParameter, message)
}

fn refused(message: impl Into<String>) -> CallError {
    CallError::new(ErrorCode::RequestRefused, message)
}

impl Switchboard {
    pub(super) fn handle_call_message(
        &mut self,
        session: SessionId,
        user: &str,
        message: ClientMessage,
    ) {
        let call_id = match &message {
            ClientMessage::Call(action) => Some(action.call_id().to_owned()),
            ClientMessage::Sdp { call_id, .. } | ClientMessage::Ice { call_id, .. } => {
                Some(call_id.clone())
            }
            ClientMessage::Login { .. } | ClientMessage::Contacts | ClientMessage::Ping { .. } => {
                None
            }
        };
        let result = match message {
            ClientMessage::Call(action) => self.handle_action(user, action),
            ClientMessage::Sdp {
                call_id,
                to,
                description,
            } => self.relay(user, &call_id, &to, |from| ServerMessage::Sdp {
                call_id: call_id.clone(),
                from,
                description,
            }),
            ClientMessage::Ice {
                call_id,
                to,
                candidate,
            } => self.relay(user, &call_id, &to, |from| ServerMessage::Ice {
                call_id: call_id.clone(),
                from,
                candidate,
            }),
            ClientMessage::Login { .. } | ClientMessage::Contacts | ClientMessage::Ping { .. } => {
                Ok(())
            }
        };
        if let Err(error) = result {
            self.refuse(session, &error, call_id.as_deref());
        }
    }

    fn handle_action(&mut self, user: &str, action: Action) -> Result<(), CallError> {
        match action {
            Action::Invite {
                call_id,
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
                };
                self.invite(&call_id, record, &callees)
            }
            Action::Cancel { call_id } => self.cancel(user, &call_id),
            Action::Accept { call_id } => self.accept(user, &call_id),
            Action::Reject { call_id } => self.decline(user, &call_id, Decline::Reject),
            Action::LineBusy { call_id } => self.decline(user, &call_id, Decline::Busy),
            Action::Hangup { call_id } => self.hang_up(user, &call_id),
            Action::InviteMore { call_id, users } => self.invite_more(user, &call_id, &users),
            Action::SwitchMedia { call_id, media } => self.switch_media(user, &call_id, media),
        }
    }

    /// The call `call_id` if `user` is in or invited into it.
    fn member_call(&self, user: &str, call_id: &str) -> Result<&CallRecord, CallError> {
        match self.calls.get(call_id) {
            Some(record) if record.members.contains_key(user) => Ok(record),
            Some(_) => Err(CallError::new(
                ErrorCode::PermissionDenied,
                format!("{user} is not a participant of call {call_id}"),
            )),
            None if self.ended_set.contains(call_id) => {
                Err(refused(format!("call {call_id} has already ended")))
            }
            None => Err(invalid(format!("unknown call {call_id:?}"))),
        }
    }
}

/// Checks people about to be invited into a call that already holds `existing` people.
fn check_new_people(inviter: &str, users: &[String], existing: usize) -> Result<(), CallError> {
    if users.is_empty() || users.iter().any(String::is_empty) {
        return Err(invalid("name at least one callee, none empty"));
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
        call_id: &str,
        mut record: CallRecord,
        callees: &[String],
    ) -> Result<(), CallError> {
        if call_id.is_empty() {
            return Err(invalid("the call id is empty"));
        }
        if self.calls.contains_key(call_id) || self.ended_set.contains(call_id) {
            return Err(CallError::new(
                ErrorCode::RequestRepeated,
                format!("call id {call_id} is taken"),
            ));
        }
        if !record.group && callees.len() != 1 {
            return Err(invalid("a 1:1 call has exactly one callee"));
        }
        check_new_people(&record.caller, callees, 1)?;
        let (reached, offline): (Vec<String>, Vec<String>) = callees
            .iter()
            .cloned()
            .partition(|callee| self.online.contains_key(callee));
        let caller = record.caller.clone();
        self.send_to_user(
            &caller,
            ServerMessage::call(call_id, Signal::InviteDelivered { offline }),
        );
        if reached.is_empty() {
            self.remember_ended(call_id.to_owned());
            return Ok(());
        }
        record.members.insert(caller.clone(), true);
        for callee in &reached {
            record.members.insert(callee.clone(), false);
        }
        let invitation = |record: &CallRecord| {
            ServerMessage::call(
                call_id,
                Signal::Invited {
                    caller: caller.clone(),
                    callees: reached.clone(),
                    joined: Vec::new(),
                    media: record.media,
                    group: record.group,
                    timeout_secs: record.timeout_secs,
                },
            )
        };
        let message = invitation(&record);
        self.add_call(call_id, record);
        for callee in &reached {
            self.send_to_user(callee, message.clone());
        }
        Ok(())
    }

    fn add_call(&mut self, call_id: &str, record: CallRecord) {
        for member in record.members.keys() {
            self.calls_of_user
                .entry(member.clone())
                .or_default()
                .insert(call_id.to_owned());
        }
        self.calls.insert(call_id.to_owned(), record);
    }

    fn cancel(&mut self, user: &str, call_id: &str) -> Result<(), CallError> {
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

    fn accept(&mut self, user: &str, call_id: &str) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if !record.is_ringing(user) {
            return Err(refused(format!("{user} already joined call {call_id}")));
        }
        let others = record.others(user);
        if let Some(record) = self.calls.get_mut(call_id) {
            record.members.insert(user.to_owned(), true);
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
        Ok(())
    }

    fn decline(&mut self, user: &str, call_id: &str, how: Decline) -> Result<(), CallError> {
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
            let message = ServerMessage::call(call_id, signal);
            self.send_to_user(&other, message);
        }
        self.remove_member(call_id, user);
        Ok(())
    }

    fn hang_up(&mut self, user: &str, call_id: &str) -> Result<(), CallError> {
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
        self.remove_member(call_id, user);
        Ok(())
    }

    fn invite_more(
        &mut self,
        user: &str,
        call_id: &str,
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
        let (reached, offline): (Vec<String>, Vec<String>) = users
            .iter()
            .cloned()
            .partition(|new| self.online.contains_key(new));
        let record = record.clone();
        for gone in offline {
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
            .filter(|(_, joined)| !**joined)
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
                .insert(call_id.to_owned());
        }
        if let Some(record) = self.calls.get_mut(call_id) {
            for new in reached {
                record.members.insert(new, false);
            }
        }
        Ok(())
    }

    fn switch_media(
        &mut self,
        user: &str,
        call_id: &str,
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

    fn relay(
        &mut self,
        user: &str,
        call_id: &str,
        to: &str,
        message: impl FnOnce(String) -> ServerMessage,
    ) -> Result<(), CallError> {
        let record = self.member_call(user, call_id)?;
        if to == user || !record.members.contains_key(to) {
            return Err(CallError::new(
                ErrorCode::PermissionDenied,
                format!("{to} is not another participant of call {call_id}"),
            ));
        }
        self.send_to_user(to, message(user.to_owned()));
        Ok(())
    }

    /// `user` left `call_id`; a call with one person left is over.
    fn remove_member(&mut self, call_id: &str, user: &str) {
        if let Some(calls) = self.calls_of_user.get_mut(user) {
            calls.remove(call_id);
        }
        let remaining = self.calls.get_mut(call_id).map(|record| {
            record.members.remove(user);
            record.members.len()
        });
        if remaining.is_some_and(|count| count <= 1) {
            self.end_call(call_id);
        }
    }

    fn end_call(&mut self, call_id: &str) {
        if let Some(record) = self.calls.remove(call_id) {
            for member in record.members.keys() {
                if let Some(calls) = self.calls_of_user.get_mut(member) {
                    calls.remove(call_id);
                }
            }
        }
        self.remember_ended(call_id.to_owned());
    }

    /// `user` went offline: it leaves every call as if it hung up, or never answered.
    pub(super) fn leave_all_calls(&mut self, user: &str) {
        let calls: Vec<String> = self
            .calls_of_user
            .remove(user)
            .map(|calls| calls.into_iter().collect())
            .unwrap_or_default();
        for call_id in calls {
            let Some(record) = self.calls.get(&call_id) else {
                continue;
            };
            let outcome = if record.is_ringing(user) {
                self.decline(user, &call_id, Decline::Gone)
            } else {
                self.hang_up(user, &call_id)
            };
            // The user is a member of each of its calls, so none of these is refused.
            debug_assert!(outcome.is_ok());
        }
        self.calls_of_user.remove(user);
    }
}
