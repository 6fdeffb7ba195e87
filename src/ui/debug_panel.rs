//! The debug side panel: a switch per callback and engine event (the five component callbacks
//! first), a live count per kind, all on / all off, and "Simulate log-in elsewhere".

use crate::engine::EngineCommand;
use crate::event::{CallbackKind, KindSet};

use super::command::UiCommand;
use super::model::Model;

/// Draws the switches; changes come back as commands.
pub fn debug_panel_ui(
    ui: &mut egui::Ui,
    enabled: KindSet,
    model: &Model,
    commands: &mut Vec<UiCommand>,
) {
    ui.heading("Callbacks");
    ui.label("Switched-off callbacks are not called; their entries are kept as suppressed.");
    ui.horizontal(|ui| {
        if ui.button("All on").clicked() {
            commands.push(UiCommand::SetAllSwitches(true));
        }
        if ui.button("All off").clicked() {
            commands.push(UiCommand::SetAllSwitches(false));
        }
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("switches")
        .max_height(ui.available_height() - 60.0)
        .show(ui, |ui| {
            ui.strong("Component callbacks");
            for kind in CallbackKind::COMPONENT {
                switch_row_ui(ui, kind, enabled, model, commands);
            }
            ui.add_space(6.0);
            ui.strong("Engine events");
            for kind in CallbackKind::ALL
                .iter()
                .copied()
                .filter(|k| !k.is_component())
            {
                switch_row_ui(ui, kind, enabled, model, commands);
            }
        });
    ui.separator();
    let response = ui.button("Simulate log-in elsewhere");
    if response
        .on_hover_text("Logs this user in from a second session: kickedOut fires here")
        .clicked()
    {
        commands.push(UiCommand::Engine(EngineCommand::SimulateLoginElsewhere));
    }
}

fn switch_row_ui(
    ui: &mut egui::Ui,
    kind: CallbackKind,
    enabled: KindSet,
    model: &Model,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal(|ui| {
        let mut on = enabled.contains(kind);
        if ui.checkbox(&mut on, kind.as_str()).changed() {
            commands.push(UiCommand::SetSwitch(kind, on));
        }
        let count = model.counts[kind.index()];
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(format!("{count}"));
        });
    });
}
