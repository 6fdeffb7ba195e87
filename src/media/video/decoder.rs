//! The H.264 decoder: access units in, RGBA frames (with the frame marker read back) out, and
//! the I420 to RGBA conversion the local preview uses too.

use std::sync::Arc;

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource as _;
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

use crate::media::frame::{I420Frame, RgbaFrame};
use crate::media::marker::{self, Marker};

/// An H.264 decoder that turns access units into RGBA frames.
pub struct VideoDecoder {
    decoder: Decoder,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VideoDecoder")
            .finish_non_exhaustive()
    }
}

impl VideoDecoder {
    /// A decoder built from the bundled OpenH264 source.
    pub fn new() -> Result<Self, openh264::Error> {
        Ok(Self {
            decoder: Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())?,
        })
    }

    /// Decodes one access unit; `Ok(None)` when it holds no picture yet.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<RgbaFrame>, openh264::Error> {
        self.decode_into(access_unit, None)
    }

    /// Like [`Self::decode`], converting into `spare` (reused when it has the right size).
    pub fn decode_into(
        &mut self,
        access_unit: &[u8],
        spare: Option<egui::ColorImage>,
    ) -> Result<Option<RgbaFrame>, openh264::Error> {
        let Some(picture) = self.decoder.decode(access_unit)? else {
            return Ok(None);
        };
        let (width, height) = picture.dimensions();
        let (y_stride, u_stride, v_stride) = picture.strides();
        let found = Marker::read(picture.y(), y_stride, width, height);
        let planes = YuvPlanarImage {
            y_plane: picture.y(),
            y_stride: y_stride as u32,
            u_plane: picture.u(),
            u_stride: u_stride as u32,
            v_plane: picture.v(),
            v_stride: v_stride as u32,
            width: width as u32,
            height: height as u32,
        };
        Ok(to_image(&planes, spare).map(|image| RgbaFrame {
            image: Arc::new(image),
            counter: found.map(|found| found.counter),
            glass_to_glass_micros: found
                .map(|found| marker::elapsed_micros(found.capture_micros, marker::now_micros())),
        }))
    }
}

/// Converts 4:2:0 planes (BT.601, limited range) to a colour image, reusing `spare` when it
/// has the right size; `None` if the planes do not match their stated size.
fn to_image(
    planes: &YuvPlanarImage<u8>,
    spare: Option<egui::ColorImage>,
) -> Option<egui::ColorImage> {
    let size = [planes.width as usize, planes.height as usize];
    // Every pixel is written below, so a reused picture needs no clearing.
    let mut image = spare
        .filter(|spare| spare.size == size)
        .unwrap_or_else(|| egui::ColorImage::filled(size, egui::Color32::BLACK));
    yuv::yuv420_to_rgba(
        planes,
        bytemuck::cast_slice_mut(&mut image.pixels),
        planes.width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    )
    .ok()?;
    Some(image)
}

/// Converts an I420 frame to RGBA (the local preview).
pub fn to_rgba(frame: &I420Frame) -> Option<RgbaFrame> {
    let planes = YuvPlanarImage {
        y_plane: &frame.y,
        y_stride: frame.width as u32,
        u_plane: &frame.u,
        u_stride: frame.width as u32 / 2,
        v_plane: &frame.v,
        v_stride: frame.width as u32 / 2,
        width: frame.width as u32,
        height: frame.height as u32,
    };
    Some(RgbaFrame {
        image: Arc::new(to_image(&planes, None)?),
        counter: None,
        glass_to_glass_micros: None,
    })
}
