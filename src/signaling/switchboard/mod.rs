//! `Switchboard`: the sans-IO core of the signaling server. Sessions log in, calls are routed,
//! every action is authorized; the network driver only moves frames in and out.

mod calls;
mod record;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::model::{CallError, ErrorCode};

use super::protocol::{ClientMessage, Contact, PROTOCOL_VERSION, ServerMessage, decode_client};
use super::usersig::{self, UserSigError};
use record::CallRecord;

/// A connection's number, given by the driver.
pub type SessionId = u64;

/// At most this many online users are listed in a contact list (besides the demo peers): the
/// list is for picking someone to call, and its size must not grow with the server's load.
const MAX_LISTED_USERS: usize = 20;

/// How many ended call ids are remembered, to answer late requests with "already ended".
const ENDED_MEMORY: usize = 4096;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `message` to `session`.
    Send {
        /// The connection.
        session: SessionId,
        /// The message.
        message: ServerMessage,
    },
    /// Close `session` after what was sent to it.
    Close {
        /// The connection.
        session: SessionId,
    },
    /// A request was refused (the error went to its sender); for the server's timeline.
    Refused {
        /// Who sent it: the user, or `session N` before log-in.
        user: String,
        /// Why it was refused.
        error: CallError,
    },
}

/// Settings of a switchboard.
#[derive(Debug, Clone)]
pub struct SwitchboardConfig {
    /// The secret UserSigs are signed with.
    pub secret: Vec<u8>,
    /// The app id UserSigs must name.
    pub app_id: u64,
    /// Built-in peers listed first in every contact list.
    pub demo_contacts: Vec<Contact>,
}

#[derive(Debug, Clone, Default)]
struct Session {
    user_id: Option<String>,
    expires_at_secs: u64,
}

/// The signaling server's state: sessions, who is online, and every call in progress.
#[derive(Debug)]
pub struct Switchboard {
    config: SwitchboardConfig,
    sessions: HashMap<SessionId, Session>,
    online: HashMap<String, SessionId>,
    /// The same users, sorted, for contact lists.
    online_sorted: BTreeSet<String>,
    calls: HashMap<String, CallRecord>,
    calls_of_user: HashMap<String, HashSet<String>>,
    ended: VecDeque<String>,
    ended_set: HashSet<String>,
    out: VecDeque<Output>,
}

