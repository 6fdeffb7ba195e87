//! How the engine's reports reach the UI: the state through a latest-value slot (a slow reader
//! sees the newest state, never a stale queue that lost the current one), notices through a
//! bounded channel, and a wake-up after either.

use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender};

use super::messages::{EngineMsg, EngineState};

/// Notices waiting for the UI; when full, new notices are dropped (they are lines for a status
/// bar, and the newest state is in the slot anyway).
pub const NOTICE_CAPACITY: usize = 64;

/// The newest engine state and its generation. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct StateSlot {
    inner: Arc<Mutex<(u64, EngineState)>>,
}

impl StateSlot {
    /// Replaces the state with `state` of `generation`.
    pub fn publish(&self, generation: u64, state: &EngineState) {
        let mut slot = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.0 != generation {
            *slot = (generation, state.clone());
        }
    }

    /// The state if it is newer than generation `seen`, with its generation.
    pub fn newer_than(&self, seen: u64) -> Option<(u64, EngineState)> {
        let slot = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (slot.0 != seen).then(|| (slot.0, slot.1.clone()))
    }

    /// The newest state.
    pub fn latest(&self) -> EngineState {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }
}

/// Where a client's reports go: a UI's slot, channel and wake-up, or nowhere (a demo peer).
#[derive(Clone, Default)]
pub struct Reports {
    state: Option<StateSlot>,
    notices: Option<Sender<EngineMsg>>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Reports")
            .field("state", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

impl Reports {
    /// Reports that go nowhere.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reports into `state`, with notices on a new channel (its receiver is returned) and
    /// `wake` called after each.
    pub fn to_ui(
        state: StateSlot,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> (Self, Receiver<EngineMsg>) {
        let (sender, receiver) = crossbeam_channel::bounded(NOTICE_CAPACITY);
        let reports = Self {
            state: Some(state),
            notices: Some(sender),
            wake: Some(wake),
        };
        (reports, receiver)
    }

    /// Reports the state only, into `state`.
    pub fn to_slot(state: StateSlot) -> Self {
        Self {
            state: Some(state),
            ..Self::default()
        }
    }

    /// Publishes the state of `generation`.
    pub fn state(&self, generation: u64, state: &EngineState) {
        if let Some(slot) = &self.state {
            slot.publish(generation, state);
            self.wake();
        }
    }

    /// Says something once.
    pub fn notice(&self, text: String) {
        if let Some(notices) = &self.notices {
            let _ = notices.try_send(EngineMsg::Notice(text));
            self.wake();
        }
    }

    /// Wakes the reader (after a new timeline entry, for example).
    pub fn wake(&self) {
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StateSlot;
    use crate::engine::messages::{ConnectionState, EngineState};

    #[test]
    fn a_reader_that_falls_behind_still_gets_the_newest_state() {
        let slot = StateSlot::default();
        let mut state = EngineState::default();
        for generation in 1..=10_000 {
            state.connection = if generation % 2 == 0 {
                ConnectionState::Online
            } else {
                ConnectionState::Connecting
            };
            slot.publish(generation, &state);
        }
        let (generation, newest) = slot.newer_than(0).expect("a state");
        assert_eq!(generation, 10_000);
        assert_eq!(newest.connection, ConnectionState::Online);
        assert!(slot.newer_than(10_000).is_none());
    }
}
