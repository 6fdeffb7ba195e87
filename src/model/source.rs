//! `Source`: which kind of input caused an occurrence (the timeline's `source` field).

use serde::{Deserialize, Serialize};

/// Which kind of input caused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The local user's action (dial, accept, hang up, …).
    Local,
    /// Signaling: the server or another participant.
    Remote,
    /// The engine itself: timers, media, devices.
    Engine,
    /// The user interface (minimize, restore, switches).
    Ui,
}

impl Source {
    /// Every source.
    pub const ALL: [Self; 4] = [Self::Local, Self::Remote, Self::Engine, Self::Ui];

    /// `local`, `remote`, `engine` or `ui`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Remote => "remote",
            Self::Engine => "engine",
            Self::Ui => "ui",
        }
    }
}
