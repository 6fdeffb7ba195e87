//! `Negotiation`: the sans-IO state machine of one peer connection's set-up: who offers, when
//! the remote offer is applied and the answer made, early candidates, glare, the connect
//! deadline, and when media may flow (only once both sides have joined).
//!
//! A ringing callee's ringing is private by default: it holds the offer unapplied until the
//! local user joins (the WebRTC stack starts its connectivity checks as soon as a remote
//! description is set, and checks tell the caller the callee's addresses). A callee that
//! prepares early instead applies the offer and sends its answer while it rings, so the path
//! is up by the time it accepts; the connection then waits, reporting nothing, until both
//! have joined.
//!
//! It owns no socket, task or clock. The peer task (`peer.rs`) feeds it what the WebRTC stack
//! reports and carries out the [`Step`]s it asks for; tests feed it by hand in virtual time.
//! What it concludes (a state, a failure, a refused message) comes out as a [`Report`]: the
//! engine decides what a failure means for the call.

use std::collections::VecDeque;
use std::time::Duration;

use crate::event::ConnectionState;
use crate::model::MonoTime;

/// How long a connection may take to come up once both sides have joined.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which side of the offer/answer exchange this peer connection takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Makes the offer.
    Offerer,
    /// Answers the remote offer.
    Answerer,
}

/// Whether a description is an offer or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptionKind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
}

/// What a ringing callee does with the caller's offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ringing {
    /// Holds it unapplied until the local user accepts: nothing of ours reaches the caller
    /// before that, not even an address.
    #[default]
    Private,
    /// Applies it and answers while it rings, so the path is up by the accept.
    Prepared,
}

impl Ringing {
    /// `Private` when `private`, else `Prepared`.
    pub const fn private(private: bool) -> Self {
        if private {
            Self::Private
        } else {
            Self::Prepared
        }
    }
}

/// What the WebRTC stack says about connectivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// Checks are running.
    Checking,
    /// A path works; media can flow.
    Connected,
    /// The path stopped answering; the stack keeps trying for a while.
    Disconnected,
    /// The stack gave up.
    Failed,
    /// The connection was closed.
    Closed,
}

/// Where the set-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created; an answerer waits for the offer here.
    New,
    /// Our offer is set locally and its candidates are being gathered.
    Offering,
    /// Our offer went out; the answer has not come.
    AwaitingAnswer,
    /// The remote offer is held, unapplied, until the local user joins.
    OfferReceived,
    /// Our answer is set locally and its candidates are being gathered.
    Answering,
    /// Both descriptions are set: connectivity checks run.
    Checking,
    /// The path is up but a side has not joined yet (a callee that prepares early): no media
    /// flows and nothing is reported until both have.
    Prepared,
    /// Media can flow.
    Connected,
    /// The path was lost; the stack is trying to get it back.
    Reconnecting,
    /// Gave up.
    Failed,
    /// Closed.
    Closed,
}

impl Phase {
    /// Whether the connection has not come up yet (and may still).
    pub const fn is_setting_up(self) -> bool {
        matches!(
            self,
            Self::New
                | Self::Offering
                | Self::AwaitingAnswer
                | Self::OfferReceived
                | Self::Answering
                | Self::Checking
                | Self::Prepared
        )
    }
}

/// What the driver of the machine must do to the WebRTC stack, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create an offer, set it locally, and gather its candidates.
    CreateOffer,
    /// Set this description (JSON) as the remote one.
    ApplyRemote(String),
    /// Create an answer, set it locally, and gather its candidates.
    CreateAnswer,
    /// Drop our unanswered offer (the polite side of a glare).
    Rollback,
    /// Send the local description, candidates included, to the remote participant.
    SendLocal,
    /// Add this remote candidate (JSON).
    AddCandidate(String),
    /// The connection is up: start sending local media to it.
    StartSending,
    /// Close the connection.
    Close,
}

