//! `callscope diff`: two recordings of a call flow (JSON Lines) lined up by their callbacks;
//! prints what differs and fails when anything does, for regression tests of call handling.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use callscope::timeline::{DiffOptions, TimelineEntry, diff, read_json_lines};

/// Options of `callscope diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The recording expected (JSON Lines, as `callscope call --json` prints and exports write).
    #[arg(value_name = "A.jsonl")]
    pub a: PathBuf,
    /// The recording compared with it.
    #[arg(value_name = "B.jsonl")]
    pub b: PathBuf,
    /// Timings (from each recording's first entry) further apart than this differ.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub tolerance_ms: u64,
    /// Compare the periodic reports too (stats, volumes, network quality).
    #[arg(long)]
    pub periodic: bool,
    /// Compare every side's entries (other participants', the server's), not only our own.
    #[arg(long)]
    pub all_sides: bool,
}

fn read(path: &Path) -> anyhow::Result<Vec<TimelineEntry>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_json_lines(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))
}

/// Prints every difference; how many there were.
pub fn run(args: &DiffArgs) -> anyhow::Result<usize> {
    let a = read(&args.a)?;
    let b = read(&args.b)?;
    let options = DiffOptions {
        tolerance_millis: args.tolerance_ms,
        periodic: args.periodic,
        all_sides: args.all_sides,
    };
    let differences = diff(&a, &b, &options)?;
    for difference in &differences {
        println!("{difference}");
    }
    eprintln!(
        "callscope diff: {} and {} entries, {} difference{}",
        a.len(),
        b.len(),
        differences.len(),
        if differences.len() == 1 { "" } else { "s" }
    );
    Ok(differences.len())
}
