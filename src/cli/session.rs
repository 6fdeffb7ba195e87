//! What `callscope call` and `callscope answer` share: an engine for one user, the timeline
//! printed entry by entry as it grows, and waits that wake when the engine reports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use callscope::engine::{ConnectionState, Engine, EngineConfig, EngineState, ServerChoice};
use callscope::event::CallbackKind;
use callscope::kit::{CallKit, Switches};
use callscope::timeline::{Origin, Query, Store, Timeline, TimelineEntry};
use crossbeam_channel::Receiver;

/// Who we are and where, for either command.
#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// Switch a callback off (its entries are recorded as suppressed); repeatable.
    #[arg(long = "disable", value_name = "KIND")]
    pub disabled: Vec<CallbackKind>,
    /// A standalone signaling server to use instead of the embedded one (several nodes: their
    /// URLs separated by commas, tried in turn).
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
    /// Share our callbacks of each call with its other participants (through the server, to
    /// those who ask for traces), and record theirs and the server's: both sides of the call
    /// on one timeline.
    #[arg(long)]
    pub share_trace: bool,
    /// Drop the signaling connection this long after the call connects (the reconnect path
    /// runs: a cut shorter than the 10 s grace is survived, a longer one ends the call).
    #[arg(long, value_name = "SECS")]
    pub cut_signaling_after: Option<f64>,
    /// How long the signaling cut lasts.
    #[arg(
        long = "for",
        value_name = "SECS",
        default_value_t = 3.0,
        requires = "cut_signaling_after"
    )]
    pub cut_for: f64,
    /// Cut all media both ways this long after the call connects; the connections stay up,
    /// so this shows how the call recovers (key frames, warnings).
    #[arg(long, value_name = "SECS")]
    pub cut_media_after: Option<f64>,
    /// How long the media cut lasts.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 1.0,
        requires = "cut_media_after"
    )]
    pub media_cut_for: f64,
    #[command(flatten)]
    pub media: super::media_args::MediaArgs,
}

/// A running engine whose entries are printed as they come.
pub struct Session {
    pub engine: Engine,
    kit: CallKit,
    printed: u64,
    json: bool,
    share_trace: bool,
    /// When to cut the signaling (after the call connects) and for how long, until done.
    cut: Option<(f64, f64)>,
    /// When to cut the media (after the call connects) and for how long, until done.
    media_cut: Option<(f64, f64)>,
    connected_at: Option<Instant>,
    wake: Receiver<()>,
}

/// Longest single wait for the engine: a wait also wakes to check its own deadlines, and to
/// print entries the writer committed meanwhile.
const TICK: Duration = Duration::from_millis(20);

/// How long a sharing session waits after its call for the others' last entries.
const LINGER: Duration = Duration::from_secs(2);

