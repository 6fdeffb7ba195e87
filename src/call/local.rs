//! The local user's inputs to the call core: dial, accept, reject, hang up, switch, minimize, invite.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::Event;
use crate::model::{
    CallError, CallStatus, CallType, EndReason, ErrorCode, MAX_PARTICIPANTS, MediaType, Role,
    Source, ViewMode,
};

use super::active::{ActiveCall, Member, MemberState};
use super::{Action, CallMachine};

impl CallMachine {
    pub(super) fn dial(
        &mut self,
        call_id: String,
        callees: Vec<String>,
        media: MediaType,
        group: bool,
        timeout_secs: u32,
    ) -> Result<(), CallError> {
        if let Err(error) = self.check_dial(&call_id, &callees, group) {
            let call_type = if group {
                CallType::GroupCall
            } else {
                CallType::Call
            };
            self.emit_for(
                Source::Local,
                Some(call_id),
                Event::BeforeCalling {
                    call_type,
                    error: Some(error.clone()),
                },
            );
            return Err(error);
        }
        let members = callees
            .iter()
            .map(|user| {
                let member = Member {
                    state: MemberState::Ringing,
                    deadline: None,
                };
                (user.clone(), member)
            })
            .collect::<BTreeMap<_, _>>();
        self.call = Some(ActiveCall {
            call_id: call_id.clone(),
            role: Role::Caller,
            caller: self.user_id().to_owned(),
            group,
            media,
            status: CallStatus::Idle,
            announced: false,
            cancel_on_delivery: false,
            view: ViewMode::Full,
            connected_at: None,
            deadline: None,
            timeout_secs,
            members,
        });
        self.push_action(Action::Invite {
            call_id,
            callees,
            media,
            group,
            timeout_secs,
        });
        Ok(())
    }

    fn check_dial(&self, call_id: &str, callees: &[String], group: bool) -> Result<(), CallError> {
        self.require_logged_in()?;
        if let Some(call) = &self.call {
            return Err(if call.announced {
                CallError::new(
                    ErrorCode::RequestRefused,
                    format!("already in call {} ({})", call.call_id, call.status),
                )
            } else {
                CallError::new(
                    ErrorCode::RequestRepeated,
                    format!("call {} is still being placed", call.call_id),
                )
            });
        }
        if call_id.is_empty() {
            return Err(invalid("the call id is empty"));
        }
        if !group && callees.len() != 1 {
            return Err(invalid("a 1:1 call has exactly one callee"));
        }
        self.check_new_members(callees, 0)
    }

    /// Checks people about to be invited into a call that already has `existing` others.
    pub(super) fn check_new_members(
        &self,
        users: &[String],
        existing: usize,
    ) -> Result<(), CallError> {
        if users.is_empty() {
            return Err(invalid("no callee given"));
        }
        if users.iter().any(String::is_empty) {
            return Err(invalid("a callee id is empty"));
        }
        if users.iter().any(|user| user == self.user_id()) {
            return Err(invalid("you cannot call yourself"));
        }
        let distinct: BTreeSet<&String> = users.iter().collect();
        if distinct.len() != users.len() {
            return Err(invalid("a callee is listed twice"));
        }
        if existing + users.len() + 1 > MAX_PARTICIPANTS {
            return Err(invalid(&format!(
                "a call holds at most {MAX_PARTICIPANTS} people"
            )));
        }
        Ok(())
    }

    pub(super) fn accept(&mut self) -> Result<(), CallError> {
        let call = self.require_status("accepting", |status| status == CallStatus::BeInvited)?;
        let call_id = call.call_id.clone();
        self.push_action(Action::Accept { call_id });
        self.connect(Source::Local);
        Ok(())
    }

    pub(super) fn reject(&mut self) -> Result<(), CallError> {
        let call = self.require_status("rejecting", |status| status == CallStatus::BeInvited)?;
        let call_id = call.call_id.clone();
        self.push_action(Action::Reject { call_id });
        let me = self.user_id().to_owned();
        self.end_call(Source::Local, EndReason::Reject, &me);
        Ok(())
    }

