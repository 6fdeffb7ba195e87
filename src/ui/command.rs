//! `UiCommand`: what a panel asks for; the app applies them in one place after layout.

use crate::engine::EngineCommand;
use crate::event::CallbackKind;
use crate::timeline::ExportFormat;

/// An intent from a panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiCommand {
    /// Send this to the engine.
    Engine(EngineCommand),
    /// Turn one callback's switch on or off.
    SetSwitch(CallbackKind, bool),
    /// Turn every switch on or off.
    SetAllSwitches(bool),
    /// Switch between dark and light.
    ToggleTheme,
    /// Export the timeline rows shown now.
    Export(ExportFormat),
}
