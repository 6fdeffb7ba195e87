//! The call view: the incoming-call banner, the call's status and timer, the video grid (one
//! tile per participant, the local preview), and the controls (hang up, mute, camera, switch
//! audio/video, minimize, invite), with the stats plots below.

use crate::call::MemberState;
use crate::engine::EngineCommand;
use crate::event::NetworkQuality;
use crate::media::LOCAL_STREAM;
use crate::model::{CallStatus, MediaType, Role, ViewMode};

use super::command::UiCommand;
use super::model::Model;
use super::stats_panel::stats_panel_ui;
use super::video::VideoTextures;

/// What the call view remembers between frames.
#[derive(Debug, Default)]
pub struct CallView {
    invitee: String,
}

/// `mm:ss` of a duration.
pub fn clock(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

impl CallView {
    /// Draws the call view.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        video: &VideoTextures,
        commands: &mut Vec<UiCommand>,
    ) {
        let status = model.status();
        let call = &model.call;
        if status == CallStatus::Idle {
            ui.vertical_centered(|ui| {
                ui.add_space(40.0);
                ui.heading("No call");
                if let Some(outcome) = &model.last_outcome {
                    let by = if outcome.user_id.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", outcome.user_id)
                    };
                    ui.label(format!(
                        "The last call ended: {}{by}, {} connected.",
                        outcome.reason,
                        clock(std::time::Duration::from_millis(outcome.duration_millis))
                    ));
                }
                ui.label(
                    "Call a contact on the left (try echo, decline, busy, noanswer, hangup or \
                     ringback).",
                );
                ui.label("Every callback and event shows up in the timeline below.");
            });
            return;
        }
        let media = call.media.unwrap_or(MediaType::Video);
        if status == CallStatus::BeInvited {
            incoming_ui(
                ui,
                call.caller.as_deref().unwrap_or("someone"),
                media,
                commands,
            );
        }
        ui.horizontal(|ui| {
            ui.heading(status.as_str());
            if let Some(connected) = model.connected_at {
                ui.label(clock(connected.elapsed()));
            }
            if let Some(call_id) = &call.call_id {
                ui.weak(call_id);
            }
        });
        // The controls come first, so that lines appearing below never move a button under
        // the pointer.
        self.controls_ui(ui, model, commands);
        if call.view == ViewMode::Minimized {
            ui.label("The call is minimized to the mini view.");
        }
        for warning in &model.media.device_warnings {
            ui.colored_label(ui.visuals().warn_fg_color, format!("Device: {warning}"));
        }
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("call view")
            .show(ui, |ui| {
                participants_ui(ui, model, video, media);
                egui::CollapsingHeader::new("Stats")
                    .default_open(true)
                    .show(ui, |ui| stats_panel_ui(ui, &model.media));
            });
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
        let status = model.status();
        let media = model.call.media.unwrap_or(MediaType::Video);
        let mut send = |command| commands.push(UiCommand::Engine(command));
        ui.horizontal(|ui| {
            let hang_up = match (status, model.call.role) {
                (CallStatus::BeInvited, _) => "Reject",
                (CallStatus::DialingC2c | CallStatus::DialingGroup, _) => "Cancel",
                (_, Some(Role::Caller | Role::Callee) | None) => "Hang up",
            };
            if ui.button(hang_up).on_hover_text("Ctrl+H").clicked() {
                send(EngineCommand::Hangup);
            }
            let microphone = if model.microphone_on {
                "Mute"
            } else {
                "Unmute"
            };
            if ui.button(microphone).on_hover_text("Ctrl+M").clicked() {
                send(EngineCommand::SetMicrophone(!model.microphone_on));
            }
            let camera = if model.camera_on {
                "Camera off"
            } else {
                "Camera on"
            };
            if ui.button(camera).on_hover_text("Ctrl+E").clicked() {
                send(EngineCommand::SetCamera(!model.camera_on));
            }
            if status.is_calling() {
                let (label, other) = match media {
                    MediaType::Video => ("Switch to audio", MediaType::Audio),
                    MediaType::Audio => ("Switch to video", MediaType::Video),
                };
                if ui.button(label).clicked() {
                    send(EngineCommand::SwitchMedia(other));
                }
            }
            let (label, command) = match model.call.view {
                ViewMode::Full => ("Minimize", EngineCommand::Minimize),
                ViewMode::Minimized => ("Restore", EngineCommand::Restore),
            };
            if ui.button(label).on_hover_text("Ctrl+N").clicked() {
                send(command);
            }
        });
        let group = matches!(
            status,
            CallStatus::DialingGroup
                | CallStatus::CallingGroupAudio
                | CallStatus::CallingGroupVideo
        );
        if group {
            ui.horizontal(|ui| {
                let label = ui.label("Invite");
                ui.add(
                    egui::TextEdit::singleline(&mut self.invitee)
                        .desired_width(100.0)
                        .hint_text("user id"),
                )
                .labelled_by(label.id);
                let ready = !self.invitee.trim().is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new("Invite into call"))
                    .clicked()
                {
                    let users = vec![self.invitee.trim().to_owned()];
                    commands.push(UiCommand::Engine(EngineCommand::InviteMore(users)));
                    self.invitee.clear();
                }
            });
        }
    }
}

