//! `callscope answer`: waits for an incoming call and answers it (accept after a delay, or
//! reject; hang up after a while), printing every entry as it happens: the other side of any
//! flow `callscope call` places.

use std::time::{Duration, Instant};

use anyhow::bail;
use callscope::engine::EngineCommand;
use callscope::event::Event;
use callscope::model::{CallStatus, CallType};
use callscope::timeline::Timeline;

use super::session::{Session, SessionArgs, seconds};

/// Options of `callscope answer`.
#[derive(Debug, clap::Args)]
pub struct AnswerArgs {
    /// Accept this long after the call rings.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub accept_after: f64,
    /// Reject instead of accepting (after the same delay).
    #[arg(long)]
    pub reject: bool,
    /// Hang up this long after the call connects (otherwise the caller ends it).
    #[arg(long, value_name = "SECS")]
    pub hangup_after: Option<f64>,
    /// Give up if no call comes within this many seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub wait: f64,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// How an answer run ended.
pub enum Outcome {
    /// The call came and ended (`afterCalling`).
    Ended,
    /// No call came in time.
    NoCall,
}

/// Waits for one call, answers it, and follows it to its end.
pub fn run(args: &AnswerArgs, timeline: Timeline) -> anyhow::Result<Outcome> {
    let mut session = Session::start(&args.session, timeline)?;
    session.wait_online()?;
    // On stderr, so `--json` output stays entries only.
    eprintln!(
        "callscope: {} is waiting for a call on {}",
        args.session.user_id,
        session.engine.server_url()
    );
    let outcome = follow(&mut session, args);
    session.finish();
    outcome
}

fn follow(session: &mut Session, args: &AnswerArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut call: Option<(String, Instant)> = None;
    let mut connected: Option<Instant> = None;
    let (mut answered, mut hung_up) = (false, false);
    loop {
        for entry in session.print_new() {
            match &entry.event {
                Event::BeforeCalling {
                    call_type: CallType::Invited,
                    error: None,
                } if call.is_none() => {
                    call = entry.call_id.clone().map(|id| (id, Instant::now()));
                }
                Event::CallBegin { .. } => connected = Some(Instant::now()),
                Event::AfterCalling(summary)
                    if call.as_ref().is_some_and(|(id, _)| *id == summary.call_id) =>
                {
                    return Ok(Outcome::Ended);
                }
                _ => {}
            }
        }
        let status = session.state().call.status();
        if let Some((_, rang)) = &call
            && !answered
            && status == CallStatus::BeInvited
            && rang.elapsed() >= seconds(args.accept_after)
        {
            let command = if args.reject {
                EngineCommand::Reject
            } else {
                EngineCommand::Accept
            };
            answered = session.engine.send(command);
        }
        if let (Some(at), Some(after)) = (connected, args.hangup_after)
            && !hung_up
            && at.elapsed() >= seconds(after)
        {
            hung_up = session.engine.send(EngineCommand::Hangup);
        }
        if call.is_none() && started.elapsed() >= seconds(args.wait) {
            return Ok(Outcome::NoCall);
        }
        if started.elapsed() > seconds(args.wait) + Duration::from_hours(1) {
            bail!("the call did not end within an hour");
        }
        session.wait();
    }
}
