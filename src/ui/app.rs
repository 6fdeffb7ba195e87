//! `CallscopeApp`: composes the panels, drains the engine once per frame, and applies what the
//! panels ask for in one place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineCommand, EngineConfig, EngineError, ServerChoice};
use crate::kit::{CallKit, Switches};
use crate::media::{DeviceChoice, DeviceChoices, FrameSlots, MediaConfig};
use crate::model::{CallStatus, ViewMode};
use crate::timeline::{ExportFormat, Store, StoreError, Timeline, export};

use super::call_view::{CallView, clock};
use super::command::UiCommand;
use super::debug_panel::debug_panel_ui;
use super::dialer::{Dialer, devices_ui};
use super::model::Model;
use super::settings::Settings;
use super::timeline_panel::TimelinePanel;
use super::video::VideoTextures;

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
    /// Devices, resolution and ICE servers of calls (the window adds its frame slots).
    pub media: MediaConfig,
}

/// The callscope window.
pub struct CallscopeApp {
    engine: Engine,
    kit: CallKit,
    store: Option<Store>,
    data_dir: PathBuf,
    settings: Settings,
    model: Model,
    dialer: Dialer,
    call_view: CallView,
    video: VideoTextures,
    frames: FrameSlots,
    timeline: TimelinePanel,
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
        };
        let private_ringing = options.private_ringing.unwrap_or(settings.private_ringing);
        let repaint_ctx = ctx.clone();
        let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || repaint_ctx.request_repaint());
        let frames = FrameSlots::with_repaint(Arc::clone(&repaint));
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
                ringing: crate::media::Ringing::private(private_ringing),
                ..options.media
            }),
        };
        let engine = Engine::start(config, kit.clone(), repaint)?;
        engine.send(EngineCommand::ListDevices);
        ctx.set_theme(if settings.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        let mut model = Model::new(&options.user_id);
        model.device_choices = device_choices;
        model.private_ringing = private_ringing;
        model.notice = notice;
        Ok(Self {
            engine,
            kit,
            store,
            data_dir: options.data_dir,
            settings,
            model,
            dialer: Dialer::default(),
            call_view: CallView::default(),
            video: VideoTextures::default(),
            frames,
            timeline: TimelinePanel::default(),
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
                self.model.counts[entry.kind().index()] += 1;
                self.model.media.observe(entry);
            }
        }
        self.timeline.refresh(timeline, self.store.as_ref());
        if self.model.connection == crate::engine::ConnectionState::Online
            && !self.call_on_start.is_empty()
        {
            let callees = std::mem::take(&mut self.call_on_start);
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
        });
    }

    fn apply(&mut self, ctx: &egui::Context, command: UiCommand) {
        match command {
            UiCommand::Engine(command) => {
                if let EngineCommand::ChooseDevices(choices) = &command {
                    self.model.device_choices.clone_from(choices);
                    self.settings.devices.clone_from(choices);
                    self.save_settings();
                }
                if let EngineCommand::SetPrivateRinging(private) = command {
                    self.model.private_ringing = private;
                    self.settings.private_ringing = private;
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
        }
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
        let extension = match format {
            ExportFormat::JsonLines => "jsonl",
            ExportFormat::Perfetto => "perfetto.json",
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let dir = self.data_dir.join("exports");
        let path = dir.join(format!("timeline-{stamp}.{extension}"));
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::File::create(&path))
            .and_then(|file| {
                let mut writer = std::io::BufWriter::new(file);
                export(
                    self.timeline.rows().iter().map(|entry| &**entry),
                    format,
                    &mut writer,
                )?;
                std::io::Write::flush(&mut writer)
            });
        self.model.notice = Some(match written {
            Ok(()) => format!(
                "exported {} entries to {}",
                self.timeline.rows().len(),
                path.display()
            ),
            Err(error) => format!("export failed: {error}"),
        });
    }

    fn mini_view_ui(&self, ctx: &egui::Context, commands: &mut Vec<UiCommand>) {
        if self.model.call.view != ViewMode::Minimized || self.model.status() == CallStatus::Idle {
            return;
        }
        let builder = egui::ViewportBuilder::default()
            .with_title("callscope mini view")
            .with_inner_size([260.0, 110.0])
            .with_window_level(egui::WindowLevel::AlwaysOnTop);
        ctx.show_viewport_immediate(
            egui::ViewportId::from_hash_of("mini view"),
            builder,
            |ui, _| {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.strong(self.model.status().as_str());
                    if let Some(connected) = self.model.connected_at {
                        ui.label(clock(connected.elapsed()));
                    }
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
        if ctx.input_mut(|input| input.consume_shortcut(&FOCUS_TIMELINE)) {
            self.timeline.focus_search = true;
        }
        egui::Panel::top("toolbar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("callscope");
                ui.label(format!("server {}", self.engine.server_url()));
                let theme = if self.settings.dark {
                    "Light theme"
                } else {
                    "Dark theme"
                };
                if ui.button(theme).on_hover_text("Ctrl+D").clicked() {
                    commands.push(UiCommand::ToggleTheme);
                }
                if let Some(notice) = &self.model.notice {
                    ui.label(notice);
                }
            });
        });
        egui::Panel::right("debug")
            .resizable(true)
            .default_size(270.0)
            .show(ui, |ui| {
                debug_panel_ui(
                    ui,
                    self.kit.switches().snapshot(),
                    &self.model,
                    &mut commands,
                );
            });
        egui::Panel::bottom("timeline")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                self.timeline.ui(ui, &mut commands);
            });
        egui::Panel::left("dialer")
            .resizable(true)
            .default_size(250.0)
            .show(ui, |ui| {
                self.dialer.ui(ui, &self.model, &mut commands);
                ui.separator();
                devices_ui(ui, &self.model, &mut commands);
            });
        egui::CentralPanel::default().show(ui, |ui| {
            self.call_view
                .ui(ui, &self.model, &self.video, &mut commands);
        });
        self.mini_view_ui(&ctx, &mut commands);
        for command in commands {
            self.apply(&ctx, command);
        }
        if self.model.connected_at.is_some() {
            // The call timer ticks once a second.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
    }
}
