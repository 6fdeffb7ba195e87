//! The timeline panel: a virtualized table of entries that follows new ones, filters by kind,
//! call and text, an inspector with the pretty-printed entry, export, and earlier runs.

use std::sync::Arc;

use egui_extras::{Column, TableBuilder};

use crate::event::CallbackKind;
use crate::timeline::{Delivery, ExportFormat, Query, Store, Timeline, TimelineEntry, clock_time};

use super::command::UiCommand;
use super::swimlane::swimlane_ui;

const ROW_HEIGHT: f32 = 18.0;

/// The newest stored entries loaded when earlier runs are shown; the CLI reads any number.
const EARLIER_RUNS_LIMIT: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filters {
    kind: Option<CallbackKind>,
    call_id: String,
    text: String,
    earlier_runs: bool,
}

impl Filters {
    fn query(&self) -> Query {
        let non_empty = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
        let mut query = Query {
            call_id: non_empty(&self.call_id),
            text: non_empty(&self.text),
            ..Query::all()
        };
        if let Some(kind) = self.kind {
            query = query.kind(kind);
        }
        query
    }
}

/// What the timeline panel keeps between frames: the filters and the rows they let through.
#[derive(Debug, Default)]
pub struct TimelinePanel {
    filters: Filters,
    applied: Option<Filters>,
    /// The filters changed: show the newest rows again.
    jump_to_end: bool,
    rows: Vec<Arc<TimelineEntry>>,
    /// The newest sequence number looked at: the cursor into the in-memory timeline.
    last_seq: u64,
    selected: Option<u64>,
    /// Set to put the keyboard focus on the search field next frame.
    pub focus_search: bool,
}

impl TimelinePanel {
    /// The rows shown now.
    pub fn rows(&self) -> &[Arc<TimelineEntry>] {
        &self.rows
    }

