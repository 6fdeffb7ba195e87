//! The timeline as a debugger: a virtualized table that follows new entries until paused, kind
//! chips and "hide periodic", click-to-filter cells, Δt and time-in-call columns, colours by
//! outcome, earlier runs separated by run, and the selection the inspector and swimlane show.
//! Filtering runs on the window's worker; the UI thread only appends what is new.

use std::collections::HashMap;
use std::sync::Arc;

use egui_extras::{Column, TableBuilder};

use crate::event::{CallbackKind, Event, KindSet};
use crate::model::EndReason;
use crate::timeline::{
    Delivery, ExportFormat, Query, Timeline, TimelineEntry, clock_time, date_time,
};

use super::command::UiCommand;
use super::worker::{Filtered, Request, Worker};

const ROW_HEIGHT: f32 = 18.0;

/// What the filter bar lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// The kinds shown (before "hide periodic").
    pub kinds: KindSet,
    /// Hide `onCallStats` and `onUserVoiceVolumeChanged` (still recorded and counted).
    pub hide_periodic: bool,
    /// Only this call.
    pub call_id: String,
    /// Only entries recorded by this user.
    pub user_id: String,
    /// Only entries containing this text.
    pub text: String,
    /// Stored entries of earlier runs too.
    pub earlier_runs: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            kinds: KindSet::all(),
            hide_periodic: true,
            call_id: String::new(),
            user_id: String::new(),
            text: String::new(),
            earlier_runs: false,
        }
    }
}

impl Filters {
    /// The kinds shown after "hide periodic".
    pub fn shown_kinds(&self) -> KindSet {
        let mut kinds = self.kinds;
        if self.hide_periodic {
            for kind in CallbackKind::ALL.iter().filter(|kind| kind.is_periodic()) {
                kinds.remove(*kind);
            }
        }
        kinds
    }

    /// The query of these filters.
    pub fn query(&self) -> Query {
        let non_empty = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
        let kinds = self.shown_kinds();
        Query {
            kinds: (kinds != KindSet::all()).then_some(kinds),
            call_id: non_empty(&self.call_id),
            user_id: non_empty(&self.user_id),
            text: non_empty(&self.text),
            ..Query::all()
        }
    }
}

/// The rows shown, where they came from, and what is selected.
#[derive(Debug)]
// Each flag is its own mode or one-frame request; no two of them form a state together.
#[allow(clippy::struct_excessive_bools)]
pub struct TimelinePanel {
    /// The filter bar.
    pub filters: Filters,
    /// The filters the rows were made with.
    applied: Option<Filters>,
    /// Their query, made once: new entries are matched against it every frame.
    applied_query: Query,
    /// The filter request on the worker: its id and filters.
    pending: Option<(u64, Filters)>,
    rows: Vec<Arc<TimelineEntry>>,
    /// The newest sequence number looked at in memory.
    cursor: u64,
    /// "Clear view": entries up to this sequence number are not shown (the store keeps them).
    cleared_through: u64,
    /// When each run started, for the separators of earlier runs.
    runs: HashMap<u64, u64>,
    /// Positions in `rows` where a new run starts (earlier runs only).
    run_starts: Vec<usize>,
    /// The first entry's time of each call (ms since the Unix epoch).
    call_starts: HashMap<String, u64>,
    following: bool,
    scroll_to_end: bool,
    /// New rows arrived while following: scroll to them once the pointer is off the table.
    arrived: bool,
    /// Rows that arrived while following was paused.
    unseen: usize,
    selected: Option<Arc<TimelineEntry>>,
    /// Every entry of the selected entry's call, once the worker read them.
    call_entries: Option<(String, Vec<Arc<TimelineEntry>>)>,
    call_request: Option<u64>,
    /// The call's entries just arrived: add those recorded since the worker read them.
    call_top_up: bool,
    /// What the worker last said went wrong.
    problem: Option<String>,
    /// Set to put the keyboard focus on the search field next frame.
    pub focus_search: bool,
}

