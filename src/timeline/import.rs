//! Importing an export from another machine: its entries join the store as another side of the
//! calls they name (a peer trace), numbered anew, with their own times and recorders kept.

use std::collections::BTreeMap;
use std::io::BufRead;

use crate::event::{CallbackKind, Event};
use crate::model::Source;

use super::{Origin, Query, Timeline, TimelineEntry};

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("reading line {line}: {error}")]
    Read {
        /// The line (from 1).
        line: usize,
        /// What failed.
        error: std::io::Error,
    },
    /// A line is not an entry of the contract's JSON.
    #[error("line {line} is not a timeline entry: {error}")]
    Malformed {
        /// The line (from 1).
        line: usize,
        /// What is wrong.
        error: serde_json::Error,
    },
}

/// Reads a JSON Lines export (blank lines skipped) before anything is recorded, so a damaged
/// file imports nothing.
pub fn read_json_lines(reader: impl BufRead) -> Result<Vec<TimelineEntry>, ImportError> {
    let mut entries = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|error| ImportError::Read {
            line: line_number,
            error,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|error| ImportError::Malformed {
            line: line_number,
            error,
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// How an import went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Entries appended.
    pub entries: usize,
    /// Calls whose imported side was moved onto our clock: call id and the shift in µs.
    pub shifted: Vec<(String, i64)>,
}

/// Appends `entries` to `timeline` as another side's: what the other machine recorded itself
/// becomes a peer entry with `session` naming where it came from; server entries stay the
/// server's. Where a call's signaling shows the other machine's clock is off (its accept after
/// our receipt of it, or its receipt of our hang-up before we hung up), that call's imported
/// entries are moved by the least shift that puts every send before its receipt.
pub fn import(timeline: &Timeline, entries: Vec<TimelineEntry>, session: &str) -> Imported {
    let mut by_call: BTreeMap<Option<String>, Vec<TimelineEntry>> = BTreeMap::new();
    for mut entry in entries {
        if entry.origin == Origin::Local {
            entry.origin = Origin::Peer;
        }
        if entry.session.is_none() {
            entry.session = Some(session.to_owned());
        }
        by_call
            .entry(entry.call_id.clone())
            .or_default()
            .push(entry);
    }
    let mut imported = Imported::default();
    for (call_id, mut side) in by_call {
        if let Some(call_id) = &call_id {
            let ours = local_entries(timeline, call_id);
            let shift = alignment(&ours, &side, None);
            if shift != 0 {
                for entry in &mut side {
                    shift_entry(entry, shift);
                }
                imported.shifted.push((call_id.clone(), shift));
            }
        }
        imported.entries += side.len();
        for entry in side {
            timeline.append(entry);
        }
    }
    imported
}

/// Our own entries about `call_id` that [`alignment`] looks at (statuses and joins).
pub fn local_entries(timeline: &Timeline, call_id: &str) -> Vec<TimelineEntry> {
    timeline
        .query(&Query {
            origin: Some(Origin::Local),
            ..Query::all()
                .call(call_id)
                .kind(CallbackKind::StatusChanged)
                .kind(CallbackKind::UserJoin)
        })
        .iter()
        .map(|entry| (**entry).clone())
        .collect()
}

/// Moves an entry's time by `shift_micros`, keeping its monotonic time's whole milliseconds.
pub(crate) fn shift_entry(entry: &mut TimelineEntry, shift_micros: i64) {
    let moved = entry.wall_micros().saturating_add_signed(shift_micros);
    entry.at.wall_millis = moved / 1000;
    entry.at.mono_micros =
        (entry.at.mono_micros - entry.at.mono_micros % 1000).saturating_add(moved % 1000);
}

/// The least shift (µs, added to `theirs`) that puts each signaling send before its receipt:
/// their accept before our `onUserJoin` of them and ours before theirs of us, their hang-up
/// before our end of the call and ours before their end; and, when `received_micros` says when
/// their entries reached us, every one of them before it. (A caller's dial is announced when
/// the server has routed the invitation, as the callee receives it: it bounds nothing.) 0 when
/// the clocks already agree or nothing bounds them.
pub fn alignment(
    ours: &[TimelineEntry],
    theirs: &[TimelineEntry],
    received_micros: Option<u64>,
) -> i64 {
    let Some(them) = theirs.first().map(|entry| entry.user_id.as_str()) else {
        return 0;
    };
    let us = ours.first().map(|entry| entry.user_id.as_str());
    let at = |entry: &TimelineEntry| entry.wall_micros().cast_signed();
    let find = |entries: &[TimelineEntry], wanted: &dyn Fn(&TimelineEntry) -> bool| {
        entries.iter().find(|entry| wanted(entry)).map(at)
    };
    let accepted = |entry: &TimelineEntry| {
        entry.source == Source::Local
            && matches!(entry.event, Event::StatusChanged { new_status, .. } if new_status.is_calling())
    };
    let joined = |who: Option<&str>, entry: &TimelineEntry| matches!(&entry.event, Event::UserJoin { user_id } if Some(user_id.as_str()) == who);
    let ended_by = |source: Source| {
        move |entry: &TimelineEntry| {
            entry.source == source
                && matches!(entry.event, Event::StatusChanged { old_status, .. } if old_status.is_calling())
        }
    };
    let mut lower = i64::MIN;
    let mut upper = i64::MAX;
    // A send of theirs and its receipt here bound the shift from above; ours and theirs from below.
    let mut theirs_before_ours = |send: Option<i64>, receipt: Option<i64>| {
        if let (Some(send), Some(receipt)) = (send, receipt) {
            upper = upper.min(receipt.saturating_sub(send));
        }
    };
    theirs_before_ours(
        find(theirs, &accepted),
        find(ours, &|entry| joined(Some(them), entry)),
    );
    theirs_before_ours(
        find(theirs, &ended_by(Source::Local)),
        find(ours, &ended_by(Source::Remote)),
    );
    if let (Some(received), Some(latest)) = (received_micros, theirs.iter().map(at).max()) {
        upper = upper.min(received.cast_signed().saturating_sub(latest));
    }
    let mut ours_before_theirs = |send: Option<i64>, receipt: Option<i64>| {
        if let (Some(send), Some(receipt)) = (send, receipt) {
            lower = lower.max(send.saturating_sub(receipt));
        }
    };
    ours_before_theirs(
        find(ours, &accepted),
        find(theirs, &|entry| joined(us, entry)),
    );
    ours_before_theirs(
        find(ours, &ended_by(Source::Local)),
        find(theirs, &ended_by(Source::Remote)),
    );
    if lower > upper {
        // The bounds contradict each other: the recordings do not fit together; leave them.
        return 0;
    }
    0_i64.clamp(lower, upper)
}
