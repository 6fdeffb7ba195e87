//! `CallscopeApp`: composes the panels, drains the engine once per frame, and applies what the
//! panels ask for in one place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineCommand, EngineConfig, EngineError, ServerChoice};
use crate::kit::{CallKit, Switches};
use crate::media::{DeviceChoice, DeviceChoices, FrameSlots, MediaConfig};
use crate::model::{CallStatus, ViewMode};
use crate::timeline::{ExportFormat, Store, StoreError, Timeline, TimelineEntry};

use super::call_view::{CallView, clock};
use super::command::UiCommand;
use super::debug_panel::debug_panel_ui;
use super::dialer::{Dialer, connection_ui, devices_ui};
use super::inspector::inspector_ui;
use super::layout::{self, Layout, Pane};
use super::model::{Model, NextCall};
use super::settings::Settings;
use super::stats_panel::stats_panel_ui;
use super::swimlane::swimlane_ui;
use super::timeline_panel::TimelinePanel;
use super::video::VideoTextures;
use super::worker::{RecentCall, Reply, Request, Worker};

/// How long one frame may spend draining the engine's notices.
const DRAIN_BUDGET: Duration = Duration::from_millis(4);
/// Entries counted per step of the catch-up loop.
const COUNT_BATCH: usize = 4096;

const HANG_UP: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::H);
const MINIMIZE: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::N);
const MUTE: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::M);
const CAMERA: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::E);
const FOCUS_TIMELINE: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::F);
const TOGGLE_THEME: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::D);
const HELP: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::NONE, egui::Key::F1);
const PAUSE: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::CTRL, egui::Key::P);

/// The shortcuts the help overlay lists.
const SHORTCUTS: [(&str, &str); 8] = [
    ("F1", "show or hide this help"),
    ("Ctrl+H", "hang up, cancel or reject"),
    ("Ctrl+M", "mute or unmute the microphone"),
    ("Ctrl+E", "camera off or on"),
    ("Ctrl+N", "minimize to the mini view, or restore"),
    ("Ctrl+F", "search the timeline"),
    ("Ctrl+P", "pause or follow the timeline"),
    ("Ctrl+D", "dark or light theme"),
];

/// The longest a new video picture waits for the window to draw it (30 frames a second).
const VIDEO_REPAINT: Duration = Duration::from_millis(33);

/// How soon after the last change of the layout it is saved (drags end first).
const LAYOUT_SAVE_DELAY: Duration = Duration::from_millis(500);

/// How the app starts.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The local user.
    pub user_id: String,
    /// Which signaling server.
    pub server: ServerChoice,
    /// Where the timeline and settings live.
    pub data_dir: PathBuf,
    /// Call these users as soon as the app is logged in.
    pub call_on_start: Vec<String>,
    /// Whether ringing is private, when the command line says (otherwise the saved setting).
    pub private_ringing: Option<bool>,
    /// Whether to share our callbacks with each call's participants, when the command line
    /// says (otherwise the saved setting, off at first).
    pub share_trace: Option<bool>,
    /// Devices, resolution and ICE servers of calls (the window adds its frame slots).
    pub media: MediaConfig,
    /// Impairments of the media links from the command line (the Network section changes
    /// them later).
    pub impairments: Vec<crate::media::impair::LinkRule>,
}

/// The callscope window.
pub struct CallscopeApp {
    engine: Engine,
    kit: CallKit,
    data_dir: PathBuf,
    settings: Settings,
    model: Model,
    dialer: Dialer,
    call_view: CallView,
    video: VideoTextures,
    frames: FrameSlots,
    timeline: TimelinePanel,
    layout: Layout,
    /// When the layout last changed and is not yet saved.
    layout_changed: Option<Instant>,
    worker: Worker,
    recent: Vec<RecentCall>,
    /// The recent-calls request on the worker, and the afterCalling count it was made at.
    recent_request: Option<u64>,
    recent_at: Option<u64>,
    help_open: bool,
    /// The newest entry counted into the model (a sequence number, not a position).
    counted: u64,
    /// The generation of the engine state the model shows.
    state_seen: u64,
    call_on_start: Vec<String>,
}

