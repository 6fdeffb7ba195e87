//! `callscope check`: reads a timeline export (JSON Lines) and reports every violation of the
//! call contract, one line per finding with the entry's seq.

use std::io::BufReader;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use callscope::timeline::{CheckOptions, check, read_json_lines};

/// Options of `callscope check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The timeline to check: JSON Lines, as `callscope call --json` prints and exports write.
    #[arg(value_name = "FILE.jsonl")]
    pub file: PathBuf,
    /// The ringing timeout the calls were placed with, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub ring_timeout: u64,
    /// The export is filtered: gaps in the sequence numbers are expected.
    #[arg(long)]
    pub allow_gaps: bool,
    /// The timeline may end in the middle of a call.
    #[arg(long)]
    pub allow_open_calls: bool,
}

/// Checks the file; the number of findings (each printed).
pub fn run(args: &CheckArgs) -> anyhow::Result<usize> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let entries = read_json_lines(BufReader::new(file))
        .with_context(|| format!("reading {}", args.file.display()))?;
    let options = CheckOptions {
        ring_timeout: Duration::from_secs(args.ring_timeout),
        allow_gaps: args.allow_gaps,
        allow_open_calls: args.allow_open_calls,
        ..CheckOptions::default()
    };
    let findings = check(&entries, &options);
    for finding in &findings {
        println!("{finding}");
    }
    eprintln!(
        "callscope check: {} entries, {} finding{}",
        entries.len(),
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    Ok(findings.len())
}
