//! `Switchboard`: the sans-IO core of the signaling server. Sessions log in, calls are routed,
//! every action is authorized and every sender is held to its limits; the network driver only
//! moves frames in and out. Time is an input (Unix milliseconds): the same code runs under the
//! server and in virtual-time tests.
//!
//! What no user can do to another: reach a session it is not in a call with (media negotiation
//! is relayed only within a call, and only in small amounts to a ringing callee), learn whether
//! a call it is not in exists (one answer for all of them; call ids are the caller's own, so an
//! invitation by another's id is a new call like any other), fill another session's queue (caps
//! and rates bound what it can cause to be sent), or keep the server's resources (log-in
//! deadline, caps on calls and invitations, the ringing timeout enforced here too).

mod calls;
mod cluster;
#[cfg(test)]
mod cluster_tests;
mod limits;
mod record;
mod share;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::model::ids::{check_user_id, quote_untrusted};
use crate::model::{CallError, ErrorCode};

use super::protocol::{ClientMessage, Contact, PROTOCOL_VERSION, ServerMessage, decode_client};
use super::usersig::{Check, Keyring, Revocations, SigPolicy, UserSigError};
pub use cluster::{NodeMessage, Presence, RELAYED_FROM_NODE};
pub use limits::{Bucket, Limits};
pub use record::CallKey;
use record::CallRecord;

/// A connection's number, given by the driver.
pub type SessionId = u64;

/// At most this many online users are listed in a contact list (besides the demo peers): the
/// list is for picking someone to call, and its size must not grow with the server's load.
const MAX_LISTED_USERS: usize = 20;

/// How many ended calls are remembered (with their members), to answer late requests of their
/// members with "already ended".
const ENDED_MEMORY: usize = 4096;

/// What a log-in attempt is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// With the user's valid UserSig.
    Valid,
    /// With a UserSig that is not valid (forged, expired, revoked, for another app): counted
    /// apart, so it never keeps out whoever holds a valid one.
    Refused,
}

/// One user id's log-in limits: one for each kind of [`Attempt`].
#[derive(Debug, Clone, Copy)]
struct LogInBuckets {
    valid: Bucket,
    refused: Bucket,
}

impl LogInBuckets {
    fn at_rest(&self, now_millis: u64) -> bool {
        self.valid.is_full(now_millis) && self.refused.is_full(now_millis)
    }
}

/// How many user ids' log-in buckets are kept before the ones at rest are forgotten; the next
/// sweep waits until twice as many are kept as the last one left.
const LOGIN_BUCKETS: usize = 10_000;

/// The longest refusal message recorded, in characters.
const MAX_RECORDED_CHARS: usize = 200;

/// Refusals recorded per second by all connections together (after a burst).
const RECORDS_PER_SEC: u64 = 20;
/// See [`RECORDS_PER_SEC`].
const RECORD_BURST: u64 = 100;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `message` to `session`.
    Send {
        /// The connection.
        session: SessionId,
        /// The message.
        message: ServerMessage,
        /// The session whose media negotiation this relays, if it is a relay: when `session`
        /// cannot take it, it is dropped and the relayer told ([`Switchboard::handle_undelivered`]),
        /// and `session` is not punished for another's traffic.
        relayed_from: Option<SessionId>,
    },
    /// Close `session` after what was sent to it.
    Close {
        /// The connection.
        session: SessionId,
    },
    /// A request was refused (the error went to its sender); for the server's timeline.
    /// Recorded at most [`Limits::refusals_recorded`] times per connection per window.
    Refused {
        /// Who sent it: the user, or `session N` before log-in.
        user: String,
        /// Why it was refused (its message cut to a few hundred characters).
        error: CallError,
        /// Refusals of the same connection not recorded since the last record.
        unrecorded: u64,
    },
    /// A routing step of a call, for the webhooks (only when they are on).
    CallEvent(super::webhook::CallEvent),
    /// A call is over: its end-of-call record, for the webhooks (only when they are on).
    CallEnded(super::webhook::CallRecordEvent),
    /// Send `message` to the node `node` (only when this switchboard is one of several).
    Publish {
        /// The node's id.
        node: String,
        /// What to tell it.
        message: NodeMessage,
    },
    /// Tell every node (only when this switchboard is one of several); the driver keeps the
    /// presence records of this node's users from these too.
    Announce(Presence),
}

