//! The vocabulary every layer shares: call statuses, media types, view modes, end reasons,
//! error codes, where an occurrence came from, and monotonic time. It imports nothing of
//! callscope's own, so every other module may use it.

mod error;
pub mod ids;
mod source;
mod status;
mod types;

pub use error::{CallError, ErrorCode};
pub use source::Source;
pub use status::CallStatus;
pub use types::{CallType, EndReason, MediaType, MonoTime, QualityLimitation, Role, ViewMode};

/// Most people in one call, the local user included (TUICallKit's group limit).
pub const MAX_PARTICIPANTS: usize = 9;
