//! `CallMachine`: the sans-IO state machine of one local user's calls.

use std::collections::VecDeque;

use crate::event::{CallSummary, Emitted, Event};
use crate::model::{
    CallError, CallStatus, EndReason, ErrorCode, MediaType, MonoTime, Role, Source, ViewMode,
};

use super::active::{ActiveCall, MemberState};
use super::{Action, Input};

/// The call core of one local user: knows every status and transition of the contract.
///
/// It owns no thread, socket or clock. Inputs go in through [`CallMachine::handle_input`] and
/// [`CallMachine::handle_timeout`], each with the time it happened; callbacks and engine events
/// come out of [`CallMachine::poll_event`], messages for signaling out of
/// [`CallMachine::poll_action`]. An input the current status does not allow is refused with
/// `-1203` (or the code that fits better), recorded as an `onError` event, and changes nothing.
#[derive(Debug)]
pub struct CallMachine {
    user_id: String,
    logged_in: bool,
    now: MonoTime,
    pub(super) call: Option<ActiveCall>,
    events: VecDeque<Emitted>,
    actions: VecDeque<Action>,
}

impl CallMachine {
    /// A machine for `user_id`, logged out and idle.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            logged_in: false,
            now: MonoTime::default(),
            call: None,
            events: VecDeque::new(),
            actions: VecDeque::new(),
        }
    }

    /// The local user.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Whether the session is logged in.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    /// The status `statusChanged` last reported.
    pub fn status(&self) -> CallStatus {
        self.call
            .as_ref()
            .map_or(CallStatus::Idle, |call| call.status)
    }

    /// The call in progress, if any (also while its invitation is being delivered).
    pub fn call_id(&self) -> Option<&str> {
        self.call.as_ref().map(|call| call.call_id.as_str())
    }

    /// Our side of the call in progress.
    pub fn role(&self) -> Option<Role> {
        self.call.as_ref().map(|call| call.role)
    }

    /// Who placed the call in progress.
    pub fn caller(&self) -> Option<&str> {
        self.call.as_ref().map(|call| call.caller.as_str())
    }

    /// The media of the call in progress.
    pub fn media(&self) -> Option<MediaType> {
        self.call.as_ref().map(|call| call.media)
    }

    /// Whether the call view is full or minimized.
    pub fn view_mode(&self) -> ViewMode {
        self.call.as_ref().map_or(ViewMode::Full, |call| call.view)
    }

    /// Everyone else in or invited into the call in progress, by user id.
    pub fn participants(&self) -> Vec<(String, MemberState)> {
        self.call.as_ref().map_or_else(Vec::new, |call| {
            call.members
                .iter()
                .map(|(user, member)| (user.clone(), member.state))
                .collect()
        })
    }

    /// The time of the latest input.
    pub fn now(&self) -> MonoTime {
        self.now
    }

    /// The next callback or engine event, oldest first.
    pub fn poll_event(&mut self) -> Option<Emitted> {
        self.events.pop_front()
    }

    /// The next message for signaling, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`CallMachine::handle_timeout`] must next be called, if a ringing timeout is pending.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        self.call.as_ref().and_then(ActiveCall::next_deadline)
    }

    /// Feeds one input that happened at `now`.
    ///
    /// A refused input returns its error, is recorded as an event, and changes nothing.
    pub fn handle_input(&mut self, now: MonoTime, input: Input) -> Result<(), CallError> {
        self.advance(now);
        let source = source_of(&input);
        let signal_call = match &input {
            Input::Signal { call_id, .. }
            | Input::InviteFailed { call_id, .. }
            | Input::AnsweredElsewhere { call_id, .. } => Some(call_id.clone()),
            _ => None,
        };
        let is_dial = matches!(input, Input::Dial { .. });
        let result = self.dispatch(input);
        if let Err(error) = &result {
            // A refused dial is reported through `beforeCalling` already.
            if !is_dial {
                let call_id = signal_call.or_else(|| self.call_id().map(str::to_owned));
                self.emit_for(source, call_id, Event::Error(error.clone()));
            }
        }
        result
    }

    fn dispatch(&mut self, input: Input) -> Result<(), CallError> {
        match input {
            Input::LoggedIn => self.log_in(),
            Input::Dial {
                call_id,
                callees,
                media,
                group,
                timeout_secs,
            } => self.dial(call_id, callees, media, group, timeout_secs),
            Input::Accept => self.accept(),
            Input::Reject => self.reject(),
            Input::DeclineBusy => self.decline_busy(),
            Input::Hangup => self.hang_up(),
            Input::SwitchMedia(media) => self.switch_media_locally(media),
            Input::Minimize => self.set_view(ViewMode::Minimized),
            Input::Restore => self.set_view(ViewMode::Full),
            Input::InviteMore { users } => self.invite_more(users),
            Input::Signal { call_id, signal } => self.handle_signal(&call_id, signal),
            Input::InviteFailed { call_id, error } => self.invite_failed(&call_id, error),
            Input::AnsweredElsewhere { call_id, accepted } => {
                self.answered_elsewhere(&call_id, accepted)
            }
            Input::KickedOut { by } => self.kicked_out(by),
            Input::UserSigExpired => {
                self.user_sig_expired();
                Ok(())
            }
            Input::Abort { reason } => self.abort(reason),
        }
    }

    /// Lets time pass to `now`: ringing invitations whose timeout passed end.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        self.advance(now);
        let Some(call) = &mut self.call else { return };
        if call.status == CallStatus::BeInvited && call.deadline.is_some_and(|at| at <= now) {
            let me = self.user_id.clone();
            self.end_call(Source::Engine, EndReason::NoResponse, &me);
            return;
        }
        let expired: Vec<String> = call
            .members
            .iter()
            .filter(|(_, member)| member.state == MemberState::Ringing)
            .filter(|(_, member)| member.deadline.is_some_and(|at| at <= now))
            .map(|(user, _)| user.clone())
            .collect();
        for user in &expired {
            call.members.remove(user);
        }
        for user in &expired {
            self.emit(
                Source::Engine,
                Event::UserNoResponse {
                    user_id: user.clone(),
                },
            );
        }
        if let Some(last) = expired.last() {
            // Only our own timer knows the invitation is over: tell the server.
            if let Some(call) = &self.call
                && call.members.is_empty()
                && call.status.is_ringing()
            {
                let call_id = call.call_id.clone();
                self.push_action(Action::Cancel { call_id });
            }
            self.end_if_alone(Source::Engine, EndReason::NoResponse, last);
        }
    }

    fn advance(&mut self, now: MonoTime) {
        // Time never runs backwards here, whatever the driver passes.
        self.now = self.now.max(now);
    }

    fn log_in(&mut self) -> Result<(), CallError> {
        if self.logged_in {
            return Err(CallError::new(
                ErrorCode::RequestRepeated,
                "already logged in",
            ));
        }
        self.logged_in = true;
        Ok(())
    }

    fn kicked_out(&mut self, by: String) -> Result<(), CallError> {
        self.require_logged_in()?;
        self.logged_in = false;
        self.emit(Source::Remote, Event::KickedOut { by });
        self.emit(Source::Remote, Event::KickedOffline {});
        let me = self.user_id.clone();
        self.end_call(Source::Remote, EndReason::KickedOut, &me);
        Ok(())
    }

    fn user_sig_expired(&mut self) {
        // Reported even when it comes as the answer to a log-in.
        self.logged_in = false;
        self.emit(Source::Remote, Event::UserSigExpired {});
        let me = self.user_id.clone();
        self.end_call(Source::Remote, EndReason::EndByServer, &me);
    }

    fn abort(&mut self, reason: EndReason) -> Result<(), CallError> {
        if self.call.is_none() {
            return Err(CallError::refused("ending a call", self.status()));
        }
        // The server still holds a call whose media failed here; the others must learn of it.
        if reason == EndReason::MediaFailed
            && let Some(call_id) = self.call_id().map(str::to_owned)
        {
            self.push_action(Action::Hangup { call_id });
        }
        let me = self.user_id.clone();
        self.end_call(Source::Engine, reason, &me);
        Ok(())
    }

    pub(super) fn require_logged_in(&self) -> Result<(), CallError> {
        if self.logged_in {
            Ok(())
        } else {
            Err(CallError::new(ErrorCode::NotLoggedIn, "not logged in"))
        }
    }

    pub(super) fn push_action(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// Records an event about the call in progress.
    pub(super) fn emit(&mut self, source: Source, event: Event) {
        let call_id = self.call_id().map(str::to_owned);
        self.emit_for(source, call_id, event);
    }

    pub(super) fn emit_for(&mut self, source: Source, call_id: Option<String>, event: Event) {
        self.events.push_back(Emitted {
            at: self.now,
            call_id,
            source,
            event,
        });
    }

    /// Moves the call in progress to `new_status` and reports it.
    pub(super) fn set_status(&mut self, source: Source, new_status: CallStatus) {
        let Some(call) = &mut self.call else { return };
        let old_status = call.status;
        debug_assert!(
            old_status.can_become(new_status),
            "illegal transition {old_status} -> {new_status}"
        );
        call.status = new_status;
        self.emit(
            source,
            Event::StatusChanged {
                old_status,
                new_status,
            },
        );
    }

    /// The call connects: `calling-*`, `onCallBegin`.
    pub(super) fn connect(&mut self, source: Source) {
        let Some(call) = &mut self.call else { return };
        call.connected_at = Some(self.now);
        let (group, media, call_id) = (call.group, call.media, call.call_id.clone());
        self.set_status(source, CallStatus::calling(group, media));
        self.emit(
            source,
            Event::CallBegin {
                call_id,
                media_type: media,
            },
        );
    }

    /// The connected call switches media: `onCallMediaTypeChanged`, `statusChanged`.
    pub(super) fn switch_media(&mut self, source: Source, new_type: MediaType) {
        let Some(call) = &mut self.call else { return };
        let old_type = call.media;
        call.media = new_type;
        let group = call.group;
        self.emit(source, Event::CallMediaTypeChanged { old_type, new_type });
        self.set_status(source, CallStatus::calling(group, new_type));
    }

    /// Ends the call once nobody else is in or invited into it.
    pub(super) fn end_if_alone(&mut self, source: Source, reason: EndReason, by: &str) {
        let Some(call) = &self.call else { return };
        if !call.members.is_empty() {
            return;
        }
        let reason = if call.connected_at.is_some() {
            EndReason::Hangup
        } else {
            reason
        };
        self.end_call(source, reason, by);
    }

    /// Ends the call in progress: `onCallEnd` or `onCallNotConnected`, `statusChanged` to idle,
    /// then `afterCalling`, the last word on every announced call.
    pub(super) fn end_call(&mut self, source: Source, reason: EndReason, by: &str) {
        let Some(call) = self.call.take() else { return };
        let call_id = Some(call.call_id.clone());
        if !call.announced {
            let error = placing_error(reason);
            let call_type = call.call_type();
            self.emit_for(
                source,
                call_id,
                Event::BeforeCalling {
                    call_type,
                    error: Some(error),
                },
            );
            return;
        }
        let duration_millis = call
            .connected_at
            .map_or(0, |at| self.now.since(at).as_millis() as u64);
        let ending = match call.connected_at {
            Some(_) => Event::CallEnd {
                call_id: call.call_id.clone(),
                media_type: call.media,
                reason,
                user_id: by.to_owned(),
                total_time_millis: duration_millis,
            },
            None => Event::CallNotConnected {
                call_id: call.call_id.clone(),
                reason,
                user_id: by.to_owned(),
            },
        };
        self.emit_for(source, call_id.clone(), ending);
        if call.status != CallStatus::Idle {
            let old_status = call.status;
            debug_assert!(old_status.can_become(CallStatus::Idle));
            self.emit_for(
                source,
                call_id.clone(),
                Event::StatusChanged {
                    old_status,
                    new_status: CallStatus::Idle,
                },
            );
        }
        let summary = CallSummary {
            call_id: call.call_id,
            reason,
            initiator: call.caller,
            duration_millis,
            media: call.media,
        };
        self.emit_for(source, call_id, Event::AfterCalling(summary));
    }
}

/// The error `beforeCalling` reports for a call that ended before its invitation was delivered.
fn placing_error(reason: EndReason) -> CallError {
    let code = match reason {
        EndReason::KickedOut | EndReason::EndByServer => ErrorCode::NotLoggedIn,
        _ => ErrorCode::SignalingSendFailed,
    };
    CallError::new(
        code,
        format!("the call ended ({reason}) before its invitation was delivered"),
    )
}

/// Which kind of input an input is, for the timeline's `source`.
fn source_of(input: &Input) -> Source {
    match input {
        Input::Minimize | Input::Restore => Source::Ui,
        Input::Signal { .. }
        | Input::InviteFailed { .. }
        | Input::AnsweredElsewhere { .. }
        | Input::KickedOut { .. }
        | Input::UserSigExpired => Source::Remote,
        Input::Abort { .. } => Source::Engine,
        Input::LoggedIn
        | Input::Dial { .. }
        | Input::Accept
        | Input::Reject
        | Input::DeclineBusy
        | Input::Hangup
        | Input::SwitchMedia(_)
        | Input::InviteMore { .. } => Source::Local,
    }
}
