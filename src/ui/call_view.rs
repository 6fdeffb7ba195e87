//! The call view: the incoming-call banner, the call's status and timer, its participants, and
//! the controls (hang up, switch audio/video, minimize, invite).

use crate::call::{CallStatus, MediaType, MemberState, Role, ViewMode};
use crate::engine::EngineCommand;

use super::command::UiCommand;
use super::model::Model;

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
    pub fn ui(&mut self, ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
        let status = model.status();
        let call = &model.call;
        if status == CallStatus::Idle {
            ui.vertical_centered(|ui| {
                ui.add_space(40.0);
                ui.heading("No call");
                ui.label("Call a contact on the left (try echo, decline, busy or noanswer).");
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
        if call.view == ViewMode::Minimized {
            ui.label("The call is minimized to the mini view.");
        }
        participants_ui(ui, model);
        ui.separator();
        self.controls_ui(ui, model, commands);
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

fn participants_ui(ui: &mut egui::Ui, model: &Model) {
    ui.horizontal_wrapped(|ui| {
        for (user, state) in &model.call.participants {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_min_size(egui::vec2(160.0, 90.0));
                ui.vertical(|ui| {
                    ui.strong(user);
                    match state {
                        MemberState::Joined => ui.label("in the call"),
                        MemberState::Ringing => ui.weak("ringing..."),
                    };
                    ui.weak("signaling only: no media engine in this build");
                });
            });
        }
    });
}
