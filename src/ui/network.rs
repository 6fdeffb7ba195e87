//! The "Network" section of the callbacks panel: impair the media links on purpose, live, to
//! see what the callbacks do on a bad network. It edits one link (every peer, or one of the
//! call's participants) in one direction (both, send or receive) with sliders for loss, burst
//! length, delay, jitter and a bandwidth cap, applied when a slider is let go; presets, a
//! clear button, and cuts of all media for 1 s or 5 s.

use std::time::Duration;

use crate::engine::EngineCommand;
use crate::media::impair::{Direction, Impairment, LinkRule};

use super::command::UiCommand;
use super::model::Model;

/// What the section edits, kept between frames.
#[derive(Debug, Clone, Default)]
struct Draft {
    /// `None`: every peer without its own.
    peer: Option<String>,
    direction: Direction,
    /// Values being dragged, not applied yet.
    editing: Option<Impairment>,
}

/// Named settings a user reaches for first.
const PRESETS: [(&str, &str); 3] = [
    ("Flaky Wi-Fi", "loss=5%,burst=3,delay=60ms,jitter=40ms"),
    ("Congested", "loss=2%,delay=150ms,jitter=20ms,rate=300kbit"),
    ("Far away", "delay=250ms,jitter=10ms"),
];

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Both => "both ways",
        Direction::Send => "what we send",
        Direction::Receive => "what we receive",
    }
}

/// Draws the section; changes come back as commands.
pub fn network_ui(ui: &mut egui::Ui, model: &Model, commands: &mut Vec<UiCommand>) {
    let id = egui::Id::unique("network draft");
    let mut draft: Draft = ui.data(|data| data.get_temp(id)).unwrap_or_default();
    let peers: Vec<String> = model
        .call
        .participants
        .iter()
        .map(|(user, _)| user.clone())
        .collect();
    target_ui(ui, &peers, &mut draft);
    let directions = match &draft.peer {
        Some(peer) => model.link.for_peer(peer),
        None => model.link.every_peer,
    };
    let applied = if draft.direction == Direction::Receive {
        directions.receive
    } else {
        directions.send
    };
    let mut values = draft.editing.unwrap_or(applied);
    let (changed, released) = sliders_ui(ui, &mut values);
    let mut apply = |impairment: Impairment, draft: &Draft| {
        commands.push(UiCommand::Engine(EngineCommand::Impair(LinkRule {
            peer: draft.peer.clone(),
            direction: draft.direction,
            impairment,
        })));
    };
    if released {
        if values != applied {
            apply(values, &draft);
        }
        draft.editing = None;
    } else if changed {
        draft.editing = Some(values);
    }
    ui.horizontal_wrapped(|ui| {
        for (name, setting) in PRESETS {
            if ui.button(name).on_hover_text(setting).clicked()
                && let Ok(impairment) = setting.parse()
            {
                apply(impairment, &draft);
            }
        }
        if ui
            .button("Clear")
            .on_hover_text("This link and direction lose and delay nothing")
            .clicked()
        {
            apply(Impairment::default(), &draft);
        }
    });
    ui.horizontal_wrapped(|ui| {
        let in_call = model.call.status().is_calling();
        for secs in [1, 5] {
            let button = ui.add_enabled(in_call, egui::Button::new(format!("Cut media {secs} s")));
            if button
                .on_hover_text(
                    "Drops all audio and video both ways for a while, keeping the connections: \
                     see the frozen picture, the key-frame requests and how fast it comes back",
                )
                .on_disabled_hover_text("Only during a connected call")
                .clicked()
            {
                commands.push(UiCommand::Engine(EngineCommand::CutMedia {
                    for_millis: secs * 1000,
                }));
            }
        }
    });
    let summary = |directions: crate::media::impair::Directions| {
        format!("send {}, receive {}", directions.send, directions.receive)
    };
    ui.weak(format!("Every peer: {}", summary(model.link.every_peer)));
    for (peer, directions) in &model.link.peers {
        ui.weak(format!("{peer}: {}", summary(*directions)));
    }
    ui.data_mut(|data| data.insert_temp(id, draft));
}

/// Which link and direction the sliders edit.
fn target_ui(ui: &mut egui::Ui, peers: &[String], draft: &mut Draft) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Link to");
        egui::ComboBox::from_id_salt("impair peer")
            .selected_text(draft.peer.as_deref().unwrap_or("every peer"))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut draft.peer, None, "every peer");
                for peer in peers {
                    ui.selectable_value(&mut draft.peer, Some(peer.clone()), peer);
                }
            });
        egui::ComboBox::from_id_salt("impair direction")
            .selected_text(direction_name(draft.direction))
            .show_ui(ui, |ui| {
                for direction in [Direction::Both, Direction::Send, Direction::Receive] {
                    ui.selectable_value(&mut draft.direction, direction, direction_name(direction));
                }
            });
    });
}

/// The sliders: whether a value changed, and whether the change is done (a drag let go, or a
/// click or key).
fn sliders_ui(ui: &mut egui::Ui, values: &mut Impairment) -> (bool, bool) {
    let mut released = false;
    let mut changed = false;
    egui::Grid::new("impair sliders")
        .num_columns(2)
        .spacing([8.0, 2.0])
        .show(ui, |ui| {
            let mut slider = |ui: &mut egui::Ui, label: &str, hint: &str, slider: egui::Slider| {
                ui.label(label).on_hover_text(hint);
                let response = ui.add(slider);
                // A slider also moves by itself, when it rounds or clamps a value set elsewhere
                // (`--impair loss=2.3%`): only a change the user made counts.
                let touched = response.dragged() || response.has_focus() || response.drag_stopped();
                changed |= response.changed() && touched;
                released |= response.drag_stopped()
                    || (response.changed() && response.has_focus() && !response.dragged());
                ui.end_row();
            };
            slider(
                ui,
                "Loss",
                "Packets lost on the way, in %",
                egui::Slider::new(&mut values.loss_pct, 0.0..=30.0)
                    .step_by(0.5)
                    .suffix(" %"),
            );
            slider(
                ui,
                "Burst",
                "Mean length of a loss burst, in packets (1: independent losses)",
                egui::Slider::new(&mut values.burst, 1.0..=10.0).step_by(0.5),
            );
            let mut delay = values.delay.as_millis() as u64;
            slider(
                ui,
                "Delay",
                "Added one-way delay",
                egui::Slider::new(&mut delay, 0..=1000).suffix(" ms"),
            );
            values.delay = Duration::from_millis(delay);
            let mut jitter = values.jitter.as_millis() as u64;
            slider(
                ui,
                "Jitter",
                "Each packet's delay varies by up to this much (packets keep their order)",
                egui::Slider::new(&mut jitter, 0..=200).suffix(" ms"),
            );
            values.jitter = Duration::from_millis(jitter);
            let mut rate = values.rate_kbit.unwrap_or(0);
            slider(
                ui,
                "Cap",
                "Bandwidth cap in kbit/s (0: none); at most 300 ms queue, then drops",
                egui::Slider::new(&mut rate, 0..=5000)
                    .step_by(50.0)
                    .suffix(" kbit/s"),
            );
            values.rate_kbit = (rate > 0).then_some(rate);
        });
    (changed, released)
}
