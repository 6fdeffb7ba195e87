//! Export of timeline entries: JSON Lines, and Chrome trace / Perfetto JSON.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::event::Event;

use super::{Origin, Recorder, TimelineEntry};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One contract-shaped JSON object per line.
    JsonLines,
    /// Chrome trace event format, which Perfetto and `chrome://tracing` open.
    Perfetto,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jsonl" | "json-lines" => Ok(Self::JsonLines),
            "perfetto" | "chrome" | "trace" => Ok(Self::Perfetto),
            _ => Err(format!(
                "unknown export format {text:?} (jsonl or perfetto)"
            )),
        }
    }
}

/// Writes `entries` in `format`.
pub fn export<'entry>(
    entries: impl IntoIterator<Item = &'entry TimelineEntry>,
    format: ExportFormat,
    out: &mut impl Write,
) -> io::Result<()> {
    match format {
        ExportFormat::JsonLines => write_json_lines(entries, out),
        ExportFormat::Perfetto => write_perfetto(entries, out),
    }
}

/// Writes one JSON object per entry, one per line.
pub fn write_json_lines<'entry>(
    entries: impl IntoIterator<Item = &'entry TimelineEntry>,
    out: &mut impl Write,
) -> io::Result<()> {
    for entry in entries {
        serde_json::to_writer(&mut *out, entry)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes a Chrome trace: one process per participant that recorded entries (ours first, then
/// each other participant of a call trace, and the server), one track (thread) per call in
/// each, each status as a slice that lasts until that participant's next status of the call,
/// every other entry as an instant. Exactly one trace event per entry, plus `M` metadata events
/// that name the processes and tracks.
pub fn write_perfetto<'entry>(
    entries: impl IntoIterator<Item = &'entry TimelineEntry>,
    out: &mut impl Write,
) -> io::Result<()> {
    let entries: Vec<&TimelineEntry> = entries.into_iter().collect();
    let mut processes: HashMap<Recorder<'_>, u64> = HashMap::new();
    let mut tracks: HashMap<(u64, Option<&str>), u64> = HashMap::new();
    let mut events = Vec::new();
    for entry in &entries {
        let recorder = entry.recorder();
        let next_pid = processes.len() as u64 + 1;
        let pid = *processes.entry(recorder).or_insert_with(|| {
            let name = match entry.origin {
                Origin::Local => format!("{} (callscope)", entry.user_id),
                origin => format!("{} ({})", entry.user_id, origin.as_str()),
            };
            events.push(json!({
                "ph": "M", "name": "process_name", "pid": next_pid, "tid": 0,
                "args": { "name": name }
            }));
            next_pid
        });
        let call = entry.call_id.as_deref();
        if tracks.contains_key(&(pid, call)) {
            continue;
        }
        let tid = tracks.len() as u64 + 1;
        tracks.insert((pid, call), tid);
        let name = call.map_or_else(|| "no call".to_owned(), |call_id| format!("call {call_id}"));
        events.push(json!({
            "ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
            "args": { "name": name }
        }));
    }
    let ends = status_slice_ends(&entries);
    for (index, entry) in entries.iter().enumerate() {
        let pid = processes[&entry.recorder()];
        let tid = tracks[&(pid, entry.call_id.as_deref())];
        events.push(trace_event(entry, pid, tid, ends[index]));
    }
    serde_json::to_writer(
        &mut *out,
        &json!({ "traceEvents": events, "displayTimeUnit": "ms" }),
    )?;
    out.write_all(b"\n")
}

/// Trace time of an entry in microseconds: the wall-clock origin of its run plus its monotonic time.
fn trace_micros(entry: &TimelineEntry) -> u64 {
    entry.wall_micros()
}

/// For each status entry, the trace time its slice ends: the same participant's next status of
/// the call, else that participant's last entry of the call.
fn status_slice_ends(entries: &[&TimelineEntry]) -> Vec<Option<u64>> {
    let mut ends = vec![None; entries.len()];
    let mut open: HashMap<(Recorder<'_>, Option<&str>), usize> = HashMap::new();
    let mut last_seen: HashMap<(Recorder<'_>, Option<&str>), u64> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let call = (entry.recorder(), entry.call_id.as_deref());
        let at = trace_micros(entry);
        last_seen.insert(call, at);
        if matches!(entry.event, Event::StatusChanged { .. })
            && let Some(previous) = open.insert(call, index)
        {
            ends[previous] = Some(at);
        }
    }
    for (call, index) in open {
        ends[index] = last_seen.get(&call).copied();
    }
    ends
}

fn trace_event(entry: &TimelineEntry, pid: u64, tid: u64, slice_end: Option<u64>) -> Value {
    let at = trace_micros(entry);
    let args = json!({
        "seq": entry.seq,
        "source": entry.source.as_str(),
        "delivery": entry.delivery.as_str(),
        "user_id": entry.user_id,
        "origin": entry.origin.as_str(),
        "handler_us": entry.handler_micros,
        "payload": entry.event.payload_json(),
    });
    match &entry.event {
        Event::StatusChanged { new_status, .. } => json!({
            "ph": "X", "cat": "status", "name": new_status.as_str(),
            "ts": at, "dur": slice_end.unwrap_or(at).saturating_sub(at),
            "pid": pid, "tid": tid, "args": args,
        }),
        event => json!({
            "ph": "i", "s": "t", "cat": if event.kind().is_component() { "callback" } else { "engine" },
            "name": event.kind().as_str(), "ts": at, "pid": pid, "tid": tid, "args": args,
        }),
    }
}
