//! The contract checker: reads a timeline and reports every violation of the call contract it
//! can see: an illegal or inconsistent status transition, `afterCalling` missing or twice, an
//! end reason the events contradict, callbacks after a call ended, sequence gaps, and media
//! figures that cannot be ([`super::check_media`]).
//!
//! Each participant's entries are checked on their own, in sequence order; a call recorded by
//! several participants is then checked across its sides.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::event::{CallbackKind, Event, KindSet};
use crate::model::{CallStatus, EndReason};

use super::TimelineEntry;
use super::check_media::MediaWalk;

/// How a timeline is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// The ringing timeout the calls were placed with: `no-response` may not come sooner.
    pub ring_timeout: Duration,
    /// How much sooner than the timeout `no-response` may come (timers on two machines).
    pub timeout_slack: Duration,
    /// Sequence gaps are expected (a filtered export).
    pub allow_gaps: bool,
    /// The timeline may end in the middle of a call.
    pub allow_open_calls: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(30),
            timeout_slack: Duration::from_millis(500),
            allow_gaps: false,
            allow_open_calls: false,
        }
    }
}

/// Which rule a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A transition the contract does not allow, or one that does not start where the last
    /// one ended.
    Transition,
    /// A call announced by `beforeCalling` has no `afterCalling`.
    MissingAfterCalling,
    /// A second `afterCalling` for one call, or one for a call that never started.
    ExtraAfterCalling,
    /// An end reason the call's events contradict.
    Reason,
    /// A callback about a call after its `afterCalling`.
    AfterEnd,
    /// Sequence numbers that skip, repeat or go back.
    Sequence,
    /// The sides of a call trace disagree: a join the joiner never saw, a call recorded
    /// without its invitation, two different end reasons.
    Trace,
    /// Media figures that cannot be: a ladder step that does not start where the last one
    /// ended, a share outside 0 to 100, a count that goes back.
    Media,
}

impl Rule {
    /// A short name for the rule.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transition => "transition",
            Self::MissingAfterCalling => "missing-afterCalling",
            Self::ExtraAfterCalling => "extra-afterCalling",
            Self::Reason => "reason",
            Self::AfterEnd => "after-end",
            Self::Sequence => "sequence",
            Self::Trace => "trace",
            Self::Media => "media",
        }
    }
}

/// One violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The entry where it shows.
    pub seq: u64,
    /// Whose timeline.
    pub user_id: String,
    /// The call, if any.
    pub call_id: Option<String>,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {} [{}] {}",
            self.seq,
            self.user_id,
            self.call_id.as_deref().unwrap_or("-"),
            self.rule.as_str(),
            self.message
        )
    }
}

/// What is known about one call of one participant so far.
#[derive(Debug, Default)]
struct CallFacts {
    /// `beforeCalling` announced it (without an error), at this entry.
    announced_at: Option<u64>,
    /// `beforeCalling` refused it.
    refused: bool,
    /// Monotonic time of the first ringing status.
    ringing_since_micros: Option<u64>,
    /// Monotonic time of `onCallBegin`.
    began_micros: Option<u64>,
    /// The kinds seen in the call (what says why a callee dropped out, a kick-out).
    seen: KindSet,
    /// The reason `onCallEnd` / `onCallNotConnected` gave.
    ending_reason: Option<EndReason>,
    /// `afterCalling` came, at this entry.
    ended_at: Option<u64>,
}

/// One participant's walk through its entries.
#[derive(Debug, Default)]
struct Walk {
    /// Every (run, sequence number) of the timeline, all participants'.
    numbered: Rc<HashSet<(u64, u64)>>,
    last_seq: Option<u64>,
    /// The run of the last entry: a new run starts its own numbering.
    last_run: Option<u64>,
    status: Option<CallStatus>,
    calls: HashMap<String, CallFacts>,
    /// Calls in the order they were first seen, to report missing ends in order.
    order: Vec<String>,
    /// The call of the last status change.
    current: Option<String>,
    /// The media rules' memory.
    media: MediaWalk,
}

