//! `callscope timeline` and `callscope demo`: read the stored timeline, or fill it with a
//! scripted call.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use callscope::event::{CallbackKind, KindSet};
use callscope::kit::{CallKit, Switches};
use callscope::timeline::{
    ExportFormat, Query, Store, Timeline, TimelineEntry, export, read_stored,
};

/// Options of `callscope timeline`.
#[derive(Debug, clap::Args)]
pub struct TimelineArgs {
    /// Only this kind (`statusChanged`, `onCallStats`, …); repeatable.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<CallbackKind>,
    /// Only this call.
    #[arg(long = "call", value_name = "ID")]
    pub call_id: Option<String>,
    /// Only entries recorded by this local user.
    #[arg(long = "user", value_name = "USER")]
    pub user_id: Option<String>,
    /// Only entries containing this text (kind, call, user or summary; case ignored).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Only entries at or after this time (ms since the Unix epoch).
    #[arg(long, value_name = "MS")]
    pub since_ms: Option<u64>,
    /// Only entries at or before this time (ms since the Unix epoch).
    #[arg(long, value_name = "MS")]
    pub until_ms: Option<u64>,
    /// Only the newest N entries.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Writes the entries to FILE instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Export format: `jsonl` or `perfetto`.
    #[arg(long, default_value = "jsonl", value_name = "FORMAT")]
    pub format: ExportFormat,
    /// Prints entries as JSON Lines in the contract's shape.
    #[arg(long)]
    pub json: bool,
    /// Only entries recorded by this client (`local`), another participant (`peer`) or the
    /// server (`server`).
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<callscope::timeline::Origin>,
    /// Imports an export (JSON Lines) from another machine into the store: its entries join
    /// the calls they name as the other side's (peer entries).
    #[arg(long, value_name = "FILE", conflicts_with = "export")]
    pub import: Option<PathBuf>,
}

/// Prints one entry, readable or as JSON.
pub fn print_entry(entry: &TimelineEntry, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", entry.to_json_line())
    } else {
        writeln!(out, "{}", entry.readable())
    }
}

/// Reads (and optionally exports) the stored timeline, also while another process records.
pub fn timeline(data_dir: &std::path::Path, args: &TimelineArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.import {
        return import(data_dir, path);
    }
    let query = Query {
        kinds: (!args.kinds.is_empty()).then(|| args.kinds.iter().copied().collect::<KindSet>()),
        call_id: args.call_id.clone(),
        user_id: args.user_id.clone(),
        origin: args.origin,
        text: args.grep.clone(),
        since_millis: args.since_ms,
        until_millis: args.until_ms,
        limit: args.limit,
    };
    let entries = read_stored(data_dir, &query)?;
    if let Some(path) = &args.export {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = BufWriter::new(file);
        export(&entries, args.format, &mut writer)?;
        writer.flush()?;
        eprintln!(
            "callscope: exported {} entries to {}",
            entries.len(),
            path.display()
        );
        return Ok(());
    }
    for entry in &entries {
        print_entry(entry, args.json)?;
    }
    Ok(())
}

/// Imports the export at `path` into the store of `data_dir`.
fn import(data_dir: &std::path::Path, path: &std::path::Path) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let entries = callscope::timeline::read_json_lines(std::io::BufReader::new(file))
        .with_context(|| format!("importing {}", path.display()))?;
    let store = Store::open(data_dir)?;
    let session = format!(
        "import:{}",
        path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned()
        )
    );
    let imported =
        callscope::timeline::import(&Timeline::persistent(store.clone()), entries, &session);
    store.flush(std::time::Duration::from_secs(30))?;
    eprintln!(
        "callscope: imported {} entries from {} into {}",
        imported.entries,
        path.display(),
        store.path().display()
    );
    for (call_id, shift) in &imported.shifted {
        eprintln!(
            "callscope: call {call_id}: the imported side moved by {:.3} ms so that every \
             signaling message is received after it was sent",
            *shift as f64 / 1000.0
        );
    }
    Ok(())
}

/// Plays the scripted demo call into the persistent timeline and prints it.
pub fn demo(store: &Store, disabled: &[CallbackKind], json: bool) -> anyhow::Result<()> {
    let switches = Switches::all_on();
    for kind in disabled {
        switches.set(*kind, false);
    }
    let kit = CallKit::builder()
        .user("alice")
        .switches(switches)
        .timeline(Timeline::persistent(store.clone()))
        .build();
    callscope::demo::play(&kit);
    for entry in kit.timeline().query(&Query::all()) {
        print_entry(&entry, json)?;
    }
    store.flush(std::time::Duration::from_secs(10))?;
    eprintln!(
        "callscope: {} entries recorded in {}",
        kit.timeline().len(),
        store.path().display()
    );
    Ok(())
}
