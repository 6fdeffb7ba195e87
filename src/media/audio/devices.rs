//! The sound devices: listing them, finding the chosen one, and holding a cpal stream open on a
//! thread of its own; ALSA's own diagnostics kept quiet (no sound card is a normal state).

use cpal::traits::{HostTrait as _, StreamTrait as _};

use super::SAMPLE_RATE;
use crate::media::{DeviceChoice, Devices};

/// The sound devices this machine has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioDevices {
    /// Microphones.
    pub inputs: Vec<String>,
    /// Speakers.
    pub outputs: Vec<String>,
}

/// Keeps ALSA's own diagnostics (`ALSA lib … cannot find card`) off stderr for the calling
/// thread: a machine without a sound card is a normal state, which callscope reports itself.
pub fn quiet_sound_library() {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !QUIET.replace(true) {
        // Without the handler ALSA only prints more; nothing else depends on it.
        let _ = alsa::Output::local_error_handler();
    }
}

/// Lists the default host's input and output devices (none on a machine without them).
pub fn list_audio_devices(devices: Devices) -> AudioDevices {
    if devices == Devices::Absent {
        return AudioDevices::default();
    }
    quiet_sound_library();
    let host = cpal::default_host();
    let names = |devices: Option<Vec<cpal::Device>>| -> Vec<String> {
        devices
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    AudioDevices {
        inputs: names(host.input_devices().ok().map(Iterator::collect)),
        outputs: names(host.output_devices().ok().map(Iterator::collect)),
    }
}

pub(super) fn find_device(
    input: bool,
    choice: &DeviceChoice,
    devices: Devices,
) -> Result<cpal::Device, String> {
    let what = if input { "microphone" } else { "speaker" };
    if devices == Devices::Absent && *choice != DeviceChoice::Synthetic {
        return Err(format!("no {what} found"));
    }
    quiet_sound_library();
    let host = cpal::default_host();
    match choice {
        DeviceChoice::Synthetic => Err(format!("no {what} chosen")),
        DeviceChoice::File(path) => Err(format!(
            "{} is a file, not a {what} (files play as the camera or the microphone)",
            path.display()
        )),
        DeviceChoice::Default => if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or_else(|| format!("no {what} found")),
        DeviceChoice::Named(name) => {
            let devices = if input {
                host.input_devices().map(Iterator::collect::<Vec<_>>)
            } else {
                host.output_devices().map(Iterator::collect::<Vec<_>>)
            };
            devices
                .map_err(|error| format!("the {what}s could not be listed: {error}"))?
                .into_iter()
                .find(|device| device.to_string() == *name)
                .ok_or_else(|| format!("{what} {name:?} not found"))
        }
    }
}

pub(super) fn mono_config() -> cpal::StreamConfig {
    cpal::StreamConfig {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        buffer_size: cpal::BufferSize::Default,
    }
}

/// A cpal stream held open on its own thread; dropping the handle closes it.
#[derive(Debug)]
pub struct HeldStream {
    _stop: crossbeam_channel::Sender<()>,
}

/// Holds a cpal stream on its own thread (a stream may not move between threads) until the
/// handle is dropped.
pub(super) fn hold_stream(
    name: &str,
    build: impl FnOnce() -> Result<cpal::Stream, String> + Send + 'static,
) -> Result<HeldStream, String> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            quiet_sound_library();
            let stream = build().and_then(|stream| {
                stream.play().map_err(|error| error.to_string())?;
                Ok(stream)
            });
            match stream {
                Ok(stream) => {
                    let _ = ready_tx.send(Ok(()));
                    // Blocks until the handle is dropped (nothing is ever sent).
                    let _ = stop_rx.recv();
                    drop(stream);
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                }
            }
        })
        .map_err(|error| error.to_string())?;
    ready_rx
        .recv()
        .map_err(|_| "the audio thread stopped".to_owned())??;
    Ok(HeldStream { _stop: stop_tx })
}
