//! Diffing two recordings of a call flow, for regression tests of an app's call handling: the
//! entries of each are lined up by their sequence of callbacks (a longest common subsequence
//! of kinds, status changes by their transition), and what differs is reported: callbacks
//! missing or extra, callbacks that moved, payload fields that changed, and timings (from each
//! recording's first entry) apart by more than a tolerance. Ids of calls, times and durations
//! differ between any two runs and are compared only as timings.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::event::{CallbackKind, Event};

use super::{Origin, TimelineEntry};

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// Timings further apart than this are a difference, in milliseconds.
    pub tolerance_millis: u64,
    /// Compare the periodic reports too (stats, volumes, network quality).
    pub periodic: bool,
    /// Compare every recorder's entries (another side's, the server's), not only our own.
    pub all_sides: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            tolerance_millis: 100,
            periodic: false,
            all_sides: false,
        }
    }
}

/// One difference between recording A and recording B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In A, not in B.
    Missing {
        /// A's entry.
        seq: u64,
        /// What it is.
        what: String,
    },
    /// In B, not in A.
    Extra {
        /// B's entry.
        seq: u64,
        /// What it is.
        what: String,
    },
    /// In both, in another place of the sequence.
    Moved {
        /// A's entry.
        seq_a: u64,
        /// B's entry.
        seq_b: u64,
        /// What it is.
        what: String,
    },
    /// In both, a payload field differs.
    Changed {
        /// A's entry.
        seq_a: u64,
        /// B's entry.
        seq_b: u64,
        /// The callback.
        kind: CallbackKind,
        /// The field's path (`reason`, `stats.rtt_ms`).
        field: String,
        /// A's value.
        a: String,
        /// B's value.
        b: String,
    },
    /// In both, at times (from each recording's first entry) further apart than the tolerance.
    Timing {
        /// A's entry.
        seq_a: u64,
        /// B's entry.
        seq_b: u64,
        /// What it is.
        what: String,
        /// When in A, ms after its first entry.
        a_millis: i64,
        /// When in B.
        b_millis: i64,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { seq, what } => write!(f, "missing: A #{seq} {what} is not in B"),
            Self::Extra { seq, what } => write!(f, "extra: B #{seq} {what} is not in A"),
            Self::Moved { seq_a, seq_b, what } => {
                write!(
                    f,
                    "reordered: {what} is A #{seq_a} but B #{seq_b}, elsewhere in the flow"
                )
            }
            Self::Changed {
                seq_a,
                seq_b,
                kind,
                field,
                a,
                b,
            } => write!(
                f,
                "changed: {kind} (A #{seq_a}, B #{seq_b}) {field}: {a} -> {b}"
            ),
            Self::Timing {
                seq_a,
                seq_b,
                what,
                a_millis,
                b_millis,
            } => write!(
                f,
                "timing: {what} (A #{seq_a}, B #{seq_b}) at +{a_millis} ms in A, +{b_millis} ms in B ({:+} ms)",
                b_millis - a_millis
            ),
        }
    }
}

/// Why two recordings could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// Too many entries to line up.
    #[error(
        "{a} and {b} entries are too many to line up (at most {MAX_CELLS} pairs); filter them first"
    )]
    TooLong {
        /// Entries compared of A.
        a: usize,
        /// Of B.
        b: usize,
    },
}

/// The most pairs of entries lined up (the table costs 4 bytes a pair).
pub const MAX_CELLS: usize = 25_000_000;

/// Payload fields that differ between any two runs (ids, times, durations): compared only as
/// the entry's timing.
const VOLATILE: [&str; 3] = ["call_id", "duration_ms", "total_time"];