/// The window's store: the data directory's, or, when another running callscope holds it (a
/// second window on one machine), a store of this user's inside it; a notice says which.
fn open_timeline(data_dir: &std::path::Path, user_id: &str) -> (Option<Store>, Option<String>) {
    match Store::open(data_dir) {
        Ok(store) => (Some(store), None),
        Err(StoreError::InUse(_)) => {
            let own = data_dir.join(format!("also-{user_id}"));
            match Store::open(&own) {
                Ok(store) => {
                    let notice = format!(
                        "{} is in use by another callscope: this window records into {}",
                        data_dir.display(),
                        own.display()
                    );
                    (Some(store), Some(notice))
                }
                Err(error) => (None, Some(format!("timeline kept in memory only: {error}"))),
            }
        }
        Err(error) => (None, Some(format!("timeline kept in memory only: {error}"))),
    }
}

impl CallscopeApp {
    /// Opens the timeline, starts the engine, and restores the saved switches and theme.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> Result<Self, EngineError> {
        let settings = Settings::load(&options.data_dir);
        let (store, notice) = open_timeline(&options.data_dir, &options.user_id);
        let timeline = store
            .clone()
            .map_or_else(Timeline::in_memory, Timeline::persistent);
        let kit = CallKit::builder()
            .user(&options.user_id)
            .switches(Switches::from_set(settings.enabled))
            .timeline(timeline)
            .build();
        // A device named on the command line wins over the one saved from the menus.
        let flag_or_saved = |flag: &DeviceChoice, saved: &DeviceChoice| {
            if *flag == DeviceChoice::Default {
                saved.clone()
            } else {
                flag.clone()
            }
        };
        let device_choices = DeviceChoices {
            camera: flag_or_saved(&options.media.camera, &settings.devices.camera),
            microphone: flag_or_saved(&options.media.microphone, &settings.devices.microphone),
            speaker: flag_or_saved(&options.media.speaker, &settings.devices.speaker),
            // Off on the command line wins; otherwise the menu's.
            audio_processing: options.media.audio_processing && settings.devices.audio_processing,
        };
        let private_ringing = options.private_ringing.unwrap_or(settings.private_ringing);
        let share_trace = options.share_trace.unwrap_or(settings.share_trace);
        let repaint_ctx = ctx.clone();
        let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || repaint_ctx.request_repaint());
        // Pictures of every stream share one repaint per video frame interval: the preview and
        // each remote stream arrive out of step, and each must not cost a frame of its own.
        let frame_ctx = ctx.clone();
        let frame_repaint: Arc<dyn Fn() + Send + Sync> =
            Arc::new(move || frame_ctx.request_repaint_after(VIDEO_REPAINT));
        let frames = FrameSlots::with_repaint(frame_repaint);
        let config = EngineConfig {
            user_id: options.user_id.clone(),
            server: options.server,
            media: Some(MediaConfig {
                frames: frames.clone(),
                preview: true,
                ringtone: true,
                camera: device_choices.camera.clone(),
                microphone: device_choices.microphone.clone(),
                speaker: device_choices.speaker.clone(),
                audio_processing: device_choices.audio_processing,
                ringing: crate::media::Ringing::private(private_ringing),
                ..options.media
            }),
            demo_peer_traces: true,
            share_traces: share_trace,
        };
        let worker = Worker::start(
            kit.timeline().clone(),
            store.clone(),
            options.user_id.clone(),
            Arc::clone(&repaint),
        )?;
        let engine = Engine::start(config, kit.clone(), repaint)?;
        engine.send(EngineCommand::ListDevices);
        for rule in options.impairments {
            engine.send(EngineCommand::Impair(rule));
        }
        ctx.set_theme(if settings.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        let mut model = Model::new(&options.user_id);
        model.device_choices = device_choices;
        model.next_call = NextCall {
            private_ringing,
            share_trace,
        };
        model.notice = notice;
        let layout = settings
            .layout
            .clone()
            .filter(layout::usable)
            .unwrap_or_else(layout::default_layout);
        Ok(Self {
            engine,
            kit,

            data_dir: options.data_dir,
            settings,
            model,
            dialer: Dialer::default(),
            call_view: CallView::default(),
            video: VideoTextures::default(),
            frames,
            timeline: TimelinePanel::default(),
            layout,
            layout_changed: None,
            worker,
            recent: Vec::new(),
            recent_request: None,
            recent_at: None,
            help_open: false,
            counted: 0,
            state_seen: 0,
            call_on_start: options.call_on_start,
        })
    }

    /// The kit every entry is recorded through.
    pub fn kit(&self) -> &CallKit {
        &self.kit
    }

    /// What the engine last reported.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The timeline panel (its rows, selection and following).
    pub fn timeline_panel(&self) -> &TimelinePanel {
        &self.timeline
    }

    /// The docked layout now.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where each open panel was drawn in the last frame.
    pub fn pane_rects(&self) -> Vec<(Pane, egui::Rect)> {
        self.layout
            .tiles
            .iter()
            .filter_map(|(id, tile)| match tile {
                egui_tiles::Tile::Pane(pane) if self.layout.is_visible_in_layout(*id) => {
                    Some((*pane, self.layout.tiles.rect(*id)?))
                }
                _ => None,
            })
            .collect()
    }

    /// The recent calls the dialer lists.
    pub fn recent_calls(&self) -> &[RecentCall] {
        &self.recent
    }

    /// The video streams the engine fills (remote participants and the local preview).
    pub fn frames(&self) -> &FrameSlots {
        &self.frames
    }

    fn drain_engine(&mut self) {
        if let Some((generation, state)) = self.engine.state_newer_than(self.state_seen) {
            self.state_seen = generation;
            self.model.apply_state(state);
        }
        let started = Instant::now();
        while started.elapsed() < DRAIN_BUDGET {
            let Some(message) = self.engine.try_recv() else {
                break;
            };
            self.model.apply(message);
        }
        let timeline = self.kit.timeline();
        loop {
            let fresh = timeline.since(self.counted, COUNT_BATCH);
            let Some(last) = fresh.last() else { break };
            self.counted = last.seq;
            for entry in &fresh {
                // Our own handlers' counts and call; other participants' entries are shown.
                if entry.origin == crate::timeline::Origin::Local {
                    self.model.count(entry);
                }
                self.timeline.observe(entry);
            }
        }
        while let Some((id, reply)) = self.worker.try_recv() {
            match reply {
                Reply::RecentCalls(calls) if self.recent_request == Some(id) => {
                    self.recent_request = None;
                    self.recent = calls;
                }
                Reply::Imported(result) => {
                    self.model.notice = Some(match result {
                        Ok((entries, path)) => format!(
                            "imported {entries} entries from {} as the other side of their calls",
                            path.display()
                        ),
                        Err(error) => format!("import failed: {error}"),
                    });
                }
                Reply::Exported(result) => {
                    self.model.notice = Some(match result {
                        Ok((rows, path)) => {
                            format!("exported {rows} entries to {}", path.display())
                        }
                        Err(error) => format!("export failed: {error}"),
                    });
                }
                other => self.timeline.take_reply(id, other),
            }
        }
        // The recent calls are read again after each call ends (and at start).
        let ended = self.model.counts[crate::event::CallbackKind::AfterCalling.index()];
        if self.recent_at != Some(ended) && self.recent_request.is_none() {
            self.recent_request = self.worker.send(Request::RecentCalls);
            if self.recent_request.is_some() {
                self.recent_at = Some(ended);
            }
        }
        self.timeline.refresh(timeline, &mut self.worker);
        if self.model.connection == crate::engine::ConnectionState::Online
            && !self.call_on_start.is_empty()
        {
            let callees = std::mem::take(&mut self.call_on_start);
            self.model.ring_timeout_secs = 30;
            self.engine.send(EngineCommand::Dial {
                group: callees.len() > 1,
                callees,
                media: crate::model::MediaType::Video,
                timeout_secs: 30,
            });
        }
    }

    fn shortcuts(&self, ctx: &egui::Context, commands: &mut Vec<UiCommand>) {
        let in_call = self.model.status() != CallStatus::Idle;
        ctx.input_mut(|input| {
            if input.consume_shortcut(&HANG_UP) && in_call {
                commands.push(UiCommand::Engine(EngineCommand::Hangup));
            }
            if input.consume_shortcut(&MINIMIZE) && in_call {
                let command = match self.model.call.view {
                    ViewMode::Full => EngineCommand::Minimize,
                    ViewMode::Minimized => EngineCommand::Restore,
                };
                commands.push(UiCommand::Engine(command));
            }
            if input.consume_shortcut(&MUTE) && in_call {
                commands.push(UiCommand::Engine(EngineCommand::SetMicrophone(
                    !self.model.microphone_on,
                )));
            }
            if input.consume_shortcut(&CAMERA) && in_call {
                commands.push(UiCommand::Engine(EngineCommand::SetCamera(
                    !self.model.camera_on,
                )));
            }
            if input.consume_shortcut(&TOGGLE_THEME) {
                commands.push(UiCommand::ToggleTheme);
            }
            if input.consume_shortcut(&HELP) {
                commands.push(UiCommand::ToggleHelp);
            }
            if input.consume_shortcut(&PAUSE) {
                commands.push(UiCommand::ToggleFollow);
            }
        });
    }

    fn apply(&mut self, ctx: &egui::Context, command: UiCommand) {
        match command {
            UiCommand::Engine(command) => {
                if let EngineCommand::Dial { timeout_secs, .. } = &command {
                    self.model.ring_timeout_secs = *timeout_secs;
                }
                if let EngineCommand::ChooseDevices(choices) = &command {
                    self.model.device_choices.clone_from(choices);
                    self.settings.devices.clone_from(choices);
                    self.save_settings();
                }
                if let EngineCommand::SetPrivateRinging(private) = command {
                    self.model.next_call.private_ringing = private;
                    self.settings.private_ringing = private;
                    self.save_settings();
                }
                if let EngineCommand::ShareTraces(on) = command {
                    self.model.next_call.share_trace = on;
                    self.settings.share_trace = on;
                    self.save_settings();
                }
                if !self.engine.send(command) {
                    self.model.notice = Some("the engine is not taking commands".into());
                }
            }
            UiCommand::SetSwitch(kind, on) => {
                self.kit.switches().set(kind, on);
                self.save_switches();
            }
            UiCommand::SetAllSwitches(on) => {
                self.kit.switches().set_all(on);
                self.save_switches();
            }
            UiCommand::ToggleTheme => {
                self.settings.dark = !self.settings.dark;
                ctx.set_theme(if self.settings.dark {
                    egui::Theme::Dark
                } else {
                    egui::Theme::Light
                });
                self.save_settings();
            }
            UiCommand::Export(format) => self.export(format),
            UiCommand::ToggleHelp => self.help_open = !self.help_open,
            UiCommand::Import(path) => {
                let shown = path.display().to_string();
                self.model.notice = Some(match self.worker.send(Request::Import { path }) {
                    Some(_) => format!("importing {shown}..."),
                    None => "the worker is busy: drop the file again in a moment".to_owned(),
                });
            }
            UiCommand::ToggleFollow => self.timeline.toggle_follow(),
            UiCommand::Select(entry) => {
                let run = self.kit.timeline().run();
                self.timeline.select(entry, &mut self.worker, run);
                if self.timeline.selected().is_some() {
                    layout::show(&mut self.layout, Pane::Inspector);
                }
            }
            UiCommand::OpenPane(pane) => {
                layout::open(&mut self.layout, pane);
                self.layout_changed = Some(Instant::now());
            }
            UiCommand::ClosePane(pane) => {
                layout::close(&mut self.layout, pane);
                self.layout_changed = Some(Instant::now());
            }
            UiCommand::ResetLayout => {
                self.layout = layout::default_layout();
                self.layout_changed = Some(Instant::now());
            }
        }
    }

    /// Saves the layout once it has stopped changing and no drag is under way.
    fn save_layout_when_settled(&mut self, ctx: &egui::Context) {
        let Some(changed) = self.layout_changed else {
            return;
        };
        let dragging = ctx.input(|input| input.pointer.any_down());
        if dragging || changed.elapsed() < LAYOUT_SAVE_DELAY {
            ctx.request_repaint_after(LAYOUT_SAVE_DELAY);
            return;
        }
        self.layout_changed = None;
        self.settings.layout = Some(self.layout.clone());
        self.save_settings();
    }

    fn save_switches(&mut self) {
        self.settings.enabled = self.kit.switches().snapshot();
        self.save_settings();
    }

    fn save_settings(&mut self) {
        if let Err(error) = self.settings.save(&self.data_dir) {
            self.model.notice = Some(format!("settings not saved: {error}"));
        }
    }

    fn export(&mut self, format: ExportFormat) {
        let rows = self.timeline.rows().to_vec();
        let count = rows.len();
        let request = Request::Export {
            rows,
            format,
            dir: self.data_dir.join("exports"),
        };
        self.model.notice = Some(match self.worker.send(request) {
            Some(_) => format!("exporting {count} entries..."),
            None => "the worker is busy: export again in a moment".to_owned(),
        });
    }

    fn mini_view_ui(&self, ctx: &egui::Context, commands: &mut Vec<UiCommand>) {
        if self.model.call.view != ViewMode::Minimized || self.model.status() == CallStatus::Idle {
            return;
        }
        let builder = egui::ViewportBuilder::default()
            .with_title("callscope mini view")
            .with_inner_size([320.0, 250.0])
            .with_window_level(egui::WindowLevel::AlwaysOnTop);
        ctx.show_viewport_immediate(
            egui::ViewportId::from_hash_of("mini view"),
            builder,
            |ui, _| {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.strong(self.model.status().as_str());
                        if let Some(connected) = self.model.connected_at {
                            ui.label(clock(connected.elapsed()));
                        }
                    });
                    // The remote video: the first participant whose picture has arrived.
                    let remote = self
                        .model
                        .call
                        .participants
                        .iter()
                        .map(|(user, _)| user.as_str())
                        .find(|user| self.video.has(user));
                    let height = (ui.available_height() - 30.0).max(40.0);
                    let (rect, _) = ui.allocate_exact_size(
                        egui::vec2(ui.available_width(), height),
                        egui::Sense::hover(),
                    );
                    self.video
                        .paint(ui, rect, remote.unwrap_or(""), "no remote video");
                    ui.horizontal(|ui| {
                        if ui.button("Restore").clicked() {
                            commands.push(UiCommand::Engine(EngineCommand::Restore));
                        }
                        if ui.button("Hang up").clicked() {
                            commands.push(UiCommand::Engine(EngineCommand::Hangup));
                        }
                    });
                });
            },
        );
    }
}

