//! The contract checker's own tests: the timelines the call core records for each demo flow, in
//! virtual time at the real 30 s ring timeout, pass; each rule fires on the breach it names.

use callscope::call::{CallMachine, Input, Signal};
use callscope::event::{CallSummary, Event};
use callscope::model::{CallError, CallStatus, EndReason, ErrorCode, MediaType, MonoTime};
use callscope::timeline::{CheckOptions, Delivery, Origin, Rule, TimelineEntry, Timestamp, check};

/// One participant's call core stepped in virtual time, and the timeline it recorded.
struct Flow {
    machine: CallMachine,
    user: String,
    now: MonoTime,
    entries: Vec<TimelineEntry>,
}

impl Flow {
    fn new(user: &str) -> Self {
        let mut flow = Self {
            machine: CallMachine::new(user),
            user: user.to_owned(),
            now: MonoTime::from_millis(1_000),
            entries: Vec::new(),
        };
        flow.input(Input::LoggedIn);
        flow
    }

    fn input(&mut self, input: Input) {
        self.now = MonoTime::from_micros(self.now.0 + 10_000);
        // A refused input is recorded too (its beforeCalling says why).
        let _ = self.machine.handle_input(self.now, input);
        self.record();
    }

    fn signal(&mut self, signal: Signal) {
        self.input(Input::Signal {
            call_id: "c-1".into(),
            signal,
        });
    }

    fn wait(&mut self, millis: u64) {
        self.now = MonoTime::from_micros(self.now.0 + millis * 1_000);
        self.machine.handle_timeout(self.now);
        self.record();
    }

    fn record(&mut self) {
        while let Some(emitted) = self.machine.poll_event() {
            let seq = self.entries.len() as u64 + 1;
            self.entries.push(TimelineEntry {
                seq,
                run: 0,
                at: Timestamp {
                    wall_millis: 1_800_000_000_000 + emitted.at.0 / 1_000,
                    mono_micros: emitted.at.0,
                },
                call_id: emitted.call_id,
                user_id: self.user.clone(),
                source: emitted.source,
                event: emitted.event,
                delivery: Delivery::Delivered,
                handler_micros: 0,
                origin: Origin::Local,
                session: None,
                clock_error_micros: None,
            });
        }
    }

    /// Alice dialing `callees` (a group call with more than one) for video, 30 s ring.
    fn dialing(callees: &[&str]) -> Self {
        let mut flow = Self::new("alice");
        flow.input(Input::Dial {
            call_id: "c-1".into(),
            callees: callees.iter().map(|callee| (*callee).to_owned()).collect(),
            media: MediaType::Video,
            group: callees.len() > 1,
            timeout_secs: 30,
        });
        flow.signal(Signal::InviteDelivered {
            offline: Vec::new(),
        });
        flow
    }

    /// Bob invited by carol to a 1:1 video call.
    fn invited() -> Self {
        let mut flow = Self::new("bob");
        flow.signal(Signal::Invited {
            caller: "carol".into(),
            callees: vec!["bob".into()],
            joined: Vec::new(),
            media: MediaType::Video,
            group: false,
            timeout_secs: 30,
        });
        flow
    }
}

fn accepted(user: &str) -> Signal {
    Signal::Accepted {
        user_id: user.into(),
    }
}

fn rules(entries: &[TimelineEntry]) -> Vec<Rule> {
    check(entries, &CheckOptions::default())
        .into_iter()
        .map(|finding| finding.rule)
        .collect()
}

