//! `Negotiation`: the sans-IO state machine of one peer connection's set-up: who offers, when
//! the remote offer is applied and the answer made (only once the local user has joined: the
//! WebRTC stack starts its connectivity checks, and their give-up timers, as soon as a remote
//! description is set, so a ringing callee holds the offer unapplied), early candidates, glare,
//! and the connect deadline.
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
    phase: Phase,
    local_joined: bool,
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
            phase: Phase::New,
            local_joined: false,
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

    /// Who is in the call now. The answer is made once the local user has joined; the
    /// connect deadline runs once both have.
    pub fn handle_membership(&mut self, now: MonoTime, local_joined: bool, remote_joined: bool) {
        self.local_joined = local_joined;
        if local_joined && remote_joined && self.joined_since.is_none() {
            self.joined_since = Some(now);
        }
        self.answer_if_ready();
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
        match state {
            IceState::Checking => self.report(Report::State(ConnectionState::Connecting)),
            IceState::Connected => {
                self.phase = Phase::Connected;
                if self.connected_at.is_none() {
                    self.connected_at = Some(now);
                    self.steps.push_back(Step::StartSending);
                }
                self.report(Report::State(ConnectionState::Connected));
            }
            IceState::Disconnected => {
                self.phase = Phase::Reconnecting;
                self.report(Report::State(ConnectionState::Reconnecting));
            }
            IceState::Failed => self.fail("the media connection failed".to_owned()),
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
            && self.local_joined
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

#[cfg(test)]
mod tests {
    use super::{
        CONNECT_TIMEOUT, DescriptionKind, IceState, Negotiation, Phase, Report, Side, Step,
        description_kind,
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
