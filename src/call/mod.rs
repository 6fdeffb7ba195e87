//! The sans-IO call core: the machine that drives one local user's calls through the statuses
//! and legal transitions of the contract.
//!
//! Nothing here owns a thread, a socket or a clock: time is an input, events and signaling
//! actions are outputs. It emits values and never records or dispatches them. See
//! [`CallMachine`].

mod active;
mod answer;
mod input;
mod local;
mod machine;
mod signal;

pub use active::MemberState;
pub use input::{Action, CallSignal, Input, Signal};
pub use machine::CallMachine;
