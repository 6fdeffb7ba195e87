//! How the call core takes other participants' answers: accept, decline, cancel, leave, switch.

use crate::event::Event;
use crate::model::{CallError, CallStatus, EndReason, MediaType, Role, Source};

use super::CallMachine;
use super::active::{Member, MemberState};
use super::local::invalid;

impl CallMachine {
    pub(super) fn accepted(&mut self, user_id: String) -> Result<(), CallError> {
        let call = self.require_status("accepting", |status| status != CallStatus::Idle)?;
        if !call.is_ringing(&user_id) {
            return Err(invalid(&format!("{user_id} is not ringing in this call")));
        }
        let dialing = matches!(
            call.status,
            CallStatus::DialingC2c | CallStatus::DialingGroup
        );
        if let Some(member) = self
            .call
            .as_mut()
            .and_then(|call| call.members.get_mut(&user_id))
        {
            member.state = MemberState::Joined;
            member.deadline = None;
        }
        self.emit(Source::Remote, Event::UserJoin { user_id });
        if dialing {
            self.connect(Source::Remote);
        }
        Ok(())
    }

    /// A callee rejected, was busy or did not answer.
    pub(super) fn declined(&mut self, user_id: &str, reason: EndReason) -> Result<(), CallError> {
        let call = self.require_status("answering", |status| status != CallStatus::Idle)?;
        if !call.is_ringing(user_id) {
            return Err(invalid(&format!("{user_id} is not ringing in this call")));
        }
        if let Some(call) = &mut self.call {
            call.members.remove(user_id);
        }
        let event = match reason {
            EndReason::LineBusy => Event::UserLineBusy {
                user_id: user_id.to_owned(),
            },
            EndReason::NoResponse => Event::UserNoResponse {
                user_id: user_id.to_owned(),
            },
            _ => Event::UserReject {
                user_id: user_id.to_owned(),
            },
        };
        self.emit(Source::Remote, event);
        self.end_if_alone(Source::Remote, reason, user_id);
        Ok(())
    }

    pub(super) fn canceled(&mut self, user_id: &str) -> Result<(), CallError> {
        let call = self.require_status("cancelling", |status| status == CallStatus::BeInvited)?;
        if call.caller != user_id {
            return Err(invalid(&format!("{user_id} did not place this call")));
        }
        self.end_call(Source::Remote, EndReason::Canceled, user_id);
        Ok(())
    }

    pub(super) fn hung_up(&mut self, user_id: &str) -> Result<(), CallError> {
        let call = self.require_status("hanging up", |status| status != CallStatus::Idle)?;
        if call.status == CallStatus::BeInvited && call.caller == user_id {
            // The caller gave up before we answered: that is a cancel, whatever it was called.
            return self.canceled(user_id);
        }
        if !call.has_joined(user_id) {
            return Err(invalid(&format!("{user_id} is not in this call")));
        }
        if let Some(call) = &mut self.call {
            call.members.remove(user_id);
        }
        self.emit(
            Source::Remote,
            Event::UserLeave {
                user_id: user_id.to_owned(),
            },
        );
        self.end_if_alone(Source::Remote, EndReason::Hangup, user_id);
        Ok(())
    }

    pub(super) fn members_invited(&mut self, users: Vec<String>) -> Result<(), CallError> {
        let call = self.require_status("inviting into the call", |status| {
            status != CallStatus::Idle
        })?;
        if !call.group {
            return Err(CallError::refused("inviting into a 1:1 call", call.status));
        }
        if users.iter().any(|user| call.members.contains_key(user)) {
            return Err(invalid("someone invited is already in the call"));
        }
        self.check_new_members(&users, call.members.len())?;
        if let Some(call) = &mut self.call {
            for user in users {
                let member = Member {
                    state: MemberState::Ringing,
                    deadline: None,
                };
                call.members.insert(user, member);
            }
        }
        Ok(())
    }

    pub(super) fn media_switched(
        &mut self,
        user_id: &str,
        media: MediaType,
    ) -> Result<(), CallError> {
        let call = self.require_status("switching media", CallStatus::is_calling)?;
        if !call.has_joined(user_id) {
            return Err(invalid(&format!("{user_id} is not in this call")));
        }
        if call.media == media {
            return Err(CallError::refused(
                &format!("switching to {}", media.as_str()),
                call.status,
            ));
        }
        self.switch_media(Source::Remote, media);
        Ok(())
    }

    pub(super) fn answered_elsewhere(
        &mut self,
        call_id: &str,
        accepted: bool,
    ) -> Result<(), CallError> {
        if self.call_id() != Some(call_id) {
            return Err(invalid(&format!("unknown call id {call_id:?}")));
        }
        let reason = if accepted {
            EndReason::OtherDeviceAccepted
        } else {
            EndReason::OtherDeviceRejected
        };
        let call = self.require_status("answering on another device", |status| {
            status == CallStatus::BeInvited
        })?;
        debug_assert_eq!(call.role, Role::Callee);
        let me = self.user_id().to_owned();
        self.end_call(Source::Remote, reason, &me);
        Ok(())
    }
}