/// Checks `entries` (any order; several participants allowed) against the contract.
pub fn check(entries: &[TimelineEntry], options: &CheckOptions) -> Vec<Finding> {
    let mut by_user: BTreeMap<super::Recorder<'_>, Vec<&TimelineEntry>> = BTreeMap::new();
    for entry in entries {
        by_user.entry(entry.recorder()).or_default().push(entry);
    }
    // Participants recording into one store share its numbering: a number one of them skips
    // is no gap when another used it.
    let numbered: Rc<HashSet<(u64, u64)>> =
        Rc::new(entries.iter().map(|entry| (entry.run, entry.seq)).collect());
    let mut findings = Vec::new();
    for ((user, _), mut mine) in by_user {
        mine.sort_by_key(|entry| entry.seq);
        let mut walk = Walk {
            numbered: Rc::clone(&numbered),
            ..Walk::default()
        };
        for entry in mine {
            walk.step(entry, options, &mut findings);
        }
        walk.finish(user, options, &mut findings);
    }
    super::check_trace::check_traces(entries, &mut findings);
    findings.sort_by_key(|finding| (finding.user_id.clone(), finding.seq));
    findings
}

pub(super) fn finding(entry: &TimelineEntry, rule: Rule, message: String) -> Finding {
    Finding {
        seq: entry.seq,
        user_id: entry.user_id.clone(),
        call_id: entry.call_id.clone(),
        rule,
        message,
    }
}

impl Walk {
    fn step(&mut self, entry: &TimelineEntry, options: &CheckOptions, out: &mut Vec<Finding>) {
        self.check_sequence(entry, options, out);
        let Some(call_id) = entry.call_id.clone() else {
            if let Event::StatusChanged { .. } = entry.event {
                out.push(finding(
                    entry,
                    Rule::Transition,
                    "a status change without a call".into(),
                ));
            }
            return;
        };
        if !self.calls.contains_key(&call_id) {
            self.order.push(call_id.clone());
        }
        let ended = self.calls.entry(call_id.clone()).or_default().ended_at;
        if let Some(ended_at) = ended
            && !matches!(entry.event, Event::Error(_))
        {
            out.push(finding(
                entry,
                Rule::AfterEnd,
                format!(
                    "{} after the call's afterCalling (#{ended_at})",
                    entry.kind()
                ),
            ));
            return;
        }
        self.media.step(entry, &call_id, out);
        match &entry.event {
            Event::StatusChanged {
                old_status,
                new_status,
            } => self.transition(entry, &call_id, *old_status, *new_status, out),
            Event::AfterCalling(summary) => {
                self.after_calling(
                    entry,
                    &call_id,
                    summary.reason,
                    summary.duration_millis,
                    options,
                    out,
                );
            }
            event => self.note(entry, &call_id, event),
        }
    }

    fn check_sequence(
        &mut self,
        entry: &TimelineEntry,
        options: &CheckOptions,
        out: &mut Vec<Finding>,
    ) {
        let same_run = self.last_run.is_none_or(|run| run == entry.run);
        self.last_run = Some(entry.run);
        if let Some(last) = self.last_seq.filter(|_| same_run) {
            if entry.seq <= last {
                out.push(finding(
                    entry,
                    Rule::Sequence,
                    format!(
                        "sequence number {} repeats or goes back (after {last})",
                        entry.seq
                    ),
                ));
            } else if entry.seq != last + 1
                && !options.allow_gaps
                && (last + 1..entry.seq).any(|seq| !self.numbered.contains(&(entry.run, seq)))
            {
                out.push(finding(
                    entry,
                    Rule::Sequence,
                    format!("entries {} to {} are missing", last + 1, entry.seq - 1),
                ));
            }
        }
        self.last_seq = Some(self.last_seq.map_or(entry.seq, |last| last.max(entry.seq)));
    }

    fn note(&mut self, entry: &TimelineEntry, call_id: &str, event: &Event) {
        let facts = self.calls.entry(call_id.to_owned()).or_default();
        facts.seen.insert(event.kind());
        match event {
            Event::BeforeCalling { error: None, .. } => facts.announced_at = Some(entry.seq),
            Event::BeforeCalling { error: Some(_), .. } => facts.refused = true,
            Event::CallBegin { .. } => facts.began_micros = Some(entry.at.mono_micros),
            Event::CallEnd { reason, .. } | Event::CallNotConnected { reason, .. } => {
                facts.ending_reason = Some(*reason);
            }
            _ => {}
        }
    }

    fn transition(
        &mut self,
        entry: &TimelineEntry,
        call_id: &str,
        old: CallStatus,
        new: CallStatus,
        out: &mut Vec<Finding>,
    ) {
        if let Some(current) = self.status
            && current != old
        {
            out.push(finding(
                entry,
                Rule::Transition,
                format!("{old} -> {new} starts from {old}, but the status was {current}"),
            ));
        }
        if !old.can_become(new) {
            out.push(finding(
                entry,
                Rule::Transition,
                format!("{old} -> {new} is not a legal transition"),
            ));
        }
        self.status = Some(new);
        self.current = (new != CallStatus::Idle).then(|| call_id.to_owned());
        let facts = self.calls.entry(call_id.to_owned()).or_default();
        if new.is_ringing() && facts.ringing_since_micros.is_none() {
            facts.ringing_since_micros = Some(entry.at.mono_micros);
        }
    }

