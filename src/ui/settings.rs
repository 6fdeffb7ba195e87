//! `Settings`: what the app remembers across restarts (switches, theme, devices, ringing, the
//! layout of the panels), apart from runtime state.

use serde::{Deserialize, Serialize};

use crate::event::KindSet;
use crate::media::DeviceChoices;

/// Persisted settings of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The callbacks switched on.
    pub enabled: KindSet,
    /// Dark theme (light otherwise).
    pub dark: bool,
    /// The camera, microphone and speaker chosen in the Devices menus.
    pub devices: DeviceChoices,
    /// Whether ringing is private (nothing reaches a caller before the accept).
    pub private_ringing: bool,
    /// Whether our callbacks of each call are shared with its other participants.
    pub share_trace: bool,
    /// The docked layout of the panels, as the user left it (the default layout when unset).
    pub layout: Option<super::layout::Layout>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: KindSet::all(),
            dark: true,
            devices: DeviceChoices::default(),
            private_ringing: true,
            share_trace: false,
            layout: None,
        }
    }
}

/// The file the settings live in, inside the data directory.
pub const SETTINGS_FILE: &str = "settings.json";

impl Settings {
    /// Reads the settings from `data_dir`, or the defaults if there are none (or they are damaged).
    pub fn load(data_dir: &std::path::Path) -> Self {
        std::fs::read(data_dir.join(SETTINGS_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the settings to `data_dir`.
    pub fn save(&self, data_dir: &std::path::Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let path = data_dir.join(SETTINGS_FILE);
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, json)?;
        std::fs::rename(partial, path)
    }
}
