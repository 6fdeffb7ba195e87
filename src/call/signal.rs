//! Signaling's inputs to the call core: invitations, answers, hang-ups and switches by others.

use std::collections::BTreeMap;

use crate::event::Event;
use crate::model::{
    CallError, CallStatus, CallType, EndReason, ErrorCode, MAX_PARTICIPANTS, MediaType, Role,
    Source, ViewMode,
};

use super::active::{ActiveCall, Member, MemberState};
use super::local::invalid;
use super::{Action, CallMachine, Signal};

/// The fields of an invitation.
struct Invitation {
    caller: String,
    callees: Vec<String>,
    joined: Vec<String>,
    media: MediaType,
    group: bool,
    timeout_secs: u32,
}

impl CallMachine {
    pub(super) fn handle_signal(&mut self, call_id: &str, signal: Signal) -> Result<(), CallError> {
        if let Signal::Invited {
            caller,
            callees,
            joined,
            media,
            group,
            timeout_secs,
        } = signal
        {
            let invitation = Invitation {
                caller,
                callees,
                joined,
                media,
                group,
                timeout_secs,
            };
            return self.invited(call_id, invitation);
        }
        if self.call_id() != Some(call_id) {
            return Err(invalid(&format!("unknown call id {call_id:?}")));
        }
        match signal {
            Signal::Invited { .. } => Ok(()),
            Signal::InviteDelivered { offline } => self.invite_delivered(&offline),
            Signal::Accepted { user_id } => self.accepted(user_id),
            Signal::Rejected { user_id } => self.declined(&user_id, EndReason::Reject),
            Signal::LineBusy { user_id } => self.declined(&user_id, EndReason::LineBusy),
            Signal::NoResponse { user_id } => self.declined(&user_id, EndReason::NoResponse),
            Signal::Canceled { user_id } => self.canceled(&user_id),
            Signal::HungUp { user_id } => self.hung_up(&user_id),
            Signal::MembersInvited { users } => self.members_invited(users),
            Signal::MediaSwitched { user_id, media } => self.media_switched(&user_id, media),
            Signal::EndedByServer => {
                self.end_call(Source::Remote, EndReason::EndByServer, "server");
                Ok(())
            }
        }
    }

    fn invited(&mut self, call_id: &str, invitation: Invitation) -> Result<(), CallError> {
        self.require_logged_in()?;
        self.check_invitation(call_id, &invitation)?;
        if let Some(call) = &self.call {
            if call.call_id == call_id {
                return Err(CallError::new(
                    ErrorCode::RequestRepeated,
                    format!("already invited to call {call_id}"),
                ));
            }
            // Busy: answer for the user, as TUICallKit does; our own call goes on untouched.
            self.push_action(Action::LineBusy {
                call_id: call_id.to_owned(),
            });
            return Ok(());
        }
        let mut members = BTreeMap::new();
        let joined = Member {
            state: MemberState::Joined,
            deadline: None,
        };
        members.insert(invitation.caller.clone(), joined);
        for callee in invitation
            .callees
            .iter()
            .filter(|user| *user != self.user_id())
        {
            let state = if invitation.joined.contains(callee) {
                MemberState::Joined
            } else {
                MemberState::Ringing
            };
            let member = Member {
                state,
                deadline: None,
            };
            members.insert(callee.clone(), member);
        }
        let deadline = (invitation.timeout_secs > 0).then(|| {
            self.now() + std::time::Duration::from_secs(u64::from(invitation.timeout_secs))
        });
        self.call = Some(ActiveCall {
            call_id: call_id.to_owned(),
            role: Role::Callee,
            caller: invitation.caller.clone(),
            group: invitation.group,
            media: invitation.media,
            status: CallStatus::Idle,
            announced: true,
            cancel_on_delivery: false,
            view: ViewMode::Full,
            connected_at: None,
            deadline,
            timeout_secs: invitation.timeout_secs,
            members,
        });
        self.announce_invitation(call_id, invitation);
        Ok(())
    }

