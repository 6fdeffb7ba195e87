//! Importing an export from another machine: its entries join the store as another side of the
//! calls they name (a peer trace), numbered anew, with their own times and recorders kept.

use std::io::BufRead;

use super::{Origin, Timeline, TimelineEntry};

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

/// Appends `entries` to `timeline` as another side's: what the other machine recorded itself
/// becomes a peer entry with `session` naming where it came from; server entries stay the
/// server's. Returns how many were appended.
pub fn import(timeline: &Timeline, entries: Vec<TimelineEntry>, session: &str) -> usize {
    let count = entries.len();
    for mut entry in entries {
        if entry.origin == Origin::Local {
            entry.origin = Origin::Peer;
        }
        if entry.session.is_none() {
            entry.session = Some(session.to_owned());
        }
        timeline.append(entry);
    }
    count
}
