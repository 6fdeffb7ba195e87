//! The devices a call can use, listed together, and the choice of one of each.

use super::audio::list_audio_devices;
use super::camera::{CameraInfo, list_cameras};
use super::{DeviceChoice, Devices};

/// Every camera, microphone and speaker this machine has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceList {
    /// Cameras.
    pub cameras: Vec<CameraInfo>,
    /// Microphones, by name.
    pub microphones: Vec<String>,
    /// Speakers, by name.
    pub speakers: Vec<String>,
}

/// Lists the devices (this asks the system, so it may take a moment).
pub fn list_devices(devices: Devices) -> DeviceList {
    let audio = list_audio_devices(devices);
    DeviceList {
        cameras: match devices {
            Devices::Host => list_cameras(),
            Devices::Absent => Vec::new(),
        },
        microphones: audio.inputs,
        speakers: audio.outputs,
    }
}

/// Which camera, microphone and speaker the next call uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DeviceChoices {
    /// The camera.
    pub camera: DeviceChoice,
    /// The microphone.
    pub microphone: DeviceChoice,
    /// The speaker.
    pub speaker: DeviceChoice,
    /// Echo cancellation, noise suppression and gain control on a real microphone.
    pub audio_processing: bool,
}

impl Default for DeviceChoices {
    fn default() -> Self {
        Self {
            camera: DeviceChoice::Default,
            microphone: DeviceChoice::Default,
            speaker: DeviceChoice::Default,
            audio_processing: true,
        }
    }
}
