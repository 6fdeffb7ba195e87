//! Video textures: one per stream, created the first time a frame arrives and updated in place
//! after that (re-created only when the size changes), drawn into the call view's tiles.

use std::collections::BTreeMap;

use crate::media::FrameSlots;

struct StreamTexture {
    texture: egui::TextureHandle,
    generation: u64,
    size: [usize; 2],
}

/// The textures of every stream the engine fills.
#[derive(Default)]
pub struct VideoTextures {
    streams: BTreeMap<String, StreamTexture>,
}

impl std::fmt::Debug for VideoTextures {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VideoTextures")
            .field("streams", &self.streams.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl VideoTextures {
    /// Takes the newest frame of each stream, if there is one; forgets streams that ended.
    pub fn update(&mut self, ctx: &egui::Context, frames: &FrameSlots) {
        let streams = frames.streams();
        self.streams.retain(|name, _| streams.contains(name));
        for name in streams {
            let Some(slot) = frames.get(&name) else {
                continue;
            };
            let seen = self
                .streams
                .get(&name)
                .map_or(0, |stream| stream.generation);
            let Some((generation, frame)) = slot.newer_than(seen) else {
                continue;
            };
            let size = frame.size();
            let image = std::sync::Arc::clone(&frame.image);
            match self.streams.get_mut(&name) {
                Some(stream) if stream.size == size => {
                    stream.texture.set(image, egui::TextureOptions::LINEAR);
                    stream.generation = generation;
                }
                _ => {
                    let texture = ctx.load_texture(
                        format!("video {name}"),
                        image,
                        egui::TextureOptions::LINEAR,
                    );
                    self.streams.insert(
                        name,
                        StreamTexture {
                            texture,
                            generation,
                            size,
                        },
                    );
                }
            }
        }
    }

    /// Draws `stream` scaled into `width` (keeping its aspect), or a placeholder with `caption`.
    pub fn tile_ui(&self, ui: &mut egui::Ui, stream: &str, width: f32, caption: &str) {
        if let Some(video) = self.streams.get(stream) {
            let [w, h] = video.size;
            let size = egui::vec2(width, width * h as f32 / w.max(1) as f32);
            ui.add(
                egui::Image::new((video.texture.id(), size)).alt_text(format!("video of {stream}")),
            );
            return;
        }
        let (rect, _) =
            ui.allocate_exact_size(egui::vec2(width, width * 0.75), egui::Sense::hover());
        ui.painter()
            .rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
        ui.painter().text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            caption,
            egui::FontId::proportional(13.0),
            ui.visuals().weak_text_color(),
        );
    }
}
