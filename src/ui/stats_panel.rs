//! The stats panel: live plots of round-trip time, received bitrate, frame rate and loss per
//! peer, and of what we send each peer against what our congestion control estimates its path
//! carries, from the `onCallStats` entries of the current call.

use egui_plot::{Corner, Legend, Line, LineStyle, Plot, PlotPoints};

use super::model::{MediaModel, StatsPoint};

/// A line of a figure: its name after the peer's (empty for the peer's alone), its value, and
/// whether it is dashed (a limit, beside what was measured).
type Series = (&'static str, fn(&StatsPoint) -> f64, bool);

/// One plotted figure: a line per peer and series.
struct Figure {
    title: &'static str,
    series: &'static [Series],
}

const FIGURES: [Figure; 5] = [
    Figure {
        title: "rtt (ms)",
        series: &[("", |point| point.rtt_millis, false)],
    },
    Figure {
        title: "received (kbit/s)",
        series: &[("", |point| point.bitrate_kbps, false)],
    },
    Figure {
        title: "fps",
        series: &[("", |point| point.fps, false)],
    },
    Figure {
        title: "loss (%)",
        series: &[("", |point| point.loss_pct, false)],
    },
    Figure {
        title: "sent vs estimate (kbit/s)",
        series: &[
            ("sent", |point| point.sent_kbps, false),
            ("estimate", |point| point.estimate_kbps, true),
        ],
    },
];

/// Draws the plots in a grid that fits the panel (three across, two across, or one above the
/// other), one line per peer and series.
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
    let columns: usize = if available.x >= 3.0 * 180.0 {
        3
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
                    // One legend for the plots of one line per peer (they colour the peers
                    // alike), and one for the plot that has several.
                    if index == 0 || figure.series.len() > 1 {
                        plot = plot.legend(
                            Legend::default()
                                .text_style(egui::TextStyle::Small)
                                .background_alpha(0.5)
                                .position(Corner::LeftBottom),
                        );
                    }
                    plot.allow_drag(false)
                        .allow_zoom(false)
                        .allow_scroll(false)
                        .show(ui, |plot| {
                            for (user, points) in &media.stats {
                                for (suffix, value, dashed) in figure.series {
                                    let line: PlotPoints = points
                                        .iter()
                                        .map(|point| [point.at_secs, value(point)])
                                        .collect();
                                    let name = if suffix.is_empty() {
                                        user.clone()
                                    } else {
                                        format!("{user} {suffix}")
                                    };
                                    let mut line = Line::new(name, line);
                                    if *dashed {
                                        line = line.style(LineStyle::dashed_loose());
                                    }
                                    plot.line(line);
                                }
                            }
                        });
                });
                if (index + 1) % columns == 0 {
                    ui.end_row();
                }
            }
        });
}
