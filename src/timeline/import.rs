//! Importing an export from another machine: its entries join the store as another side of the
//! calls they name (a peer trace), numbered anew, with their own times and recorders kept.

use std::collections::BTreeMap;
use std::io::BufRead;

use crate::event::Event;
use crate::model::Source;

use super::{Origin, Query, Timeline, TimelineEntry};

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("reading line {line}: {source}")]
    Read {
        /// The line (from 1).
        line: usize,
        /// What failed.
        source: std::io::Error,
    },
    /// A line is not an entry of the contract's JSON.
    #[error("line {line} is not a timeline entry: {source}")]
    Malformed {
        /// The line (from 1).
        line: usize,
        /// What is wrong.
        source: serde_json::Error,
    },
}

/// Reads a JSON Lines export (blank lines skipped) before anything is recorded, so a damaged
/// file imports nothing.
pub fn read_json_lines(reader: impl BufRead) -> Result<Vec<TimelineEntry>, ImportError> {
    let mut entries = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|source| ImportError::Read {
            line: line_number,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|source| ImportError::Malformed {
            line: line_number,
            source,
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
    /// Calls whose imported side was moved onto our clock: call id and the shift in ms.
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
            let ours: Vec<TimelineEntry> = timeline
                .query(&Query {
                    origin: Some(Origin::Local),
                    ..Query::all().call(call_id.as_str())
                })
                .iter()
                .map(|entry| (**entry).clone())
                .collect();
            let shift = alignment(&ours, &side);
            if shift != 0 {
                for entry in &mut side {
                    entry.at.wall_millis = entry.at.wall_millis.saturating_add_signed(shift);
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

/// The least shift (ms, added to `theirs`) that puts each signaling send before its receipt:
/// their accept before our `onUserJoin` of them, their hang-up before our end of the call, and
/// our hang-up before their end. 0 when the clocks already agree or nothing bounds them.
pub fn alignment(ours: &[TimelineEntry], theirs: &[TimelineEntry]) -> i64 {
    let Some(them) = theirs.first().map(|entry| entry.user_id.as_str()) else {
        return 0;
    };
    let wall = |entry: &TimelineEntry| entry.at.wall_millis.cast_signed();
    let find = |entries: &[TimelineEntry], wanted: &dyn Fn(&TimelineEntry) -> bool| {
        entries.iter().find(|entry| wanted(entry)).map(wall)
    };
    let accepted = |entry: &TimelineEntry| matches!(entry.event, Event::StatusChanged { new_status, .. } if new_status.is_calling());
    let ended_by = |source: Source| {
        move |entry: &TimelineEntry| {
            entry.source == source
                && matches!(entry.event, Event::StatusChanged { old_status, .. } if old_status.is_calling())
        }
    };
    let mut lower = i64::MIN;
    let mut upper = i64::MAX;
    // Their accept reached us as their join.
    let joined = |entry: &TimelineEntry| matches!(&entry.event, Event::UserJoin { user_id } if user_id == them);
    if let (Some(their_accept), Some(our_join)) = (find(theirs, &accepted), find(ours, &joined)) {
        upper = upper.min(our_join - their_accept);
    }
    // Their hang-up reached us as the end of our call.
    if let (Some(their_hangup), Some(our_end)) = (
        find(theirs, &ended_by(Source::Local)),
        find(ours, &ended_by(Source::Remote)),
    ) {
        upper = upper.min(our_end - their_hangup);
    }
    // Our hang-up reached them as the end of theirs.
    if let (Some(our_hangup), Some(their_end)) = (
        find(ours, &ended_by(Source::Local)),
        find(theirs, &ended_by(Source::Remote)),
    ) {
        lower = lower.max(our_hangup - their_end);
    }
    if lower > upper {
        // The bounds contradict each other: the recordings do not fit together; leave them.
        return 0;
    }
    0_i64.clamp(lower, upper)
}