impl Default for TimelinePanel {
    fn default() -> Self {
        Self {
            filters: Filters::default(),
            applied: None,
            applied_query: Query::all(),
            pending: None,
            rows: Vec::new(),
            cursor: 0,
            cleared_through: 0,
            runs: HashMap::new(),
            run_starts: Vec::new(),
            call_starts: HashMap::new(),
            following: true,
            scroll_to_end: false,
            arrived: false,
            unseen: 0,
            selected: None,
            call_entries: None,
            call_request: None,
            call_top_up: false,
            problem: None,
            focus_search: false,
        }
    }
}

/// Whether an entry reports a failure (shown red).
pub fn is_failure(entry: &TimelineEntry) -> bool {
    match &entry.event {
        Event::Error(_) | Event::BeforeCalling { error: Some(_), .. } => true,
        Event::AfterCalling(summary) => {
            matches!(summary.reason, EndReason::Error | EndReason::MediaFailed)
        }
        Event::CallEnd { reason, .. } | Event::CallNotConnected { reason, .. } => {
            matches!(reason, EndReason::Error | EndReason::MediaFailed)
        }
        _ => false,
    }
}

/// `+12 ms`, `+1.25 s`, `+3.1 min` of a span in milliseconds.
pub fn span_text(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "+" };
    let magnitude = millis.unsigned_abs();
    if magnitude < 1000 {
        format!("{sign}{magnitude} ms")
    } else if magnitude < 60_000 {
        format!("{sign}{:.2} s", magnitude as f64 / 1000.0)
    } else {
        format!("{sign}{:.1} min", magnitude as f64 / 60_000.0)
    }
}

/// A display row: a run's separator or an entry.
enum Line<'rows> {
    Run(u64),
    Entry(usize, &'rows Arc<TimelineEntry>),
}

impl TimelinePanel {
    /// The rows shown now, oldest first.
    pub fn rows(&self) -> &[Arc<TimelineEntry>] {
        &self.rows
    }

    /// Pauses following, or follows again from the newest entry.
    pub fn toggle_follow(&mut self) {
        self.following = !self.following;
        if self.following {
            self.scroll_to_end = true;
            self.unseen = 0;
        }
    }

    /// Whether the table follows new entries.
    pub fn following(&self) -> bool {
        self.following
    }

    /// The selected entry.
    pub fn selected(&self) -> Option<&Arc<TimelineEntry>> {
        self.selected.as_ref()
    }

    /// Every entry of the selected entry's call, oldest first, once read.
    pub fn call_entries(&self) -> Option<&[Arc<TimelineEntry>]> {
        self.call_entries
            .as_ref()
            .map(|(_, entries)| entries.as_slice())
    }

    /// Selects `entry` (from the table, the inspector or the swimlane) and asks the worker for
    /// its call.
    pub fn select(&mut self, entry: Option<Arc<TimelineEntry>>, worker: &mut Worker, run: u64) {
        let call_id = entry.as_ref().and_then(|entry| entry.call_id.clone());
        let stored = entry.as_ref().is_some_and(|entry| entry.run != run);
        self.selected = entry;
        match call_id {
            Some(call_id)
                if self
                    .call_entries
                    .as_ref()
                    .is_none_or(|(known, _)| *known != call_id) =>
            {
                self.call_entries = None;
                self.call_request = worker.send(Request::Call { call_id, stored });
            }
            Some(_) => {}
            None => self.call_entries = None,
        }
    }

    /// Notes the first time of each call from every new entry (shown or not).
    pub fn observe(&mut self, entry: &Arc<TimelineEntry>) {
        if let Some(call_id) = &entry.call_id
            && !self.call_starts.contains_key(call_id)
        {
            self.call_starts
                .insert(call_id.clone(), entry.at.wall_millis);
        }
        if let Some((call_id, entries)) = &mut self.call_entries
            && entry.call_id.as_deref() == Some(call_id.as_str())
            && entries.last().is_none_or(|last| last.seq < entry.seq)
        {
            entries.push(Arc::clone(entry));
        }
    }

