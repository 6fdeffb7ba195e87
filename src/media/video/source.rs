//! Where local video comes from: the chosen camera, a YUV4MPEG2 file played in a loop, or
//! the test pattern when there is neither (or one fails), said once in the timeline.

use super::y4m::Y4mFile;
use crate::media::camera::Capture;
use crate::media::frame::I420Frame;
use crate::media::pattern::TestPattern;
use crate::media::session::Shared;
use crate::media::{DeviceChoice, Devices, MediaError};

/// Where local video comes from.
pub enum VideoSource {
    /// A camera.
    Camera(Capture),
    /// A file, looped.
    File(Y4mFile),
    /// The test pattern.
    Pattern(TestPattern),
}

/// The file the camera choice names, opened (it says why it cannot play otherwise); `None`
/// when the choice is not a file.
pub fn open_file(choice: &DeviceChoice) -> Option<Result<Y4mFile, String>> {
    match choice {
        DeviceChoice::File(path) => Some(Y4mFile::open(path)),
        _ => None,
    }
}

impl VideoSource {
    /// The chosen camera or file (`file`, when it was opened already), or the test pattern
    /// (saying why in the timeline) when there is none.
    pub fn open(shared: &Shared, file: Option<Result<Y4mFile, String>>) -> Self {
        let (width, height) = shared.config.resolution.size();
        let pattern = || Self::Pattern(TestPattern::new(width, height, &shared.me));
        let name = match &shared.config.camera {
            DeviceChoice::Synthetic => return pattern(),
            DeviceChoice::Default => None,
            DeviceChoice::Named(name) => Some(name.as_str()),
            DeviceChoice::File(_) => {
                return match file.or_else(|| open_file(&shared.config.camera)) {
                    Some(Ok(file)) => Self::File(file),
                    Some(Err(reason)) => {
                        shared.error(MediaError::CameraUnavailable { reason });
                        pattern()
                    }
                    None => pattern(),
                };
            }
        };
        let opened = match shared.config.devices {
            Devices::Host => Capture::open(name, width, height, shared.config.fps),
            Devices::Absent => Err("no camera found".to_owned()),
        };
        match opened {
            Ok(capture) => Self::Camera(capture),
            Err(reason) => {
                shared.error(MediaError::CameraUnavailable { reason });
                pattern()
            }
        }
    }

    /// The next frame; a camera that fails is replaced by the test pattern (the timeline says
    /// so) and this frame is skipped.
    pub fn next_frame(&mut self, shared: &Shared, capture_micros: u64) -> Option<&I420Frame> {
        let failed = match self {
            Self::Camera(capture) => capture.capture().err(),
            Self::File(file) => file.next_frame().err(),
            Self::Pattern(_) => None,
        };
        if let Some(reason) = failed {
            shared.error(MediaError::CameraUnavailable { reason });
            let (width, height) = shared.config.resolution.size();
            *self = Self::Pattern(TestPattern::new(width, height, &shared.me));
            return None;
        }
        Some(match self {
            Self::Camera(capture) => capture.frame(),
            Self::File(file) => file.frame(),
            Self::Pattern(pattern) => pattern.next_frame(capture_micros),
        })
    }

    /// Whether its frames carry the frame marker (test content does; a camera's picture is
    /// left alone).
    pub fn is_marked(&self) -> bool {
        !matches!(self, Self::Camera(_))
    }
}
