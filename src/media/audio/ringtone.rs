//! The incoming-call ringtone: a WAV built into the binary, looped through the speaker.

use std::sync::{Arc, OnceLock};

use cpal::traits::DeviceTrait as _;

use super::SAMPLE_RATE;
use super::devices::{HeldStream, find_device, hold_stream, mono_config};
use crate::media::{DeviceChoice, Devices};

/// The incoming-call ringtone, built into the binary.
const RINGTONE_WAV: &[u8] = include_bytes!("../../../assets/ringtone.wav");

/// The ringtone's samples at 48 kHz mono, decoded once.
fn ringtone() -> Result<Arc<[i16]>, String> {
    static SAMPLES: OnceLock<Result<Arc<[i16]>, String>> = OnceLock::new();
    SAMPLES
        .get_or_init(|| ringtone_samples().map(Arc::from))
        .clone()
}

/// The ringtone's samples at 48 kHz mono: a 16-bit PCM WAV, resampled by nearest neighbour.
pub fn ringtone_samples() -> Result<Vec<i16>, String> {
    let bad = |what: &str| format!("the ringtone is not a 16-bit PCM WAV: {what}");
    if RINGTONE_WAV.get(..4) != Some(b"RIFF") || RINGTONE_WAV.get(8..12) != Some(b"WAVE") {
        return Err(bad("no RIFF/WAVE header"));
    }
    let (mut rate, mut channels, mut data) = (0_u32, 0_usize, None);
    let mut offset = 12;
    while let Some(header) = RINGTONE_WAV.get(offset..offset + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = RINGTONE_WAV
            .get(offset + 8..offset + 8 + size)
            .ok_or_else(|| bad("a chunk runs past the end"))?;
        match &header[..4] {
            b"fmt " if body.len() >= 16 => {
                channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                if u16::from_le_bytes([body[14], body[15]]) != 16 {
                    return Err(bad("not 16 bits per sample"));
                }
            }
            b"data" => data = Some(body),
            _ => {}
        }
        offset += 8 + size + size % 2;
    }
    let data = data.ok_or_else(|| bad("no data chunk"))?;
    if rate == 0 || channels == 0 {
        return Err(bad("no format chunk"));
    }
    let frames: Vec<i16> = data
        .chunks_exact(2 * channels)
        .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
        .collect();
    let length = frames.len() * SAMPLE_RATE as usize / rate as usize;
    Ok((0..length)
        .map(|index| frames[index * rate as usize / SAMPLE_RATE as usize])
        .collect())
}

/// The ringtone looping through the speaker; it stops when dropped.
#[derive(Debug)]
pub struct Ringtone {
    _stream: HeldStream,
}

impl Ringtone {
    /// Starts ringing on the chosen speaker; an error when there is none.
    pub fn start(choice: &DeviceChoice, devices: Devices) -> Result<Self, String> {
        let samples = ringtone()?;
        if samples.is_empty() {
            return Err("the ringtone has no samples".to_owned());
        }
        let choice = choice.clone();
        let stream = hold_stream("ringtone", move || {
            let device = find_device(false, &choice, devices)?;
            let mut position = 0;
            device
                .build_output_stream(
                    mono_config(),
                    move |output: &mut [i16], _| {
                        for sample in output {
                            *sample = samples[position];
                            position = (position + 1) % samples.len();
                        }
                    },
                    |_| {},
                    None,
                )
                .map_err(|error| format!("the speaker could not start: {error}"))
        })?;
        Ok(Self { _stream: stream })
    }
}