/// Every demo flow, recorded by the call core, as the caller or the callee sees it.
fn demo_flows() -> Vec<(&'static str, Vec<TimelineEntry>)> {
    let mut flows = Vec::new();
    let mut echo = Flow::dialing(&["echo"]);
    echo.signal(accepted("echo"));
    echo.wait(5_000);
    echo.input(Input::Hangup);
    flows.push(("echo", echo.entries));
    let mut decline = Flow::dialing(&["decline"]);
    decline.signal(Signal::Rejected {
        user_id: "decline".into(),
    });
    flows.push(("decline", decline.entries));
    let mut busy = Flow::dialing(&["busy"]);
    busy.signal(Signal::LineBusy {
        user_id: "busy".into(),
    });
    flows.push(("busy", busy.entries));
    let mut noanswer = Flow::dialing(&["noanswer"]);
    noanswer.wait(30_000);
    flows.push(("noanswer", noanswer.entries));
    let mut hangup = Flow::dialing(&["hangup"]);
    hangup.signal(accepted("hangup"));
    hangup.wait(3_000);
    hangup.signal(Signal::HungUp {
        user_id: "hangup".into(),
    });
    flows.push(("hangup", hangup.entries));
    let mut canceled = Flow::dialing(&["ringback"]);
    canceled.wait(2_000);
    canceled.input(Input::Hangup);
    flows.push(("ringback, canceled", canceled.entries));
    let group = ["group-a", "group-b", "group-c", "group-d"];
    let mut together = Flow::dialing(&group);
    for member in group {
        together.signal(accepted(member));
    }
    together.wait(4_000);
    together.input(Input::Hangup);
    flows.push(("group", together.entries));
    let mut answered = Flow::invited();
    answered.input(Input::Accept);
    answered.wait(2_000);
    answered.signal(Signal::HungUp {
        user_id: "carol".into(),
    });
    flows.push(("answered, hung up by the caller", answered.entries));
    let mut rejecting = Flow::invited();
    rejecting.input(Input::Reject);
    flows.push(("rejected", rejecting.entries));
    flows
}

#[test]
fn every_demo_flow_as_the_call_core_records_it_keeps_the_contract() {
    for (name, entries) in demo_flows() {
        assert!(entries.len() >= 4, "{name}: {entries:?}");
        let findings = check(&entries, &CheckOptions::default());
        assert!(findings.is_empty(), "{name}: {findings:#?}");
    }
}

/// The echo flow: dial, accepted, five seconds connected, hang up.
fn echo() -> Vec<TimelineEntry> {
    demo_flows().swap_remove(0).1
}

fn position(entries: &[TimelineEntry], wanted: impl Fn(&Event) -> bool) -> usize {
    entries
        .iter()
        .position(|entry| wanted(&entry.event))
        .expect("present")
}

fn renumber(entries: &mut [TimelineEntry]) {
    for (index, entry) in entries.iter_mut().enumerate() {
        entry.seq = index as u64 + 1;
    }
}

#[test]
fn transition_fires_on_an_illegal_step_a_step_from_elsewhere_and_a_status_without_a_call() {
    let mut illegal = echo();
    let at = position(&illegal, |event| matches!(event, Event::CallBegin { .. }));
    illegal.insert(at, illegal[at].clone());
    illegal[at].event = Event::StatusChanged {
        old_status: CallStatus::CallingC2cVideo,
        new_status: CallStatus::DialingGroup,
    };
    renumber(&mut illegal);
    assert!(rules(&illegal).contains(&Rule::Transition), "{illegal:?}");
    let mut elsewhere = echo();
    let last = elsewhere
        .iter()
        .rposition(|entry| matches!(entry.event, Event::StatusChanged { .. }))
        .expect("a status change");
    elsewhere[last].event = Event::StatusChanged {
        old_status: CallStatus::BeInvited,
        new_status: CallStatus::Idle,
    };
    assert_eq!(rules(&elsewhere), [Rule::Transition]);
    let mut callless = echo();
    callless[last].call_id = None;
    assert!(rules(&callless).contains(&Rule::Transition));
}

#[test]
fn missing_after_calling_fires_when_a_call_never_ends() {
    let mut open = echo();
    open.pop();
    assert_eq!(rules(&open), [Rule::MissingAfterCalling]);
    // Unless the timeline may end mid-call and the call is still going.
    let mut mid_call = echo();
    let at = position(&mid_call, |event| matches!(event, Event::CallBegin { .. }));
    mid_call.truncate(at + 1);
    let options = CheckOptions {
        allow_open_calls: true,
        ..CheckOptions::default()
    };
    assert!(check(&mid_call, &options).is_empty());
    assert_eq!(rules(&mid_call), [Rule::MissingAfterCalling]);
}

