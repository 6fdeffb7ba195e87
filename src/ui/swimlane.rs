//! The swimlane plot of one call: its statuses as bars over time, every other entry as a mark.

use std::sync::Arc;

use egui_plot::{Line, Plot, PlotPoints, Points};

use crate::event::Event;
use crate::model::CallStatus;
use crate::timeline::TimelineEntry;

/// Lane of the marks for events that are not status changes.
const EVENT_LANE: f64 = -1.0;

fn lane(status: CallStatus) -> f64 {
    CallStatus::ALL
        .iter()
        .position(|candidate| *candidate == status)
        .map_or(0.0, |index| index as f64)
}

fn seconds(entry: &TimelineEntry, start_micros: u64) -> f64 {
    entry.at.mono_micros.saturating_sub(start_micros) as f64 / 1e6
}

/// Draws `entries` (one call's, oldest first) as a swimlane plot.
pub fn swimlane_ui(ui: &mut egui::Ui, entries: &[Arc<TimelineEntry>]) {
    let Some(first) = entries.first() else {
        return;
    };
    let start = first.at.mono_micros;
    let end = entries.last().map_or(0.0, |last| seconds(last, start));
    let mut spans: Vec<(CallStatus, f64, f64)> = Vec::new();
    let mut marks = Vec::new();
    for entry in entries {
        let at = seconds(entry, start);
        match entry.event {
            Event::StatusChanged { new_status, .. } => {
                if let Some(open) = spans.last_mut() {
                    open.2 = at;
                }
                spans.push((new_status, at, end));
            }
            _ => marks.push([at, EVENT_LANE]),
        }
    }
    Plot::new(("swimlane", first.call_id.clone()))
        .height(150.0)
        .allow_scroll(false)
        .include_y(EVENT_LANE - 0.5)
        .include_y(CallStatus::ALL.len() as f64 - 0.5)
        .x_axis_formatter(|mark, _| format!("{:.1} s", mark.value))
        .y_axis_formatter(|mark, _| {
            let index = mark.value.round();
            if (mark.value - index).abs() > 0.01 {
                return String::new();
            }
            // Negative lanes fail the conversion: that is the events lane.
            let Ok(position) = usize::try_from(index as i64) else {
                return "events".to_owned();
            };
            CallStatus::ALL
                .get(position)
                .map_or_else(String::new, |status| status.as_str().to_owned())
        })
        .show(ui, |plot| {
            for (status, from, to) in spans {
                let y = lane(status);
                let points = PlotPoints::from(vec![[from, y], [to.max(from), y]]);
                plot.line(Line::new(status.as_str(), points).width(6.0));
            }
            plot.points(Points::new("events", marks).radius(3.0));
        });
}
