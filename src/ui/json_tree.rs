//! A JSON tree: objects and arrays fold, each level is indented, and any value can be copied
//! (its button, or the context menu of its key).

const INDENT: f32 = 14.0;

/// Draws `value` as a tree; `id` keeps each node's folding apart from other trees'.
pub fn json_tree_ui(ui: &mut egui::Ui, id: egui::Id, value: &serde_json::Value) {
    ui.spacing_mut().item_spacing.y = 1.0;
    node_ui(ui, id, None, value, 0);
}

fn node_ui(
    ui: &mut egui::Ui,
    id: egui::Id,
    key: Option<&str>,
    value: &serde_json::Value,
    depth: usize,
) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            let header = format!("{}{{{} fields}}", key_text(key), map.len());
            container_ui(ui, id, &header, value, depth, |ui| {
                for (child_key, child) in map {
                    node_ui(ui, id.with(child_key), Some(child_key), child, depth + 1);
                }
            });
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            let header = format!("{}[{} items]", key_text(key), items.len());
            container_ui(ui, id, &header, value, depth, |ui| {
                for (index, child) in items.iter().enumerate() {
                    let child_key = index.to_string();
                    node_ui(ui, id.with(index), Some(&child_key), child, depth + 1);
                }
            });
        }
        leaf => leaf_ui(ui, key, leaf),
    }
}

fn key_text(key: Option<&str>) -> String {
    key.map_or_else(String::new, |key| format!("{key}: "))
}

fn container_ui(
    ui: &mut egui::Ui,
    id: egui::Id,
    header: &str,
    value: &serde_json::Value,
    depth: usize,
    body: impl FnOnce(&mut egui::Ui),
) {
    // The first two levels open by default: an entry and its payload.
    let state =
        egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, depth < 2);
    state
        .show_header(ui, |ui| {
            let label = ui.add(
                egui::Label::new(egui::RichText::new(header).monospace())
                    .sense(egui::Sense::click()),
            );
            copy_menu(&label, value);
            copy_button_ui(ui, value);
        })
        .body_unindented(|ui| {
            ui.indent(id.with("indent"), |ui| {
                ui.spacing_mut().indent = INDENT;
                body(ui);
            });
        });
}

fn leaf_ui(ui: &mut egui::Ui, key: Option<&str>, value: &serde_json::Value) {
    ui.horizontal(|ui| {
        ui.add_space(ui.spacing().icon_width);
        if let Some(key) = key {
            ui.label(egui::RichText::new(format!("{key}:")).monospace().strong());
        }
        let text = value.to_string();
        let color = match value {
            serde_json::Value::String(_) => ui.visuals().hyperlink_color,
            serde_json::Value::Null => ui.visuals().weak_text_color(),
            _ => ui.visuals().text_color(),
        };
        let label = ui.add(
            egui::Label::new(egui::RichText::new(text).monospace().color(color))
                .wrap()
                .sense(egui::Sense::click()),
        );
        copy_menu(&label, value);
        if label.hovered() {
            copy_button_ui(ui, value);
        }
    });
}

fn copy_text(value: &serde_json::Value) -> String {
    match value {
        // A string is copied as its text, without the quotes.
        serde_json::Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn copy_button_ui(ui: &mut egui::Ui, value: &serde_json::Value) {
    if ui
        .small_button("copy")
        .on_hover_text("Copy this value")
        .clicked()
    {
        ui.ctx().copy_text(copy_text(value));
    }
}

fn copy_menu(response: &egui::Response, value: &serde_json::Value) {
    response.context_menu(|ui| {
        if ui.button("Copy value").clicked() {
            ui.ctx().copy_text(copy_text(value));
            ui.close();
        }
    });
}
