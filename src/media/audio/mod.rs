//! Audio: the send thread (microphone through cpal, or a tone when there is none; Opus at
//! 48 kHz in 20 ms packets, its bitrate and forward error correction following the path; the
//! local speaking level), the receive path (a jitter buffer per participant drained at the
//! playout clock, Opus decode with concealment and error correction, levels, playback), the
//! speaker (a cpal output stream mixing every remote participant, or a silent sink when there
//! is no speaker), and the ringtone.

mod devices;
pub mod jitter;
mod playback;
pub mod processing;
mod receive;
mod ringtone;
mod send;
pub mod wav;

use std::time::Duration;

pub use devices::{list_audio_devices, quiet_sound_library};
pub use playback::Playback;
pub use receive::receive;
pub use ringtone::{Ringtone, ringtone_samples};
pub use send::send_audio;

/// Opus runs at 48 kHz, mono, 20 ms per packet.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// One frame.
pub const FRAME: Duration = Duration::from_millis(20);

/// The speaking level of 16-bit samples, 0 (silence, -60 dBFS or below) to 100 (full scale).
pub fn audio_level(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&sample| {
            let value = f64::from(sample) / 32768.0;
            value * value
        })
        .sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms <= 0.0 {
        return 0;
    }
    let dbfs = 20.0 * rms.log10();
    let level = ((dbfs + 60.0) * 100.0 / 60.0).clamp(0.0, 100.0).round();
    // Clamped to 0..=100, so the conversion is exact.
    u8::try_from(level as i64).unwrap_or(100)
}
