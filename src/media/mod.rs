//! The media engine: WebRTC sessions (one peer connection per remote participant) negotiated
//! through the engine, local capture or synthetic sources, H.264 and Opus, and decoded frames
//! handed to the UI through latest-frame-wins slots. Everything here runs on the engine
//! thread's tokio runtime or on named media threads it starts; nothing touches the UI.
//!
//! Media reports, the engine decides: a session takes [`MediaCommand`]s and emits
//! [`MediaEvent`]s. It knows nothing of callbacks or the signaling protocol, and never ends a
//! call. The decisions of its set-up are sans-IO and tested in virtual time:
//! [`negotiation::Negotiation`] (offer, answer, deadlines) and [`mesh::Mesh`] (who connects to
//! whom).

mod audio;
mod camera;
mod chain;
pub mod congestion;
mod devices;
mod error;
mod events;
mod frame;
mod h264_options;
mod hub;
pub mod impair;
mod keyframe;
pub mod ladder;
pub mod link;
pub mod marker;
pub mod mesh;
pub mod nack;
pub mod negotiation;
pub mod pattern;
mod peer;
pub mod reorder;
mod seq;
mod session;
pub mod spread;
mod stats;
pub mod video;
mod worker;

use std::time::Duration;

pub use audio::{Ringtone, audio_level, quiet_sound_library, ringtone_samples, wav};
pub use camera::{CameraInfo, list_cameras};
pub use devices::{DeviceChoices, DeviceList, list_devices};
pub use error::MediaError;
pub use events::{MediaEvent, MediaReport};
pub use frame::{FrameSlot, FrameSlots, I420Frame, LOCAL_STREAM, RgbaFrame, StreamCounters};
pub use negotiation::Ringing;
pub use peer::{ICE_DISCONNECTED_AFTER, ICE_FAILED_AFTER};
pub use session::{MediaCommand, MediaSession};
pub use stats::quality_of;

/// Which devices exist for the media engine: the host's, or none at all.
///
/// A machine without a camera or a sound card is a normal state; tests choose `Absent` so they
/// assert the same things on a machine that has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Devices {
    /// The host's cameras (nokhwa) and sound devices (cpal).
    #[default]
    Host,
    /// No camera, microphone or speaker: the synthetic sources and a silent sink.
    Absent,
}

/// Video resolutions, as TUICallKit's `videoResolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Resolution {
    /// 640 x 480, TUICallKit's default.
    #[default]
    #[serde(rename = "480p")]
    P480,
    /// 1280 x 720.
    #[serde(rename = "720p")]
    P720,
    /// 1920 x 1080.
    #[serde(rename = "1080p")]
    P1080,
}

impl Resolution {
    /// `(width, height)` in pixels.
    pub fn size(self) -> (usize, usize) {
        match self {
            Self::P480 => (640, 480),
            Self::P720 => (1280, 720),
            Self::P1080 => (1920, 1080),
        }
    }

    /// Target encoder bitrate in bits per second at 30 fps.
    pub fn bitrate_bps(self) -> u32 {
        match self {
            Self::P480 => 1_000_000,
            Self::P720 => 2_500_000,
            Self::P1080 => 4_500_000,
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "480p" => Ok(Self::P480),
            "720p" => Ok(Self::P720),
            "1080p" => Ok(Self::P1080),
            other => Err(format!(
                "unknown resolution {other:?}: use 480p, 720p or 1080p"
            )),
        }
    }
}

/// Which device to use.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// The system default, or the synthetic source when there is none.
    #[default]
    Default,
    /// The device with this name (or index, for cameras).
    Named(String),
    /// The synthetic source (test pattern or tone), never a device.
    Synthetic,
    /// A file played in a loop as the device: a YUV4MPEG2 video (`.y4m`) for the camera, a
    /// 16-bit PCM WAV (`.wav`) for the microphone.
    File(std::path::PathBuf),
}

/// How peer connections find each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// Local UDP addresses to bind; `127.0.0.1:0` is listed explicitly because a wildcard
    /// skips loopback. `0.0.0.0:0` adds one socket per real interface.
    pub udp_addrs: Vec<String>,
    /// STUN or TURN URLs (none by default).
    pub servers: Vec<String>,
    /// The user name for TURN servers.
    pub username: String,
    /// The credential for TURN servers.
    pub credential: String,
    /// Time between connectivity checks; the library's 200 ms default dominates a loopback
    /// set-up.
    pub check_interval: Duration,
    /// Only relayed paths (through a TURN server), never a direct one.
    pub relay_only: bool,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            udp_addrs: vec!["127.0.0.1:0".to_owned(), "0.0.0.0:0".to_owned()],
            servers: Vec::new(),
            username: String::new(),
            credential: String::new(),
            check_interval: Duration::from_millis(3),
            relay_only: false,
        }
    }
}

impl IceConfig {
    /// Loopback only: what tests and benchmarks use.
    pub fn loopback() -> Self {
        Self {
            udp_addrs: vec!["127.0.0.1:0".to_owned()],
            ..Self::default()
        }
    }
}

/// How the media engine runs for one user.
// Its switches are bools by nature, each one independent of the others.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Sent video size.
    pub resolution: Resolution,
    /// Sent frames per second.
    pub fps: u32,
    /// Camera.
    pub camera: DeviceChoice,
    /// Microphone.
    pub microphone: DeviceChoice,
    /// Speaker.
    pub speaker: DeviceChoice,
    /// Peer connection set-up.
    pub ice: IceConfig,
    /// Where decoded frames go (and the local preview, when `preview` is on).
    pub frames: FrameSlots,
    /// Whether the local video is also converted for a preview.
    pub preview: bool,
    /// Whether received video is decoded (a demo peer only counts it).
    pub decode: bool,
    /// Whether an incoming call rings through the speaker.
    pub ringtone: bool,
    /// Whether a ringing call is private (its answer, candidates and checks reach the caller
    /// only once the call is accepted) or prepared while it rings (connected sooner after the
    /// accept).
    pub ringing: Ringing,
    /// Which devices exist.
    pub devices: Devices,
    /// What the links to the peers do on purpose (nothing, unless a debugging aid asks).
    pub link: impair::LinkPlan,
    /// Where each remote participant's audio, as it played, is written as a WAV file (none by
    /// default).
    pub record_audio: Option<std::path::PathBuf>,
    /// Echo cancellation, noise suppression and gain control on a real microphone (on by
    /// default; files and the tone are sent as they are).
    pub audio_processing: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            resolution: Resolution::default(),
            fps: 30,
            camera: DeviceChoice::Default,
            microphone: DeviceChoice::Default,
            speaker: DeviceChoice::Default,
            ice: IceConfig::default(),
            frames: FrameSlots::default(),
            preview: false,
            decode: true,
            ringtone: false,
            ringing: Ringing::Private,
            devices: Devices::Host,
            link: impair::LinkPlan::default(),
            record_audio: None,
            audio_processing: true,
        }
    }
}

impl MediaConfig {
    /// Synthetic sources, no devices, loopback ICE: a demo peer or a test participant.
    pub fn synthetic() -> Self {
        Self {
            camera: DeviceChoice::Synthetic,
            microphone: DeviceChoice::Synthetic,
            speaker: DeviceChoice::Synthetic,
            ice: IceConfig::loopback(),
            devices: Devices::Absent,
            ..Self::default()
        }
    }
}
