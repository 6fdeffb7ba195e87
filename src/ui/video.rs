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

    /// Whether `stream` has a picture.
    pub fn has(&self, stream: &str) -> bool {
        self.streams.contains_key(stream)
    }

    /// Draws `stream` fitted into `rect` (keeping its aspect, centred), or a placeholder with
    /// `caption` when it has no picture.
    pub fn paint(&self, ui: &mut egui::Ui, rect: egui::Rect, stream: &str, caption: &str) {
        ui.painter()
            .rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
        if let Some(video) = self.streams.get(stream) {
            let [w, h] = video.size;
            let aspect = w.max(1) as f32 / h.max(1) as f32;
            let size = if rect.width() / rect.height().max(1.0) > aspect {
                egui::vec2(rect.height() * aspect, rect.height())
            } else {
                egui::vec2(rect.width(), rect.width() / aspect)
            };
            let fitted = egui::Rect::from_center_size(rect.center(), size);
            ui.put(
                fitted,
                egui::Image::new((video.texture.id(), size)).alt_text(format!("video of {stream}")),
            );
            return;
        }
        ui.put(
            rect,
            egui::Label::new(egui::RichText::new(caption).weak()).truncate(),
        );
    }
}