impl eframe::App for CallscopeApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_engine();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let mut commands = Vec::new();
        self.video.update(&ctx, &self.frames);
        self.shortcuts(&ctx, &mut commands);
        // A file dropped on the window is an export from another machine: import it.
        let dropped: Vec<PathBuf> = ctx.input(|input| {
            input
                .raw
                .dropped_files
                .iter()
                .map(|file| file.path().to_path_buf())
                .collect()
        });
        for path in dropped {
            commands.push(UiCommand::Import(path));
        }
        if ctx.input_mut(|input| input.consume_shortcut(&FOCUS_TIMELINE)) {
            self.timeline.focus_search = true;
        }
        egui::Panel::top("toolbar").show(ui, |ui| {
            self.toolbar_ui(ui, &mut commands);
        });
        // The panes draw with the tree taken out, so they can borrow the rest of the app.
        let mut tree =
            std::mem::replace(&mut self.layout, Layout::empty(egui::Id::unique("taken")));
        egui::CentralPanel::default().show(ui, |ui| {
            let mut panes = Panes {
                app: self,
                commands: &mut commands,
                edited: false,
            };
            tree.ui(&mut panes, ui);
            if panes.edited {
                self.layout_changed = Some(Instant::now());
            }
        });
        self.layout = tree;
        self.help_ui(&ctx, &mut commands);
        self.mini_view_ui(&ctx, &mut commands);
        for command in commands {
            self.apply(&ctx, command);
        }
        self.save_layout_when_settled(&ctx);
        if self.model.connected_at.is_some() {
            // The call timer ticks once a second.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
    }
}

