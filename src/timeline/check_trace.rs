//! The contract's rules across the sides of a call trace: where one call's entries come from
//! several recorders (our kit, the other participants', the server), every participant the
//! caller saw join reached a calling status itself, every participant that recorded the call
//! received its invitation, and the two sides of a 1:1 call agree on why it ended.

use std::collections::BTreeMap;

use crate::event::Event;
use crate::model::CallType;

use super::check::{Finding, Rule};
use super::{Origin, Recorder, TimelineEntry};

/// Checks every call recorded by more than one recorder; appends what it finds.
pub(super) fn check_traces(entries: &[TimelineEntry], out: &mut Vec<Finding>) {
    let mut calls: BTreeMap<&str, BTreeMap<Recorder<'_>, Vec<&TimelineEntry>>> = BTreeMap::new();
    for entry in entries {
        if let Some(call_id) = &entry.call_id {
            calls
                .entry(call_id.as_str())
                .or_default()
                .entry(entry.recorder())
                .or_default()
                .push(entry);
        }
    }
    for sides in calls.values().filter(|sides| sides.len() > 1) {
        check_call(sides, out);
    }
}

fn check_call(sides: &BTreeMap<Recorder<'_>, Vec<&TimelineEntry>>, out: &mut Vec<Finding>) {
    let placed = |entries: &[&TimelineEntry]| {
        entries.iter().any(|entry| {
            matches!(
                entry.event,
                Event::BeforeCalling {
                    call_type: CallType::Call | CallType::GroupCall,
                    error: None,
                }
            )
        })
    };
    let Some((caller, caller_entries)) = sides.iter().find(|(_, entries)| placed(entries)) else {
        return;
    };
    // The server's records are not a participant's side: it receives no invitation.
    let participants = sides
        .iter()
        .filter(|(side, _)| *side != caller && side.1 != Origin::Server);
    for (callee, callee_entries) in participants {
        let first = callee_entries[0];
        let received = callee_entries
            .iter()
            .any(|entry| matches!(entry.event, Event::CallReceived { .. }));
        if !received {
            out.push(trace_finding(
                first,
                format!(
                    "{} recorded the call without receiving its invitation",
                    callee.0
                ),
            ));
        }
        let joined = caller_entries.iter().find(
            |entry| matches!(&entry.event, Event::UserJoin { user_id } if user_id == callee.0),
        );
        let calling = callee_entries.iter().any(|entry| {
            matches!(entry.event, Event::StatusChanged { new_status, .. } if new_status.is_calling())
        });
        if let Some(joined) = joined
            && !calling
        {
            out.push(trace_finding(
                joined,
                format!(
                    "{} joined as {} saw it, but never reached a calling status itself",
                    callee.0, caller.0
                ),
            ));
        }
    }
    let people: Vec<&Vec<&TimelineEntry>> = sides
        .iter()
        .filter(|(side, _)| side.1 != Origin::Server)
        .map(|(_, entries)| entries)
        .collect();
    if people.len() == 2 {
        let reasons: Vec<(&TimelineEntry, String)> = people
            .iter()
            .filter_map(|entries| {
                entries.iter().find_map(|entry| match &entry.event {
                    Event::AfterCalling(summary) => Some((*entry, summary.reason.to_string())),
                    _ => None,
                })
            })
            .collect();
        if let [(first, first_reason), (second, second_reason)] = reasons.as_slice()
            && first_reason != second_reason
        {
            out.push(trace_finding(
                second,
                format!(
                    "{}'s afterCalling says {second_reason}, {}'s says {first_reason}",
                    second.user_id, first.user_id
                ),
            ));
        }
    }
}

fn trace_finding(entry: &TimelineEntry, message: String) -> Finding {
    Finding {
        seq: entry.seq,
        user_id: entry.user_id.clone(),
        call_id: entry.call_id.clone(),
        rule: Rule::Trace,
        message,
    }
}