    /// Brings the rows up to date: new entries are filtered as they arrive; a filter change
    /// starts over (from SQLite when earlier runs are shown).
    pub fn refresh(&mut self, timeline: &Timeline, store: Option<&Store>) {
        if self.applied.as_ref() != Some(&self.filters) {
            self.applied = Some(self.filters.clone());
            self.jump_to_end = true;
            self.rows.clear();
            self.last_seq = 0;
            if self.filters.earlier_runs
                && let Some(store) = store
            {
                // Entries not yet committed come from memory below, by sequence number.
                let query = Query {
                    limit: Some(EARLIER_RUNS_LIMIT),
                    ..self.filters.query()
                };
                if let Ok(stored) = store.query(&query) {
                    self.last_seq = stored.last().map_or(0, |entry| entry.seq);
                    self.rows.extend(stored.into_iter().map(Arc::new));
                }
            }
        }
        let newest = timeline.last_seq();
        if newest <= self.last_seq {
            return;
        }
        let fresh = timeline.query_since(self.last_seq, &self.filters.query());
        self.rows.extend(fresh);
        self.last_seq = newest;
    }

    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
        self.filters_ui(ui, commands);
        ui.separator();
        let selected = self
            .selected
            .and_then(|seq| self.rows.iter().find(|entry| entry.seq == seq).cloned());
        let call: Vec<Arc<TimelineEntry>> = selected
            .as_ref()
            .and_then(|entry| entry.call_id.as_deref())
            .map(|call_id| {
                self.rows
                    .iter()
                    .filter(|row| row.call_id.as_deref() == Some(call_id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        ui.columns(if selected.is_some() { 2 } else { 1 }, |columns| {
            self.table_ui(&mut columns[0]);
            if let Some(entry) = selected {
                if !call.is_empty() {
                    swimlane_ui(&mut columns[1], &call);
                }
                inspector_ui(&mut columns[1], &entry);
            }
        });
    }

    fn filters_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
        ui.horizontal_wrapped(|ui| {
            ui.strong("Timeline");
            let kind_label = self.filters.kind.map_or("All kinds", CallbackKind::as_str);
            egui::ComboBox::from_label("Kind")
                .selected_text(kind_label)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.filters.kind, None, "All kinds");
                    for kind in CallbackKind::ALL {
                        ui.selectable_value(&mut self.filters.kind, Some(*kind), kind.as_str());
                    }
                });
            let call_label = ui.label("Call");
            ui.add(
                egui::TextEdit::singleline(&mut self.filters.call_id)
                    .desired_width(110.0)
                    .hint_text("call id"),
            )
            .labelled_by(call_label.id);
            let search_label = ui.label("Search");
            let search = ui
                .add(
                    egui::TextEdit::singleline(&mut self.filters.text)
                        .desired_width(140.0)
                        .hint_text("text"),
                )
                .labelled_by(search_label.id);
            if std::mem::take(&mut self.focus_search) {
                search.request_focus();
            }
            ui.checkbox(&mut self.filters.earlier_runs, "Earlier runs");
            if ui.button("Export JSONL").clicked() {
                commands.push(UiCommand::Export(ExportFormat::JsonLines));
            }
            if ui.button("Export Perfetto").clicked() {
                commands.push(UiCommand::Export(ExportFormat::Perfetto));
            }
            ui.label(format!("{} entries", self.rows.len()));
        });
    }

    fn table_ui(&mut self, ui: &mut egui::Ui) {
        let rows = &self.rows;
        let mut clicked = None;
        // A click anywhere on a row selects it; cell text is not selectable text here.
        ui.style_mut().interaction.selectable_labels = false;
        let mut table = TableBuilder::new(ui)
            .id_salt("timeline")
            .striped(true)
            .stick_to_bottom(true);
        // New filters: the old scroll position means nothing in the new rows.
        if std::mem::take(&mut self.jump_to_end) && !rows.is_empty() {
            table = table.scroll_to_row(rows.len() - 1, Some(egui::Align::BOTTOM));
        }
        table
            .sense(egui::Sense::click())
            .column(Column::exact(48.0))
            .column(Column::exact(88.0))
            .column(Column::initial(110.0).clip(true))
            .column(Column::exact(52.0))
            .column(Column::initial(160.0).clip(true))
            .column(Column::remainder().clip(true))
            .header(ROW_HEIGHT, |mut header| {
                for title in ["seq", "time", "call", "source", "kind", "summary"] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(ROW_HEIGHT, rows.len(), |mut row| {
                    let entry = &rows[row.index()];
                    row.set_selected(self.selected == Some(entry.seq));
                    row.col(|ui| {
                        ui.label(entry.seq.to_string());
                    });
                    row.col(|ui| {
                        ui.label(clock_time(entry.at.wall_millis));
                    });
                    row.col(|ui| {
                        ui.label(entry.call_id.as_deref().unwrap_or("-"));
                    });
                    row.col(|ui| {
                        ui.label(entry.source.as_str());
                    });
                    row.col(|ui| {
                        let kind = entry.kind().as_str();
                        match entry.delivery {
                            Delivery::Delivered => ui.label(kind),
                            Delivery::Suppressed => ui.weak(format!("{kind} (suppressed)")),
                        };
                    });
                    row.col(|ui| {
                        ui.label(entry.event.to_string());
                    });
                    if row.response().clicked() {
                        clicked = Some(entry.seq);
                    }
                });
            });
        if let Some(seq) = clicked {
            self.selected = if self.selected == Some(seq) {
                None
            } else {
                Some(seq)
            };
        }
    }
}

fn inspector_ui(ui: &mut egui::Ui, entry: &TimelineEntry) {
    let json = serde_json::to_value(entry)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_default();
    ui.horizontal(|ui| {
        ui.strong(format!("Entry #{}", entry.seq));
        if ui.button("Copy").clicked() {
            ui.ctx().copy_text(json.clone());
        }
    });
    egui::ScrollArea::vertical()
        .id_salt("inspector")
        .show(ui, |ui| {
            ui.add(egui::Label::new(egui::RichText::new(json).monospace()).wrap());
        });
}