impl CallscopeApp {
    fn toolbar_ui(&self, ui: &mut egui::Ui, commands: &mut Vec<UiCommand>) {
        ui.horizontal(|ui| {
            ui.heading("callscope");
            ui.menu_button("View", |ui| {
                for pane in Pane::ALL {
                    let mut open = layout::contains(&self.layout, pane);
                    if ui.checkbox(&mut open, pane.title()).changed() {
                        commands.push(if open {
                            UiCommand::OpenPane(pane)
                        } else {
                            UiCommand::ClosePane(pane)
                        });
                    }
                }
                ui.separator();
                if ui
                    .button("Reset layout")
                    .on_hover_text("Every panel back where it was at the first start")
                    .clicked()
                {
                    commands.push(UiCommand::ResetLayout);
                    ui.close();
                }
            });
            if ui.button("Help").on_hover_text("F1").clicked() {
                commands.push(UiCommand::ToggleHelp);
            }
            let theme = if self.settings.dark {
                "Light theme"
            } else {
                "Dark theme"
            };
            if ui.button(theme).on_hover_text("Ctrl+D").clicked() {
                commands.push(UiCommand::ToggleTheme);
            }
            if !matches!(
                self.model.connection,
                crate::engine::ConnectionState::Online
            ) {
                connection_ui(ui, &self.model.connection, commands);
            }
            let server = format!("server {}", self.engine.server_url());
            ui.add(egui::Label::new(egui::RichText::new(&server).weak()).truncate())
                .on_hover_text(server.as_str());
            if let Some(notice) = &self.model.notice {
                ui.add(egui::Label::new(notice.as_str()).truncate())
                    .on_hover_text(notice.as_str());
            }
        });
    }