    fn after_calling(
        &mut self,
        entry: &TimelineEntry,
        call_id: &str,
        reason: EndReason,
        duration_millis: u64,
        options: &CheckOptions,
        out: &mut Vec<Finding>,
    ) {
        let facts = self.calls.entry(call_id.to_owned()).or_default();
        facts.ended_at = Some(entry.seq);
        if facts.refused && facts.announced_at.is_none() {
            out.push(finding(
                entry,
                Rule::ExtraAfterCalling,
                "afterCalling for a call whose beforeCalling reported an error".into(),
            ));
        }
        for problem in reason_problems(facts, entry, reason, duration_millis, options) {
            out.push(finding(entry, Rule::Reason, problem));
        }
    }

    fn finish(&self, user: &str, options: &CheckOptions, out: &mut Vec<Finding>) {
        for call_id in &self.order {
            let facts = &self.calls[call_id];
            let Some(announced_at) = facts.announced_at else {
                continue;
            };
            let in_progress = self.current.as_deref() == Some(call_id.as_str());
            if facts.ended_at.is_none() && !(in_progress && options.allow_open_calls) {
                out.push(Finding {
                    seq: announced_at,
                    user_id: user.to_owned(),
                    call_id: Some(call_id.clone()),
                    rule: Rule::MissingAfterCalling,
                    message: if in_progress {
                        "the call announced here never ends (still in progress?)".into()
                    } else {
                        "the call announced here has no afterCalling".into()
                    },
                });
            }
        }
    }
}

/// What the call's events say against ending it for `reason`.
fn reason_problems(
    facts: &CallFacts,
    entry: &TimelineEntry,
    reason: EndReason,
    duration_millis: u64,
    options: &CheckOptions,
) -> Vec<String> {
    let mut problems = Vec::new();
    let connected = facts.began_micros.is_some();
    if let Some(ending) = facts.ending_reason
        && ending != reason
    {
        problems.push(format!(
            "afterCalling says {reason}, but the call's end event said {ending}"
        ));
    }
    match reason {
        EndReason::Hangup if !connected => {
            problems.push("hangup of a call that never connected (onCallBegin missing)".into());
        }
        EndReason::Canceled | EndReason::Reject | EndReason::LineBusy | EndReason::NoResponse
            if connected =>
        {
            problems.push(format!("{reason} of a call that had connected"));
        }
        _ => {}
    }
    let caller = match &entry.event {
        Event::AfterCalling(summary) => summary.initiator == entry.user_id,
        _ => false,
    };
    if caller {
        let evidence = match reason {
            EndReason::Reject => Some(CallbackKind::UserReject),
            EndReason::LineBusy => Some(CallbackKind::UserLineBusy),
            EndReason::NoResponse => Some(CallbackKind::UserNoResponse),
            _ => None,
        };
        if let Some(wanted) = evidence
            && !facts.seen.contains(wanted)
        {
            problems.push(format!("{reason} with no {wanted} before it"));
        }
    }
    if reason == EndReason::KickedOut && !facts.seen.contains(CallbackKind::KickedOut) {
        problems.push("kicked-out with no kickedOut before it".into());
    }
    if reason == EndReason::NoResponse
        && let Some(since) = facts.ringing_since_micros
    {
        let rang = Duration::from_micros(entry.at.mono_micros.saturating_sub(since));
        if rang + options.timeout_slack < options.ring_timeout {
            problems.push(format!(
                "no-response after ringing {:.1} s, before the {} s timeout",
                rang.as_secs_f64(),
                options.ring_timeout.as_secs()
            ));
        }
    }
    if let Some(began) = facts.began_micros {
        let connected_millis = entry.at.mono_micros.saturating_sub(began) / 1000;
        if connected_millis.abs_diff(duration_millis) > 1 {
            problems.push(format!(
                "duration {duration_millis} ms, but the call was connected for {connected_millis} ms"
            ));
        }
    } else if duration_millis > 0 {
        problems.push(format!(
            "duration {duration_millis} ms for a call that never connected"
        ));
    }
    problems
}
