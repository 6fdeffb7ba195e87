//! `UiCommand`: what a panel asks for; the app applies them in one place after layout.

use std::sync::Arc;

use crate::engine::EngineCommand;
use crate::event::CallbackKind;
use crate::timeline::{ExportFormat, TimelineEntry};

use super::layout::Pane;

/// An intent from a panel.
#[derive(Debug, Clone, PartialEq)]
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
    /// Import an export from another machine (a file dropped on the window).
    Import(std::path::PathBuf),
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Pause or resume following new timeline entries.
    ToggleFollow,
    /// Select a timeline entry (or nothing) for the inspector and swimlane.
    Select(Option<Arc<TimelineEntry>>),
    /// Open a panel again.
    OpenPane(Pane),
    /// Close a panel.
    ClosePane(Pane),
    /// Every panel back to where it was at the first start.
    ResetLayout,
}