    fn help_ui(&self, ctx: &egui::Context, commands: &mut Vec<UiCommand>) {
        if !self.help_open {
            return;
        }
        let mut open = true;
        egui::Window::new("Help")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                ui.strong("Shortcuts");
                egui::Grid::new("shortcuts").num_columns(2).show(ui, |ui| {
                    for (keys, what) in SHORTCUTS {
                        ui.monospace(keys);
                        ui.label(what);
                        ui.end_row();
                    }
                });
                ui.separator();
                ui.strong("Panels");
                for line in [
                    "Every panel is a tab: drag a tab to dock it elsewhere, drag a border to \
                     resize, close it with its x; View brings it back, View > Reset layout \
                     restores them all. The layout is saved.",
                    "Timeline: click a call id, user or kind to filter by it; Pause stops \
                     following (scrolling up does too); Hide periodic hides onCallStats and \
                     onUserVoiceVolumeChanged (still recorded and counted).",
                    "Inspector: the selected entry's JSON, what its handler got and its \
                     neighbours in the call. Swimlane: the call's statuses and events; click a \
                     mark to select it.",
                    "Callbacks: hover a switch to see when it fires and what its handler gets.",
                ] {
                    ui.add(egui::Label::new(line).wrap());
                }
                ui.set_max_width(520.0);
            });
        if !open {
            commands.push(UiCommand::ToggleHelp);
        }
    }
}

