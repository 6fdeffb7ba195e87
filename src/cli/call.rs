//! `callscope call`: one call through the same engine as the GUI, printing every entry as it
//! happens; with `--accept-after`, then the call that comes back (from `ringback`, say).

use std::time::{Duration, Instant};

use anyhow::bail;
use callscope::engine::EngineCommand;
use callscope::event::Event;
use callscope::model::{CallStatus, CallType, MediaType, ViewMode};
use callscope::timeline::Timeline;

use super::session::{Session, SessionArgs, seconds};

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
    /// Hang up this long after a call connects.
    #[arg(long, value_name = "SECS")]
    pub hangup_after: Option<f64>,
    /// Log the same user in from a second session this long after dialing (kicks this one out).
    #[arg(long, value_name = "SECS")]
    pub kick_after: Option<f64>,
    /// Minimize the call view this long after dialing.
    #[arg(long, value_name = "SECS")]
    pub minimize_after: Option<f64>,
    /// After our call, wait for a call back and accept it this long after it rings.
    #[arg(long, value_name = "SECS")]
    pub accept_after: Option<f64>,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// How a call run ended.
pub enum Outcome {
    /// `afterCalling` arrived (for the call back too, when one was awaited).
    Ended,
    /// `beforeCalling` reported that the call could not start.
    NotStarted,
}

/// How long a call back may take to come.
const CALL_BACK_WAIT: Duration = Duration::from_mins(1);

/// Where the run stands.
#[derive(Default)]
struct Progress {
    our_call: Option<String>,
    our_call_over: Option<Instant>,
    incoming: Option<(String, Instant)>,
    accepted: bool,
    minimized: bool,
    kicked: bool,
    hung_up: Option<String>,
    connected_at: Option<(String, Instant)>,
}

/// Runs one call (and an awaited call back) and prints its timeline entries.
pub fn run(args: &CallArgs, timeline: Timeline) -> anyhow::Result<Outcome> {
    let mut session = Session::start(&args.session, timeline)?;
    session.wait_online()?;
    let media = if args.audio {
        MediaType::Audio
    } else {
        MediaType::Video
    };
    if !session.engine.send(EngineCommand::Dial {
        callees: args.callees.clone(),
        media,
        group: args.callees.len() > 1,
        timeout_secs: args.timeout,
    }) {
        bail!("the engine is not taking commands");
    }
    let outcome = follow(&mut session, args);
    session.finish();
    outcome
}

fn follow(session: &mut Session, args: &CallArgs) -> anyhow::Result<Outcome> {
    let dialed = Instant::now();
    let mut progress = Progress::default();
    let limit = Duration::from_secs(u64::from(args.timeout) + 60)
        + seconds(args.hangup_after.unwrap_or(0.0))
        + args.accept_after.map_or(Duration::ZERO, |_| CALL_BACK_WAIT);
    loop {
        for entry in session.print_new() {
            if let Some(outcome) = progress.observe(&entry.event, entry.call_id.as_deref(), args) {
                return Ok(outcome);
            }
        }
        progress.act(session, args, dialed);
        if progress
            .our_call_over
            .is_some_and(|over| progress.incoming.is_none() && over.elapsed() > CALL_BACK_WAIT)
        {
            bail!("no call came back within {CALL_BACK_WAIT:?}");
        }
        if dialed.elapsed() > limit {
            bail!("the call did not end within {limit:?}");
        }
        session.wait();
    }
}

impl Progress {
    /// Takes one entry; the outcome once the run is over.
    fn observe(
        &mut self,
        event: &Event,
        call_id: Option<&str>,
        args: &CallArgs,
    ) -> Option<Outcome> {
        let call_id = call_id.map(str::to_owned);
        match event {
            Event::BeforeCalling {
                call_type: CallType::Invited,
                error: None,
            } if self.our_call_over.is_some() && self.incoming.is_none() => {
                self.incoming = call_id.map(|id| (id, Instant::now()));
            }
            Event::BeforeCalling { error: Some(_), .. } if self.our_call.is_none() => {
                return Some(Outcome::NotStarted);
            }
            Event::BeforeCalling { error: None, .. } if self.our_call.is_none() => {
                self.our_call = call_id;
            }
            Event::CallBegin { .. } => {
                self.connected_at = call_id.map(|id| (id, Instant::now()));
            }
            Event::AfterCalling(summary) if Some(&summary.call_id) == self.our_call.as_ref() => {
                if args.accept_after.is_none() {
                    return Some(Outcome::Ended);
                }
                self.our_call_over = Some(Instant::now());
            }
            Event::AfterCalling(summary)
                if self
                    .incoming
                    .as_ref()
                    .is_some_and(|(incoming, _)| *incoming == summary.call_id) =>
            {
                return Some(Outcome::Ended);
            }
            _ => {}
        }
        None
    }

    /// Sends what is due.
    fn act(&mut self, session: &Session, args: &CallArgs, dialed: Instant) {
        let since_dial = dialed.elapsed();
        let state = session.state();
        if !self.minimized
            && args
                .minimize_after
                .is_some_and(|s| since_dial >= seconds(s))
            && self.our_call.is_some()
            && state.call.view == ViewMode::Full
            && state.call.status() != CallStatus::Idle
        {
            self.minimized = session.engine.send(EngineCommand::Minimize);
        }
        if !self.kicked && args.kick_after.is_some_and(|s| since_dial >= seconds(s)) {
            self.kicked = session.engine.send(EngineCommand::SimulateLoginElsewhere);
        }
        if let (Some((call_id, at)), Some(after)) = (&self.connected_at, args.hangup_after)
            && self.hung_up.as_ref() != Some(call_id)
            && at.elapsed() >= seconds(after)
            && session.engine.send(EngineCommand::Hangup)
        {
            self.hung_up = Some(call_id.clone());
        }
        if let (Some((_, rang)), Some(after)) = (&self.incoming, args.accept_after)
            && !self.accepted
            && rang.elapsed() >= seconds(after)
            && state.call.status() == CallStatus::BeInvited
        {
            self.accepted = session.engine.send(EngineCommand::Accept);
        }
    }
}
