//! Cameras through nokhwa: listing, opening the one chosen, and turning its frames into I420.
//! A camera lives on the video thread that opened it (nokhwa's camera may not move between
//! threads); when it fails mid-call the thread falls back to the test pattern.

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
use yuv::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

use super::frame::I420Frame;

/// Formats decoded without an MJPEG decoder.
const RAW_FORMATS: &[FrameFormat] = &[FrameFormat::YUYV, FrameFormat::NV12, FrameFormat::RAWRGB];

/// A camera as the device list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// What to pass to choose it.
    pub index: u32,
    /// Its name.
    pub name: String,
}

/// The cameras the system has (none is normal: the test pattern is used then).
pub fn list_cameras() -> Vec<CameraInfo> {
    nokhwa::query(ApiBackend::Auto)
        .unwrap_or_default()
        .iter()
        .filter_map(|info| {
            Some(CameraInfo {
                index: info.index().as_index().ok()?,
                name: info.human_name(),
            })
        })
        .collect()
}

/// An open camera.
pub struct Capture {
    camera: Camera,
    frame: I420Frame,
}

impl Capture {
    /// Opens the camera named `name` (or with that index), or the first one, as close to
    /// `width` x `height` at `fps` as it offers.
    pub fn open(name: Option<&str>, width: usize, height: usize, fps: u32) -> Result<Self, String> {
        let cameras = list_cameras();
        let chosen = match name {
            None => cameras.first(),
            Some(name) => cameras
                .iter()
                .find(|camera| camera.name == name || camera.index.to_string() == name),
        }
        .ok_or_else(|| match name {
            None => "no camera found".to_owned(),
            Some(name) => format!("camera {name:?} not found"),
        })?;
        let mut camera = Camera::new(
            CameraIndex::Index(chosen.index),
            RequestedFormat::with_formats(RequestedFormatType::None, RAW_FORMATS),
        )
        .map_err(|error| format!("camera {:?} could not open: {error}", chosen.name))?;
        let best = camera
            .compatible_camera_formats()
            .unwrap_or_default()
            .into_iter()
            .filter(|format| {
                RAW_FORMATS.contains(&format.format())
                    && format.width() as usize <= width
                    && format.height() as usize <= height
                    && format.frame_rate() <= fps
            })
            .max_by_key(|format| (format.width() * format.height(), format.frame_rate()));
        if let Some(format) = best {
            camera
                .set_camera_requset(RequestedFormat::with_formats(
                    RequestedFormatType::Exact(format),
                    RAW_FORMATS,
                ))
                .map_err(|error| format!("camera {:?} refused its format: {error}", chosen.name))?;
        }
        camera
            .open_stream()
            .map_err(|error| format!("camera {:?} could not start: {error}", chosen.name))?;
        Ok(Self {
            camera,
            frame: I420Frame::black(2, 2),
        })
    }

    /// The last frame [`Self::capture`] took.
    pub fn frame(&self) -> &I420Frame {
        &self.frame
    }

    /// Takes the next camera frame as I420 (cropped to even sides); an error means the camera
    /// is gone.
    pub fn capture(&mut self) -> Result<(), String> {
        let buffer = self
            .camera
            .frame()
            .map_err(|error| format!("the camera stopped: {error}"))?;
        let image = buffer
            .decode_image::<RgbFormat>()
            .map_err(|error| format!("a camera frame could not be decoded: {error}"))?;
        let (width, height) = (image.width() as usize & !1, image.height() as usize & !1);
        let stride = image.width() * 3;
        if (self.frame.width, self.frame.height) != (width, height) {
            self.frame = I420Frame::black(width, height);
        }
        let frame = &mut self.frame;
        let mut planes = YuvPlanarImageMut {
            y_plane: BufferStoreMut::Borrowed(&mut frame.y),
            y_stride: width as u32,
            u_plane: BufferStoreMut::Borrowed(&mut frame.u),
            u_stride: width as u32 / 2,
            v_plane: BufferStoreMut::Borrowed(&mut frame.v),
            v_stride: width as u32 / 2,
            width: width as u32,
            height: height as u32,
        };
        yuv::rgb_to_yuv420(
            &mut planes,
            image.as_raw(),
            stride,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Balanced,
        )
        .map_err(|error| format!("a camera frame could not be converted: {error}"))
    }
}
