//! The media options the window and `callscope call` share, and `callscope devices`.

use callscope::media::{DeviceChoice, Devices, MediaConfig, Resolution, Ringing, list_devices};

/// Devices, resolution and ICE servers of the media engine.
#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    /// The video resolution sent: 480p (TUICallKit's default), 720p or 1080p.
    #[arg(long, default_value = "480p", value_name = "RESOLUTION")]
    pub resolution: Resolution,
    /// The camera, by name or index from `callscope devices`; `synthetic` for the test pattern;
    /// or a YUV4MPEG2 file (`FILE.y4m`, 4:2:0) played in a loop (default: the first camera, or
    /// the test pattern when there is none).
    #[arg(long, value_name = "CAMERA")]
    pub camera: Option<String>,
    /// The microphone, by name from `callscope devices`; `synthetic` for a tone; or a 16-bit
    /// PCM WAV file (`FILE.wav`) played in a loop.
    #[arg(long, value_name = "MICROPHONE")]
    pub microphone: Option<String>,
    /// The speaker, by name from `callscope devices`; `synthetic` for silence.
    #[arg(long, value_name = "SPEAKER")]
    pub speaker: Option<String>,
    /// A STUN or TURN server (`stun:host:port`, `turn:host:port`); repeatable. None by default.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// The user name for the TURN servers.
    #[arg(long, value_name = "NAME", requires = "ice_servers")]
    pub ice_username: Option<String>,
    /// The credential for the TURN servers.
    #[arg(long, value_name = "SECRET", requires = "ice_servers")]
    pub ice_credential: Option<String>,
    /// Connect only through the TURN servers (relayed candidates), never directly.
    #[arg(long, requires = "ice_servers")]
    pub ice_relay_only: bool,
    /// Whether a ringing call is private (the default): nothing of ours, not even an address,
    /// reaches the caller before we accept. `--private-ringing=false` prepares the connection
    /// while it rings instead, so media starts sooner after the accept.
    /// (In the window, a value given here wins over the one saved from its settings.)
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub private_ringing: Option<bool>,
    /// Impair the media links on purpose, as a bad network would: any of
    /// loss=5%,burst=3,delay=80ms,jitter=20ms,rate=500kbit, with dir=send|receive for one
    /// direction (both when left out) and peer=USER for the link to one participant;
    /// repeatable, later rules on top of earlier ones. It holds for every call.
    #[arg(long = "impair", value_name = "RULE")]
    pub impair: Vec<callscope::media::impair::LinkRule>,
    /// Echo cancellation, noise suppression and gain control on a real microphone (on by
    /// default); `--audio-processing=false` sends the microphone as it is.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub audio_processing: bool,
    /// Write each remote participant's audio, as it played here (concealment and all), to
    /// DIR/CALL-USER.wav (48 kHz mono).
    #[arg(long, value_name = "DIR")]
    pub record_audio: Option<std::path::PathBuf>,
}

fn choice(value: Option<&String>) -> DeviceChoice {
    match value.map(String::as_str) {
        None => DeviceChoice::Default,
        Some("synthetic") => DeviceChoice::Synthetic,
        Some(name) if is_media_file(name) => DeviceChoice::File(name.into()),
        Some(name) => DeviceChoice::Named(name.to_owned()),
    }
}

/// Whether a device name is a file to play instead: a `.y4m` or `.wav` path.
fn is_media_file(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|extension| {
            extension.eq_ignore_ascii_case("y4m") || extension.eq_ignore_ascii_case("wav")
        })
}

impl MediaArgs {
    /// The media configuration these options ask for.
    pub fn config(&self) -> MediaConfig {
        let mut config = MediaConfig {
            resolution: self.resolution,
            camera: choice(self.camera.as_ref()),
            microphone: choice(self.microphone.as_ref()),
            speaker: choice(self.speaker.as_ref()),
            ringing: Ringing::private(self.private_ringing.unwrap_or(true)),
            ..MediaConfig::default()
        };
        config.ice.servers.clone_from(&self.ice_servers);
        config.ice.username = self.ice_username.clone().unwrap_or_default();
        config.ice.credential = self.ice_credential.clone().unwrap_or_default();
        config.ice.relay_only = self.ice_relay_only;
        config.record_audio.clone_from(&self.record_audio);
        config.audio_processing = self.audio_processing;
        config
    }
}

/// Prints the cameras, microphones and speakers this machine has.
pub fn devices() {
    let devices = list_devices(Devices::Host);
    println!("cameras:");
    if devices.cameras.is_empty() {
        println!("  (none: calls send the synthetic test pattern)");
    }
    for camera in devices.cameras {
        println!("  {}: {}", camera.index, camera.name);
    }
    for (title, names) in [
        ("microphones", devices.microphones),
        ("speakers", devices.speakers),
    ] {
        println!("{title}:");
        if names.is_empty() {
            println!("  (none)");
        }
        for name in names {
            println!("  {name}");
        }
    }
}
