//! Video frames as the engine hands them around, and the latest-frame-wins slots through which
//! decoded frames reach the UI: one slot per stream, capacity one, never blocking the engine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// A planar 4:2:0 frame, tightly packed (strides equal the widths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// Luma, `width * height` bytes.
    pub y: Vec<u8>,
    /// Blue-difference chroma, a quarter of the luma.
    pub u: Vec<u8>,
    /// Red-difference chroma, a quarter of the luma.
    pub v: Vec<u8>,
}

impl I420Frame {
    /// A black frame.
    pub fn black(width: usize, height: usize) -> Self {
        let chroma = (width / 2) * (height / 2);
        Self {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; chroma],
            v: vec![128; chroma],
        }
    }
}

/// A decoded frame ready for a texture: converted to colour pixels on the engine side, so the
/// UI hands it to its texture without touching a pixel.
#[derive(Debug, Clone)]
pub struct RgbaFrame {
    /// The opaque RGBA picture.
    pub image: Arc<egui::ColorImage>,
    /// The frame counter its marker carried, if it had one.
    pub counter: Option<u32>,
    /// Capture-to-here latency in microseconds, if its marker said when it was captured.
    pub glass_to_glass_micros: Option<u64>,
}

impl RgbaFrame {
    /// `[width, height]` in pixels.
    pub fn size(&self) -> [usize; 2] {
        self.image.size
    }
}

/// Figures of one received stream, updated by the decoder as frames arrive.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Frames decoded.
    pub frames_decoded: AtomicU64,
    /// Frames the marker counters say never arrived.
    pub frames_lost: AtomicU64,
    /// Frames with a readable marker.
    pub frames_marked: AtomicU64,
    /// Width << 32 | height of the last frame.
    pub resolution: AtomicU64,
    /// Encoded bytes received.
    pub bytes_received: AtomicU64,
    /// Freezes so far (W3C's definition: a frame at least three average intervals, and 150 ms
    /// more than one, after the last).
    pub freezes: AtomicU64,
    /// The freezes' time together, in microseconds.
    pub frozen_micros: AtomicU64,
}

impl StreamCounters {
    /// `(width, height)` of the last decoded frame.
    pub fn resolution(&self) -> (u32, u32) {
        let packed = self.resolution.load(Ordering::Relaxed);
        ((packed >> 32) as u32, packed as u32)
    }
}

/// One stream's slot: the newest frame replaces any frame the UI has not taken yet.
#[derive(Debug, Default)]
pub struct FrameSlot {
    latest: Mutex<Option<Arc<RgbaFrame>>>,
    generation: AtomicU64,
    /// The stream's figures.
    pub counters: StreamCounters,
    glass_to_glass: Mutex<Vec<u32>>,
    first_frame: OnceLock<Instant>,
}

/// Glass-to-glass samples kept per stream for percentiles.
const SAMPLES_KEPT: usize = 4096;

impl FrameSlot {
    /// Puts a frame in the slot, replacing an untaken one; hands back the replaced frame's
    /// picture when nobody else holds it, so the producer can reuse the buffer (a fresh
    /// multi-megabyte buffer per frame costs page faults every time).
    pub fn put(&self, frame: RgbaFrame) -> Option<egui::ColorImage> {
        let _ = self.first_frame.set(Instant::now());
        if let Some(micros) = frame.glass_to_glass_micros {
            let mut samples = self
                .glass_to_glass
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if samples.len() < SAMPLES_KEPT {
                samples.push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
        }
        let replaced = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Arc::new(frame));
        self.generation.fetch_add(1, Ordering::Release);
        replaced
            .and_then(|old| Arc::try_unwrap(old).ok())
            .and_then(|old| Arc::try_unwrap(old.image).ok())
    }

    /// The newest frame if it is newer than `seen`, with its generation.
    pub fn newer_than(&self, seen: u64) -> Option<(u64, Arc<RgbaFrame>)> {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == seen {
            return None;
        }
        let frame = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Some((generation, frame))
    }

    /// When the first frame was put in.
    pub fn first_frame_at(&self) -> Option<Instant> {
        self.first_frame.get().copied()
    }

    /// How many frames have been put in.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The glass-to-glass samples so far, in microseconds (the first few thousand).
    pub fn glass_to_glass_samples(&self) -> Vec<u32> {
        self.glass_to_glass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the frame (the stream ended).
    pub fn clear(&self) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The name of the local preview stream in [`FrameSlots`].
pub const LOCAL_STREAM: &str = "local";

/// Every stream's slot, by user id (and [`LOCAL_STREAM`] for the preview). Cheap to clone.
#[derive(Clone, Default)]
pub struct FrameSlots {
    slots: Arc<Mutex<BTreeMap<String, Arc<FrameSlot>>>>,
    repaint: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for FrameSlots {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FrameSlots")
            .field("streams", &self.streams())
            .finish_non_exhaustive()
    }
}

impl FrameSlots {
    /// Slots that call `repaint` after every new frame.
    pub fn with_repaint(repaint: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            slots: Arc::default(),
            repaint: Some(repaint),
        }
    }

    /// The slot of `stream`, created empty if new.
    pub fn slot(&self, stream: &str) -> Arc<FrameSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(stream.to_owned()).or_default())
    }

    /// A fresh slot for `stream`, replacing the old one (a new call starts from zero).
    pub fn reset(&self, stream: &str) -> Arc<FrameSlot> {
        let slot = Arc::new(FrameSlot::default());
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stream.to_owned(), Arc::clone(&slot));
        slot
    }

    /// The slot of `stream` if it exists.
    pub fn get(&self, stream: &str) -> Option<Arc<FrameSlot>> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// Drops the slot of `stream` if it is still `slot` (not a newer one).
    pub fn remove_if_same(&self, stream: &str, slot: &Arc<FrameSlot>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots
            .get(stream)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            slots.remove(stream);
        }
    }

    /// The streams that have a slot.
    pub fn streams(&self) -> Vec<String> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Wakes the UI.
    pub fn repaint(&self) {
        if let Some(repaint) = &self.repaint {
            repaint();
        }
    }
}
