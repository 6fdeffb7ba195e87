//! `callscope replay`: a recording's callbacks fired again, in order, through a kit whose
//! closures print what they get, at the recorded pace or as fast as they go.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use callscope::event::CallbackKind;
use callscope::kit::{CallKit, Pace, Switches, replay};
use callscope::timeline::read_json_lines;

/// Options of `callscope replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The recording (JSON Lines, as `callscope call --json` prints and exports write).
    #[arg(value_name = "FILE.jsonl")]
    pub file: PathBuf,
    /// One entry after another, not at the recorded pace.
    #[arg(long)]
    pub fast: bool,
    /// Switch a callback off (its entries are recorded as suppressed, its closure not called);
    /// repeatable.
    #[arg(long = "disable", value_name = "KIND")]
    pub disabled: Vec<CallbackKind>,
    /// Print what each closure got as JSON Lines (`{"kind":…,"payload":…}`).
    #[arg(long)]
    pub json: bool,
}

/// Replays the file; prints one line per closure call.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let entries = read_json_lines(BufReader::new(file))
        .with_context(|| format!("reading {}", args.file.display()))?;
    let switches = Switches::all_on();
    for kind in &args.disabled {
        switches.set(*kind, false);
    }
    let user = entries
        .iter()
        .find(|entry| entry.origin.is_local())
        .map_or_else(|| "replay".to_owned(), |entry| entry.user_id.clone());
    let json = args.json;
    let kit = CallKit::builder()
        .user(user)
        .switches(switches)
        .on_event(move |event| {
            if json {
                let line = serde_json::json!({
                    "kind": event.kind().as_str(),
                    "payload": event.payload_json(),
                });
                println!("{line}");
            } else {
                println!("{}: {event}", event.kind());
            }
        })
        .build();
    let pace = if args.fast {
        Pace::Fast
    } else {
        Pace::Recorded
    };
    let replayed = replay(&kit, &entries, pace);
    eprintln!(
        "callscope replay: {} callbacks delivered, {} suppressed by their switch ({} entries read)",
        replayed.delivered,
        replayed.suppressed,
        entries.len()
    );
    Ok(())
}