/// What the machine concluded, for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The connection's state changed (`onConnectionStateChanged`).
    State(ConnectionState),
    /// The connection failed for good.
    Failed(String),
    /// A message from the remote side could not be used; nothing changed.
    Refused(String),
}

/// The set-up of one peer connection to one remote participant.
#[derive(Debug)]
pub struct Negotiation {
    remote: String,
    side: Side,
    polite: bool,
    /// Whether a ringing callee holds the offer until it joins, or prepares.
    ringing: Ringing,
    phase: Phase,
    local_joined: bool,
    remote_joined: bool,
    /// Why the path failed before both joined (a callee that prepared early): reported once
    /// both have, when it matters to the call.
    failed_early: Option<String>,
    /// When both sides had joined (the connect deadline counts from it).
    joined_since: Option<MonoTime>,
    connect_timeout: Duration,
    early_candidates: Vec<String>,
    /// The remote offer, held until the local user joins.
    pending_offer: Option<String>,
    /// When the connection first came up (sending starts then, once).
    connected_at: Option<MonoTime>,
    steps: VecDeque<Step>,
    reports: VecDeque<Report>,
}

impl Negotiation {
    /// A connection to `remote`. `polite` is the side that yields when both offer at once
    /// (the one with the larger user id). An offerer makes its offer at once.
    pub fn new(remote: &str, side: Side, polite: bool) -> Self {
        let mut negotiation = Self {
            remote: remote.to_owned(),
            side,
            polite,
            ringing: Ringing::Private,
            phase: Phase::New,
            local_joined: false,
            remote_joined: false,
            failed_early: None,
            joined_since: None,
            connect_timeout: CONNECT_TIMEOUT,
            early_candidates: Vec::new(),
            pending_offer: None,
            connected_at: None,
            steps: VecDeque::new(),
            reports: VecDeque::new(),
        };
        negotiation.report(Report::State(ConnectionState::New));
        if side == Side::Offerer {
            negotiation.phase = Phase::Offering;
            negotiation.steps.push_back(Step::CreateOffer);
        }
        negotiation
    }

    /// The same connection, ringing as `ringing` says: a callee that prepares applies the
    /// offer and sends its answer while it rings (faster once it accepts; the caller learns
    /// its addresses from a call it may never answer).
    #[must_use]
    pub fn ringing(mut self, ringing: Ringing) -> Self {
        self.ringing = ringing;
        self
    }

    /// The remote participant.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Which side this connection takes now (a glare can turn an offerer into an answerer).
    pub fn side(&self) -> Side {
        self.side
    }

    /// Where the set-up stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The next step for the WebRTC stack.
    pub fn poll_step(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// The next conclusion for the engine.
    pub fn poll_report(&mut self) -> Option<Report> {
        self.reports.pop_front()
    }

    /// When [`Negotiation::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        self.joined_since
            .filter(|_| self.phase.is_setting_up())
            .map(|since| since + self.connect_timeout)
    }

    /// Who is in the call now. A private ringing callee answers once the local user has
    /// joined; the connect deadline runs, and media flows, once both have.
    pub fn handle_membership(&mut self, now: MonoTime, local_joined: bool, remote_joined: bool) {
        self.local_joined = local_joined;
        self.remote_joined = remote_joined;
        if self.both_joined() && self.joined_since.is_none() {
            self.joined_since = Some(now);
        }
        self.answer_if_ready();
        if self.both_joined() {
            if let Some(reason) = self.failed_early.take() {
                self.fail(reason);
            } else if self.phase == Phase::Prepared {
                self.connected(now);
            }
        }
    }