/// Settings of a switchboard.
#[derive(Debug, Clone)]
pub struct SwitchboardConfig {
    /// The keys UserSigs are signed with.
    pub keys: Keyring,
    /// The app id UserSigs must name.
    pub app_id: u64,
    /// Built-in peers listed first in every contact list.
    pub demo_contacts: Vec<Contact>,
    /// Whether contact lists show who else is online (off: only the demo peers).
    pub list_online_users: bool,
    /// Caps, rates and deadlines.
    pub limits: Limits,
    /// Lifetime and clock-skew bounds of UserSigs.
    pub policy: SigPolicy,
    /// Whether call events and end-of-call records come out for the webhooks.
    pub webhooks: bool,
    /// This node's id when it is one of several sharing users and calls (see
    /// [`Switchboard::handle_node_message`]); `None`: alone.
    pub node: Option<String>,
}

/// Refusals of one connection in the current window.
#[derive(Debug, Clone, Copy, Default)]
struct Refusals {
    window_start_millis: u64,
    count: u32,
    recorded: u32,
    unrecorded: u64,
}

#[derive(Debug, Clone)]
struct Session {
    user_id: Option<String>,
    issued_at_secs: u64,
    expires_at_secs: u64,
    opened_at_millis: u64,
    messages: Bucket,
    login_failures: u32,
    refusals: Refusals,
    /// The user asked for the server's records of its calls.
    traces: bool,
    /// For a user logged in to another node: that node (this session stands in for it).
    node: Option<u16>,
    /// When its user logged in (Unix ms).
    since_millis: u64,
}

/// Counters of what the switchboard refused and closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    /// Refusals by error code.
    pub by_code: BTreeMap<i32, u64>,
    /// Connections closed for too many refusals, failed log-ins or a missed log-in deadline.
    pub closed: u64,
}

/// The signaling server's state: sessions, who is online, and every call in progress.
#[derive(Debug)]
pub struct Switchboard {
    config: SwitchboardConfig,
    sessions: HashMap<SessionId, Session>,
    online: HashMap<String, SessionId>,
    /// The same users, sorted, for contact lists.
    online_sorted: BTreeSet<String>,
    calls: HashMap<CallKey, CallRecord>,
    calls_of_user: HashMap<String, HashSet<CallKey>>,
    /// Calls in progress and remembered as ended, by their id (several callers may use one).
    named: HashMap<String, Vec<CallKey>>,
    ended: VecDeque<CallKey>,
    ended_members: HashMap<CallKey, BTreeSet<String>>,
    /// Entries each participant shared per call (forgotten with the ended call).
    shared: HashMap<CallKey, HashMap<String, u32>>,
    /// Users whose connection was lost in a connected call, and since when: their calls are
    /// held for [`Limits::rejoin_grace_millis`].
    away: HashMap<String, u64>,
    /// The latest time the driver gave (Unix ms), for what a connection's loss starts.
    now_millis: u64,
    /// Log-in attempts by user id, counted on every node.
    login_buckets: HashMap<String, LogInBuckets>,
    /// The number of log-in buckets that starts the next sweep of those at rest.
    login_sweep_at: usize,
    /// Refusals recorded by all connections together: many connections may not flood the
    /// server's timeline either.
    records: Bucket,
    revocations: Revocations,
    counts: RefusalCounts,
    cluster: cluster::Cluster,
    out: VecDeque<Output>,
}