    /// Takes the worker's answer to a filter or call request.
    pub fn take_reply(&mut self, id: u64, reply: super::worker::Reply) {
        match reply {
            super::worker::Reply::Filtered(filtered) => {
                if let Some((pending, filters)) =
                    self.pending.take_if(|(pending, _)| *pending == id)
                {
                    debug_assert_eq!(pending, id);
                    self.apply_filtered(filters, filtered);
                }
            }
            super::worker::Reply::Call(call_id, entries) => {
                if self.call_request == Some(id) {
                    self.call_request = None;
                    self.call_entries = Some((call_id, entries));
                    // Entries counted while the worker read the call are added by `refresh`.
                    self.call_top_up = true;
                }
            }
            super::worker::Reply::RecentCalls(_)
            | super::worker::Reply::Exported(_)
            | super::worker::Reply::Imported(_) => {}
        }
    }

    fn apply_filtered(&mut self, filters: Filters, filtered: Filtered) {
        self.problem = filtered.error;
        let cleared = self.cleared_through;
        self.rows = filtered.rows;
        self.rows.retain(|entry| entry.seq > cleared);
        self.cursor = filtered.cursor;
        self.runs = filtered.runs;
        for (call_id, start) in filtered.call_starts {
            let known = self.call_starts.entry(call_id).or_insert(start);
            *known = (*known).min(start);
        }
        self.run_starts = if filters.earlier_runs {
            run_starts(&self.rows)
        } else {
            Vec::new()
        };
        self.applied_query = filters.query();
        self.applied = Some(filters);
        self.unseen = 0;
        // The old scroll position means nothing in the new rows.
        self.scroll_to_end = true;
    }

    /// Brings the rows up to date: a filter change goes to the worker (one request at a time);
    /// otherwise new entries are filtered as they arrive.
    pub fn refresh(&mut self, timeline: &Timeline, worker: &mut Worker) {
        if std::mem::take(&mut self.call_top_up)
            && let Some((call_id, entries)) = &mut self.call_entries
        {
            let after = entries.last().map_or(0, |entry| entry.seq);
            let newer = timeline.query_since(after, &Query::all().call(call_id.as_str()));
            entries.extend(newer);
        }
        if self.applied.as_ref() != Some(&self.filters) && self.pending.is_none() {
            let request = Request::Filter {
                query: self.filters.query(),
                earlier_runs: self.filters.earlier_runs,
            };
            match worker.send(request) {
                Some(id) => self.pending = Some((id, self.filters.clone())),
                None => self.problem = Some("the worker is busy; retrying".into()),
            }
        }
        if self.pending.is_some() {
            return;
        }
        let Some(applied) = &self.applied else {
            return;
        };
        if timeline.last_seq() <= self.cursor {
            return;
        }
        let (fresh, cursor) = timeline.query_since_with_cursor(self.cursor, &self.applied_query);
        self.cursor = cursor;
        if fresh.is_empty() {
            return;
        }
        if applied.earlier_runs
            && let (Some(last), Some(first)) = (self.rows.last(), fresh.first())
            && last.run != first.run
        {
            self.run_starts.push(self.rows.len());
        }
        if self.following {
            self.arrived = true;
        } else {
            self.unseen += fresh.len();
        }
        self.rows.extend(fresh);
    }

    /// Whether a filter is on the worker now.
    pub fn loading(&self) -> bool {
        self.pending.is_some()
    }

