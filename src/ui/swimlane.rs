//! The swimlane of one call: our lanes (one per status we went through, as bars over time, one
//! for the call itself and one per participant we heard of), then a lane group per other side
//! that recorded the call (its statuses as bars, its entries as marks) and one for the server;
//! a mark per entry, coloured by kind the same way on every frame, with a legend; a thin line
//! from each signaling send to its receipt on another side. Hover a mark for its entry, click it
//! to select.

use std::collections::BTreeMap;
use std::sync::Arc;

use egui_plot::{Line, Plot, PlotPoint, PlotPoints, Points};

use crate::event::{CallbackKind, Event};
use crate::model::CallStatus;
use crate::timeline::{Origin, TimelineEntry};

/// Each kind's marks: where, and the entry of each.
type Marks = BTreeMap<CallbackKind, Vec<([f64; 2], Arc<TimelineEntry>)>>;

/// The colour of the lines from a signaling send to its receipt (unlike the grid's grey).
const SIGNALING_COLOR: egui::Color32 = egui::Color32::from_rgb(240, 150, 60);

/// The lane of entries about no one participant.
const CALL_LANE: &str = "call";

/// A kind's colour: fixed by its place in the list of kinds, so it never changes.
pub fn kind_color(kind: CallbackKind) -> egui::Color32 {
    let hue = (kind.index() as f32 * 0.618_034).fract();
    egui::ecolor::Hsva::new(hue, 0.7, 0.85, 1.0).into()
}

fn status_color(status: CallStatus) -> egui::Color32 {
    let index = CallStatus::ALL
        .iter()
        .position(|candidate| *candidate == status)
        .unwrap_or(0);
    let hue = (index as f32 * 0.618_034 + 0.3).fract();
    egui::ecolor::Hsva::new(hue, 0.45, 0.7, 1.0).into()
}

/// The participant an entry is about, if its payload names one.
pub fn subject(event: &Event) -> Option<&str> {
    match event {
        Event::UserReject { user_id }
        | Event::UserNoResponse { user_id }
        | Event::UserLineBusy { user_id }
        | Event::UserJoin { user_id }
        | Event::UserLeave { user_id }
        | Event::UserVideoAvailable { user_id, .. }
        | Event::UserAudioAvailable { user_id, .. }
        | Event::UserNetworkQualityChanged { user_id, .. }
        | Event::ConnectionStateChanged { user_id, .. } => Some(user_id),
        Event::CallStats(stats) => Some(&stats.user_id),
        Event::CallReceived { caller_id, .. } => Some(caller_id),
        _ => None,
    }
}

fn seconds(entry: &TimelineEntry, start: &TimelineEntry) -> f64 {
    // Every side's entries are on our clock (placed through the server's, or moved on import).
    (entry.wall_micros().cast_signed() - start.wall_micros().cast_signed()) as f64 / 1e6
}

/// Draws `entries` (one call's, oldest first); returns the entry whose mark was clicked.
pub fn swimlane_ui(
    ui: &mut egui::Ui,
    entries: &[Arc<TimelineEntry>],
    selected: Option<u64>,
) -> Option<Arc<TimelineEntry>> {
    // Other sides' entries come later in the timeline but may have happened earlier.
    let first = entries.iter().min_by_key(|entry| entry.wall_micros())?;
    let end = entries
        .iter()
        .map(|entry| seconds(entry, first))
        .fold(0.0, f64::max);
    let Placed {
        lanes,
        spans,
        points,
        marks,
    } = place(entries, first, end);
    let lane_y =
        |name: &str| -> f64 { -(lanes.iter().position(|lane| lane == name).unwrap_or(0) as f64) };
    let lane_count = lanes.len();
    // Tall enough for every lane's label (the pane scrolls when it is shorter).
    let height = (60.0 + 22.0 * lane_count as f32).max(100.0);
    let names_by_kind: BTreeMap<&'static str, CallbackKind> =
        marks.keys().map(|kind| (kind.as_str(), *kind)).collect();
    let lanes_for_axis = lanes.clone();
    let response = Plot::new(("swimlane", first.call_id.clone()))
        .height(height)
        .allow_scroll(false)
        .include_y(0.5)
        .include_y(-(lane_count as f64) + 0.5)
        .include_x(0.0)
        .show_grid([true, false])
        .x_axis_formatter(|mark, _| format!("{:.1} s", mark.value))
        .y_axis_min_width(90.0)
        // A label on every lane (the default spacing skips some when lanes are many).
        .y_grid_spacer(lane_marks())
        .y_axis_formatter(move |mark, _| lane_label(&lanes_for_axis, mark.value))
        .label_formatter(|position| match position {
            egui_plot::HoverPosition::NearDataPoint {
                plot_name, index, ..
            } => names_by_kind
                .get(plot_name)
                .and_then(|kind| marks.get(kind)?.get(*index))
                .map(|(_, entry)| format!("#{} {}\n{}", entry.seq, entry.kind(), entry.event)),
            egui_plot::HoverPosition::Elsewhere { .. } => None,
        })
        .show(ui, |plot| {
            for (lane, status, from, to) in &spans {
                let y = lane_y(lane);
                let points = PlotPoints::from(vec![[*from, y], [to.max(*from), y]]);
                // Unnamed: the lane's label names it, the legend keeps to kinds.
                plot.line(
                    Line::new("", points)
                        .width(8.0)
                        .color(status_color(*status)),
                );
            }
            // Over the bars, under the marks: a send and its receipt are often in the same
            // millisecond, so most lines run straight down.
            for (send, receipt) in signaling_pairs(entries) {
                if let (Some(from), Some(to)) = (points.get(&send), points.get(&receipt)) {
                    plot.line(
                        Line::new("", PlotPoints::from(vec![*from, *to]))
                            .width(1.5)
                            .color(SIGNALING_COLOR),
                    );
                }
            }
            for (kind, points) in &marks {
                let xy: Vec<[f64; 2]> = points.iter().map(|(xy, _)| *xy).collect();
                plot.points(
                    Points::new(kind.as_str(), xy)
                        .radius(4.0)
                        .filled(true)
                        .color(kind_color(*kind)),
                );
                if let Some(selected) = selected {
                    let chosen: Vec<[f64; 2]> = points
                        .iter()
                        .filter(|(_, entry)| entry.seq == selected)
                        .map(|(xy, _)| *xy)
                        .collect();
                    if !chosen.is_empty() {
                        plot.points(
                            Points::new("", chosen)
                                .radius(7.0)
                                .filled(false)
                                .color(ui_selection_color()),
                        );
                    }
                }
            }
        });
    legend_ui(ui, &marks);
    if !response.response.clicked() {
        return None;
    }
    let pointer = response.response.interact_pointer_pos()?;
    nearest_mark(&marks, &response.transform, pointer)
}