    /// A description (JSON) arrived from the remote participant.
    pub fn handle_remote_description(
        &mut self,
        _now: MonoTime,
        kind: DescriptionKind,
        description: String,
    ) {
        match (kind, self.phase) {
            (DescriptionKind::Answer, Phase::AwaitingAnswer) => {
                self.apply_remote(description);
                self.phase = Phase::Checking;
            }
            (DescriptionKind::Offer, Phase::New) if self.side == Side::Answerer => {
                self.pending_offer = Some(description);
                self.phase = Phase::OfferReceived;
                self.answer_if_ready();
            }
            (DescriptionKind::Offer, Phase::Offering | Phase::AwaitingAnswer) if self.polite => {
                // Both offered at once: the polite side drops its offer and answers.
                self.steps.push_back(Step::Rollback);
                self.side = Side::Answerer;
                self.pending_offer = Some(description);
                self.phase = Phase::OfferReceived;
                self.answer_if_ready();
            }
            (DescriptionKind::Offer, Phase::Offering | Phase::AwaitingAnswer) => {
                self.report(Report::Refused(format!(
                    "an offer from {} while ours is out: ignored, {} yields",
                    self.remote, self.remote
                )));
            }
            (kind, phase) => {
                let what = match kind {
                    DescriptionKind::Offer => "an offer",
                    DescriptionKind::Answer => "an answer",
                };
                self.report(Report::Refused(format!(
                    "{what} from {} was not expected ({phase:?})",
                    self.remote
                )));
            }
        }
    }

    /// A trickled candidate (JSON) arrived; it waits until the remote description is set.
    pub fn handle_remote_candidate(&mut self, candidate: String) {
        if self.remote_described() {
            self.steps.push_back(Step::AddCandidate(candidate));
        } else {
            self.early_candidates.push(candidate);
        }
    }

    /// The local description's candidates are all gathered.
    pub fn handle_gathered(&mut self, _now: MonoTime) {
        match self.phase {
            Phase::Offering => {
                self.phase = Phase::AwaitingAnswer;
                self.steps.push_back(Step::SendLocal);
            }
            Phase::Answering => {
                self.phase = Phase::Checking;
                self.steps.push_back(Step::SendLocal);
            }
            _ => {}
        }
    }

    /// The stack's connectivity changed.
    pub fn handle_ice(&mut self, now: MonoTime, state: IceState) {
        if matches!(self.phase, Phase::Failed | Phase::Closed) {
            return;
        }
        // Before both have joined (a callee that prepares early) the path comes and goes
        // unreported: the call has no media yet.
        let joined = self.both_joined();
        match state {
            IceState::Checking if joined => self.report(Report::State(ConnectionState::Connecting)),
            IceState::Checking => {}
            IceState::Connected if joined => self.connected(now),
            IceState::Connected => self.phase = Phase::Prepared,
            IceState::Disconnected => {
                self.phase = Phase::Reconnecting;
                if joined {
                    self.report(Report::State(ConnectionState::Reconnecting));
                }
            }
            IceState::Failed if joined => self.fail("the media connection failed".to_owned()),
            IceState::Failed => {
                self.phase = Phase::Failed;
                self.failed_early =
                    Some("the media connection failed before the call was answered".to_owned());
            }
            IceState::Closed => {
                self.phase = Phase::Closed;
                self.report(Report::State(ConnectionState::Closed));
            }
        }
    }

