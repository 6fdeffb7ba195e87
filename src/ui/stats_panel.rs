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

/// Draws the four plots in a grid that fits the panel (four across, two by two, or one
/// above the other), one line per peer.
pub fn stats_panel_ui(ui: &mut egui::Ui, media: &MediaModel) {
    if media.stats.is_empty() {
        ui.add(
            egui::Label::new(
                egui::RichText::new(
                    "No statistics yet: they arrive once a second per peer while media flows.",
                )
                .weak(),
            )
            .wrap(),
        );
        return;
    }
    let available = ui.available_size();
    let columns: usize = if available.x >= 4.0 * 180.0 {
        4
    } else if available.x >= 2.0 * 150.0 {
        2
    } else {
        1
    };
    let rows = FIGURES.len().div_ceil(columns);
    let width = (available.x / columns as f32 - 8.0).max(80.0);
    let title_height = 18.0;
    let height = (available.y / rows as f32 - title_height - 8.0).clamp(50.0, 220.0);
    egui::Grid::new("stats grid")
        .num_columns(columns)
        .spacing([6.0, 4.0])
        .show(ui, |ui| {
            for (index, figure) in FIGURES.iter().enumerate() {
                ui.vertical(|ui| {
                    ui.small(figure.title);
                    let mut plot = Plot::new(figure.title).width(width).height(height);
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
                if (index + 1) % columns == 0 {
                    ui.end_row();
                }
            }
        });
}
