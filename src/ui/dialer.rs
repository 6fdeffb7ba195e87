//! The dialer: who we are, the connection, the contacts (demo peers first) and how to call them.

use std::collections::BTreeSet;

use crate::engine::{ConnectionState, EngineCommand};
use crate::media::{DeviceChoice, DeviceChoices};
use crate::model::MediaType;

use crate::timeline::date_time;

use super::command::UiCommand;
use super::model::Model;
use super::worker::RecentCall;

/// What the dialer remembers between frames.
#[derive(Debug)]
pub struct Dialer {
    /// Contacts picked for a group call.
    picked: BTreeSet<String>,
    /// Audio or video.
    media: MediaType,
    /// Ringing timeout in seconds.
    timeout_secs: u32,
    /// A user id typed by hand.
    typed: String,
}

impl Default for Dialer {
    fn default() -> Self {
        Self {
            picked: BTreeSet::new(),
            media: MediaType::Video,
            timeout_secs: 30,
            typed: String::new(),
        }
    }
}

impl Dialer {
    /// Draws the dialer.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        recent: &[RecentCall],
        commands: &mut Vec<UiCommand>,
    ) {
        ui.heading(format!("You: {}", model.user_id));
        connection_ui(ui, &model.connection, commands);
        clock_offset_ui(ui, model);
        ui.separator();
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.media, MediaType::Video, "Video");
            ui.selectable_value(&mut self.media, MediaType::Audio, "Audio");
        });
        ui.horizontal(|ui| {
            ui.label("Timeout");
            ui.add(
                egui::DragValue::new(&mut self.timeout_secs)
                    .range(0..=120)
                    .suffix(" s"),
            );
        });
        next_call_ui(ui, model, commands);
        ui.separator();
        ui.strong("Contacts");
        // Calls need a log-in: while offline or logged out the buttons say so by being off.
        let idle = model.status() == crate::model::CallStatus::Idle
            && model.connection == ConnectionState::Online;
        for contact in &model.contacts {
            ui.horizontal(|ui| {
                let mut picked = self.picked.contains(&contact.user_id);
                if ui
                    .checkbox(&mut picked, "")
                    .on_hover_text("Pick for a group call")
                    .changed()
                {
                    if picked {
                        self.picked.insert(contact.user_id.clone());
                    } else {
                        self.picked.remove(&contact.user_id);
                    }
                }
                let call =
                    ui.add_enabled(idle, egui::Button::new(format!("Call {}", contact.user_id)));
                if call.clicked() {
                    commands.push(self.dial(vec![contact.user_id.clone()]));
                }
                let note = contact
                    .demo
                    .as_deref()
                    .or((!contact.online).then_some("offline"));
                if let Some(note) = note {
                    ui.add(egui::Label::new(egui::RichText::new(note).weak()).truncate())
                        .on_hover_text(note);
                }
            });
        }
        ui.separator();
        let group = ui.add_enabled(
            idle && self.picked.len() >= 2,
            egui::Button::new(format!("Group call ({} picked)", self.picked.len())),
        );
        if group.clicked() {
            commands.push(self.dial(self.picked.iter().cloned().collect()));
        }
        ui.horizontal(|ui| {
            let label = ui.label("User");
            ui.add(
                egui::TextEdit::singleline(&mut self.typed)
                    .desired_width(90.0)
                    .hint_text("user id"),
            )
            .labelled_by(label.id);
            if ui
                .add_enabled(
                    idle && !self.typed.trim().is_empty(),
                    egui::Button::new("Call"),
                )
                .clicked()
            {
                commands.push(self.dial(vec![self.typed.trim().to_owned()]));
            }
        });
        ui.separator();
        recent_calls_ui(ui, recent, idle, |callees| {
            commands.push(self.dial(callees));
        });
    }

    fn dial(&self, callees: Vec<String>) -> UiCommand {
        UiCommand::Engine(EngineCommand::Dial {
            group: callees.len() > 1,
            callees,
            media: self.media,
            timeout_secs: self.timeout_secs,
        })
    }
}