    fn announce_invitation(&mut self, call_id: &str, invitation: Invitation) {
        self.emit(
            Source::Remote,
            Event::BeforeCalling {
                call_type: CallType::Invited,
                error: None,
            },
        );
        self.emit(
            Source::Remote,
            Event::CallReceived {
                call_id: call_id.to_owned(),
                caller_id: invitation.caller,
                callee_ids: invitation.callees,
                media_type: invitation.media,
            },
        );
        self.set_status(Source::Remote, CallStatus::BeInvited);
    }

    fn check_invitation(&self, call_id: &str, invitation: &Invitation) -> Result<(), CallError> {
        if call_id.is_empty() || invitation.caller.is_empty() {
            return Err(invalid("an invitation needs a call id and a caller"));
        }
        if invitation.caller == self.user_id() {
            return Err(invalid("an invitation from ourselves"));
        }
        if !invitation.callees.iter().any(|user| user == self.user_id()) {
            return Err(invalid("an invitation that does not invite us"));
        }
        if invitation.callees.contains(&invitation.caller) {
            return Err(invalid("the caller is listed as a callee"));
        }
        if !invitation.group && invitation.callees.len() != 1 {
            return Err(invalid("a 1:1 call has exactly one callee"));
        }
        if invitation.callees.len() + 1 > MAX_PARTICIPANTS {
            return Err(invalid("too many participants"));
        }
        Ok(())
    }

    fn placing_call(&mut self) -> Result<&mut ActiveCall, CallError> {
        match &mut self.call {
            None => Err(CallError::refused(
                "delivering an invitation",
                CallStatus::Idle,
            )),
            Some(call) if call.announced => Err(CallError::new(
                ErrorCode::RequestRepeated,
                format!(
                    "the invitation of call {} was delivered already",
                    call.call_id
                ),
            )),
            Some(call) => Ok(call),
        }
    }

    fn invite_delivered(&mut self, offline: &[String]) -> Result<(), CallError> {
        let now = self.now();
        let call = self.placing_call()?;
        let call_type = call.call_type();
        let (reached, missing): (Vec<String>, Vec<String>) = call
            .members
            .keys()
            .cloned()
            .partition(|user| !offline.contains(user));
        if reached.is_empty() {
            let message = format!("not logged in: {}", missing.join(", "));
            let error = CallError::new(ErrorCode::CalleeOffline, message);
            self.emit_for_ended(call_type, error);
            return Ok(());
        }
        call.announced = true;
        let deadline = call.invite_deadline(now);
        for user in &missing {
            call.members.remove(user);
        }
        for member in call.members.values_mut() {
            member.deadline = deadline;
        }
        let group = call.group;
        self.emit(
            Source::Remote,
            Event::BeforeCalling {
                call_type,
                error: None,
            },
        );
        self.set_status(Source::Remote, CallStatus::dialing(group));
        for user in missing {
            let error = CallError::new(ErrorCode::CalleeOffline, format!("{user} is offline"));
            self.emit(Source::Remote, Event::Error(error));
        }
        if self
            .call
            .as_ref()
            .is_some_and(|call| call.cancel_on_delivery)
        {
            self.hang_up()?;
        }
        Ok(())
    }

    pub(super) fn invite_failed(
        &mut self,
        call_id: &str,
        error: CallError,
    ) -> Result<(), CallError> {
        if self.call_id() != Some(call_id) {
            return Err(invalid(&format!("unknown call id {call_id:?}")));
        }
        let call_type = self.placing_call()?.call_type();
        self.emit_for_ended(call_type, error);
        Ok(())
    }

    /// Drops the call being placed and reports why through `beforeCalling`.
    fn emit_for_ended(&mut self, call_type: CallType, error: CallError) {
        let call_id = self.call.take().map(|call| call.call_id);
        let event = Event::BeforeCalling {
            call_type,
            error: Some(error),
        };
        self.emit_for(Source::Remote, call_id, event);
    }
}
