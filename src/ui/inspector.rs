//! The inspector: the selected entry as a JSON tree (indented, folding, any value copied), what
//! its handler got (closure time, or suppressed), and its neighbours in its call.

use std::sync::Arc;

use crate::timeline::{Delivery, Origin, TimelineEntry, date_time};

use super::json_tree::json_tree_ui;
use super::timeline_panel::span_text;

/// Neighbours shown on each side of the entry.
const NEIGHBOURS: usize = 3;

/// Draws the inspector; returns a neighbour the user clicked.
pub fn inspector_ui(
    ui: &mut egui::Ui,
    entry: Option<&Arc<TimelineEntry>>,
    call_entries: Option<&[Arc<TimelineEntry>]>,
) -> Option<Arc<TimelineEntry>> {
    let Some(entry) = entry else {
        ui.add(
            egui::Label::new(
                egui::RichText::new(
                    "Click a row of the timeline, or a mark of the swimlane, to inspect it.",
                )
                .weak(),
            )
            .wrap(),
        );
        return None;
    };
    let mut picked = None;
    let json = serde_json::to_value(&**entry).unwrap_or_default();
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!("Entry #{}", entry.seq));
        ui.label(entry.kind().as_str());
        if ui
            .button("Copy entry")
            .on_hover_text("Copy the whole entry as JSON")
            .clicked()
        {
            ui.ctx()
                .copy_text(serde_json::to_string_pretty(&json).unwrap_or_default());
        }
    });
    // A new entry starts at the top: the scroll position is kept per entry.
    egui::ScrollArea::vertical()
        .id_salt(("inspector", entry.seq))
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let handler = match (entry.origin, entry.delivery) {
                (Origin::Server, _) => "The server's record: no handler runs for it.".to_owned(),
                (Origin::Peer, Delivery::Delivered) => format!(
                    "Delivered on {}'s side: its handler ran for {} µs.",
                    entry.user_id, entry.handler_micros
                ),
                (Origin::Peer, Delivery::Suppressed) => format!(
                    "Suppressed on {}'s side: its switch was off.",
                    entry.user_id
                ),
                (Origin::Local, Delivery::Delivered) => format!(
                    "Delivered: the handler ran for {} µs.",
                    entry.handler_micros
                ),
                (Origin::Local, Delivery::Suppressed) => {
                    "Suppressed: its switch was off, the closure was not called.".to_owned()
                }
            };
            ui.add(egui::Label::new(handler).wrap());
            ui.weak(format!(
                "Recorded {} UTC by {} (run {}, caused by: {}).",
                date_time(entry.at.wall_millis),
                entry.user_id,
                entry.run,
                entry.source.as_str()
            ));
            let side = side_text(entry);
            if let Some(side) = side {
                ui.add(egui::Label::new(egui::RichText::new(side).italics()).wrap());
            }
            if let Some(call_id) = &entry.call_id {
                egui::CollapsingHeader::new(format!("In call {call_id}"))
                    .id_salt("neighbours")
                    .default_open(true)
                    .show(ui, |ui| match call_entries {
                        Some(entries) => picked = neighbours_ui(ui, entry, entries),
                        None => {
                            ui.weak("reading the call...");
                        }
                    });
            }
            ui.separator();
            json_tree_ui(ui, egui::Id::unique(("entry json", entry.seq)), &json);
        });
    picked
}

/// Whose side an entry is, and how its time was put on our clock; `None` for our own.
fn side_text(entry: &TimelineEntry) -> Option<String> {
    let clock = match (entry.origin, entry.clock_error_micros, &entry.session) {
        (Origin::Local, ..) => String::new(),
        (_, Some(error), _) => format!(
            " Its time is on our clock through the server's: the true time lies within \
             ± {:.3} ms of it (both clocks' offsets to the server, from ping round \
             trips), moved if need be so that every signaling message is received after \
             it was sent.",
            error as f64 / 1000.0
        ),
        (Origin::Peer, None, Some(_)) => " Its time is its machine's, moved so that \
             every signaling message is received after it was sent."
            .to_owned(),
        (Origin::Peer, None, None) => {
            " Its time is on our clock (a demo peer shares it; a shared entry without \
             a clock offset is placed at its receipt)."
                .to_owned()
        }
        (Origin::Server, None, _) => {
            " Its time is its receipt here (our offset to the server's clock was not \
             known yet)."
                .to_owned()
        }
    };
    match entry.origin {
        Origin::Local => None,
        Origin::Peer => Some(format!(
            "Another side of the call: {}'s kit recorded it{}.{clock}",
            entry.user_id,
            entry
                .session
                .as_deref()
                .map_or_else(String::new, |session| format!(" ({session})"))
        )),
        Origin::Server => Some(format!("The server's record of the call.{clock}")),
    }
}

fn neighbours_ui(
    ui: &mut egui::Ui,
    entry: &TimelineEntry,
    entries: &[Arc<TimelineEntry>],
) -> Option<Arc<TimelineEntry>> {
    let Some(position) = entries.iter().position(|other| other.seq == entry.seq) else {
        ui.weak("not among the call's entries read");
        return None;
    };
    let from = position.saturating_sub(NEIGHBOURS);
    let to = (position + NEIGHBOURS + 1).min(entries.len());
    ui.weak(format!(
        "entry {} of {} in this call",
        position + 1,
        entries.len()
    ));
    let mut picked = None;
    for other in &entries[from..to] {
        let offset = (other.wall_micros().cast_signed() - entry.wall_micros().cast_signed()) / 1000;
        let this = other.seq == entry.seq;
        let text = format!(
            "#{} {} {}: {}",
            other.seq,
            if this {
                "this".to_owned()
            } else {
                span_text(offset)
            },
            other.kind(),
            other.event
        );
        let response = ui.add(egui::Button::selectable(this, text).truncate());
        if response.clicked() && !this {
            picked = Some(Arc::clone(other));
        }
    }
    picked
}
