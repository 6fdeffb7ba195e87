//! The one place that changes a running OpenH264 encoder's target bitrate and frame rate, and
//! reads back the quantiser it chose for the last frame.
//!
//! The `openh264` crate has no safe way to do it: a config is fixed when the encoder is built,
//! and rebuilding the encoder costs a key frame, several times a second as the estimate moves.
//! OpenH264's own `SetOption` (reached through the crate's `raw_api`) changes both in place,
//! without a key frame, as libwebrtc's wrapper does. This is why the crate allows `unsafe` here
//! and nowhere else.
//!
//! Safety, for every call below: the option read or written is exactly the C type passed
//! (`SBitrateInfo` for the bitrates, `f32` for the frame rate, `SEncoderStatistics` for the
//! statistics), the pointer outlives the call (OpenH264 copies the value in or out), and no
//! option the crate relies on (picture size, data format) is touched. The
//! encoder is `&mut`, so nothing else uses it meanwhile. OpenH264 refuses every one of these
//! before its first encode (it is initialised then), which is reported as an error, not UB.
#![allow(unsafe_code)]

use std::os::raw::{c_int, c_void};

use openh264::encoder::Encoder;
use openh264_sys2::{
    ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_FRAME_RATE,
    ENCODER_OPTION_GET_STATISTICS, ENCODER_OPTION_MAX_BITRATE, SBitrateInfo, SEncoderStatistics,
    SPATIAL_LAYER_0, SPATIAL_LAYER_ALL,
};

/// OpenH264 refused an option, with its result code (4: not initialised yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("OpenH264 refused the rate setting (code {0})")]
pub struct Refused(pub c_int);

/// # Safety
/// `value` is the exact C type OpenH264 reads for `option`.
unsafe fn set_option<T>(
    encoder: &mut Encoder,
    option: ENCODER_OPTION,
    value: &mut T,
) -> Result<(), Refused> {
    // SAFETY: the caller passes the option's own type; the pointer lives through the call.
    let code = unsafe {
        encoder
            .raw_api()
            .set_option(option, std::ptr::from_mut(value).cast::<c_void>())
    };
    if code == 0 {
        Ok(())
    } else {
        Err(Refused(code))
    }
}

fn bits(bps: u32) -> c_int {
    c_int::try_from(bps).unwrap_or(c_int::MAX).max(1)
}

/// Raises the ceiling the rate control checks its target against (the crate sets it to the
/// first target); set with every change of rates, as the encoder may reset it.
pub fn set_ceiling(encoder: &mut Encoder, ceiling_bps: u32) -> Result<(), Refused> {
    // The single spatial layer's own maximum: the one the rate control reads.
    let mut info = SBitrateInfo {
        iLayer: SPATIAL_LAYER_0,
        iBitrate: bits(ceiling_bps),
    };
    // SAFETY: MAX_BITRATE reads an `SBitrateInfo`.
    unsafe { set_option(encoder, ENCODER_OPTION_MAX_BITRATE, &mut info) }
}

/// Aims the encoder at `target_bps` (at most the ceiling) and `fps` from the next frame on.
pub fn set_rates(encoder: &mut Encoder, target_bps: u32, fps: f32) -> Result<(), Refused> {
    let mut info = SBitrateInfo {
        iLayer: SPATIAL_LAYER_ALL,
        iBitrate: bits(target_bps),
    };
    // SAFETY: BITRATE reads an `SBitrateInfo`.
    unsafe { set_option(encoder, ENCODER_OPTION_BITRATE, &mut info)? };
    let mut fps = fps.clamp(1.0, 60.0);
    // SAFETY: FRAME_RATE reads an `f32`.
    unsafe { set_option(encoder, ENCODER_OPTION_FRAME_RATE, &mut fps) }
}

/// The quantiser of the last frame encoded (0 to 51: higher is coarser, each 6 halving the
/// bits a picture takes), as OpenH264's statistics say.
pub fn last_qp(encoder: &mut Encoder) -> Result<u8, Refused> {
    let mut statistics = SEncoderStatistics::default();
    // SAFETY: GET_STATISTICS writes an `SEncoderStatistics`.
    let code = unsafe {
        encoder.raw_api().get_option(
            ENCODER_OPTION_GET_STATISTICS,
            std::ptr::from_mut(&mut statistics).cast::<c_void>(),
        )
    };
    if code != 0 {
        return Err(Refused(code));
    }
    Ok(u8::try_from(statistics.uiAverageFrameQP.min(51)).unwrap_or(51))
}