fn incoming_ui(ui: &mut egui::Ui, caller: &str, media: MediaType, commands: &mut Vec<UiCommand>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.heading(format!("Incoming {} call from {caller}", media.as_str()));
            if ui.button("Accept").clicked() {
                commands.push(UiCommand::Engine(EngineCommand::Accept));
            }
        });
    });
}

/// Tile width for `count` tiles in the space there is.
fn tile_width(ui: &egui::Ui, count: usize) -> f32 {
    let columns = match count {
        0 | 1 => 1.0,
        2 | 4 => 2.0,
        _ => 3.0,
    };
    (ui.available_width() / columns - 16.0).clamp(120.0, 640.0)
}

fn participants_ui(ui: &mut egui::Ui, model: &Model, video: &VideoTextures, media: MediaType) {
    let participants = &model.call.participants;
    // The local preview takes a place in the grid too, so it stays in view next to the others.
    let width = tile_width(ui, participants.len() + 1);
    ui.horizontal_wrapped(|ui| {
        for (user, state) in participants {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.vertical(|ui| {
                    ui.horizontal(|ui| {
                        ui.strong(user);
                        if let Some(quality) = model.media.quality.get(user) {
                            quality_badge_ui(ui, *quality);
                        }
                        if let Some(level) = model.media.volumes.get(user) {
                            volume_ui(ui, *level);
                        }
                        if let Some(resolution) = model.media.resolution.get(user)
                            && !resolution.is_empty()
                        {
                            ui.weak(resolution);
                        }
                    });
                    let caption = match (state, media) {
                        (MemberState::Ringing, _) => "ringing...",
                        (MemberState::Joined, MediaType::Audio) => "audio only",
                        (MemberState::Joined, MediaType::Video) => "waiting for video...",
                    };
                    let showing = *state == MemberState::Joined && media == MediaType::Video;
                    video.tile_ui(ui, if showing { user } else { "" }, width, caption);
                });
            });
        }
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.strong(format!("{} (you)", model.user_id));
                    if let Some(level) = model.media.volumes.get(&model.user_id) {
                        volume_ui(ui, *level);
                    }
                });
                let caption = if media == MediaType::Audio {
                    "audio only"
                } else if model.camera_on {
                    "starting camera..."
                } else {
                    "camera off"
                };
                let showing = media == MediaType::Video && model.camera_on;
                video.tile_ui(
                    ui,
                    if showing { LOCAL_STREAM } else { "" },
                    (width / 2.0).max(120.0),
                    caption,
                );
            });
        });
    });
}

fn quality_badge_ui(ui: &mut egui::Ui, quality: NetworkQuality) {
    let (text, color) = match quality {
        NetworkQuality::Excellent => ("excellent", egui::Color32::from_rgb(40, 160, 60)),
        NetworkQuality::Good => ("good", egui::Color32::from_rgb(90, 170, 60)),
        NetworkQuality::Poor => ("poor", egui::Color32::from_rgb(200, 160, 30)),
        NetworkQuality::Bad => ("bad", egui::Color32::from_rgb(220, 110, 30)),
        NetworkQuality::Vbad => ("very bad", egui::Color32::from_rgb(210, 60, 40)),
        NetworkQuality::Down => ("down", egui::Color32::from_rgb(180, 30, 30)),
        NetworkQuality::Unknown => ("unknown", egui::Color32::GRAY),
    };
    ui.label(egui::RichText::new(text).small().color(color))
        .on_hover_text("network quality");
}

fn volume_ui(ui: &mut egui::Ui, level: u8) {
    ui.add(
        egui::ProgressBar::new(f32::from(level) / 100.0)
            .desired_width(50.0)
            .desired_height(6.0),
    )
    .on_hover_text(format!("voice level {level}"));
}
