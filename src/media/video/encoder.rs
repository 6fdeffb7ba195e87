//! The H.264 encoder of one local stream: OpenH264 aiming at a target bitrate, skipping a frame
//! when the target cannot hold it, its target and frame rate changed in place as the path's
//! estimate moves ([`crate::media::h264_options`]). A new picture size needs a new encoder (and
//! so a key frame, as H.264 does).

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, QpRange, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSlices;

use crate::media::Resolution;
use crate::media::frame::I420Frame;
use crate::media::h264_options;

/// The most any target may be: the rate control checks each target against it.
const CEILING_BPS: u32 = 12_000_000;
/// The quantiser's range: up to 51 so a narrow path gets small frames rather than none.
const QP_MIN: u8 = 12;
const QP_MAX: u8 = 51;

/// An H.264 encoder for one local stream.
pub struct VideoEncoder {
    encoder: Encoder,
    buffer: Vec<u8>,
    width: usize,
    height: usize,
    /// What it aims at now, and whether that is applied yet (OpenH264 takes rates only once
    /// it has encoded a frame).
    target_bps: u32,
    fps: u32,
    applied: bool,
}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VideoEncoder")
            .field("size", &(self.width, self.height))
            .field("target_bps", &self.target_bps)
            .field("fps", &self.fps)
            .finish_non_exhaustive()
    }
}

impl VideoEncoder {
    /// An encoder for `resolution` at `fps`, aiming at the resolution's own bitrate.
    pub fn new(resolution: Resolution, fps: u32) -> Result<Self, openh264::Error> {
        let (width, height) = resolution.size();
        Self::with_size(width, height, fps, resolution.bitrate_bps())
    }

    /// An encoder for pictures of `width` x `height` at `fps`, aiming at `target_bps`.
    pub fn with_size(
        width: usize,
        height: usize,
        fps: u32,
        target_bps: u32,
    ) -> Result<Self, openh264::Error> {
        let fps = fps.max(1);
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(target_bps.max(1)))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .usage_type(UsageType::CameraVideoRealTime)
            .complexity(Complexity::Low)
            // One thread and no pre-analysis: less CPU per frame for a real-time call, where
            // scene cuts are rare.
            .num_threads(1)
            .scene_change_detect(false)
            .background_detection(false)
            .adaptive_quantization(false)
            // The target holds only if a frame the budget cannot pay for is skipped.
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(true)
            .qp(QpRange::new(QP_MIN, QP_MAX));
        Ok(Self {
            encoder: Encoder::with_api_config(OpenH264API::from_source(), config)?,
            buffer: Vec::new(),
            width,
            height,
            target_bps,
            fps,
            applied: true,
        })
    }

    /// The picture size it encodes.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The bitrate it aims at.
    pub fn target_bps(&self) -> u32 {
        self.target_bps
    }

    /// Aims at `target_bps` and `fps` from the next frame on.
    pub fn set_rates(&mut self, target_bps: u32, fps: u32) {
        if (target_bps, fps) != (self.target_bps, self.fps) {
            self.target_bps = target_bps;
            self.fps = fps.max(1);
            self.applied = false;
        }
    }

    /// Encodes one frame into an Annex-B access unit; `keyframe` forces an IDR (which carries
    /// SPS and PPS, so a receiver can start from it). Empty when the rate control skipped the
    /// frame.
    pub fn encode(&mut self, frame: &I420Frame, keyframe: bool) -> Result<&[u8], openh264::Error> {
        if keyframe {
            self.encoder.force_intra_frame();
        }
        let source = YUVSlices::new(
            (&frame.y, &frame.u, &frame.v),
            (frame.width, frame.height),
            (frame.width, frame.width / 2, frame.width / 2),
        );
        let stream = self.encoder.encode(&source)?;
        self.buffer.clear();
        if stream.frame_type() != FrameType::Skip {
            stream.write_vec(&mut self.buffer);
        }
        if !self.applied {
            self.apply_rates();
        }
        Ok(&self.buffer)
    }

    /// The quantiser of the last frame it encoded (`None` if OpenH264 would not say).
    pub fn last_qp(&mut self) -> Option<u8> {
        h264_options::last_qp(&mut self.encoder).ok()
    }

    /// Applies the rates, after an encode (before its first one, OpenH264 refuses them).
    fn apply_rates(&mut self) {
        let applied = h264_options::set_ceiling(&mut self.encoder, CEILING_BPS).and_then(|()| {
            h264_options::set_rates(&mut self.encoder, self.target_bps, self.fps as f32)
        });
        // Refused, the encoder keeps its last rates, and the next frame tries again.
        self.applied = applied.is_ok();
    }
}
