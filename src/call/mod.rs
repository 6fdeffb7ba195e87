//! The sans-IO call core: statuses, legal transitions, and the machine that drives one user's calls.
//!
//! Nothing here owns a thread, a socket or a clock: time is an input. See [`CallMachine`].

mod active;
mod answer;
mod error;
mod input;
mod local;
mod machine;
mod signal;
mod status;
mod types;

pub use active::MemberState;
pub use error::{CallError, ErrorCode};
pub use input::{Action, Emitted, Input, Signal};
pub use machine::{CallMachine, MAX_PARTICIPANTS};
pub use status::CallStatus;
pub use types::{CallType, EndReason, MediaType, MonoTime, Role, ViewMode};
