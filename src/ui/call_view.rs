//! The call view: the incoming-call banner, the status with the call timer or the ringing
//! countdown, the controls (hang up, mute, camera, switch audio/video, minimize, invite), and a
//! video grid that fits the panel: one large tile per remote participant (the active speaker
//! outlined) and a small local preview. Between calls, a card says how the last one ended.

use crate::call::MemberState;
use crate::engine::EngineCommand;
use crate::event::NetworkQuality;
use crate::media::LOCAL_STREAM;
use crate::model::{CallStatus, MediaType, Role, ViewMode};

use super::command::UiCommand;
use super::model::Model;
use super::video::VideoTextures;

/// Width over height of a tile's picture.
const TILE_ASPECT: f32 = 16.0 / 9.0;
/// The caption line above each tile's picture.
const CAPTION_HEIGHT: f32 = 20.0;
/// Space between tiles.
const GAP: f32 = 6.0;
/// A voice level above this marks the loudest remote participant as the active speaker.
const SPEAKING_LEVEL: u8 = 8;

/// What the call view remembers between frames.
#[derive(Debug, Default)]
pub struct CallView {
    invitee: String,
    /// The call whose end card was dismissed.
    dismissed: Option<String>,
}

/// `mm:ss` of a duration.
pub fn clock(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

/// The number of columns that gives `count` tiles of `aspect` the largest width in `area`,
/// and that width.
pub fn grid_columns(count: usize, area: egui::Vec2, aspect: f32) -> (usize, f32) {
    let count = count.max(1);
    let mut best = (1, 0.0);
    for columns in 1..=count {
        let rows = count.div_ceil(columns);
        let by_width = (area.x - GAP * (columns as f32 - 1.0)) / columns as f32;
        let by_height =
            ((area.y - GAP * (rows as f32 - 1.0)) / rows as f32 - CAPTION_HEIGHT) * aspect;
        let width = by_width.min(by_height).max(0.0);
        if width > best.1 + 0.5 {
            best = (columns, width);
        }
    }
    best
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
            self.idle_ui(ui, model, commands);
            return;
        }
        self.dismissed = None;
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
            } else if let Some(left) = model.ringing_left() {
                ui.label(format!("ringing, {} s left", left.as_secs()))
                    .on_hover_text(format!(
                        "The call gives up with no-response after {} s",
                        model.ring_timeout_secs
                    ));
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(250));
            }
            if let Some(call_id) = &call.call_id {
                ui.add(egui::Label::new(egui::RichText::new(call_id).weak()).truncate());
            }
        });
        // The controls come first, so that lines appearing below never move a button under
        // the pointer.
        self.controls_ui(ui, model, commands);
        if call.view == ViewMode::Minimized {
            ui.label("The call is minimized to the mini view.");
        }
        for warning in &model.media.device_warnings {
            let text = format!("Device: {warning}");
            ui.add(
                egui::Label::new(egui::RichText::new(&text).color(ui.visuals().warn_fg_color))
                    .truncate(),
            )
            .on_hover_text(text);
        }
        participants_ui(ui, model, video, media);
    }

    fn idle_ui(&mut self, ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
        egui::ScrollArea::vertical()
            .id_salt("idle call view")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.add_space(12.0);
                if let Some(outcome) = &model.last_outcome
                    && self.dismissed.as_deref() != Some(outcome.call_id.as_str())
                {
                    egui::Frame::group(ui.style()).show(ui, |ui| {
                        ui.set_min_width(ui.available_width().min(360.0));
                        ui.heading("Call ended");
                        egui::Grid::new("end card").num_columns(2).show(ui, |ui| {
                            ui.label("Reason");
                            ui.strong(format!("Ended: {}", outcome.reason));
                            ui.end_row();
                            ui.label("Who");
                            ui.label(if outcome.user_id.is_empty() {
                                "-".to_owned()
                            } else {
                                outcome.user_id.clone()
                            });
                            ui.end_row();
                            ui.label("Connected");
                            ui.label(clock(std::time::Duration::from_millis(
                                outcome.duration_millis,
                            )));
                            ui.end_row();
                            let (errors, devices) = model.errors_in(&outcome.call_id);
                            ui.label("Errors");
                            if errors == 0 {
                                ui.label("none");
                            } else {
                                ui.colored_label(ui.visuals().error_fg_color, errors.to_string());
                            }
                            ui.end_row();
                            if devices > 0 {
                                ui.label("Devices");
                                ui.label(format!("{devices} missing (synthetic source used)"));
                                ui.end_row();
                            }
                            ui.label("Call");
                            ui.add(egui::Label::new(&outcome.call_id).truncate());
                            ui.end_row();
                        });
                        ui.horizontal(|ui| {
                            if !model.last_peers.is_empty()
                                && ui
                                    .add_enabled(model.can_call(), egui::Button::new("Call again"))
                                    .clicked()
                            {
                                commands.push(UiCommand::Engine(EngineCommand::Dial {
                                    group: model.last_peers.len() > 1,
                                    callees: model.last_peers.clone(),
                                    media: model.last_media,
                                    timeout_secs: model.ring_timeout_secs,
                                }));
                            }
                            if ui.button("Dismiss").clicked() {
                                self.dismissed = Some(outcome.call_id.clone());
                            }
                        });
                    });
                    ui.add_space(8.0);
                }
                ui.heading("No call");
                ui.label(
                    "Call a contact in the dialer (try echo, decline, busy, noanswer, hangup or \
                     ringback); every callback shows up in the timeline.",
                );
            });
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
        let status = model.status();
        let media = model.call.media.unwrap_or(MediaType::Video);
        let mut send = |command| commands.push(UiCommand::Engine(command));
        ui.horizontal_wrapped(|ui| {
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
        ui.horizontal_wrapped(|ui| {
            ui.heading(format!("Incoming {} call from {caller}", media.as_str()));
            if ui.button("Accept").clicked() {
                commands.push(UiCommand::Engine(EngineCommand::Accept));
            }
        });
    });
}