    /// Time passed: a connection not up [`CONNECT_TIMEOUT`] after both joined has failed.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        if self.poll_timeout().is_some_and(|deadline| deadline <= now) {
            let secs = self.connect_timeout.as_secs();
            self.fail(format!(
                "the media connection did not come up within {secs} s of both joining"
            ));
        }
    }

    /// The connection is no longer wanted.
    pub fn handle_close(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.steps.push_back(Step::Close);
        self.report(Report::State(ConnectionState::Closed));
    }

    fn both_joined(&self) -> bool {
        self.local_joined && self.remote_joined
    }

    /// The path is up and both have joined: media flows (sending starts once).
    fn connected(&mut self, now: MonoTime) {
        self.phase = Phase::Connected;
        if self.connected_at.is_none() {
            self.connected_at = Some(now);
            self.steps.push_back(Step::StartSending);
        }
        self.report(Report::State(ConnectionState::Connected));
    }

    /// Whether the remote description is set (candidates may be added).
    fn remote_described(&self) -> bool {
        !matches!(
            self.phase,
            Phase::New | Phase::Offering | Phase::AwaitingAnswer | Phase::OfferReceived
        )
    }

    fn apply_remote(&mut self, description: String) {
        self.steps.push_back(Step::ApplyRemote(description));
        for candidate in std::mem::take(&mut self.early_candidates) {
            self.steps.push_back(Step::AddCandidate(candidate));
        }
    }

    fn answer_if_ready(&mut self) {
        if self.phase == Phase::OfferReceived
            && (self.local_joined || self.ringing == Ringing::Prepared)
            && let Some(offer) = self.pending_offer.take()
        {
            self.apply_remote(offer);
            self.phase = Phase::Answering;
            self.steps.push_back(Step::CreateAnswer);
        }
    }

    fn fail(&mut self, reason: String) {
        self.phase = Phase::Failed;
        self.report(Report::State(ConnectionState::Failed));
        self.report(Report::Failed(reason));
    }

    fn report(&mut self, report: Report) {
        self.reports.push_back(report);
    }
}

/// Reads the `type` of a session description in its JSON form (`{"type":"offer","sdp":…}`).
pub fn description_kind(json: &str) -> Result<DescriptionKind, String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    let typed: Typed =
        serde_json::from_str(json).map_err(|error| format!("malformed description: {error}"))?;
    match typed.kind.as_str() {
        "offer" => Ok(DescriptionKind::Offer),
        "answer" => Ok(DescriptionKind::Answer),
        other => Err(format!("a {other:?} description is not supported")),
    }
}