/// The server clock's offset from ours, once measured.
fn clock_offset_ui(ui: &mut egui::Ui, model: &Model) {
    // The line is always there, so nothing below it moves when the offset arrives.
    let Some(offset) = model.clock_offset else {
        ui.weak("server clock: not measured yet")
            .on_hover_text("Measured from ping round trips once we are online.");
        return;
    };
    ui.weak(format!(
        "server clock {:+.1} ms ± {:.1}",
        offset.offset_micros as f64 / 1000.0,
        offset.error_micros as f64 / 1000.0
    ))
    .on_hover_text(format!(
        "The server's clock minus ours, from the quickest of {} ping round trips ({} µs); \
         entries of other participants will be shown on our clock with it.",
        offset.samples, offset.rtt_micros
    ));
}

/// The newest calls from the stored timeline, with "Call back".
fn recent_calls_ui(
    ui: &mut egui::Ui,
    recent: &[RecentCall],
    idle: bool,
    mut call_back: impl FnMut(Vec<String>),
) {
    egui::CollapsingHeader::new("Recent calls")
        .default_open(true)
        .show(ui, |ui| {
            if recent.is_empty() {
                ui.weak("No calls yet.");
                return;
            }
            for call in recent {
                let who = if call.peers.is_empty() {
                    "?".to_owned()
                } else {
                    call.peers.join(", ")
                };
                let arrow = if call.outgoing { "out" } else { "in" };
                let when = date_time(call.ended_millis);
                let duration =
                    super::call_view::clock(std::time::Duration::from_millis(call.duration_millis));
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(
                            idle && !call.peers.is_empty(),
                            egui::Button::new("Call back"),
                        )
                        .on_hover_text(format!("Call {who} again"))
                        .clicked()
                    {
                        call_back(call.peers.clone());
                    }
                    let line = format!("{arrow} {who} {duration} {}", call.reason);
                    let text = if call.missed {
                        egui::RichText::new(format!("missed: {line}"))
                            .color(ui.visuals().error_fg_color)
                    } else {
                        egui::RichText::new(line)
                    };
                    ui.add(egui::Label::new(text).truncate()).on_hover_text(format!(
                        "{} call with {who}, ended {when} UTC: {} after {duration} connected{}\n{}",
                        if call.outgoing { "Outgoing" } else { "Incoming" },
                        call.reason,
                        if call.missed { " (missed)" } else { "" },
                        call.call_id
                    ));
                });
            }
        });
}

/// The connection line, with "Log in again" when logged out.
pub fn connection_ui(
    ui: &mut egui::Ui,
    connection: &ConnectionState,
    commands: &mut Vec<UiCommand>,
) {
    match connection {
        ConnectionState::Connecting => {
            ui.label("Connecting to signaling...");
        }
        ConnectionState::Online => {
            let green = if ui.visuals().dark_mode {
                egui::Color32::LIGHT_GREEN
            } else {
                egui::Color32::DARK_GREEN
            };
            ui.colored_label(green, "Online");
        }
        ConnectionState::Offline {
            reason,
            retry_in_millis,
        } => {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "Offline: {reason}; trying again {:.1} s after it was lost",
                    *retry_in_millis as f64 / 1000.0
                ),
            );
        }
        ConnectionState::LoggedOut { reason } => {
            ui.colored_label(ui.visuals().error_fg_color, format!("Logged out: {reason}"));
            if ui
                .button("Log in again")
                .on_hover_text("Logs this user in here; a session elsewhere is logged out")
                .clicked()
            {
                commands.push(UiCommand::Engine(EngineCommand::LogIn));
            }
        }
    }
}

