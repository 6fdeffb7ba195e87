//! The `callscope` command: calls, the signaling server, UserSigs, and the stored timeline.

mod allocator;
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use callscope::engine::ServerChoice;
use callscope::event::CallbackKind;
use callscope::timeline::{Store, Timeline, default_data_dir};
use callscope::ui::AppOptions;
use clap::{Parser, Subcommand};

/// A calling kit that makes every call-state callback visible.
#[derive(Debug, Parser)]
#[command(name = "callscope", version)]
struct Cli {
    /// Where the timeline database lives (default: the user's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Who you are in the app.
    #[arg(long = "user", default_value = "alice", value_name = "ME")]
    user_id: String,
    /// A standalone signaling server to join instead of the embedded one (several nodes: their
    /// URLs separated by commas, tried in turn).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Your UserSig for `--server`.
    #[arg(long, value_name = "SIG")]
    user_sig: Option<String>,
    /// The server's secret, to sign your UserSig for `--server` here.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Call these users (demo peers too) as soon as the window is logged in.
    #[arg(long = "call", value_name = "USER")]
    call_on_start: Vec<String>,
    /// Share your callbacks of each call with its other participants (otherwise the saved
    /// setting, off at first).
    #[arg(long)]
    share_trace: bool,
    #[command(flatten)]
    media: cli::media_args::MediaArgs,
    /// The window's renderer: `glow` (OpenGL) or `wgpu`.
    #[arg(long, default_value = "glow", value_name = "RENDERER")]
    renderer: eframe::Renderer,
    /// The window's size at start, in points (otherwise the size it had when last closed, or
    /// 1200x800).
    #[arg(long, value_name = "WxH", value_parser = parse_window_size)]
    window_size: Option<[f32; 2]>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Places one call and prints each timeline entry as it happens.
    Call(cli::call::CallArgs),
    /// Waits for an incoming call, answers it, and prints each timeline entry as it happens.
    Answer(cli::answer::AnswerArgs),
    /// Checks a timeline export (JSON Lines) against the call contract.
    Check(cli::check::CheckArgs),
    /// Compares two recordings of a call flow; fails when they differ.
    Diff(cli::diff::DiffArgs),
    /// Fires a recording's callbacks again, in order, through closures that print them.
    Replay(cli::replay::ReplayArgs),
    /// Reads the stored timeline, this run's and earlier runs'.
    Timeline(cli::timeline::TimelineArgs),
    /// Runs a standalone signaling server.
    Server(cli::server::ServerArgs),
    /// Lists the cameras, microphones and speakers calls can use.
    Devices,
    /// Prints a UserSig for a user, signed with the server's secret.
    Usersig(cli::server::UserSigArgs),
    /// Measures callscope and prints the figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Plays a scripted call through the call core (no network) into the timeline.
    Demo {
        /// Switches a callback off (its entries are recorded as suppressed); repeatable.
        #[arg(long = "disable", value_name = "KIND")]
        disabled: Vec<CallbackKind>,
        /// Prints entries as JSON Lines in the contract's shape.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Load test of the signaling server: sessions held, call set-ups per second, memory.
    Signaling(cli::bench::SignalingBenchArgs),
    /// Video calls on loopback: set-up time, first frame, glass-to-glass and CPU, against aiortc.
    Call(cli::bench_call::CallBenchArgs),
    /// Calls through named network profiles: adaptation, frame rate, freezes, delay, audio.
    Network(cli::bench_network::NetworkBenchArgs),
    /// Strangers on 253 loopback addresses attack a server while a legitimate pair calls:
    /// memory, the pair's latency, admissions and evictions, and what a call-id probe learns.
    Attack(cli::bench_attack::AttackBenchArgs),
    /// One process's share of the sessions of `bench signaling` (it starts these itself when
    /// one process may not open enough sockets).
    #[command(hide = true)]
    SignalingPart(cli::bench::SignalingPartArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        // A reader that stopped early (`callscope timeline | head`) is not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("callscope: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn open_store(data_dir: &Path) -> anyhow::Result<Store> {
    Store::open(data_dir).with_context(|| format!("opening the timeline in {}", data_dir.display()))
}

/// The timeline of a `call` or `answer` run. Another process holding the data directory is an
/// error (at once): two writers would number their entries alike.
fn call_timeline(data_dir: &Path) -> anyhow::Result<(Timeline, Option<Store>)> {
    let store = open_store(data_dir)?;
    Ok((Timeline::persistent(store.clone()), Some(store)))
}

fn run_bench(bench: BenchCommand) -> anyhow::Result<()> {
    match bench {
        BenchCommand::Signaling(args) => cli::bench::signaling(&args),
        BenchCommand::SignalingPart(args) => cli::bench::signaling_part(&args),
        BenchCommand::Call(args) => cli::bench_call::call(&args),
        BenchCommand::Network(args) => cli::bench_network::network(&args),
        BenchCommand::Attack(args) => cli::bench_attack::attack(&args),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
    match cli.command {
        Some(Command::Call(args)) => {
            let (timeline, store) = call_timeline(&data_dir)?;
            let outcome = cli::call::run(&args, timeline)?;
            if let Some(store) = store {
                store.flush(std::time::Duration::from_secs(10))?;
            }
            Ok(match outcome {
                cli::call::Outcome::Ended => ExitCode::SUCCESS,
                cli::call::Outcome::NotStarted => ExitCode::from(2),
            })
        }
        Some(Command::Answer(args)) => {
            let (timeline, store) = call_timeline(&data_dir)?;
            let outcome = cli::answer::run(&args, timeline)?;
            if let Some(store) = store {
                store.flush(std::time::Duration::from_secs(10))?;
            }
            Ok(match outcome {
                cli::answer::Outcome::Ended => ExitCode::SUCCESS,
                cli::answer::Outcome::NoCall => ExitCode::from(2),
            })
        }
        Some(Command::Check(args)) => Ok(if cli::check::run(&args)? == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Some(Command::Diff(args)) => Ok(if cli::diff::run(&args)? == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Some(Command::Replay(args)) => {
            cli::replay::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Timeline(args)) => {
            cli::timeline::timeline(&data_dir, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Server(args)) => {
            // What a server records (refused requests) is bounded on disk and in memory.
            let store = Store::open_keeping(&data_dir, Some(cli::server::KEEP_ENTRIES))
                .with_context(|| format!("opening the timeline in {}", data_dir.display()))?;
            let timeline = Timeline::persistent(store).with_memory_capacity(10_000);
            cli::server::server(&args, timeline)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Bench(bench)) => {
            run_bench(bench)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Devices) => {
            cli::media_args::devices();
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Usersig(args)) => {
            cli::server::usersig(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Demo { disabled, json }) => {
            cli::timeline::demo(&open_store(&data_dir)?, &disabled, json)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let server = match cli.server {
                None => ServerChoice::Embedded,
                Some(url) => ServerChoice::Remote {
                    url,
                    user_sig: cli::user_sig(
                        &cli.user_id,
                        cli.user_sig.as_deref(),
                        cli.secret_file.as_deref(),
                    )?,
                },
            };
            let options = AppOptions {
                user_id: cli.user_id,
                server,
                data_dir,
                call_on_start: cli.call_on_start,
                private_ringing: cli.media.private_ringing,
                share_trace: cli.share_trace.then_some(true),
                media: cli.media.config(),
                impairments: cli.media.impair.clone(),
            };
            callscope::ui::run(options, cli.renderer, cli.window_size)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `1024x700` as a window size (at least 640x480, at most 8192 each way).
fn parse_window_size(text: &str) -> Result<[f32; 2], String> {
    let (width, height) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT (e.g. 1024x700)"))?;
    let side = |part: &str, least: u16| {
        part.trim()
            .parse::<u16>()
            .ok()
            .filter(|value| (least..=8192).contains(value))
            .map(f32::from)
            .ok_or_else(|| {
                format!("{part:?} in {text:?} must be a whole number from {least} to 8192")
            })
    };
    Ok([side(width, 640)?, side(height, 480)?])
}