/// The loudest remote participant, if anyone speaks.
fn active_speaker(model: &Model) -> Option<&str> {
    model
        .call
        .participants
        .iter()
        .filter_map(|(user, _)| {
            let level = *model.media.volumes.get(user)?;
            (level > SPEAKING_LEVEL).then_some((user.as_str(), level))
        })
        .max_by_key(|(_, level)| *level)
        .map(|(user, _)| user)
}

fn participants_ui(ui: &mut egui::Ui, model: &Model, video: &VideoTextures, media: MediaType) {
    let participants = &model.call.participants;
    let area = ui.available_rect_before_wrap();
    // 1:1: the remote tile fills the area and the preview sits in its corner. A group: the
    // preview takes a cell of the grid, drawn smaller, so no remote tile is covered.
    let cells = if participants.len() <= 1 {
        1
    } else {
        participants.len() + 1
    };
    let (columns, width) = grid_columns(cells, area.size(), TILE_ASPECT);
    let tile_size = egui::vec2(width, width / TILE_ASPECT + CAPTION_HEIGHT);
    let rows = cells.div_ceil(columns);
    let used = egui::vec2(
        columns as f32 * tile_size.x + GAP * (columns as f32 - 1.0),
        rows as f32 * tile_size.y + GAP * (rows as f32 - 1.0),
    );
    let origin = area.left_top() + egui::vec2(((area.width() - used.x) / 2.0).max(0.0), 0.0);
    let cell_rect = |index: usize| {
        let (row, column) = (index / columns, index % columns);
        egui::Rect::from_min_size(
            origin
                + egui::vec2(
                    column as f32 * (tile_size.x + GAP),
                    row as f32 * (tile_size.y + GAP),
                ),
            tile_size,
        )
    };
    let speaker = active_speaker(model);
    for (index, (user, state)) in participants.iter().enumerate() {
        let caption = match (state, media) {
            (MemberState::Ringing, _) => "ringing...",
            (MemberState::Joined, MediaType::Audio) => "audio only",
            (MemberState::Joined, MediaType::Video) => "waiting for video...",
        };
        let showing = *state == MemberState::Joined && media == MediaType::Video;
        let tile = Tile {
            title: user,
            stream: if showing { user } else { "" },
            caption,
            level: model.media.volumes.get(user).copied(),
            quality: model.media.quality.get(user).copied(),
            warnings: model.media.warnings.get(user),
            resolution: model.media.resolution.get(user).map(String::as_str),
            speaking: speaker == Some(user.as_str()),
        };
        tile_ui(ui, cell_rect(index), &tile, video);
    }
    let preview_rect = if participants.len() <= 1 {
        let remote = cell_rect(0);
        let width = (remote.width() * 0.28).clamp(96.0, 260.0);
        let size = egui::vec2(width, width / TILE_ASPECT + CAPTION_HEIGHT);
        egui::Rect::from_min_size(remote.right_bottom() - size - egui::vec2(6.0, 6.0), size)
    } else {
        let cell = cell_rect(participants.len());
        let size = cell.size() * 0.8;
        egui::Rect::from_min_size(cell.left_top(), size)
    };
    let caption = if media == MediaType::Audio {
        "audio only"
    } else if model.camera_on {
        "starting camera..."
    } else {
        "camera off"
    };
    let showing = media == MediaType::Video && model.camera_on;
    let me = format!("{} (you)", model.user_id);
    let preview = Tile {
        title: &me,
        stream: if showing { LOCAL_STREAM } else { "" },
        caption,
        level: model.media.volumes.get(&model.user_id).copied(),
        quality: None,
        // Our own warnings (no-audio-input) show on our own tile.
        warnings: model.media.warnings.get(&model.user_id),
        resolution: None,
        speaking: false,
    };
    ui.painter()
        .rect_filled(preview_rect, 4.0, ui.visuals().panel_fill);
    tile_ui(ui, preview_rect, &preview, video);
    ui.allocate_rect(
        egui::Rect::from_min_size(area.left_top(), egui::vec2(area.width(), used.y)),
        egui::Sense::hover(),
    );
}

