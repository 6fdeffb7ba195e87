//! Callbacks: the one event enum, its field-less kind, the switches, and the `CallKit` that binds
//! closures and records every occurrence into the timeline.

mod event;
mod kind;
mod kit;
mod switches;

pub use event::{CallStats, CallSummary, ConnectionState, Event, NetworkQuality};
pub use kind::{CallbackKind, KindSet};
pub use kit::{CallKit, CallKitBuilder, KickInfo, StatusChange};
pub use switches::Switches;
