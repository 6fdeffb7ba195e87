//! The synthetic camera: scrolling colour bars and a bouncing box, with the frame marker, used
//! whenever there is no camera (and always by the demo peers).

use super::frame::I420Frame;
use super::marker::{self, Marker};

/// Colour bars as (Y, U, V), BT.601 limited range.
const BARS: [(u8, u8, u8); 8] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
];
/// Pixels the bars scroll per frame.
const SCROLL_PER_FRAME: usize = 4;

/// Makes the test pattern's frames, one after another.
#[derive(Debug)]
pub struct TestPattern {
    frame: I420Frame,
    counter: u32,
    /// Chroma of the bouncing box, from the sender's name, so each peer's video looks different.
    tint: (u8, u8),
}

impl TestPattern {
    /// A pattern of `width` x `height` (both even), tinted after `label`.
    pub fn new(width: usize, height: usize, label: &str) -> Self {
        let hash = label
            .bytes()
            .fold(0x811c_9dc5_u32, |hash, byte| {
                (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
            })
            .to_be_bytes();
        Self {
            frame: I420Frame::black(width, height),
            counter: 0,
            tint: (hash[0] | 0x40, hash[1] | 0x40),
        }
    }

    /// Frames made so far.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The next frame, its marker stamped with `capture_micros`.
    pub fn next_frame(&mut self, capture_micros: u64) -> &I420Frame {
        let (width, height) = (self.frame.width, self.frame.height);
        let offset = self.counter as usize * SCROLL_PER_FRAME;
        fill_bars(&mut self.frame.y, width, offset, |bar| bar.0);
        fill_bars(&mut self.frame.u, width / 2, offset / 2, |bar| bar.1);
        fill_bars(&mut self.frame.v, width / 2, offset / 2, |bar| bar.2);
        self.draw_box();
        let (x, y, marker_width, marker_height) = marker::area(width);
        fill_rect(
            &mut self.frame.u,
            width / 2,
            (x / 2, y / 2),
            (marker_width / 2, marker_height / 2),
            128,
        );
        fill_rect(
            &mut self.frame.v,
            width / 2,
            (x / 2, y / 2),
            (marker_width / 2, marker_height / 2),
            128,
        );
        Marker {
            counter: self.counter,
            capture_micros,
        }
        .draw(&mut self.frame.y, width, width, height);
        self.counter = self.counter.wrapping_add(1);
        &self.frame
    }

    fn draw_box(&mut self) {
        let (width, height) = (self.frame.width, self.frame.height);
        let side = (height / 4) & !1;
        let travel_x = (width - side).max(2);
        let travel_y = (height - side).max(2);
        let step = self.counter as usize * 6;
        let x = bounce(step, travel_x) & !1;
        let y = bounce(step / 2 + height / 3, travel_y) & !1;
        fill_rect(&mut self.frame.y, width, (x, y), (side, side), 180);
        let (u, v) = self.tint;
        fill_rect(
            &mut self.frame.u,
            width / 2,
            (x / 2, y / 2),
            (side / 2, side / 2),
            u,
        );
        fill_rect(
            &mut self.frame.v,
            width / 2,
            (x / 2, y / 2),
            (side / 2, side / 2),
            v,
        );
    }
}

/// Fills a plane with the bars scrolled by `offset`: one row is built, then copied down.
fn fill_bars(plane: &mut [u8], width: usize, offset: usize, value: impl Fn(&(u8, u8, u8)) -> u8) {
    let bar_width = width.div_ceil(BARS.len()).max(1);
    let (first, rest) = plane.split_at_mut(width);
    for (x, pixel) in first.iter_mut().enumerate() {
        *pixel = value(&BARS[((x + offset) / bar_width) % BARS.len()]);
    }
    for row in rest.chunks_exact_mut(width) {
        row.copy_from_slice(first);
    }
}

fn fill_rect(
    plane: &mut [u8],
    stride: usize,
    (x, y): (usize, usize),
    (width, height): (usize, usize),
    value: u8,
) {
    let rows = plane.len() / stride;
    for row in y..(y + height).min(rows) {
        let start = row * stride + x;
        let end = (start + width).min(row * stride + stride);
        plane[start..end].fill(value);
    }
}

/// Position `step` along a back-and-forth path of length `travel`.
fn bounce(step: usize, travel: usize) -> usize {
    let phase = step % (2 * travel);
    if phase < travel {
        phase
    } else {
        2 * travel - phase
    }
}