/// The tiles' behaviour: draws each pane from the app's state.
struct Panes<'app> {
    app: &'app mut CallscopeApp,
    commands: &'app mut Vec<UiCommand>,
    edited: bool,
}

impl egui_tiles::Behavior<Pane> for Panes<'_> {
    fn tab_title_for_pane(&mut self, pane: &Pane) -> egui::WidgetText {
        pane.title().into()
    }

    fn pane_ui(
        &mut self,
        ui: &mut egui::Ui,
        _tile_id: egui_tiles::TileId,
        pane: &mut Pane,
    ) -> egui_tiles::UiResponse {
        let app = &mut *self.app;
        let commands = &mut *self.commands;
        egui::Frame::new().inner_margin(6.0).show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            match pane {
                Pane::Dialer => {
                    egui::ScrollArea::vertical()
                        .id_salt("dialer")
                        .auto_shrink([false, false])
                        .show(ui, |ui| {
                            app.dialer.ui(ui, &app.model, &app.recent, commands);
                            ui.separator();
                            devices_ui(ui, &app.model, commands);
                        });
                }
                Pane::Call => app.call_view.ui(ui, &app.model, &app.video, commands),
                Pane::Stats => stats_panel_ui(ui, &app.model.media),
                Pane::Callbacks => {
                    debug_panel_ui(ui, app.kit.switches().snapshot(), &app.model, commands);
                }
                Pane::Timeline => {
                    if let Some(entry) = app.timeline.ui(ui, &app.model.counts, commands) {
                        let same = app
                            .timeline
                            .selected()
                            .is_some_and(|selected| selected.seq == entry.seq);
                        commands.push(UiCommand::Select((!same).then_some(entry)));
                    }
                }
                Pane::Inspector => {
                    let picked =
                        inspector_ui(ui, app.timeline.selected(), app.timeline.call_entries());
                    if let Some(entry) = picked {
                        commands.push(UiCommand::Select(Some(entry)));
                    }
                }
                Pane::Swimlane => swimlane_pane_ui(ui, &app.timeline, commands),
            }
        });
        egui_tiles::UiResponse::None
    }

    fn is_tab_closable(
        &self,
        _tiles: &egui_tiles::Tiles<Pane>,
        _tile_id: egui_tiles::TileId,
    ) -> bool {
        true
    }

    fn simplification_options(&self) -> egui_tiles::SimplificationOptions {
        egui_tiles::SimplificationOptions {
            all_panes_must_have_tabs: true,
            ..egui_tiles::SimplificationOptions::default()
        }
    }

    fn gap_width(&self, _style: &egui::Style) -> f32 {
        4.0
    }

    fn min_size(&self) -> f32 {
        80.0
    }

    fn on_tab_close(
        &mut self,
        _tiles: &mut egui_tiles::Tiles<Pane>,
        _tile_id: egui_tiles::TileId,
    ) -> bool {
        self.edited = true;
        true
    }

    fn on_edit(&mut self, edit_action: egui_tiles::EditAction) {
        if !matches!(edit_action, egui_tiles::EditAction::TabSelected) {
            self.edited = true;
        }
    }
}