impl Switchboard {
    /// An empty switchboard.
    pub fn new(config: SwitchboardConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            online: HashMap::new(),
            online_sorted: BTreeSet::new(),
            calls: HashMap::new(),
            calls_of_user: HashMap::new(),
            ended: VecDeque::new(),
            ended_set: HashSet::new(),
            out: VecDeque::new(),
        }
    }

    /// How many connections are open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many users are logged in.
    pub fn online_count(&self) -> usize {
        self.online.len()
    }

    /// How many calls are in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A connection opened.
    pub fn open(&mut self, session: SessionId) {
        self.sessions.insert(session, Session::default());
    }

    /// A connection closed (by either side): its user goes offline and leaves its calls.
    pub fn close(&mut self, session: SessionId) {
        let Some(state) = self.sessions.remove(&session) else {
            return;
        };
        if let Some(user) = state.user_id
            && self.online.get(&user) == Some(&session)
        {
            self.online.remove(&user);
            self.online_sorted.remove(&user);
            self.leave_all_calls(&user);
        }
    }

    /// A frame larger than the protocol allows arrived; it is refused, the session stays.
    pub fn handle_oversized(&mut self, session: SessionId, bytes: usize) {
        let error = super::protocol::DecodeError::TooLarge(bytes).to_call_error();
        self.refuse(session, &error, None);
    }

    /// A binary frame arrived; the protocol is text only, so it is refused.
    pub fn handle_binary(&mut self, session: SessionId) {
        let error = CallError::new(
            ErrorCode::InvalidParameter,
            "binary frames are not part of the protocol; send JSON text",
        );
        self.refuse(session, &error, None);
    }

    /// A text frame arrived at `now_secs` (Unix time).
    pub fn handle_frame(&mut self, session: SessionId, now_secs: u64, frame: &str) {
        if !self.sessions.contains_key(&session) {
            return;
        }
        match decode_client(frame) {
            Err(error) => self.refuse(session, &error.to_call_error(), None),
            Ok(message) => self.handle_message(session, now_secs, message),
        }
    }

    /// Time passed: sessions whose UserSig expired are told so and closed.
    pub fn handle_tick(&mut self, now_secs: u64) {
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, state)| state.user_id.is_some() && state.expires_at_secs <= now_secs)
            .map(|(session, _)| *session)
            .collect();
        for session in expired {
            self.send(session, ServerMessage::UserSigExpired);
            self.out.push_back(Output::Close { session });
            self.close(session);
        }
    }

    fn handle_message(&mut self, session: SessionId, now_secs: u64, message: ClientMessage) {
        let user = self.sessions.get(&session).and_then(|s| s.user_id.clone());
        match (message, user) {
            (
                ClientMessage::Login {
                    version,
                    user_id,
                    user_sig,
                },
                None,
            ) => self.log_in(session, now_secs, version, user_id, &user_sig),
            (ClientMessage::Login { .. }, Some(_)) => {
                let error = CallError::new(ErrorCode::RequestRepeated, "already logged in");
                self.refuse(session, &error, None);
            }
            (ClientMessage::Ping { nonce }, _) => self.send(session, ServerMessage::Pong { nonce }),
            (_, None) => {
                let error = CallError::new(ErrorCode::NotLoggedIn, "log in first");
                self.refuse(session, &error, None);
            }
            (ClientMessage::Contacts, Some(user)) => {
                let contacts = self.contacts_for(&user);
                self.send(session, ServerMessage::Contacts { contacts });
            }
            (message, Some(user)) => self.handle_call_message(session, &user, message),
        }
    }

    fn log_in(
        &mut self,
        session: SessionId,
        now_secs: u64,
        version: u32,
        user_id: String,
        user_sig: &str,
    ) {
        if version != PROTOCOL_VERSION {
            let error = CallError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "protocol version {version} is not supported (this server speaks {PROTOCOL_VERSION})"
                ),
            );
            self.refuse(session, &error, None);
            return;
        }
        let secret = self.config.secret.clone();
        let claims =
            match usersig::verify(&secret, user_sig, &user_id, self.config.app_id, now_secs) {
                Ok(claims) => claims,
                Err(error @ UserSigError::Expired { .. }) => {
                    self.record_refusal(&user_id, &error.to_call_error());
                    self.send(session, ServerMessage::UserSigExpired);
                    self.out.push_back(Output::Close { session });
                    self.close(session);
                    return;
                }
                Err(error) => {
                    self.refuse(session, &error.to_call_error(), None);
                    return;
                }
            };
        if let Some(previous) = self.online.get(&user_id).copied() {
            let by = format!("a new log-in of {user_id} (session {session})");
            self.send(previous, ServerMessage::Kicked { by });
            self.out.push_back(Output::Close { session: previous });
            self.close(previous);
        }
        if let Some(state) = self.sessions.get_mut(&session) {
            state.user_id = Some(user_id.clone());
            state.expires_at_secs = claims.expires_at();
        }
        self.online.insert(user_id.clone(), session);
        self.online_sorted.insert(user_id.clone());
        let contacts = self.contacts_for(&user_id);
        self.send(
            session,
            ServerMessage::Welcome {
                version: PROTOCOL_VERSION,
                user_id,
                contacts,
            },
        );
    }

    /// Demo peers first, then up to [`MAX_LISTED_USERS`] others online (by name), without the
    /// user themself.
    fn contacts_for(&self, user: &str) -> Vec<Contact> {
        let demo_ids: HashSet<&str> = self
            .config
            .demo_contacts
            .iter()
            .map(|contact| contact.user_id.as_str())
            .collect();
        let others: Vec<&String> = self
            .online_sorted
            .iter()
            .filter(|id| id.as_str() != user && !demo_ids.contains(id.as_str()))
            .take(MAX_LISTED_USERS)
            .collect();
        let demos = self.config.demo_contacts.iter().map(|contact| Contact {
            online: self.online.contains_key(&contact.user_id),
            ..contact.clone()
        });
        demos
            .chain(others.into_iter().map(|user_id| Contact {
                user_id: user_id.clone(),
                online: true,
                demo: None,
            }))
            .collect()
    }

    fn send(&mut self, session: SessionId, message: ServerMessage) {
        self.out.push_back(Output::Send { session, message });
    }

    fn send_to_user(&mut self, user: &str, message: ServerMessage) {
        if let Some(session) = self.online.get(user).copied() {
            self.send(session, message);
        }
    }

    /// Answers a request with an error, records it, and changes nothing else.
    fn refuse(&mut self, session: SessionId, error: &CallError, call_id: Option<&str>) {
        let user = self
            .sessions
            .get(&session)
            .and_then(|state| state.user_id.clone())
            .unwrap_or_else(|| format!("session {session}"));
        self.record_refusal(&user, error);
        self.send(session, ServerMessage::error(error, call_id));
    }

    fn record_refusal(&mut self, user: &str, error: &CallError) {
        self.out.push_back(Output::Refused {
            user: user.to_owned(),
            error: error.clone(),
        });
    }

    fn remember_ended(&mut self, call_id: String) {
        if self.ended.len() >= ENDED_MEMORY
            && let Some(oldest) = self.ended.pop_front()
        {
            self.ended_set.remove(&oldest);
        }
        self.ended_set.insert(call_id.clone());
        self.ended.push_back(call_id);
    }
}