impl Session {
    /// Starts the engine for `args`, recording into `timeline`.
    pub fn start(args: &SessionArgs, timeline: Timeline) -> anyhow::Result<Self> {
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
                user_sig: super::user_sig(
                    &args.user_id,
                    args.user_sig.as_deref(),
                    args.secret_file.as_deref(),
                )?,
            },
        };
        let config = EngineConfig {
            user_id: args.user_id.clone(),
            server,
            media: Some(args.media.config()),
            // The command prints its own side (and, sharing, the others'); the window shows
            // the demo peers' too.
            demo_peer_traces: false,
            share_traces: args.share_trace,
        };
        // One pending wake-up is enough: the reader looks at everything when it wakes.
        let (wake_tx, wake) = crossbeam_channel::bounded(1);
        let engine = Engine::start(
            config,
            kit.clone(),
            Arc::new(move || {
                let _ = wake_tx.try_send(());
            }),
        )?;
        for rule in &args.media.impair {
            engine.send(callscope::engine::EngineCommand::Impair(rule.clone()));
        }
        let printed = kit.timeline().last_seq();
        Ok(Self {
            engine,
            kit,
            printed,
            json: args.json,
            share_trace: args.share_trace,
            cut: args.cut_signaling_after.map(|after| (after, args.cut_for)),
            media_cut: args
                .cut_media_after
                .map(|after| (after, args.media_cut_for)),
            connected_at: None,
            wake,
        })
    }

    /// The engine's newest state.
    pub fn state(&self) -> EngineState {
        self.engine.state()
    }

    /// Prints the entries recorded since the last call that are committed to disk (so nothing
    /// printed is lost if the process dies), and returns our own of them (what another side
    /// recorded is printed, and decides nothing here).
    pub fn print_new(&mut self) -> Vec<Arc<TimelineEntry>> {
        let timeline = self.kit.timeline();
        let durable = timeline.store().map_or(u64::MAX, Store::committed_seq);
        let mut fresh: Vec<Arc<TimelineEntry>> = timeline
            .since(self.printed, usize::MAX)
            .into_iter()
            .take_while(|entry| entry.seq <= durable)
            .collect();
        if let Some(last) = fresh.last() {
            self.printed = last.seq;
        }
        for entry in &fresh {
            if self.json {
                println!("{}", entry.to_json_line());
            } else {
                println!("{}", entry.readable());
            }
        }
        fresh.retain(|entry| entry.origin == Origin::Local);
        fresh
    }

    /// While sharing traces, waits (at most [`LINGER`]) until every participant who shared
    /// its side of our last call has shared its `afterCalling`: their last entries come after
    /// ours.
    fn linger(&mut self) {
        if !self.share_trace {
            return;
        }
        let timeline = self.kit.timeline().clone();
        let Some(call_id) = timeline
            .query(&Query {
                origin: Some(Origin::Local),
                ..Query::all().kind(CallbackKind::AfterCalling)
            })
            .last()
            .and_then(|entry| entry.call_id.clone())
        else {
            return;
        };
        let started = Instant::now();
        while started.elapsed() < LINGER {
            let peers = timeline.query(&Query {
                origin: Some(Origin::Peer),
                ..Query::all().call(call_id.as_str())
            });
            let sharing: BTreeSet<&str> =
                peers.iter().map(|entry| entry.user_id.as_str()).collect();
            let done: BTreeSet<&str> = peers
                .iter()
                .filter(|entry| entry.kind() == CallbackKind::AfterCalling)
                .map(|entry| entry.user_id.as_str())
                .collect();
            if sharing == done {
                return;
            }
            self.print_new();
            self.wait();
        }
    }

    /// Blocks until the engine reports something, or a short tick passes; cuts the
    /// signaling or the media when `--cut-signaling-after` or `--cut-media-after` says.
    pub fn wait(&mut self) {
        use callscope::engine::EngineCommand;
        let _ = self.wake.recv_timeout(TICK);
        let calling = self.state().call.status().is_calling();
        if calling && self.connected_at.is_none() {
            self.connected_at = Some(Instant::now());
        }
        let Some(connected) = self.connected_at else {
            return;
        };
        let due = |cut: Option<(f64, f64)>| {
            cut.filter(|(after, _)| connected.elapsed() >= seconds(*after))
                .map(|(_, lasting)| (lasting, seconds(lasting).as_millis() as u64))
        };
        if let Some((lasting, for_millis)) = due(self.cut)
            && self.engine.send(EngineCommand::CutSignaling { for_millis })
        {
            eprintln!("callscope: signaling cut for {lasting} s");
            self.cut = None;
        }
        if let Some((lasting, for_millis)) = due(self.media_cut)
            && self.engine.send(EngineCommand::CutMedia { for_millis })
        {
            eprintln!("callscope: media cut for {lasting} s");
            self.media_cut = None;
        }
    }

    /// Waits until logged in.
    pub fn wait_online(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            self.print_new();
            match self.state().connection {
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
            self.wait();
        }
    }

    /// Stops the engine, waits for what it recorded to be committed, and prints what is left.
    pub fn finish(mut self) {
        self.print_new();
        self.linger();
        self.engine.shutdown();
        if let Some(store) = self.kit.timeline().store()
            && let Err(error) = store.flush(Duration::from_secs(10))
        {
            eprintln!("callscope: {error}");
        }
        self.print_new();
    }
}

/// A duration of `value` seconds (negative counts as zero).
pub fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::ZERO)
}