impl Switchboard {
    /// An empty switchboard.
    pub fn new(config: SwitchboardConfig) -> Self {
        let cluster = cluster::Cluster::new(config.node.clone());
        Self {
            cluster,
            config,
            sessions: HashMap::new(),
            online: HashMap::new(),
            online_sorted: BTreeSet::new(),
            calls: HashMap::new(),
            calls_of_user: HashMap::new(),
            named: HashMap::new(),
            ended: VecDeque::new(),
            ended_members: HashMap::new(),
            shared: HashMap::new(),
            away: HashMap::new(),
            now_millis: 0,
            login_buckets: HashMap::new(),
            login_sweep_at: LOGIN_BUCKETS,
            records: Bucket::full(RECORD_BURST, RECORDS_PER_SEC, 0),
            revocations: Revocations::default(),
            counts: RefusalCounts::default(),
            out: VecDeque::new(),
        }
    }

    /// How many connections are open.
    pub fn session_count(&self) -> usize {
        self.sessions.len() - self.cluster.stand_ins
    }

    /// How many users are logged in here.
    pub fn online_count(&self) -> usize {
        self.online.len() - self.cluster.stand_ins
    }

    /// How many users are logged in, here and on the other nodes.
    pub fn everyone_online_count(&self) -> usize {
        self.online.len()
    }

