//! The callbacks panel: a switch per callback and engine event (the five component callbacks
//! first), each with a tooltip saying when it fires and what its handler gets, counts of the
//! entries delivered and suppressed, all on / all off, "Simulate log-in elsewhere", the
//! signaling cuts, and the Network section (impairments and media cuts).

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
    ui.add(
        egui::Label::new(
            "Switched-off callbacks are not called; their entries are kept as suppressed.",
        )
        .wrap(),
    );
    ui.horizontal_wrapped(|ui| {
        if ui.button("All on").clicked() {
            commands.push(UiCommand::SetAllSwitches(true));
        }
        if ui.button("All off").clicked() {
            commands.push(UiCommand::SetAllSwitches(false));
        }
        let response = ui.button("Simulate log-in elsewhere");
        if response
            .on_hover_text("Logs this user in from a second session: kickedOut fires here")
            .clicked()
        {
            commands.push(UiCommand::Engine(EngineCommand::SimulateLoginElsewhere));
        }
        for (label, secs, hint) in [
            (
                "Drop signaling 3 s",
                3,
                "Cuts the signaling connection for 3 s: the app reconnects, and a connected call \
                 goes on (the server holds it for 9 s)",
            ),
            (
                "Drop signaling 15 s",
                15,
                "Cuts the signaling connection for 15 s: longer than the grace, so a connected \
                 call ends by the server on both sides",
            ),
        ] {
            if ui.button(label).on_hover_text(hint).clicked() {
                commands.push(UiCommand::Engine(EngineCommand::CutSignaling {
                    for_millis: secs * 1000,
                }));
            }
        }
    });
    ui.separator();
    egui::ScrollArea::both()
        .id_salt("switches")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            // In the scrolled part, so a short panel still reaches every switch.
            let impaired = !model.link.every_peer.is_none()
                || model.link.peers.values().any(|link| !link.is_none());
            egui::CollapsingHeader::new(if impaired {
                "Network: impaired on purpose"
            } else {
                "Network"
            })
            .id_salt("network section")
            .show(ui, |ui| super::network::network_ui(ui, model, commands));
            egui::Grid::new("switch grid")
                .num_columns(3)
                .striped(true)
                .spacing([8.0, 2.0])
                .show(ui, |ui| {
                    ui.strong("Component");
                    ui.strong("ran")
                        .on_hover_text("Delivered: entries whose closure ran, in this run");
                    ui.strong("off").on_hover_text(
                        "Suppressed: entries recorded while the switch was off, in this run",
                    );
                    ui.end_row();
                    for kind in CallbackKind::COMPONENT {
                        switch_row_ui(ui, kind, enabled, model, commands);
                    }
                    ui.strong("Engine");
                    ui.end_row();
                    // The server's records run no handler of ours: nothing to switch.
                    for kind in CallbackKind::ALL
                        .iter()
                        .copied()
                        .filter(|kind| !kind.is_component() && *kind != CallbackKind::ServerEvent)
                    {
                        switch_row_ui(ui, kind, enabled, model, commands);
                    }
                });
        });
}

/// The tooltip of a switch: when it fires and what its handler gets.
pub fn switch_hint(kind: CallbackKind) -> String {
    let periodic = if kind.is_periodic() {
        "\nPeriodic: hidden in the timeline unless \"Hide periodic\" is off."
    } else {
        ""
    };
    format!(
        "{kind}\nFires: {}.\nPayload: {}{periodic}",
        kind.fires_when(),
        kind.payload_fields()
    )
}

fn switch_row_ui(
    ui: &mut egui::Ui,
    kind: CallbackKind,
    enabled: KindSet,
    model: &Model,
    commands: &mut Vec<UiCommand>,
) {
    let mut on = enabled.contains(kind);
    if ui
        .checkbox(&mut on, kind.as_str())
        .on_hover_text(switch_hint(kind))
        .changed()
    {
        commands.push(UiCommand::SetSwitch(kind, on));
    }
    let total = model.counts[kind.index()];
    let suppressed = model.suppressed[kind.index()];
    ui.label((total - suppressed).to_string());
    if suppressed > 0 {
        ui.weak(suppressed.to_string());
    } else {
        ui.weak("-");
    }
    ui.end_row();
}