#[test]
fn extra_after_calling_fires_for_a_call_refused_before_it_started() {
    let mut refused = Flow::new("alice");
    refused.input(Input::Dial {
        call_id: "c-1".into(),
        callees: vec!["alice".into()],
        media: MediaType::Audio,
        group: false,
        timeout_secs: 30,
    });
    let mut entries = refused.entries;
    assert!(
        matches!(
            entries.last().map(|entry| &entry.event),
            Some(Event::BeforeCalling { error: Some(_), .. })
        ),
        "{entries:?}"
    );
    assert!(rules(&entries).is_empty());
    let mut after = entries[0].clone();
    after.seq += 1;
    after.event = Event::AfterCalling(CallSummary {
        call_id: "c-1".into(),
        reason: EndReason::Error,
        initiator: "alice".into(),
        duration_millis: 0,
        media: MediaType::Audio,
    });
    entries.push(after);
    assert!(
        rules(&entries).contains(&Rule::ExtraAfterCalling),
        "{entries:?}"
    );
}

#[test]
fn reason_fires_on_an_end_reason_the_events_contradict() {
    // A hang-up of a call that never connected: the reject flow told as a hang-up.
    let mut flows = demo_flows();
    let mut rejected = flows.swap_remove(1).1;
    let last = rejected.len() - 1;
    if let Event::AfterCalling(summary) = &mut rejected[last].event {
        summary.reason = EndReason::Hangup;
    }
    assert!(rules(&rejected).contains(&Rule::Reason));
    // A duration that is not the connected time.
    let mut echo = echo();
    let last = echo.len() - 1;
    if let Event::AfterCalling(summary) = &mut echo[last].event {
        summary.duration_millis += 1_000;
    }
    assert_eq!(rules(&echo), [Rule::Reason]);
    // No response before the 30 s timeout: the flow at its real timing passes (above); cut
    // short, it does not.
    let mut early = Flow::dialing(&["noanswer"]);
    early.wait(5_000);
    early.signal(Signal::NoResponse {
        user_id: "noanswer".into(),
    });
    assert!(
        rules(&early.entries).contains(&Rule::Reason),
        "{:?}",
        early.entries
    );
}

#[test]
fn after_end_fires_on_a_callback_or_a_second_after_calling_once_the_call_ended() {
    let mut late = echo();
    let mut extra = late[position(&late, |event| matches!(event, Event::CallBegin { .. }))].clone();
    extra.seq = late.len() as u64 + 1;
    late.push(extra);
    assert_eq!(rules(&late), [Rule::AfterEnd]);
    let mut twice = echo();
    let mut again = twice[twice.len() - 1].clone();
    again.seq += 1;
    twice.push(again);
    assert_eq!(rules(&twice), [Rule::AfterEnd]);
    // An error about the call after its end is no breach.
    let mut error = echo();
    let mut told = error[error.len() - 1].clone();
    told.seq += 1;
    told.event = Event::Error(CallError::new(ErrorCode::RequestRefused, "late"));
    error.push(told);
    assert!(rules(&error).is_empty());
}

#[test]
fn sequence_fires_on_a_gap_and_a_repeat() {
    let mut gap = echo();
    gap.remove(position(&gap, |event| {
        matches!(event, Event::UserJoin { .. })
    }));
    assert_eq!(rules(&gap), [Rule::Sequence]);
    let allowed = CheckOptions {
        allow_gaps: true,
        ..CheckOptions::default()
    };
    assert!(check(&gap, &allowed).is_empty());
    let mut repeat = echo();
    repeat[4].seq = repeat[3].seq;
    assert!(rules(&repeat).contains(&Rule::Sequence));
}

#[test]
fn trace_fires_when_two_sides_of_a_call_disagree() {
    // Alice's echo call, and the callee's side, recorded as bob answering carol's invitation.
    let mut callee: Vec<TimelineEntry> = demo_flows().swap_remove(7).1;
    for entry in &mut callee {
        entry.origin = Origin::Peer;
        entry.seq += 100;
    }
    let mut both = echo();
    both.extend(callee.iter().cloned());
    // Both ended by a hang-up, one hanging up and one hearing it: no finding...
    assert!(
        rules(&both).is_empty(),
        "{:#?}",
        check(&both, &CheckOptions::default())
    );
    // ...until one side says otherwise.
    let last = both.len() - 1;
    if let Event::AfterCalling(summary) = &mut both[last].event {
        summary.reason = EndReason::Error;
    }
    assert!(rules(&both).contains(&Rule::Trace), "{both:?}");
    // A side that recorded the call without receiving it.
    let mut unreceived = echo();
    unreceived.extend(
        callee
            .iter()
            .filter(|entry| !matches!(entry.event, Event::CallReceived { .. }))
            .cloned(),
    );
    assert!(rules(&unreceived).contains(&Rule::Trace));
}
