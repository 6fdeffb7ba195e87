//! The incoming-call ringtone: a WAV built into the binary, looped through the speaker.

use std::sync::{Arc, OnceLock};

use cpal::traits::DeviceTrait as _;

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

/// The ringtone's samples at 48 kHz mono.
pub fn ringtone_samples() -> Result<Vec<i16>, String> {
    super::wav::decode(RINGTONE_WAV).map_err(|reason| format!("the ringtone: {reason}"))
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