/// `sdp` without the candidates no peer can reach: those on an unspecified address
/// (`0.0.0.0`, `::`, which the stack offers when a wildcard socket found no interface to
/// expand to). The other lines are kept as they are.
pub fn without_unreachable_candidates(sdp: &str) -> String {
    let unreachable = |line: &str| {
        let Some(candidate) = line.strip_prefix("a=candidate:") else {
            return false;
        };
        // foundation component transport priority address port typ …
        candidate
            .split_ascii_whitespace()
            .nth(4)
            .and_then(|address| address.parse::<std::net::IpAddr>().ok())
            .is_some_and(|address| address.is_unspecified())
    };
    let mut kept = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if !unreachable(line.trim_end()) {
            kept.push_str(line);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::{
        CONNECT_TIMEOUT, DescriptionKind, IceState, Negotiation, Phase, Report, Ringing, Side,
        Step, description_kind, without_unreachable_candidates,
    };
    use crate::event::ConnectionState;
    use crate::model::MonoTime;

    const OFFER: &str = r#"{"type":"offer","sdp":"v=0"}"#;
    const ANSWER: &str = r#"{"type":"answer","sdp":"v=0"}"#;

    fn at(millis: u64) -> MonoTime {
        MonoTime::from_millis(millis)
    }

    fn steps(negotiation: &mut Negotiation) -> Vec<Step> {
        std::iter::from_fn(|| negotiation.poll_step()).collect()
    }

    fn reports(negotiation: &mut Negotiation) -> Vec<Report> {
        std::iter::from_fn(|| negotiation.poll_report()).collect()
    }

    fn failed(negotiation: &mut Negotiation) -> bool {
        reports(negotiation)
            .iter()
            .any(|report| matches!(report, Report::Failed(_)))
    }

    #[test]
    fn an_offerer_offers_at_once_sends_when_gathered_and_checks_on_the_answer() {
        let mut caller = Negotiation::new("bob", Side::Offerer, false);
        assert_eq!(steps(&mut caller), [Step::CreateOffer]);
        assert_eq!(reports(&mut caller), [Report::State(ConnectionState::New)]);
        caller.handle_membership(at(0), true, true);
        caller.handle_gathered(at(1));
        assert_eq!(steps(&mut caller), [Step::SendLocal]);
        assert_eq!(caller.phase(), Phase::AwaitingAnswer);
        caller.handle_remote_description(at(5), DescriptionKind::Answer, ANSWER.into());
        assert_eq!(steps(&mut caller), [Step::ApplyRemote(ANSWER.into())]);
        assert_eq!(caller.phase(), Phase::Checking);
        caller.handle_ice(at(6), IceState::Connected);
        assert_eq!(steps(&mut caller), [Step::StartSending]);
        assert_eq!(
            reports(&mut caller),
            [Report::State(ConnectionState::Connected)]
        );
    }

    #[test]
    fn a_ringing_answerer_sets_the_offer_but_answers_only_once_it_joins() {
        let mut callee = Negotiation::new("alice", Side::Answerer, true);
        assert!(steps(&mut callee).is_empty());
        callee.handle_membership(at(0), false, true);
        callee.handle_remote_description(at(1), DescriptionKind::Offer, OFFER.into());
        // The offer is held: applying it would start the stack's checks and their timers.
        assert!(steps(&mut callee).is_empty());
        // Thirty seconds of ringing: no answer, no checks, no deadline, no failure.
        assert_eq!(callee.poll_timeout(), None);
        callee.handle_timeout(at(30_000));
        assert!(steps(&mut callee).is_empty());
        assert!(!failed(&mut callee));
        assert_eq!(callee.phase(), Phase::OfferReceived);
        callee.handle_membership(at(30_001), true, true);
        assert_eq!(
            steps(&mut callee),
            [Step::ApplyRemote(OFFER.into()), Step::CreateAnswer]
        );
        callee.handle_gathered(at(30_002));
        assert_eq!(steps(&mut callee), [Step::SendLocal]);
        assert_eq!(callee.phase(), Phase::Checking);
    }

    #[test]
    fn a_callee_that_prepares_early_answers_while_it_rings_and_media_waits_for_both() {
        let mut ringing =
            Negotiation::new("alice", Side::Answerer, true).ringing(Ringing::Prepared);
        let mut dialing = Negotiation::new("bob", Side::Offerer, false);
        reports(&mut ringing);
        reports(&mut dialing);
        dialing.handle_membership(at(0), true, false);
        dialing.handle_gathered(at(0));
        steps(&mut dialing);
        ringing.handle_membership(at(0), false, false);
        ringing.handle_remote_description(at(1), DescriptionKind::Offer, OFFER.into());
        assert_eq!(
            steps(&mut ringing),
            [Step::ApplyRemote(OFFER.into()), Step::CreateAnswer]
        );
        ringing.handle_gathered(at(2));
        assert_eq!(steps(&mut ringing), [Step::SendLocal]);
        dialing.handle_remote_description(at(3), DescriptionKind::Answer, ANSWER.into());
        steps(&mut dialing);
        // The path comes up while the callee rings: no media, nothing reported, no deadline.
        for side in [&mut dialing, &mut ringing] {
            side.handle_ice(at(4), IceState::Checking);
            side.handle_ice(at(5), IceState::Connected);
            assert_eq!(side.phase(), Phase::Prepared);
            assert!(steps(side).is_empty());
            assert!(reports(side).is_empty());
            assert_eq!(side.poll_timeout(), None);
        }
        // Twenty seconds later the callee accepts: media flows at once.
        ringing.handle_membership(at(20_000), true, true);
        dialing.handle_membership(at(20_001), true, true);
        for side in [&mut dialing, &mut ringing] {
            assert_eq!(steps(side), [Step::StartSending]);
            assert_eq!(reports(side), [Report::State(ConnectionState::Connected)]);
            assert_eq!(side.phase(), Phase::Connected);
        }
    }

    #[test]
    fn a_path_lost_before_the_answer_is_reported_failed_only_once_both_joined() {
        let mut callee = Negotiation::new("alice", Side::Answerer, true).ringing(Ringing::Prepared);
        callee.handle_membership(at(0), false, false);
        callee.handle_remote_description(at(1), DescriptionKind::Offer, OFFER.into());
        callee.handle_gathered(at(2));
        callee.handle_ice(at(5), IceState::Connected);
        callee.handle_ice(at(8_000), IceState::Disconnected);
        callee.handle_ice(at(13_000), IceState::Failed);
        reports(&mut callee);
        assert!(!failed(&mut callee));
        callee.handle_membership(at(25_000), true, true);
        assert!(failed(&mut callee));
    }

    #[test]
    fn a_private_caller_sends_nothing_to_a_callee_that_answered_but_has_not_joined() {
        // A callee that answers before accepting (or claims to): the caller's media waits.
        let mut caller = Negotiation::new("bob", Side::Offerer, false);
        caller.handle_membership(at(0), true, false);
        caller.handle_gathered(at(1));
        caller.handle_remote_description(at(2), DescriptionKind::Answer, ANSWER.into());
        caller.handle_ice(at(3), IceState::Connected);
        assert!(!steps(&mut caller).contains(&Step::StartSending));
        caller.handle_membership(at(9), true, true);
        assert_eq!(steps(&mut caller), [Step::StartSending]);
    }

    #[test]
    fn an_answerer_that_joined_first_answers_the_moment_the_offer_arrives() {
        let mut callee = Negotiation::new("carol", Side::Answerer, false);
        callee.handle_membership(at(0), true, true);
        callee.handle_remote_description(at(3), DescriptionKind::Offer, OFFER.into());
        assert_eq!(
            steps(&mut callee),
            [Step::ApplyRemote(OFFER.into()), Step::CreateAnswer]
        );
    }

    #[test]
    fn early_candidates_wait_for_the_remote_description() {
        let mut callee = Negotiation::new("alice", Side::Answerer, true);
        callee.handle_remote_candidate("c1".into());
        callee.handle_remote_description(at(1), DescriptionKind::Offer, OFFER.into());
        callee.handle_remote_candidate("c2".into());
        assert!(steps(&mut callee).is_empty());
        callee.handle_membership(at(2), true, true);
        assert_eq!(
            steps(&mut callee),
            [
                Step::ApplyRemote(OFFER.into()),
                Step::AddCandidate("c1".into()),
                Step::AddCandidate("c2".into()),
                Step::CreateAnswer
            ]
        );
        callee.handle_remote_candidate("c3".into());
        assert_eq!(steps(&mut callee), [Step::AddCandidate("c3".into())]);
    }

    #[test]
    fn in_a_glare_the_polite_side_rolls_back_and_answers_and_the_other_ignores() {
        let mut polite = Negotiation::new("alice", Side::Offerer, true);
        let mut impolite = Negotiation::new("bob", Side::Offerer, false);
        steps(&mut polite);
        steps(&mut impolite);
        polite.handle_membership(at(0), true, true);
        polite.handle_remote_description(at(1), DescriptionKind::Offer, OFFER.into());
        assert_eq!(
            steps(&mut polite),
            [
                Step::Rollback,
                Step::ApplyRemote(OFFER.into()),
                Step::CreateAnswer
            ]
        );
        assert_eq!(polite.side(), Side::Answerer);
        impolite.handle_remote_description(at(1), DescriptionKind::Offer, OFFER.into());
        assert!(steps(&mut impolite).is_empty());
        assert!(
            reports(&mut impolite)
                .iter()
                .any(|r| matches!(r, Report::Refused(_)))
        );
        assert_eq!(impolite.side(), Side::Offerer);
    }

    #[test]
    fn an_unexpected_description_is_refused_and_changes_nothing() {
        let mut callee = Negotiation::new("alice", Side::Answerer, true);
        reports(&mut callee);
        callee.handle_remote_description(at(1), DescriptionKind::Answer, ANSWER.into());
        assert!(steps(&mut callee).is_empty());
        assert!(matches!(reports(&mut callee)[..], [Report::Refused(_)]));
        assert_eq!(callee.phase(), Phase::New);
        assert!(description_kind("not json").is_err());
        assert!(description_kind(r#"{"type":"pranswer","sdp":""}"#).is_err());
        assert_eq!(description_kind(OFFER), Ok(DescriptionKind::Offer));
    }

    #[test]
    fn a_connection_not_up_ten_seconds_after_both_joined_fails() {
        let mut caller = Negotiation::new("bob", Side::Offerer, false);
        steps(&mut caller);
        caller.handle_membership(at(0), true, false);
        // Only the local side has joined: no deadline while the callee rings.
        assert_eq!(caller.poll_timeout(), None);
        caller.handle_membership(at(2000), true, true);
        let deadline = at(2000) + CONNECT_TIMEOUT;
        assert_eq!(caller.poll_timeout(), Some(deadline));
        caller.handle_timeout(MonoTime::from_micros(deadline.as_micros() - 1000));
        assert!(!failed(&mut caller));
        caller.handle_timeout(deadline);
        assert!(failed(&mut caller));
        assert_eq!(caller.phase(), Phase::Failed);
        // Failed is final: a late success changes nothing.
        caller.handle_ice(deadline, IceState::Connected);
        assert!(steps(&mut caller).is_empty());
    }

    #[test]
    fn a_connected_path_that_stops_answering_reconnects_or_fails_on_the_stack_timers() {
        let mut caller = Negotiation::new("bob", Side::Offerer, false);
        caller.handle_membership(at(0), true, true);
        caller.handle_gathered(at(1));
        caller.handle_remote_description(at(2), DescriptionKind::Answer, ANSWER.into());
        caller.handle_ice(at(10), IceState::Connected);
        reports(&mut caller);
        // Connected: the connect deadline is over.
        assert_eq!(caller.poll_timeout(), None);
        caller.handle_ice(at(2_010), IceState::Disconnected);
        assert_eq!(
            reports(&mut caller),
            [Report::State(ConnectionState::Reconnecting)]
        );
        caller.handle_ice(at(3_000), IceState::Connected);
        assert_eq!(
            reports(&mut caller),
            [Report::State(ConnectionState::Connected)]
        );
        // Sending started once, on the first connection.
        assert_eq!(
            steps(&mut caller)
                .iter()
                .filter(|step| **step == Step::StartSending)
                .count(),
            1
        );
        caller.handle_ice(at(5_000), IceState::Disconnected);
        caller.handle_ice(at(10_000), IceState::Failed);
        assert!(failed(&mut caller));
    }

    #[test]
    fn candidates_on_an_unspecified_address_are_left_out_of_a_description() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
                   a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
                   a=candidate:2 1 udp 2130706431 0.0.0.0 40001 typ host\r\n\
                   a=candidate:3 1 udp 2130706431 :: 40002 typ host\r\n\
                   a=candidate:4 1 udp 2130706431 192.168.1.7 40003 typ host\r\n\
                   a=end-of-candidates\r\n";
        let kept = without_unreachable_candidates(sdp);
        assert!(kept.contains("127.0.0.1 40000") && kept.contains("192.168.1.7 40003"));
        assert!(!kept.contains(" 0.0.0.0 40001") && !kept.contains(":: 40002"));
        // Everything else is untouched, the session's `c=` line included.
        assert!(kept.starts_with("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"));
        assert!(kept.ends_with("a=end-of-candidates\r\n"));
        assert_eq!(kept.lines().count(), sdp.lines().count() - 2);
    }

    #[test]
    fn closing_reports_closed_once() {
        let mut caller = Negotiation::new("bob", Side::Offerer, false);
        reports(&mut caller);
        steps(&mut caller);
        caller.handle_close();
        caller.handle_close();
        assert_eq!(steps(&mut caller), [Step::Close]);
        assert_eq!(
            reports(&mut caller),
            [Report::State(ConnectionState::Closed)]
        );
    }
}