fn swimlane_pane_ui(ui: &mut egui::Ui, timeline: &TimelinePanel, commands: &mut Vec<UiCommand>) {
    let Some(selected) = timeline.selected() else {
        ui.add(
            egui::Label::new(
                egui::RichText::new("Select an entry of a call to see the call's swimlane.").weak(),
            )
            .wrap(),
        );
        return;
    };
    let Some(call_id) = &selected.call_id else {
        ui.weak("The selected entry belongs to no call.");
        return;
    };
    let Some(entries) = timeline.call_entries() else {
        ui.weak("reading the call...");
        return;
    };
    // As the table does: the periodic reports hidden (the selected entry always shown).
    let hide_periodic = timeline.filters.hide_periodic;
    let shown: Vec<Arc<TimelineEntry>> = entries
        .iter()
        .filter(|entry| !hide_periodic || !entry.kind().is_periodic() || entry.seq == selected.seq)
        .cloned()
        .collect();
    let hidden = entries.len() - shown.len();
    let counted = if hidden > 0 {
        format!(
            "{} entries ({hidden} periodic hidden, as in the table)",
            shown.len()
        )
    } else {
        format!("{} entries", shown.len())
    };
    ui.add(egui::Label::new(format!("Call {call_id}: {counted}")).truncate());
    let clicked: Option<Arc<TimelineEntry>> = egui::ScrollArea::vertical()
        .id_salt("swimlane")
        .auto_shrink([false, false])
        .show(ui, |ui| swimlane_ui(ui, &shown, Some(selected.seq)))
        .inner;
    if let Some(entry) = clicked {
        commands.push(UiCommand::Select(Some(entry)));
    }
}