    /// How many calls are in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// What was refused and closed so far.
    pub fn refusal_counts(&self) -> &RefusalCounts {
        &self.counts
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A connection opened at `now_millis` (an id already open ends its first session).
    pub fn open(&mut self, session: SessionId, now_millis: u64) {
        self.now_millis = now_millis;
        // An id opened twice ends its first session: nothing of it may linger.
        self.close(session);
        let limits = self.config.limits;
        self.sessions.insert(
            session,
            Session {
                user_id: None,
                issued_at_secs: 0,
                expires_at_secs: 0,
                opened_at_millis: now_millis,
                messages: Bucket::full(limits.message_burst, limits.messages_per_sec, now_millis),
                login_failures: 0,
                refusals: Refusals {
                    window_start_millis: now_millis,
                    ..Refusals::default()
                },
                traces: false,
                node: None,
                since_millis: now_millis,
            },
        );
    }

    /// A connection was lost: its user goes offline and leaves its calls, except the
    /// connected ones, which are held for it to log in again within
    /// [`Limits::rejoin_grace_millis`].
    pub fn close(&mut self, session: SessionId) {
        self.close_holding(session, true);
    }

    fn close_holding(&mut self, session: SessionId, hold: bool) {
        let Some(state) = self.sessions.remove(&session) else {
            return;
        };
        if let Some(user) = state.user_id
            && self.online.get(&user) == Some(&session)
        {
            self.online.remove(&user);
            self.online_sorted.remove(&user);
            if state.node.is_some() {
                self.cluster.stand_ins -= 1;
            }
            let waits = hold && self.hold_calls(&user);
            if state.node.is_none() {
                self.announce(&user, None, waits);
            }
            if waits {
                if let Some(node) = state.node {
                    self.cluster.away_node.insert(user.clone(), node);
                }
                self.away.insert(user, self.now_millis);
            } else {
                self.leave_all_calls(&user);
                self.cluster.forget_user(&user);
            }
        } else if state.node.is_some() {
            self.cluster.stand_ins -= 1;
        }
    }

    /// A frame larger than the protocol allows arrived; it is refused, the session stays.
    pub fn handle_oversized(&mut self, session: SessionId, now_millis: u64, bytes: usize) {
        if !self.admit(session, now_millis) {
            return;
        }
        let error = super::protocol::DecodeError::TooLarge(bytes).to_call_error();
        self.refuse(session, now_millis, &error, None);
    }

    /// A frame beyond its connection's byte rate arrived (the transport counts bytes as it
    /// reads them and queues no such frame); it is refused, the session stays.
    pub fn handle_over_budget(&mut self, session: SessionId, now_millis: u64, bytes: usize) {
        if !self.admit(session, now_millis) {
            return;
        }
        let error = CallError::new(
            ErrorCode::RequestRefused,
            format!(
                "a frame of {bytes} bytes is more than this connection may send now: slow down"
            ),
        );
        self.refuse(session, now_millis, &error, None);
    }

    /// A binary frame arrived; the protocol is text only, so it is refused.
    pub fn handle_binary(&mut self, session: SessionId, now_millis: u64, bytes: usize) {
        if !self.admit(session, now_millis) {
            return;
        }
        let error = CallError::new(
            ErrorCode::InvalidParameter,
            format!("a binary frame ({bytes} bytes) is not part of the protocol; send JSON text"),
        );
        self.refuse(session, now_millis, &error, None);
    }

    /// A text frame arrived at `now_millis` (Unix milliseconds).
    pub fn handle_frame(&mut self, session: SessionId, now_millis: u64, frame: &str) {
        self.now_millis = now_millis;
        if !self.admit(session, now_millis) {
            return;
        }
        match decode_client(frame) {
            Err(error) => self.refuse(session, now_millis, &error.to_call_error(), None),
            Ok(message) => self.handle_message(session, now_millis, message),
        }
    }

    /// A message `relayer` sent could not be queued for `recipient` (its connection is not
    /// keeping up): the relayer is told; the recipient keeps its session.
    pub fn handle_undelivered(
        &mut self,
        relayer: SessionId,
        recipient: SessionId,
        now_millis: u64,
    ) {
        let to = self
            .sessions
            .get(&recipient)
            .and_then(|state| state.user_id.clone())
            .unwrap_or_else(|| "the recipient".to_owned());
        let error = CallError::new(
            ErrorCode::SignalingSendFailed,
            format!("not relayed: {to} is not keeping up with its messages"),
        );
        self.refuse(relayer, now_millis, &error, None);
    }

    /// Time passed: expired UserSigs end their sessions, connections that did not log in in
    /// time are closed, and ringing invitations past their timeout end.
    pub fn handle_tick(&mut self, now_millis: u64) {
        self.now_millis = now_millis;
        self.end_away_calls(now_millis);
        let now_secs = now_millis / 1000;
        let deadline = self.config.limits.login_deadline_millis;
        let mut expired = Vec::new();
        let mut late = Vec::new();
        for (session, state) in &self.sessions {
            if state.user_id.is_some() && state.expires_at_secs <= now_secs {
                expired.push(*session);
            } else if state.user_id.is_none()
                && now_millis.saturating_sub(state.opened_at_millis) >= deadline
            {
                late.push(*session);
            }
        }
        for session in expired {
            self.send(session, ServerMessage::UserSigExpired);
            self.close_session(session);
        }
        for session in late {
            let error = CallError::new(
                ErrorCode::NotLoggedIn,
                format!("log in within {} s of connecting", deadline / 1000),
            );
            self.send(session, ServerMessage::error(&error, None));
            self.counts.closed += 1;
            self.close_session(session);
        }
        self.end_expired_invitations(now_millis);
        self.check_now_and_then(now_millis);
    }

    /// The revocation list changed: sessions whose UserSig it now refuses are closed.
    pub fn handle_revocations(&mut self, now_millis: u64, revocations: Revocations) {
        let revoked: Vec<(SessionId, u64)> = self
            .sessions
            .iter()
            .filter_map(|(session, state)| {
                let user = state.user_id.as_deref()?;
                let before = revocations.revoked_before(user)?;
                (state.issued_at_secs < before).then_some((*session, before))
            })
            .collect();
        self.revocations = revocations;
        for (session, revoked_before) in revoked {
            let error = UserSigError::Revoked { revoked_before }.to_call_error();
            self.refuse(session, now_millis, &error, None);
            self.close_session(session);
        }
    }

    /// Charges a frame to its connection's message rate (the transport holds it to its byte
    /// rate); false (refused, or no such session) when it may not be handled.
    fn admit(&mut self, session: SessionId, now_millis: u64) -> bool {
        let Some(state) = self.sessions.get_mut(&session) else {
            return false;
        };
        let within = state.messages.take(1, now_millis);
        if !within {
            let error = CallError::new(
                ErrorCode::RequestRefused,
                "too many requests from this connection: slow down",
            );
            self.refuse(session, now_millis, &error, None);
        }
        within
    }

    fn handle_message(&mut self, session: SessionId, now_millis: u64, message: ClientMessage) {
        let user = self.sessions.get(&session).and_then(|s| s.user_id.clone());
        match (message, user) {
            (
                ClientMessage::Login {
                    version,
                    user_id,
                    user_sig,
                },
                None,
            ) => self.log_in(session, now_millis, version, &user_id, &user_sig),
            (ClientMessage::Login { .. }, Some(_)) => {
                let error = CallError::new(ErrorCode::RequestRepeated, "already logged in");
                self.refuse(session, now_millis, &error, None);
            }
            (_, None) => {
                let error = CallError::new(ErrorCode::NotLoggedIn, "log in first");
                self.refuse(session, now_millis, &error, None);
            }
            (ClientMessage::Traces { on }, Some(user)) => {
                if let Some(state) = self.sessions.get_mut(&session)
                    && state.traces != on
                {
                    state.traces = on;
                    self.announce_traces(&user, on);
                }
            }
            (ClientMessage::Ping { nonce }, Some(_)) => {
                // The driver stamps the µs as the answer leaves.
                let message = ServerMessage::Pong {
                    nonce,
                    server_ms: Some(now_millis),
                    server_us: None,
                };
                self.send(session, message);
            }
            (ClientMessage::Contacts, Some(user)) => {
                let contacts = self.contacts_for(&user);
                self.send(session, ServerMessage::Contacts { contacts });
            }
            (message, Some(user)) => {
                if let Some(message) = self.route_to_home(&user, message) {
                    self.handle_call_message(session, now_millis, &user, message);
                }
            }
        }
    }

    fn log_in(
        &mut self,
        session: SessionId,
        now_millis: u64,
        version: u32,
        user_id: &str,
        user_sig: &str,
    ) {
        if version != PROTOCOL_VERSION {
            let error = CallError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "protocol version {version} is not supported (this server speaks {PROTOCOL_VERSION})"
                ),
            );
            self.refuse(session, now_millis, &error, None);
            return;
        }
        if let Err(reason) = check_user_id(user_id) {
            let error = CallError::new(ErrorCode::InvalidParameter, reason);
            self.failed_log_in(session, now_millis, &error);
            return;
        }
        let check = Check {
            keys: &self.config.keys,
            policy: self.config.policy,
            revocations: &self.revocations,
            app_id: self.config.app_id,
            now_secs: now_millis / 1000,
        };
        // The UserSig is checked first: attempts with one that is not valid are counted apart,
        // so nobody who lacks the user's UserSig can keep the user out.
        let verified = check.verify(user_sig, user_id);
        let attempt = if verified.is_ok() {
            Attempt::Valid
        } else {
            Attempt::Refused
        };
        if !self.count_log_in_attempt(user_id, attempt, now_millis) {
            let error = self.too_many_log_ins(user_id, attempt);
            self.failed_log_in(session, now_millis, &error);
            return;
        }
        let claims = match verified {
            Ok(claims) => claims,
            Err(error @ UserSigError::Expired { .. }) => {
                self.announce_log_in_refused(user_id);
                self.record_refusal(session, now_millis, user_id, &error.to_call_error());
                self.send(session, ServerMessage::UserSigExpired);
                self.close_session(session);
                return;
            }
            Err(error) => {
                self.announce_log_in_refused(user_id);
                self.failed_log_in(session, now_millis, &error.to_call_error());
                return;
            }
        };
        if let Some(previous) = self.online.get(user_id).copied() {
            if self.node_of_session(previous).is_some() {
                // Logged in to another node: that node kicks it when it hears of this log-in
                // (or was lost). Its calls here are not in this welcome, so they end now.
                self.drop_stand_in(user_id, previous);
                self.end_calls_of_gone(user_id);
            } else {
                let by = format!("a new log-in of {user_id} (session {session})");
                self.send(previous, ServerMessage::Kicked { by });
                self.close_session(previous);
            }
        }
        // Back here: not waited for on another node any more.
        self.cluster.away_node.remove(user_id);
        // Back within the grace: the calls held for it go on.
        let calls = if self.away.remove(user_id).is_some() {
            let mut held: Vec<String> = self
                .calls_of_user
                .get(user_id)
                .into_iter()
                .flatten()
                .map(|call| call.id.clone())
                .collect();
            held.extend(self.cluster.remote_calls_of(user_id));
            held.sort_unstable();
            held
        } else {
            Vec::new()
        };
        if let Some(state) = self.sessions.get_mut(&session) {
            state.user_id = Some(user_id.to_owned());
            state.issued_at_secs = claims.issued_at;
            state.expires_at_secs = claims.expires_at();
            state.since_millis = now_millis;
        }
        self.online.insert(user_id.to_owned(), session);
        self.online_sorted.insert(user_id.to_owned());
        self.announce(user_id, Some(now_millis), false);
        let contacts = self.contacts_for(user_id);
        self.send(
            session,
            ServerMessage::Welcome {
                version: PROTOCOL_VERSION,
                user_id: user_id.to_owned(),
                contacts,
                calls,
            },
        );
    }

    /// Counts a log-in attempt for `user_id`, here or on another node; whether it was within
    /// the limit (one that is not takes nothing).
    pub(super) fn count_log_in_attempt(
        &mut self,
        user_id: &str,
        attempt: Attempt,
        now_millis: u64,
    ) -> bool {
        if self.login_buckets.len() >= self.login_sweep_at {
            self.login_buckets
                .retain(|_, buckets| !buckets.at_rest(now_millis));
            // However many are still in use, each sweep is paid for by as many log-ins.
            self.login_sweep_at = LOGIN_BUCKETS.max(self.login_buckets.len() * 2);
        }
        let limits = self.config.limits;
        let buckets = self
            .login_buckets
            .entry(user_id.to_owned())
            .or_insert_with(|| {
                let bucket =
                    Bucket::per_minute(limits.login_burst, limits.logins_per_minute, now_millis);
                LogInBuckets {
                    valid: bucket,
                    refused: bucket,
                }
            });
        match attempt {
            Attempt::Valid => buckets.valid.take(1, now_millis),
            Attempt::Refused => buckets.refused.take(1, now_millis),
        }
    }

    /// The refusal of a log-in attempt beyond the limit.
    fn too_many_log_ins(&self, user_id: &str, attempt: Attempt) -> CallError {
        let wait_secs = 60u64.div_ceil(self.config.limits.logins_per_minute.max(1));
        let which = match attempt {
            Attempt::Valid => "",
            Attempt::Refused => " with a UserSig that is not valid",
        };
        CallError::new(
            ErrorCode::RequestRefused,
            format!("too many log-in attempts for {user_id}{which}; try again in {wait_secs} s"),
        )
    }

    /// A log-in failed: refused, and the connection closed after too many.
    fn failed_log_in(&mut self, session: SessionId, now_millis: u64, error: &CallError) {
        self.refuse(session, now_millis, error, None);
        let Some(state) = self.sessions.get_mut(&session) else {
            return;
        };
        state.login_failures += 1;
        if state.login_failures >= self.config.limits.max_login_failures {
            self.counts.closed += 1;
            self.close_session(session);
        }
    }

    /// Demo peers first, then (if the server lists them) up to [`MAX_LISTED_USERS`] others
    /// online (by name), without the user themself.
    fn contacts_for(&self, user: &str) -> Vec<Contact> {
        let demo_ids: HashSet<&str> = self
            .config
            .demo_contacts
            .iter()
            .map(|contact| contact.user_id.as_str())
            .collect();
        let demos = self.config.demo_contacts.iter().map(|contact| Contact {
            online: self.online.contains_key(&contact.user_id),
            ..contact.clone()
        });
        // Without the listing, the online set is not even walked (it may be large).
        let listed = if self.config.list_online_users {
            self.online_sorted.len()
        } else {
            0
        };
        let others = self
            .online_sorted
            .iter()
            .take(listed)
            .filter(|id| id.as_str() != user && !demo_ids.contains(id.as_str()))
            .take(MAX_LISTED_USERS)
            .map(|user_id| Contact {
                user_id: user_id.clone(),
                online: true,
                demo: None,
            });
        demos.chain(others).collect()
    }

    fn send(&mut self, session: SessionId, message: ServerMessage) {
        self.emit(session, message, None);
    }

    /// The server's record of a routing step (`name`, about `user`) to every member of
    /// `call_id` and every one of `also` who asked for traces.
    fn trace(&mut self, call_id: &CallKey, name: &str, user: &str, also: &[String]) {
        self.note_step(call_id, name, user);
        // Who asked, found without copying a name: most sessions never ask, and this runs on
        // every routing step.
        let members = self
            .calls
            .get(call_id)
            .into_iter()
            .flat_map(|record| record.members.keys());
        let mut recipients: Vec<SessionId> = members
            .chain(also)
            .filter_map(|member| self.online.get(member).copied())
            .filter(|session| self.sessions.get(session).is_some_and(|state| state.traces))
            .collect();
        if recipients.is_empty() {
            return;
        }
        recipients.sort_unstable();
        recipients.dedup();
        for session in recipients {
            // The driver stamps the time as it leaves.
            let message = ServerMessage::Trace {
                call_id: call_id.id.clone(),
                name: name.to_owned(),
                user_id: user.to_owned(),
                server_us: None,
            };
            self.send(session, message);
        }
    }

    /// What a routing step means for the call's end-of-call record, and its webhook event.
    fn note_step(&mut self, call_id: &CallKey, name: &str, user: &str) {
        let now = self.now_millis;
        let Some(record) = self.calls.get_mut(call_id) else {
            return;
        };
        record.note(name, now);
        let (caller, media) = (record.caller.clone(), record.media);
        self.call_event(call_id, name, user, &caller, media);
    }

    /// A webhook event for a step of `call_id`, when webhooks are on.
    fn call_event(
        &mut self,
        call_id: &str,
        name: &str,
        user: &str,
        caller: &str,
        media: crate::model::MediaType,
    ) {
        if !self.config.webhooks {
            return;
        }
        let event = super::webhook::CallEvent {
            event_type: name.to_owned(),
            call_id: call_id.to_owned(),
            user_id: user.to_owned(),
            caller: caller.to_owned(),
            media_type: media.as_str().to_owned(),
            event_ts: self.now_millis,
        };
        self.out.push_back(Output::CallEvent(event));
    }

    fn send_to_user(&mut self, user: &str, message: ServerMessage) {
        if let Some(session) = self.online.get(user).copied() {
            self.send(session, message);
        }
    }

    /// Tells the driver to close `session`, and forgets it; its user leaves its calls now
    /// (the server closed it: it is not coming back to them).
    fn close_session(&mut self, session: SessionId) {
        match self.node_of_session(session) {
            Some(_) => {
                if let Some(user) = self.sessions.get(&session).and_then(|s| s.user_id.clone()) {
                    self.emit_close(session, user);
                }
            }
            None => self.out.push_back(Output::Close { session }),
        }
        self.close_holding(session, false);
    }

    /// Answers a request with an error, counts and (within limits) records it, and changes
    /// nothing else; a connection refused too often is closed.
    fn refuse(
        &mut self,
        session: SessionId,
        now_millis: u64,
        error: &CallError,
        call_id: Option<&str>,
    ) {
        self.refuse_request(session, now_millis, error, call_id, None);
    }

    /// [`Switchboard::refuse`], naming the refused request's type in the answer.
    fn refuse_request(
        &mut self,
        session: SessionId,
        now_millis: u64,
        error: &CallError,
        call_id: Option<&str>,
        request: Option<&str>,
    ) {
        let error = CallError::new(
            error.code,
            quote_untrusted(&error.message, MAX_RECORDED_CHARS),
        );
        *self.counts.by_code.entry(error.code.code()).or_default() += 1;
        if let Some(request) = request {
            // A refused share leaves the call alone: answered, counted, never closing.
            let mut answer = ServerMessage::error(&error, call_id);
            if let ServerMessage::Error { request: named, .. } = &mut answer {
                *named = Some(request.to_owned());
            }
            self.send(session, answer);
            return;
        }
        let user = self
            .sessions
            .get(&session)
            .and_then(|state| state.user_id.clone())
            .unwrap_or_else(|| format!("session {session}"));
        self.record_refusal(session, now_millis, &user, &error);
        self.send(session, ServerMessage::error(&error, call_id));
        let limits = self.config.limits;
        let abusive = self
            .sessions
            .get(&session)
            .is_some_and(|state| state.refusals.count > limits.refusals_before_close);
        if abusive {
            self.counts.closed += 1;
            let error = CallError::new(
                ErrorCode::RequestRefused,
                "too many refused requests: the connection is closed",
            );
            self.send(session, ServerMessage::error(&error, None));
            self.close_session(session);
        }
    }

    fn record_refusal(
        &mut self,
        session: SessionId,
        now_millis: u64,
        user: &str,
        error: &CallError,
    ) {
        let limits = self.config.limits;
        let Some(state) = self.sessions.get_mut(&session) else {
            return;
        };
        let refusals = &mut state.refusals;
        if now_millis.saturating_sub(refusals.window_start_millis) >= limits.abuse_window_millis {
            refusals.window_start_millis = now_millis;
            refusals.count = 0;
            refusals.recorded = 0;
        }
        refusals.count += 1;
        if refusals.recorded >= limits.refusals_recorded || !self.records.take(1, now_millis) {
            refusals.unrecorded += 1;
            return;
        }
        refusals.recorded += 1;
        let unrecorded = std::mem::take(&mut refusals.unrecorded);
        self.out.push_back(Output::Refused {
            user: quote_untrusted(user, 40),
            error: error.clone(),
            unrecorded,
        });
    }

    fn remember_ended(&mut self, call: CallKey, members: BTreeSet<String>) {
        if self.ended.len() >= ENDED_MEMORY
            && let Some(oldest) = self.ended.pop_front()
        {
            self.ended_members.remove(&oldest);
            self.shared.remove(&oldest);
            self.unname(&oldest);
        }
        self.name(&call);
        if self.ended_members.insert(call.clone(), members).is_none() {
            self.ended.push_back(call);
        }
    }

    /// Finds `call` by its id from now on.
    fn name(&mut self, call: &CallKey) {
        let named = self.named.entry(call.id.clone()).or_default();
        if !named.contains(call) {
            named.push(call.clone());
        }
    }

    /// Forgets `call`'s id, unless it is still in progress.
    fn unname(&mut self, call: &CallKey) {
        if self.calls.contains_key(call) {
            return;
        }
        if let Some(named) = self.named.get_mut(&call.id) {
            named.retain(|other| other != call);
            if named.is_empty() {
                self.named.remove(&call.id);
            }
        }
    }

    /// The call `user` means by `id`: the one by that id it is in or invited into (here or
    /// homed on another node), or that it left or saw end; else `id` in `user`'s own
    /// namespace (a call it may place, or none). A user is never in two calls of one id (an
    /// invitation into a second is answered busy), so the answer is one call, and it depends
    /// on `user`'s own calls alone.
    fn call_named(&self, user: &str, id: &str) -> CallKey {
        let by_id = |key: &&CallKey| key.id == id;
        let current = self
            .calls_of_user
            .get(user)
            .into_iter()
            .flatten()
            .find(by_id);
        let remote = || self.cluster.remote_call_named(user, id);
        let former = || {
            self.named.get(id)?.iter().find(|key| {
                self.calls
                    .get(*key)
                    .is_some_and(|record| record.left.contains(user))
                    || self
                        .ended_members
                        .get(*key)
                        .is_some_and(|members| members.contains(user))
            })
        };
        current
            .or_else(remote)
            .or_else(former)
            .cloned()
            .unwrap_or_else(|| CallKey::new(user, id))
    }

    /// Whether `user` is in or invited into a call by the id `id` (here or elsewhere).
    fn in_call_named(&self, user: &str, id: &str) -> bool {
        let by_id = |key: &CallKey| key.id == id;
        self.calls_of_user
            .get(user)
            .is_some_and(|calls| calls.iter().any(by_id))
            || self.cluster.remote_call_named(user, id).is_some()
    }
}