    /// Draws the filter bar and the table; returns the entry clicked, if any.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        counts: &[u64; CallbackKind::COUNT],
        commands: &mut Vec<UiCommand>,
    ) -> Option<Arc<TimelineEntry>> {
        self.filters_ui(ui, counts, commands);
        ui.separator();
        self.table_ui(ui)
    }

    fn filters_ui(
        &mut self,
        ui: &mut egui::Ui,
        counts: &[u64; CallbackKind::COUNT],
        commands: &mut Vec<UiCommand>,
    ) {
        ui.horizontal_wrapped(|ui| {
            self.kinds_menu_ui(ui, counts);
            ui.checkbox(&mut self.filters.hide_periodic, "Hide periodic")
                .on_hover_text(
                    "Hide onCallStats and onUserVoiceVolumeChanged rows: they are still recorded, \
                     counted and exported",
                );
            text_filter_ui(ui, "Call", &mut self.filters.call_id, "call id", 90.0);
            text_filter_ui(ui, "User", &mut self.filters.user_id, "user id", 70.0);
            let search = text_filter_ui(ui, "Search", &mut self.filters.text, "text", 110.0);
            if std::mem::take(&mut self.focus_search) {
                search.request_focus();
            }
            ui.checkbox(&mut self.filters.earlier_runs, "Earlier runs")
                .on_hover_text("Also show the stored entries of earlier runs, by run");
            if ui
                .add_enabled(
                    self.filters != Filters::default(),
                    egui::Button::new("Reset"),
                )
                .on_hover_text("Show every kind but the periodic ones, of this run")
                .clicked()
            {
                self.filters = Filters::default();
            }
        });
        ui.horizontal_wrapped(|ui| {
            let (label, hint) = if self.following {
                (
                    "Pause",
                    "Stop following new entries (scrolling up pauses too)",
                )
            } else {
                ("Follow", "Follow new entries again")
            };
            if ui.button(label).on_hover_text(hint).clicked() {
                self.toggle_follow();
            }
            let jump = if self.unseen > 0 {
                format!("Jump to latest ({} new)", self.unseen)
            } else {
                "Jump to latest".to_owned()
            };
            if ui.button(jump).clicked() {
                self.following = true;
                self.scroll_to_end = true;
                self.unseen = 0;
            }
            if ui
                .button("Clear view")
                .on_hover_text("Empties the table; the stored timeline keeps every entry")
                .clicked()
            {
                self.cleared_through = self
                    .rows
                    .last()
                    .map_or(self.cleared_through, |entry| entry.seq)
                    .max(self.cursor);
                self.rows.clear();
                self.run_starts.clear();
                self.unseen = 0;
            }
            if ui.button("Export JSONL").clicked() {
                commands.push(UiCommand::Export(ExportFormat::JsonLines));
            }
            if ui.button("Export Perfetto").clicked() {
                commands.push(UiCommand::Export(ExportFormat::Perfetto));
            }
            let status = if self.pending.is_some() {
                "filtering...".to_owned()
            } else {
                format!("{} shown", self.rows.len())
            };
            let label = ui.add_sized(
                [110.0, ui.spacing().interact_size.y],
                egui::Label::new(status).truncate(),
            );
            if let Some(problem) = &self.problem {
                label.on_hover_text(problem.as_str());
                ui.colored_label(ui.visuals().warn_fg_color, "!")
                    .on_hover_text(problem.as_str());
            }
        });
    }

    fn kinds_menu_ui(&mut self, ui: &mut egui::Ui, counts: &[u64; CallbackKind::COUNT]) {
        let shown = self.filters.kinds.iter().count();
        let title = if shown == CallbackKind::COUNT {
            "Kinds: all".to_owned()
        } else {
            format!("Kinds: {shown} of {}", CallbackKind::COUNT)
        };
        egui::containers::menu::MenuButton::new(title)
            .config(
                egui::containers::menu::MenuConfig::new()
                    .close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside),
            )
            .ui(ui, |ui| {
                ui.set_max_width(420.0);
                ui.horizontal(|ui| {
                    if ui.button("All").clicked() {
                        self.filters.kinds = KindSet::all();
                    }
                    if ui.button("None").clicked() {
                        self.filters.kinds = KindSet::EMPTY;
                    }
                    if ui
                        .button("Component callbacks")
                        .on_hover_text("The five callbacks of the component only")
                        .clicked()
                    {
                        self.filters.kinds = CallbackKind::COMPONENT.into_iter().collect();
                    }
                });
                ui.horizontal_wrapped(|ui| {
                    for kind in CallbackKind::ALL {
                        let mut on = self.filters.kinds.contains(*kind);
                        let count = counts[kind.index()];
                        let chip = ui
                            .toggle_value(&mut on, format!("{} {count}", kind.as_str()))
                            .on_hover_text(kind.fires_when());
                        if chip.changed() {
                            if on {
                                self.filters.kinds.insert(*kind);
                            } else {
                                self.filters.kinds.remove(*kind);
                            }
                        }
                    }
                });
            });
    }

    /// The display line at `index`: run separators sit before the first entry of their run.
    fn line(&self, index: usize) -> Option<Line<'_>> {
        // Separator k is shown at display position run_starts[k] + k (positions only grow).
        let mut separators = 0;
        for (k, start) in self.run_starts.iter().enumerate() {
            let shown_at = start + k;
            if shown_at == index {
                return self.rows.get(*start).map(|entry| Line::Run(entry.run));
            }
            if shown_at > index {
                break;
            }
            separators += 1;
        }
        let position = index - separators;
        self.rows
            .get(position)
            .map(|entry| Line::Entry(position, entry))
    }

    fn table_ui(&mut self, ui: &mut egui::Ui) -> Option<Arc<TimelineEntry>> {
        let lines = self.rows.len() + self.run_starts.len();
        if lines == 0 {
            ui.weak(if self.pending.is_some() {
                "Filtering..."
            } else if self.applied.as_ref() == Some(&Filters::default()) {
                "No entries yet: place a call and every callback shows up here."
            } else {
                "No entry matches these filters."
            });
            return None;
        }
        let mut clicked = None;
        let mut filter = None;
        // Scrolling the table up pauses following, so the rows under the pointer stay put.
        let pointer_on_table = ui.rect_contains_pointer(ui.available_rect_before_wrap());
        let scrolled_up = pointer_on_table && ui.input(|input| input.smooth_scroll_delta.y > 0.0);
        if scrolled_up && self.following {
            self.following = false;
        }
        ui.style_mut().interaction.selectable_labels = false;
        // A narrow panel leaves out the time-in-call and user columns (the inspector has them)
        // so the summary keeps room.
        let wide = ui.available_width() >= 720.0;
        egui::ScrollArea::horizontal()
            .id_salt("timeline columns")
            .show(ui, |ui| {
                let mut table = TableBuilder::new(ui)
                    .id_salt(("timeline", wide))
                    .striped(true)
                    .resizable(true)
                    .auto_shrink([false, false])
                    .sense(egui::Sense::click());
                // Rows that arrive never scroll the table under the pointer: it catches up
                // when the pointer leaves. A filter change or "Jump to latest" scrolls at once.
                let catch_up = self.arrived && !pointer_on_table;
                if std::mem::take(&mut self.scroll_to_end) || catch_up {
                    self.arrived = false;
                    table = table.scroll_to_row(lines - 1, Some(egui::Align::BOTTOM));
                }
                table = table
                    .column(Column::initial(44.0).at_least(30.0).clip(true))
                    .column(Column::initial(84.0).at_least(50.0).clip(true))
                    .column(Column::initial(56.0).at_least(36.0).clip(true));
                if wide {
                    table = table.column(Column::initial(56.0).at_least(36.0).clip(true));
                }
                table = table.column(Column::initial(74.0).at_least(36.0).clip(true));
                if wide {
                    table = table.column(Column::initial(48.0).at_least(30.0).clip(true));
                }
                table
                    .column(Column::initial(150.0).at_least(60.0).clip(true))
                    .column(Column::remainder().at_least(110.0).clip(true))
                    .header(ROW_HEIGHT, |header| header_ui(header, wide))
                    .body(|body| {
                        body.rows(ROW_HEIGHT, lines, |mut row| match self.line(row.index()) {
                            Some(Line::Run(run)) => {
                                run_separator_ui(&mut row, run, self.runs.get(&run), wide);
                            }
                            Some(Line::Entry(position, entry)) => {
                                let previous = position
                                    .checked_sub(1)
                                    .and_then(|before| self.rows.get(before));
                                let selected = self
                                    .selected
                                    .as_ref()
                                    .is_some_and(|chosen| chosen.seq == entry.seq);
                                row.set_selected(selected);
                                let cells = entry_cells_ui(
                                    &mut row,
                                    wide,
                                    entry,
                                    previous.map(|entry| &**entry),
                                    self.call_starts.get(entry.call_id.as_deref().unwrap_or("")),
                                );
                                if cells.is_some() {
                                    filter = cells;
                                } else if row.response().clicked() {
                                    clicked = Some(Arc::clone(entry));
                                }
                            }
                            None => {}
                        });
                    });
            });
        if let Some(cell) = filter {
            match cell {
                CellFilter::Call(call_id) => self.filters.call_id = call_id,
                CellFilter::User(user_id) => self.filters.user_id = user_id,
                CellFilter::Kind(kind) => {
                    self.filters.kinds = std::iter::once(kind).collect();
                    if kind.is_periodic() {
                        self.filters.hide_periodic = false;
                    }
                }
            }
        }
        clicked
    }
}

