//! `Model`: what the engine last reported, as the panels read it each frame.

use std::time::Instant;

use crate::callbacks::CallbackKind;
use crate::engine::{CallSnapshot, ConnectionState, EngineMsg};
use crate::signaling::Contact;

/// The engine's state as last reported, plus counters the panels show.
#[derive(Debug)]
pub struct Model {
    /// The local user.
    pub user_id: String,
    /// The signaling connection.
    pub connection: ConnectionState,
    /// Who can be called.
    pub contacts: Vec<Contact>,
    /// The call.
    pub call: CallSnapshot,
    /// When the current call connected.
    pub connected_at: Option<Instant>,
    /// Entries per kind seen in this run.
    pub counts: [u64; CallbackKind::COUNT],
    /// A line for the status bar (the last export, an error).
    pub notice: Option<String>,
}

impl Model {
    /// The model of a fresh start.
    pub fn new(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            connection: ConnectionState::Connecting,
            contacts: Vec::new(),
            call: CallSnapshot::default(),
            connected_at: None,
            counts: [0; CallbackKind::COUNT],
            notice: None,
        }
    }

    /// Takes one report of the engine.
    pub fn apply(&mut self, message: EngineMsg) {
        match message {
            EngineMsg::Connection(state) => self.connection = state,
            EngineMsg::Contacts(contacts) => self.contacts = contacts,
            EngineMsg::Call(snapshot) => {
                let calling = snapshot
                    .status
                    .is_some_and(crate::call::CallStatus::is_calling);
                if !calling {
                    self.connected_at = None;
                } else if self.connected_at.is_none() {
                    self.connected_at = Some(Instant::now());
                }
                self.call = snapshot;
            }
        }
    }

    /// The status now (idle when none was reported).
    pub fn status(&self) -> crate::call::CallStatus {
        self.call.status.unwrap_or(crate::call::CallStatus::Idle)
    }
}