/// What one tile shows.
struct Tile<'a> {
    title: &'a str,
    stream: &'a str,
    caption: &'a str,
    level: Option<u8>,
    quality: Option<NetworkQuality>,
    warnings: Option<&'a std::collections::BTreeSet<crate::event::QualityWarningName>>,
    resolution: Option<&'a str>,
    speaking: bool,
}

fn tile_ui(ui: &mut egui::Ui, rect: egui::Rect, tile: &Tile<'_>, video: &VideoTextures) {
    let builder = egui::UiBuilder::new()
        .max_rect(rect)
        .layout(egui::Layout::top_down(egui::Align::Min));
    ui.scope_builder(builder, |ui| {
        ui.set_clip_rect(rect.intersect(ui.clip_rect()));
        ui.horizontal(|ui| {
            ui.set_height(CAPTION_HEIGHT - 4.0);
            ui.add(egui::Label::new(egui::RichText::new(tile.title).strong()).truncate());
            if let Some(quality) = tile.quality {
                quality_badge_ui(ui, quality);
            }
            for warning in tile.warnings.into_iter().flatten() {
                ui.label(
                    egui::RichText::new(format!("! {warning}"))
                        .small()
                        .strong()
                        .color(egui::Color32::from_rgb(230, 120, 40)),
                )
                .on_hover_text("a quality warning raised now (onQualityWarning)");
            }
            if let Some(level) = tile.level {
                volume_ui(ui, level);
            }
            if let Some(resolution) = tile.resolution
                && !resolution.is_empty()
            {
                ui.weak(resolution);
            }
        });
        let picture = egui::Rect::from_min_max(
            egui::pos2(rect.left(), rect.top() + CAPTION_HEIGHT),
            rect.right_bottom(),
        );
        video.paint(ui, picture, tile.stream, tile.caption);
        if tile.speaking {
            ui.painter().rect_stroke(
                picture,
                4.0,
                egui::Stroke::new(2.0, ui.visuals().selection.stroke.color),
                egui::StrokeKind::Inside,
            );
        }
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
            .desired_width(40.0)
            .desired_height(6.0),
    )
    .on_hover_text(format!("voice level {level}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_picks_the_columns_that_give_the_largest_tiles() {
        // Wide and short: side by side.
        assert_eq!(grid_columns(2, egui::vec2(1000.0, 300.0), 16.0 / 9.0).0, 2);
        // Tall and narrow: one above the other.
        assert_eq!(grid_columns(2, egui::vec2(300.0, 1000.0), 16.0 / 9.0).0, 1);
        // Five in a wide area: three columns, two rows.
        assert_eq!(grid_columns(5, egui::vec2(900.0, 400.0), 16.0 / 9.0).0, 3);
        // Every tile fits inside the area.
        for count in 1..=9 {
            let area = egui::vec2(560.0, 330.0);
            let (columns, width) = grid_columns(count, area, 16.0 / 9.0);
            let rows = count.div_ceil(columns) as f32;
            assert!(columns as f32 * width <= area.x + 0.1);
            assert!(rows * (width / (16.0 / 9.0) + CAPTION_HEIGHT) <= area.y + 0.1);
        }
    }
}