fn header_ui(mut header: egui_extras::TableRow<'_, '_>, wide: bool) {
    let titles = [
        ("seq", "Sequence number"),
        ("time", "Wall clock (UTC)"),
        ("Δt", "Time since the previous row shown"),
        ("in call", "Time since the call's first entry"),
        ("call", "Click a call id to show only that call"),
        ("user", "Who recorded it; click to show only theirs"),
        ("kind", "Click a kind to show only that kind"),
        ("summary", "What the handler got"),
    ];
    for (title, hint) in titles {
        if !wide && matches!(title, "in call" | "user") {
            continue;
        }
        header.col(|ui| {
            ui.strong(title).on_hover_text(hint);
        });
    }
}

/// The row that starts an earlier run's entries: its number and start.
fn run_separator_ui(
    row: &mut egui_extras::TableRow<'_, '_>,
    run: u64,
    started: Option<&u64>,
    wide: bool,
) {
    let started = started.map_or_else(|| "unknown start".to_owned(), |at| date_time(*at));
    row.col(|ui| {
        ui.strong(format!("run {run}"));
    });
    row.col(|ui| {
        ui.add(egui::Label::new(
            egui::RichText::new(format!("started {started} UTC")).strong(),
        ));
    });
    for _ in 0..if wide { 6 } else { 4 } {
        row.col(|_| {});
    }
}

