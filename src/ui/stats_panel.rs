//! The stats panel: live plots of round-trip time, bitrate, frame rate and loss per peer, from
//! the `onCallStats` entries of the current call.

use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::model::{MediaModel, StatsPoint};

/// One plotted figure.
struct Figure {
    title: &'static str,
    value: fn(&StatsPoint) -> f64,
}

const FIGURES: [Figure; 4] = [
    Figure {
        title: "rtt (ms)",
        value: |point| point.rtt_millis,
    },
    Figure {
        title: "bitrate (kbit/s)",
        value: |point| point.bitrate_kbps,
    },
    Figure {
        title: "fps",
        value: |point| point.fps,
    },
    Figure {
        title: "loss (%)",
        value: |point| point.loss_pct,
    },
];

/// Draws the four plots side by side, one line per peer.
pub fn stats_panel_ui(ui: &mut egui::Ui, media: &MediaModel) {
    if media.stats.is_empty() {
        ui.weak("No statistics yet: they arrive once a second per peer while media flows.");
        return;
    }
    let width = (ui.available_width() / FIGURES.len() as f32 - 8.0).max(120.0);
    ui.horizontal_wrapped(|ui| {
        for (index, figure) in FIGURES.iter().enumerate() {
            ui.vertical(|ui| {
                ui.small(figure.title);
                let mut plot = Plot::new(figure.title).width(width).height(110.0);
                // One legend is enough: every plot colours the peers alike.
                if index == 0 {
                    plot = plot.legend(Legend::default());
                }
                plot.allow_drag(false)
                    .allow_zoom(false)
                    .allow_scroll(false)
                    .show(ui, |plot| {
                        for (user, points) in &media.stats {
                            let line: PlotPoints = points
                                .iter()
                                .map(|point| [point.at_secs, (figure.value)(point)])
                                .collect();
                            plot.line(Line::new(user.as_str(), line));
                        }
                    });
            });
        }
    });
}