/// A mark on every lane (the default spacing skips some when lanes are many).
fn lane_marks() -> impl Fn(egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    egui_plot::uniform_grid_spacer(|input| {
        let span = input.bounds.1 - input.bounds.0;
        if span < 100.0 {
            [1.0; 3]
        } else {
            [span / 10.0; 3]
        }
    })
}

/// The label of the lane at `value` (lanes sit at 0, -1, -2, …); none between lanes.
fn lane_label(lanes: &[String], value: f64) -> String {
    let index = -value.round();
    if (value + index).abs() > 0.01 {
        return String::new();
    }
    // Anything but a lane's place fails the conversion and has no label.
    usize::try_from(index as i64)
        .ok()
        .and_then(|index| lanes.get(index).cloned())
        .unwrap_or_default()
}

/// Where everything of a call goes on the plot.
struct Placed {
    lanes: Vec<String>,
    /// Status bars: their lane, status, from and to.
    spans: Vec<(String, CallStatus, f64, f64)>,
    /// Each entry's mark, by sequence number.
    points: BTreeMap<u64, [f64; 2]>,
    /// Marks per kind (one legend entry and one colour each), with the entry of each point.
    marks: Marks,
}

/// Lays out `entries` from `first` (time 0) to `end` seconds.
fn place(entries: &[Arc<TimelineEntry>], first: &TimelineEntry, end: f64) -> Placed {
    let lanes = lanes_of(entries);
    let lane_y =
        |name: &str| -> f64 { -(lanes.iter().position(|lane| lane == name).unwrap_or(0) as f64) };
    let mut spans: Vec<(String, CallStatus, f64, f64)> = Vec::new();
    let mut open_span: BTreeMap<String, usize> = BTreeMap::new();
    let mut points: BTreeMap<u64, [f64; 2]> = BTreeMap::new();
    let mut marks: Marks = BTreeMap::new();
    for entry in entries {
        let at = seconds(entry, first);
        // Our status bars have a lane per status; another side's share its status lane.
        if let Event::StatusChanged { new_status, .. } = entry.event
            && entry.origin != Origin::Server
        {
            let recorder = format!("{} {}", entry.user_id, entry.origin.as_str());
            if let Some(open) = open_span.get(&recorder) {
                spans[*open].3 = at;
            }
            let lane = match entry.origin {
                Origin::Local => new_status.as_str().to_owned(),
                _ => status_lane(entry),
            };
            open_span.insert(recorder, spans.len());
            spans.push((lane, new_status, at, end));
        }
        let lane = lane_of(entry);
        let lane = lane.as_str();
        points.insert(entry.seq, [at, lane_y(lane)]);
        marks
            .entry(entry.kind())
            .or_default()
            .push(([at, lane_y(lane)], Arc::clone(entry)));
    }
    Placed {
        lanes,
        spans,
        points,
        marks,
    }
}

/// A chip per kind shown: its colour and name.
fn legend_ui(ui: &mut egui::Ui, marks: &Marks) {
    ui.horizontal_wrapped(|ui| {
        for kind in marks.keys() {
            // A chip's dot and name stay on one line together.
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = 3.0;
                let (rect, _) =
                    ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter()
                    .circle_filled(rect.center(), 4.0, kind_color(*kind));
                ui.small(kind.as_str()).on_hover_text(kind.fires_when());
            });
        }
    });
}