/// The differences between recordings `a` and `b`, in the order of A.
pub fn diff(
    a: &[TimelineEntry],
    b: &[TimelineEntry],
    options: &DiffOptions,
) -> Result<Vec<Difference>, DiffError> {
    let a = compared(a, options);
    let b = compared(b, options);
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return Err(DiffError::TooLong {
            a: a.len(),
            b: b.len(),
        });
    }
    let keys_a: Vec<String> = a.iter().map(|entry| key(entry)).collect();
    let keys_b: Vec<String> = b.iter().map(|entry| key(entry)).collect();
    let pairs = common_subsequence(&keys_a, &keys_b);
    let mut differences = Vec::new();
    let start_a = a.first().map_or(0, |entry| entry.wall_micros());
    let start_b = b.first().map_or(0, |entry| entry.wall_micros());
    let mut matched_a = vec![false; a.len()];
    let mut matched_b = vec![false; b.len()];
    for &(i, j) in &pairs {
        matched_a[i] = true;
        matched_b[j] = true;
        compare_pair(a[i], b[j], (start_a, start_b), options, &mut differences);
    }
    // What is left on both sides with the same key moved; the rest is missing or extra.
    let mut left_b: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (j, key) in keys_b.iter().enumerate().filter(|(j, _)| !matched_b[*j]) {
        left_b.entry(key.as_str()).or_default().push(j);
    }
    for (i, key) in keys_a.iter().enumerate().filter(|(i, _)| !matched_a[*i]) {
        let moved = left_b
            .get_mut(key.as_str())
            .and_then(|candidates| (!candidates.is_empty()).then(|| candidates.remove(0)));
        match moved {
            Some(j) => {
                matched_b[j] = true;
                differences.push(Difference::Moved {
                    seq_a: a[i].seq,
                    seq_b: b[j].seq,
                    what: key.clone(),
                });
            }
            None => differences.push(Difference::Missing {
                seq: a[i].seq,
                what: key.clone(),
            }),
        }
    }
    for (j, key) in keys_b.iter().enumerate().filter(|(j, _)| !matched_b[*j]) {
        differences.push(Difference::Extra {
            seq: b[j].seq,
            what: key.clone(),
        });
    }
    Ok(differences)
}

/// The entries compared: ours (unless every side is), without the periodic reports (unless
/// asked), in their order.
fn compared<'entry>(
    entries: &'entry [TimelineEntry],
    options: &DiffOptions,
) -> Vec<&'entry TimelineEntry> {
    entries
        .iter()
        .filter(|entry| options.all_sides || entry.origin == Origin::Local)
        .filter(|entry| options.periodic || !entry.kind().is_periodic())
        .collect()
}

/// What lines entries up: the kind, a status change with its transition, a recorder other
/// than ours with its side.
fn key(entry: &TimelineEntry) -> String {
    let what = match &entry.event {
        Event::StatusChanged {
            old_status,
            new_status,
        } => format!("statusChanged {old_status} -> {new_status}"),
        Event::ServerEvent { name, .. } => format!("onServerEvent {name}"),
        event => event.kind().as_str().to_owned(),
    };
    match entry.origin {
        Origin::Local => what,
        origin => format!("{what} ({} {})", origin.as_str(), entry.user_id),
    }
}

/// The pairs (index in `a`, index in `b`) of a longest common subsequence, in order.
fn common_subsequence(a: &[String], b: &[String]) -> Vec<(usize, usize)> {
    let width = b.len() + 1;
    // lengths[i * width + j]: the longest common subsequence of a[i..] and b[j..].
    let mut lengths = vec![0_u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i * width + j] = if a[i] == b[j] {
                lengths[(i + 1) * width + j + 1] + 1
            } else {
                lengths[(i + 1) * width + j].max(lengths[i * width + j + 1])
            };
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if lengths[(i + 1) * width + j] >= lengths[i * width + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

fn compare_pair(
    a: &TimelineEntry,
    b: &TimelineEntry,
    (start_a, start_b): (u64, u64),
    options: &DiffOptions,
    out: &mut Vec<Difference>,
) {
    let mut fields = Vec::new();
    changed_fields(
        "",
        &a.event.payload_json(),
        &b.event.payload_json(),
        &mut fields,
    );
    for (field, value_a, value_b) in fields {
        out.push(Difference::Changed {
            seq_a: a.seq,
            seq_b: b.seq,
            kind: a.kind(),
            field,
            a: value_a,
            b: value_b,
        });
    }
    let millis = |entry: &TimelineEntry, start: u64| {
        (entry.wall_micros().cast_signed() - start.cast_signed()) / 1000
    };
    let (a_millis, b_millis) = (millis(a, start_a), millis(b, start_b));
    if a_millis.abs_diff(b_millis) > options.tolerance_millis {
        out.push(Difference::Timing {
            seq_a: a.seq,
            seq_b: b.seq,
            what: key(a),
            a_millis,
            b_millis,
        });
    }
}

/// The leaf fields of two payloads that differ (volatile ones left out), as (path, a, b).
fn changed_fields(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for name in names {
                if VOLATILE.contains(&name.as_str()) {
                    continue;
                }
                let inner = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                changed_fields(
                    &inner,
                    a.get(name).unwrap_or(&Value::Null),
                    b.get(name).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push((
            if path.is_empty() {
                "payload".to_owned()
            } else {
                path.to_owned()
            },
            a.to_string(),
            b.to_string(),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_common_subsequence_pairs_what_both_have_in_order() {
        let keys = |text: &str| text.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let pairs = common_subsequence(&keys("a b c d"), &keys("a c b d"));
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs.first(), Some(&(0, 0)));
        assert_eq!(pairs.last(), Some(&(3, 3)));
        assert_eq!(common_subsequence(&keys("a"), &[]), []);
    }
}