    pub(super) fn decline_busy(&mut self) -> Result<(), CallError> {
        let call = self.require_status("declining as busy", |status| {
            status == CallStatus::BeInvited
        })?;
        let call_id = call.call_id.clone();
        self.push_action(Action::LineBusy { call_id });
        let me = self.user_id().to_owned();
        self.end_call(Source::Local, EndReason::LineBusy, &me);
        Ok(())
    }

    pub(super) fn hang_up(&mut self) -> Result<(), CallError> {
        if let Some(call) = &mut self.call
            && !call.announced
        {
            // Too early to cancel on the wire; do it the moment the invitation is delivered.
            call.cancel_on_delivery = true;
            return Ok(());
        }
        let call = self.require_status("hanging up", |status| status != CallStatus::Idle)?;
        let call_id = call.call_id.clone();
        let status = call.status;
        let me = self.user_id().to_owned();
        match status {
            CallStatus::BeInvited => return self.reject(),
            CallStatus::DialingC2c | CallStatus::DialingGroup => {
                self.push_action(Action::Cancel { call_id });
                self.end_call(Source::Local, EndReason::Canceled, &me);
            }
            _ => {
                self.push_action(Action::Hangup { call_id });
                self.end_call(Source::Local, EndReason::Hangup, &me);
            }
        }
        Ok(())
    }

    pub(super) fn switch_media_locally(&mut self, media: MediaType) -> Result<(), CallError> {
        let call = self.require_status("switching media", CallStatus::is_calling)?;
        if call.media == media {
            return Err(CallError::refused(
                &format!("switching to {}", media.as_str()),
                call.status,
            ));
        }
        let call_id = call.call_id.clone();
        self.push_action(Action::SwitchMedia { call_id, media });
        self.switch_media(Source::Local, media);
        Ok(())
    }

    pub(super) fn set_view(&mut self, new: ViewMode) -> Result<(), CallError> {
        let what = match new {
            ViewMode::Full => "restoring the call view",
            ViewMode::Minimized => "minimizing the call view",
        };
        let call = self.require_status(what, |status| status != CallStatus::Idle)?;
        let old = call.view;
        if old == new {
            return Err(CallError::refused(what, call.status));
        }
        if let Some(call) = &mut self.call {
            call.view = new;
        }
        self.emit(Source::Ui, Event::Minimized { old, new });
        Ok(())
    }

    pub(super) fn invite_more(&mut self, users: Vec<String>) -> Result<(), CallError> {
        let call = self.require_status("inviting into the call", |status| {
            matches!(
                status,
                CallStatus::DialingGroup
                    | CallStatus::CallingGroupAudio
                    | CallStatus::CallingGroupVideo
            )
        })?;
        if users.iter().any(|user| call.members.contains_key(user)) {
            return Err(invalid("someone invited is already in the call"));
        }
        self.check_new_members(&users, call.members.len())?;
        let call_id = call.call_id.clone();
        let deadline = call.invite_deadline(self.now());
        if let Some(call) = &mut self.call {
            for user in &users {
                let member = Member {
                    state: MemberState::Ringing,
                    deadline,
                };
                call.members.insert(user.clone(), member);
            }
        }
        self.push_action(Action::InviteMore { call_id, users });
        Ok(())
    }

    /// The call in progress, if its status passes `allowed`; `-1203` otherwise.
    pub(super) fn require_status(
        &self,
        what: &str,
        allowed: impl Fn(CallStatus) -> bool,
    ) -> Result<&ActiveCall, CallError> {
        match &self.call {
            Some(call) if allowed(call.status) => Ok(call),
            Some(call) if !call.announced => Err(CallError::new(
                ErrorCode::RequestRefused,
                format!("{what} is not allowed while the invitation is being delivered"),
            )),
            _ => Err(CallError::refused(what, self.status())),
        }
    }
}

/// A `-1202 invalid parameter` error.
pub(super) fn invalid(message: &str) -> CallError {
    CallError::new(ErrorCode::InvalidParameter, message)
}