/// How a device choice reads in its menu.
fn choice_text(choice: &DeviceChoice) -> String {
    match choice {
        DeviceChoice::Default => "default".to_owned(),
        DeviceChoice::Synthetic => "synthetic".to_owned(),
        DeviceChoice::Named(name) => name.clone(),
        DeviceChoice::File(path) => format!(
            "file: {}",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned()
            )
        ),
    }
}

/// The room a device menu leaves its label.
const LABEL_ROOM: f32 = 90.0;

/// One device menu: default, synthetic, then what the system has.
fn device_menu_ui(
    ui: &mut egui::Ui,
    label: &str,
    choice: &mut DeviceChoice,
    names: &[String],
) -> bool {
    let before = choice.clone();
    // The label ("Microphone" the longest) keeps its line in a narrow panel.
    let width = (ui.available_width() - LABEL_ROOM).clamp(60.0, 150.0);
    egui::ComboBox::from_label(label)
        .selected_text(choice_text(choice))
        .width(width)
        .show_ui(ui, |ui| {
            ui.selectable_value(choice, DeviceChoice::Default, "default");
            ui.selectable_value(choice, DeviceChoice::Synthetic, "synthetic");
            // A file given on the command line stays on the menu, to go back to.
            if let DeviceChoice::File(_) = &before {
                ui.selectable_value(choice, before.clone(), choice_text(&before));
            }
            for name in names {
                ui.selectable_value(choice, DeviceChoice::Named(name.clone()), name);
            }
        });
    *choice != before
}

/// The camera, microphone and speaker for the next call.
pub fn devices_ui(ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
    egui::CollapsingHeader::new("Devices").show(ui, |ui| {
        let Some(devices) = &model.devices else {
            ui.weak("looking for devices...");
            return;
        };
        let cameras: Vec<String> = devices
            .cameras
            .iter()
            .map(|camera| camera.name.clone())
            .collect();
        let mut choices: DeviceChoices = model.device_choices.clone();
        let mut changed = device_menu_ui(ui, "Camera", &mut choices.camera, &cameras);
        changed |= device_menu_ui(
            ui,
            "Microphone",
            &mut choices.microphone,
            &devices.microphones,
        );
        changed |= device_menu_ui(ui, "Speaker", &mut choices.speaker, &devices.speakers);
        changed |= ui
            .checkbox(
                &mut choices.audio_processing,
                "Echo cancellation, noise, gain",
            )
            .on_hover_text(
                "Cleans a real microphone before it is sent: what the speaker played is taken \
                 out (echo cancellation), steady noise is suppressed, a soft voice is lifted. \
                 Files and the tone are sent as they are.",
            )
            .changed();
        if cameras.is_empty() {
            ui.weak("No camera: calls send the test pattern.");
        }
        ui.weak("Applies from the next call.");
        if changed {
            commands.push(UiCommand::Engine(EngineCommand::ChooseDevices(choices)));
        }
    });
}

/// The settings of the next call: private ringing, sharing our callbacks.
fn next_call_ui(ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
    let mut private = model.next_call.private_ringing;
    let hint = "On: while a call rings here, the caller gets nothing from us, not even our \
                address; the connection is made once we accept.\n\
                Off: the connection is prepared while it rings, so media starts sooner \
                after the accept, and the caller learns our address.";
    if ui
        .checkbox(&mut private, "Private ringing")
        .on_hover_text(hint)
        .changed()
    {
        commands.push(UiCommand::Engine(EngineCommand::SetPrivateRinging(private)));
    }
    let mut share = model.next_call.share_trace;
    let hint = "On: our callbacks of each call go, through the server, to the call's other \
                participants who show traces, and theirs come to us: both sides on one \
                timeline. Off: nothing of ours leaves this app.";
    if ui
        .checkbox(
            &mut share,
            "Share my callbacks with this call's participants",
        )
        .on_hover_text(hint)
        .changed()
    {
        commands.push(UiCommand::Engine(EngineCommand::ShareTraces(share)));
    }
}
