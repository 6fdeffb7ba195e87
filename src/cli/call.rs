//! `callscope call`: one call through the same engine as the GUI, printing every entry as it
//! happens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use callscope::call::{MediaType, ViewMode};
use callscope::callbacks::{CallKit, CallbackKind, Event, Switches};
use callscope::engine::{
    CallSnapshot, ConnectionState, Engine, EngineCommand, EngineConfig, EngineMsg, ServerChoice,
};
use callscope::timeline::{Timeline, TimelineEntry};

/// Options of `callscope call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Who to call; several make a group call.
    #[arg(required = true, value_name = "USER")]
    pub callees: Vec<String>,
    /// An audio call.
    #[arg(long, conflicts_with = "video")]
    pub audio: bool,
    /// A video call (the default).
    #[arg(long)]
    pub video: bool,
    /// Ringing timeout in seconds (0 rings until answered).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u32,
    /// Hang up this long after the call connects.
    #[arg(long, value_name = "SECS")]
    pub hangup_after: Option<f64>,
    /// Log the same user in from a second session this long after dialing (kicks this one out).
    #[arg(long, value_name = "SECS")]
    pub kick_after: Option<f64>,
    /// Minimize the call view this long after dialing.
    #[arg(long, value_name = "SECS")]
    pub minimize_after: Option<f64>,
    /// Switch a callback off (its entries are recorded as suppressed); repeatable.
    #[arg(long = "disable", value_name = "KIND")]
    pub disabled: Vec<CallbackKind>,
    /// A standalone signaling server to use instead of the embedded one.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Who we are.
    #[arg(long = "user", default_value = "alice", value_name = "ME")]
    pub user_id: String,
    /// Our UserSig for `--server`.
    #[arg(long, value_name = "SIG")]
    pub user_sig: Option<String>,
    /// The server's secret, to sign our UserSig for `--server` here.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Print entries as JSON Lines in the contract's shape.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub media: super::media_args::MediaArgs,
}

/// How a call run ended.
pub enum Outcome {
    /// `afterCalling` arrived.
    Ended,
    /// `beforeCalling` reported that the call could not start.
    NotStarted,
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::ZERO)
}

/// Runs one call and prints its timeline entries.
pub fn run(args: &CallArgs, timeline: Timeline) -> anyhow::Result<Outcome> {
    let switches = Switches::all_on();
    for kind in &args.disabled {
        switches.set(*kind, false);
    }
    let kit = CallKit::builder()
        .user(&args.user_id)
        .switches(switches)
        .timeline(timeline)
        .build();
    let server = match &args.server {
        None => ServerChoice::Embedded,
        Some(url) => ServerChoice::Remote {
            url: url.clone(),
            user_sig: user_sig(args)?,
        },
    };
    let config = EngineConfig {
        user_id: args.user_id.clone(),
        server,
        media: Some(args.media.config()),
    };
    let engine = Engine::start(config, kit.clone(), Arc::new(|| {}))?;
    let mut run = Run {
        engine,
        printed: kit.timeline().len(),
        kit,
        json: args.json,
        connection: ConnectionState::Connecting,
        call: CallSnapshot::default(),
    };
    run.wait_online()?;
    let media = if args.audio {
        MediaType::Audio
    } else {
        MediaType::Video
    };
    run.engine.send(EngineCommand::Dial {
        callees: args.callees.clone(),
        media,
        group: args.callees.len() > 1,
        timeout_secs: args.timeout,
    });
    let outcome = run.follow(args);
    run.print_new();
    run.engine.shutdown();
    outcome
}

fn user_sig(args: &CallArgs) -> anyhow::Result<String> {
    super::user_sig(
        &args.user_id,
        args.user_sig.as_deref(),
        args.secret_file.as_deref(),
    )
}

struct Run {
    engine: Engine,
    kit: CallKit,
    printed: usize,
    json: bool,
    connection: ConnectionState,
    call: CallSnapshot,
}

impl Run {
    fn drain(&mut self) {
        while let Some(message) = self.engine.try_recv() {
            match message {
                EngineMsg::Connection(state) => self.connection = state,
                EngineMsg::Call(snapshot) => self.call = snapshot,
                EngineMsg::Contacts(_) | EngineMsg::Devices(_) => {}
            }
        }
    }

    fn print_new(&mut self) -> Vec<Arc<TimelineEntry>> {
        let timeline = self.kit.timeline();
        let fresh = timeline.slice(self.printed..timeline.len());
        self.printed += fresh.len();
        for entry in &fresh {
            if self.json {
                println!("{}", entry.to_json_line());
            } else {
                println!("{}", entry.readable());
            }
        }
        fresh
    }

    fn wait_online(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            self.drain();
            self.print_new();
            match &self.connection {
                ConnectionState::Online => return Ok(()),
                ConnectionState::LoggedOut { reason } => bail!("could not log in: {reason}"),
                ConnectionState::Offline { reason, .. }
                    if started.elapsed() > Duration::from_secs(10) =>
                {
                    bail!("the signaling server is unreachable: {reason}")
                }
                _ => {}
            }
            if started.elapsed() > Duration::from_secs(15) {
                bail!("no answer from the signaling server");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn follow(&mut self, args: &CallArgs) -> anyhow::Result<Outcome> {
        let dialed = Instant::now();
        let mut connected_at: Option<Instant> = None;
        let mut our_call: Option<String> = None;
        let (mut minimized, mut kicked, mut hung_up) = (false, false, false);
        let limit = Duration::from_secs(u64::from(args.timeout) + 60)
            + seconds(args.hangup_after.unwrap_or(0.0));
        loop {
            self.drain();
            for entry in self.print_new() {
                match &entry.event {
                    Event::BeforeCalling { error: Some(_), .. } if our_call.is_none() => {
                        return Ok(Outcome::NotStarted);
                    }
                    Event::BeforeCalling { error: None, .. } if our_call.is_none() => {
                        our_call.clone_from(&entry.call_id);
                    }
                    Event::AfterCalling(summary) if Some(&summary.call_id) == our_call.as_ref() => {
                        return Ok(Outcome::Ended);
                    }
                    _ => {}
                }
            }
            let status = self
                .call
                .status
                .unwrap_or(callscope::call::CallStatus::Idle);
            if connected_at.is_none() && status.is_calling() {
                connected_at = Some(Instant::now());
            }
            let since_dial = dialed.elapsed();
            if !minimized
                && args
                    .minimize_after
                    .is_some_and(|s| since_dial >= seconds(s))
                && our_call.is_some()
                && self.call.view == ViewMode::Full
            {
                minimized = self.engine.send(EngineCommand::Minimize);
            }
            if !kicked && args.kick_after.is_some_and(|s| since_dial >= seconds(s)) {
                kicked = self.engine.send(EngineCommand::SimulateLoginElsewhere);
            }
            if !hung_up
                && let (Some(at), Some(after)) = (connected_at, args.hangup_after)
                && at.elapsed() >= seconds(after)
            {
                hung_up = self.engine.send(EngineCommand::Hangup);
            }
            if dialed.elapsed() > limit {
                bail!("the call did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