/// A cell clicked to filter by its value.
enum CellFilter {
    Call(String),
    User(String),
    Kind(CallbackKind),
}

fn text_filter_ui(
    ui: &mut egui::Ui,
    label: &str,
    text: &mut String,
    hint: &str,
    width: f32,
) -> egui::Response {
    let label = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .desired_width(width)
            .hint_text(hint),
    )
    .labelled_by(label.id)
}

/// A cell's text that filters by itself when clicked.
fn link_cell_ui(ui: &mut egui::Ui, text: &str, hint: &str) -> bool {
    let color = ui.visuals().hyperlink_color;
    ui.add(
        egui::Label::new(egui::RichText::new(text).color(color))
            .truncate()
            .sense(egui::Sense::click()),
    )
    .on_hover_text(hint)
    .clicked()
}

fn entry_cells_ui(
    row: &mut egui_extras::TableRow<'_, '_>,
    wide: bool,
    entry: &TimelineEntry,
    previous: Option<&TimelineEntry>,
    call_start: Option<&u64>,
) -> Option<CellFilter> {
    let mut filter = None;
    let failure = is_failure(entry);
    row.col(|ui| {
        ui.label(entry.seq.to_string());
    });
    row.col(|ui| {
        ui.label(clock_time(entry.at.wall_millis));
    });
    row.col(|ui| {
        if let Some(previous) = previous {
            // One recorder's monotonic clock; across recorders only the wall clocks compare.
            let same_clock = previous.run == entry.run && previous.recorder() == entry.recorder();
            let millis = if same_clock {
                (entry.at.mono_micros.cast_signed() - previous.at.mono_micros.cast_signed()) / 1000
            } else {
                entry.at.wall_millis.cast_signed() - previous.at.wall_millis.cast_signed()
            };
            ui.weak(span_text(millis));
        }
    });
    if wide {
        row.col(|ui| {
            if let Some(start) = call_start {
                ui.weak(span_text(
                    entry.at.wall_millis.cast_signed() - start.cast_signed(),
                ));
            }
        });
    }
    row.col(|ui| match &entry.call_id {
        Some(call_id) => {
            if link_cell_ui(ui, call_id, "Show only this call") {
                filter = Some(CellFilter::Call(call_id.clone()));
            }
        }
        None => {
            ui.weak("-");
        }
    });
    if wide {
        row.col(|ui| {
            let hint = match entry.origin {
                crate::timeline::Origin::Local => {
                    "Recorded by this client. Show only entries recorded by this user".to_owned()
                }
                origin => format!(
                    "Recorded by {}'s side ({}). Show only entries recorded by this user",
                    entry.user_id,
                    origin.as_str()
                ),
            };
            if link_cell_ui(ui, &entry.user_id, &hint) {
                filter = Some(CellFilter::User(entry.user_id.clone()));
            }
        });
    }
    row.col(|ui| {
        let kind = entry.kind();
        let mut text = egui::RichText::new(kind.as_str());
        let mut hint = format!("Show only {kind}");
        if failure {
            text = text.color(ui.visuals().error_fg_color);
        } else if kind.is_component() {
            text = text.strong().color(ui.visuals().hyperlink_color);
        }
        if entry.delivery == Delivery::Suppressed {
            text = egui::RichText::new(format!("× {}", kind.as_str()))
                .color(ui.visuals().weak_text_color())
                .italics();
            hint = format!("Suppressed: its switch was off, the closure was not called. {hint}");
        }
        let clicked = ui
            .add(
                egui::Label::new(text)
                    .truncate()
                    .sense(egui::Sense::click()),
            )
            .on_hover_text(hint)
            .clicked();
        if clicked {
            filter = Some(CellFilter::Kind(kind));
        }
    });
    row.col(|ui| {
        let summary = entry.event.to_string();
        let text = if failure {
            egui::RichText::new(summary).color(ui.visuals().error_fg_color)
        } else if entry.delivery == Delivery::Suppressed {
            egui::RichText::new(summary).color(ui.visuals().weak_text_color())
        } else {
            egui::RichText::new(summary)
        };
        ui.add(egui::Label::new(text).truncate());
    });
    filter
}

/// Positions where the run changes from the row before.
fn run_starts(rows: &[Arc<TimelineEntry>]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut run = None;
    for (position, entry) in rows.iter().enumerate() {
        if run != Some(entry.run) {
            starts.push(position);
            run = Some(entry.run);
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_the_unit_that_fits() {
        assert_eq!(span_text(12), "+12 ms");
        assert_eq!(span_text(1250), "+1.25 s");
        assert_eq!(span_text(-30), "-30 ms");
        assert_eq!(span_text(186_000), "+3.1 min");
    }

    #[test]
    fn hide_periodic_takes_stats_and_volumes_out_of_the_query_only() {
        let filters = Filters::default();
        let kinds = filters.query().kinds.unwrap_or(KindSet::all());
        assert!(!kinds.contains(CallbackKind::CallStats));
        assert!(!kinds.contains(CallbackKind::UserVoiceVolumeChanged));
        assert!(kinds.contains(CallbackKind::StatusChanged));
        let all = Filters {
            hide_periodic: false,
            ..Filters::default()
        };
        assert_eq!(all.query().kinds, None);
    }
}
