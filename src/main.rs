//! The `callscope` command: plays the scripted demo call and reads the stored timeline.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use callscope::callbacks::{CallKit, CallbackKind, KindSet, Switches};
use callscope::timeline::{ExportFormat, Query, Store, Timeline, default_data_dir, export};
use clap::{Parser, Subcommand};

/// A calling kit that makes every call-state callback visible.
#[derive(Debug, Parser)]
#[command(name = "callscope", version)]
struct Cli {
    /// Where the timeline database lives (default: the user's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plays a scripted call through the call core (no network) and records it in the timeline.
    Demo {
        /// Switches a callback off (its entries are recorded as suppressed); repeatable.
        #[arg(long = "disable", value_name = "KIND")]
        disabled: Vec<CallbackKind>,
        /// Prints entries as JSON Lines in the contract's shape.
        #[arg(long)]
        json: bool,
    },
    /// Reads the stored timeline, this run's and earlier runs'.
    Timeline(TimelineArgs),
}

#[derive(Debug, clap::Args)]
struct TimelineArgs {
    /// Only this kind (`statusChanged`, `onCallStats`, …); repeatable.
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<CallbackKind>,
    /// Only this call.
    #[arg(long = "call", value_name = "ID")]
    call_id: Option<String>,
    /// Only entries recorded by this local user.
    #[arg(long = "user", value_name = "USER")]
    user_id: Option<String>,
    /// Only entries containing this text (kind, call, user or summary; case ignored).
    #[arg(long, value_name = "TEXT")]
    grep: Option<String>,
    /// Only entries at or after this time (ms since the Unix epoch).
    #[arg(long, value_name = "MS")]
    since_ms: Option<u64>,
    /// Only entries at or before this time (ms since the Unix epoch).
    #[arg(long, value_name = "MS")]
    until_ms: Option<u64>,
    /// Only the newest N entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Writes the entries to FILE instead of printing them.
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// Export format: `jsonl` or `perfetto`.
    #[arg(long, default_value = "jsonl", value_name = "FORMAT")]
    format: ExportFormat,
    /// Prints entries as JSON Lines in the contract's shape.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    match run(Cli::parse()) {
        // A reader that stopped early (`callscope timeline | head`) is not an error.
        Err(error) if is_broken_pipe(&error) => Ok(()),
        result => result,
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
    match cli.command {
        Some(Command::Timeline(args)) => timeline(&data_dir, &args),
        Some(Command::Demo { disabled, json }) => demo(&data_dir, &disabled, json),
        None => demo(&data_dir, &[], false),
    }
}

fn open_store(data_dir: &std::path::Path) -> anyhow::Result<Store> {
    Store::open(data_dir).with_context(|| format!("opening the timeline in {}", data_dir.display()))
}

fn demo(data_dir: &std::path::Path, disabled: &[CallbackKind], json: bool) -> anyhow::Result<()> {
    let store = open_store(data_dir)?;
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
    let mut out = std::io::stdout().lock();
    for entry in kit.timeline().query(&Query::all()) {
        if json {
            writeln!(out, "{}", entry.to_json_line())?;
        } else {
            writeln!(out, "{}", entry.readable())?;
        }
    }
    store.flush(Duration::from_secs(10))?;
    eprintln!(
        "callscope: {} entries recorded in {}",
        kit.timeline().len(),
        store.path().display()
    );
    Ok(())
}

fn timeline(data_dir: &std::path::Path, args: &TimelineArgs) -> anyhow::Result<()> {
    let store = open_store(data_dir)?;
    let query = Query {
        kinds: (!args.kinds.is_empty()).then(|| args.kinds.iter().copied().collect::<KindSet>()),
        call_id: args.call_id.clone(),
        user_id: args.user_id.clone(),
        text: args.grep.clone(),
        since_millis: args.since_ms,
        until_millis: args.until_ms,
        limit: args.limit,
    };
    let entries = store.query(&query)?;
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
    let mut out = std::io::stdout().lock();
    for entry in &entries {
        if args.json {
            writeln!(out, "{}", entry.to_json_line())?;
        } else {
            writeln!(out, "{}", entry.readable())?;
        }
    }
    Ok(())
}
