//! Where local video comes from: the chosen camera, or the test pattern when there is none
//! (or it fails), said once in the timeline.

use crate::media::camera::Capture;
use crate::media::frame::I420Frame;
use crate::media::pattern::TestPattern;
use crate::media::session::Shared;
use crate::media::{DeviceChoice, Devices, MediaError};

/// Where local video comes from.
pub enum VideoSource {
    Camera(Capture),
    Pattern(TestPattern),
}

impl VideoSource {
    /// The chosen camera, or the test pattern (saying why in the timeline) when there is none.
    pub fn open(shared: &Shared) -> Self {
        let (width, height) = shared.config.resolution.size();
        let pattern = || Self::Pattern(TestPattern::new(width, height, &shared.me));
        let name = match &shared.config.camera {
            DeviceChoice::Synthetic => return pattern(),
            DeviceChoice::Default => None,
            DeviceChoice::Named(name) => Some(name.as_str()),
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
        if let Self::Camera(capture) = self
            && let Err(reason) = capture.capture()
        {
            shared.error(MediaError::CameraUnavailable { reason });
            let (width, height) = shared.config.resolution.size();
            *self = Self::Pattern(TestPattern::new(width, height, &shared.me));
            return None;
        }
        Some(match self {
            Self::Camera(capture) => capture.frame(),
            Self::Pattern(pattern) => pattern.next_frame(capture_micros),
        })
    }
}
