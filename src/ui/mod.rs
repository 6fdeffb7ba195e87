//! The GUI: an eframe window that only draws. It polls the engine's channel each frame and shows
//! the call, the callback switches and the timeline in docked panels; slow work (filters,
//! SQLite, exports) runs on its worker.

mod app;
mod call_view;
mod command;
mod debug_panel;
mod dialer;
mod inspector;
mod json_tree;
mod layout;
mod model;
mod network;
mod settings;
mod stats_panel;
mod swimlane;
mod timeline_panel;
mod video;
mod worker;

pub use app::{AppOptions, CallscopeApp};
pub use command::UiCommand;
pub use layout::{Layout, Pane, default_layout};
pub use model::Model;
pub use settings::Settings;
pub use timeline_panel::{Filters, TimelinePanel};
pub use worker::RecentCall;

/// Why the window could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuiError {
    /// There is no display to open a window on.
    #[error(
        "no display: DISPLAY and WAYLAND_DISPLAY are unset; run callscope on a desktop, or under a \
         virtual display with `xvfb-run -a callscope`"
    )]
    NoDisplay,
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The window system failed.
    #[error("the window could not open: {0}")]
    Window(String),
}

/// Opens the window at `size` (points; otherwise where it was when last closed, or 1200x800)
/// and runs until it is closed.
pub fn run(
    options: AppOptions,
    renderer: eframe::Renderer,
    size: Option<[f32; 2]>,
) -> Result<(), GuiError> {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    if !has_display {
        return Err(GuiError::NoDisplay);
    }
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(format!("callscope: {}", options.user_id))
            .with_inner_size(size.unwrap_or([1200.0, 800.0]))
            .with_min_inner_size([640.0, 480.0]),
        renderer,
        // A size asked for wins over the one remembered.
        persist_window: size.is_none(),
        ..Default::default()
    };
    let mut start_error = None;
    let result = eframe::run_native(
        "callscope",
        native,
        Box::new(|cc| {
            // The window system restores the size it had when last closed; one asked for wins.
            if let Some(size) = size {
                cc.egui_ctx
                    .send_viewport_cmd(egui::ViewportCommand::InnerSize(size.into()));
            }
            match CallscopeApp::new(&cc.egui_ctx, options) {
                Ok(app) => Ok(Box::new(app)),
                Err(error) => {
                    let message = error.to_string();
                    start_error = Some(error);
                    Err(message.into())
                }
            }
        }),
    );
    if let Some(error) = start_error {
        return Err(error.into());
    }
    result.map_err(|error| GuiError::Window(error.to_string()))
}
