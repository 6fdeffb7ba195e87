//! The client the call benchmarks drive: a callscope engine in this process, logged in to the
//! benchmark's server, its timeline, frames and state at hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use callscope::engine::{
    ClientConfig, ConnectionState as Link, EngineCommand, Reports, Script, StateSlot, run_client,
    sign_user_sig,
};
use callscope::event::Event;
use callscope::kit::CallKit;
use callscope::media::{FrameSlot, FrameSlots, MediaConfig};
use callscope::model::{CallStatus, MonoTime};
use callscope::timeline::{Clock, Origin, TimelineEntry};
use tokio::sync::mpsc;

/// The secret the benchmarks' servers and clients share.
pub(super) const SECRET: &[u8] = b"callscope-call-bench-secret";
/// How long a client is given to come online.
const WAIT: Duration = Duration::from_secs(20);

/// A benchmark's client.
pub(super) struct BenchClient {
    /// Its kit (and timeline).
    pub(super) kit: CallKit,
    /// Where its commands go.
    pub(super) commands: mpsc::Sender<EngineCommand>,
    /// Its decoded frames.
    pub(super) frames: FrameSlots,
    state: StateSlot,
}

impl BenchClient {
    /// A client of `user` logged in to `url` with `media`, sharing traces when `share_trace`,
    /// following `script` if any; waits (up to 20 s) for it to be online.
    pub(super) fn start(
        runtime: &tokio::runtime::Runtime,
        url: &str,
        user: &str,
        clock: &Clock,
        media: MediaConfig,
        share_trace: bool,
        script: Option<Script>,
    ) -> Self {
        let kit = CallKit::builder().user(user).clock(*clock).build();
        let (commands, receiver) = mpsc::channel(16);
        let state = StateSlot::default();
        let frames = media.frames.clone();
        let config = ClientConfig {
            server_traces: share_trace,
            share_traces: share_trace,
            server_url: url.to_owned(),
            user_id: user.to_owned(),
            user_sig: sign_user_sig(SECRET, user),
            media: Some(media),
        };
        let reports = Reports::to_slot(state.clone());
        runtime.spawn(run_client(config, kit.clone(), receiver, reports, script));
        let started = Instant::now();
        while state.latest().connection != Link::Online && started.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        Self {
            kit,
            commands,
            frames,
            state,
        }
    }

    pub(super) fn status(&self) -> CallStatus {
        self.state.latest().call.status()
    }

    /// Our own entries after `seq` (what another side shared decides nothing here).
    pub(super) fn entries_since(&self, seq: u64) -> Vec<Arc<TimelineEntry>> {
        let mut entries = self.kit.timeline().since(seq, usize::MAX);
        entries.retain(|entry| entry.origin == Origin::Local);
        entries
    }

    /// How many entries of other sides (a participant's, the server's) came after `seq`.
    pub(super) fn others_since(&self, seq: u64) -> usize {
        self.kit
            .timeline()
            .since(seq, usize::MAX)
            .iter()
            .filter(|entry| entry.origin != Origin::Local)
            .count()
    }

    /// When `wanted` first held among the entries after `seq`.
    pub(super) fn instant_of(&self, seq: u64, wanted: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.entries_since(seq)
            .iter()
            .find(|entry| wanted(&entry.event))
            .map(|entry| {
                self.kit
                    .clock()
                    .instant_of(MonoTime::from_micros(entry.at.mono_micros))
            })
    }
}

/// Waits (up to 20 s) until `done` holds.
pub(super) fn wait(what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > WAIT {
            bail!("timed out waiting {what}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Waits until `client` shows a first frame from `from`, and returns that stream's slot.
pub(super) fn first_frame_slot(client: &BenchClient, from: &str) -> anyhow::Result<Arc<FrameSlot>> {
    let started = Instant::now();
    loop {
        if let Some(slot) = client.frames.get(from)
            && slot.first_frame_at().is_some()
        {
            return Ok(slot);
        }
        if started.elapsed() > WAIT {
            bail!("no video from {from} within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