/// The lanes from the top: the statuses our call went through, the call, each participant we
/// heard of; then each other side's status lane and entries lane; the server's last.
fn lanes_of(entries: &[Arc<TimelineEntry>]) -> Vec<String> {
    let statuses = CallStatus::ALL.iter().copied().filter(|status| {
        entries.iter().any(|entry| {
            entry.origin == Origin::Local
                && matches!(entry.event, Event::StatusChanged { new_status, .. } if new_status == *status)
        })
    });
    let mut lanes: Vec<String> = statuses.map(|status| status.as_str().to_owned()).collect();
    lanes.push(CALL_LANE.to_owned());
    let mut add = |lane: String| {
        if !lanes.contains(&lane) {
            lanes.push(lane);
        }
    };
    for entry in entries.iter().filter(|entry| entry.origin == Origin::Local) {
        add(lane_of(entry));
    }
    // Each other side's group: its statuses, then its entries.
    let with_statuses: std::collections::BTreeSet<_> = entries
        .iter()
        .filter(|entry| matches!(entry.event, Event::StatusChanged { .. }))
        .map(|entry| entry.recorder())
        .collect();
    for entry in entries.iter().filter(|entry| entry.origin == Origin::Peer) {
        if with_statuses.contains(&entry.recorder()) {
            add(status_lane(entry));
        }
        add(lane_of(entry));
    }
    for entry in entries
        .iter()
        .filter(|entry| entry.origin == Origin::Server)
    {
        add(lane_of(entry));
    }
    lanes
}

/// Another side's status lane.
fn status_lane(entry: &TimelineEntry) -> String {
    format!("{}: status", entry.user_id)
}

/// Each signaling send and its receipt on another side, as (send, receipt) sequence numbers:
/// the server's routing of an invitation and the callee's `onCallReceived`, an accept and the
/// join heard of, a hang-up and the end or leave heard of.
fn signaling_pairs(entries: &[Arc<TimelineEntry>]) -> Vec<(u64, u64)> {
    let sides = || {
        entries
            .iter()
            .filter(|entry| entry.origin != Origin::Server)
    };
    let mut pairs = Vec::new();
    for routed in entries
        .iter()
        .filter(|entry| entry.origin == Origin::Server)
    {
        let Event::ServerEvent { name, user_id } = &routed.event else {
            continue;
        };
        let invited = sides().find(|entry| {
            name == "callee_receive_call"
                && entry.user_id == *user_id
                && matches!(entry.event, Event::CallReceived { .. })
        });
        if let Some(invited) = invited {
            pairs.push((routed.seq, invited.seq));
        }
    }
    for send in sides().filter(|entry| entry.source == crate::model::Source::Local) {
        let sender = send.user_id.as_str();
        let receipt: Box<dyn Fn(&TimelineEntry) -> bool> = match send.event {
            Event::StatusChanged {
                old_status: CallStatus::BeInvited,
                new_status,
            } if new_status.is_calling() => Box::new(
                move |entry| matches!(&entry.event, Event::UserJoin { user_id } if user_id == sender),
            ),
            Event::StatusChanged { old_status, .. } if old_status.is_calling() => {
                Box::new(move |entry| match &entry.event {
                    Event::UserLeave { user_id } => user_id == sender,
                    Event::StatusChanged { old_status, .. } => {
                        old_status.is_calling() && entry.source == crate::model::Source::Remote
                    }
                    _ => false,
                })
            }
            _ => continue,
        };
        // The first receipt on each other side.
        let mut heard: Vec<(&str, Origin)> = Vec::new();
        for entry in sides() {
            let side = entry.recorder();
            if side.0 != sender && !heard.contains(&side) && receipt(entry) {
                heard.push(side);
                pairs.push((send.seq, entry.seq));
            }
        }
    }
    pairs
}

/// The lane of an entry: what another participant recorded goes in its own lane; ours goes in
/// the lane of the participant it is about, or the call's.
fn lane_of(entry: &TimelineEntry) -> String {
    match entry.origin {
        Origin::Local => subject(&entry.event).unwrap_or(CALL_LANE).to_owned(),
        Origin::Peer => format!("{} (peer)", entry.user_id),
        Origin::Server => "server".to_owned(),
    }
}

/// The entry whose mark is within 12 points of `pointer`, the nearest one.
fn nearest_mark(
    marks: &Marks,
    transform: &egui_plot::PlotTransform,
    pointer: egui::Pos2,
) -> Option<Arc<TimelineEntry>> {
    let mut nearest: Option<(f32, &Arc<TimelineEntry>)> = None;
    for (xy, entry) in marks.values().flatten() {
        let at = transform.position_from_point(&PlotPoint::new(xy[0], xy[1]));
        let distance = at.distance(pointer);
        if distance < 12.0 && nearest.is_none_or(|(best, _)| distance < best) {
            nearest = Some((distance, entry));
        }
    }
    nearest.map(|(_, entry)| Arc::clone(entry))
}

fn ui_selection_color() -> egui::Color32 {
    egui::Color32::from_rgb(255, 200, 40)
}
