//! Video: the send thread (camera or test pattern, scaled to the rung the path's estimate
//! allows, H.264 at its target) and the receive path (RTP put back in order, access units, a
//! decoder thread per remote stream, I420 to RGBA, the frame slot, a repaint).

mod decoder;
mod encoder;
mod freeze;
mod h264_picture;
mod playout;
mod receive;
mod scale;
mod send;
mod source;
mod y4m;

pub use decoder::{VideoDecoder, to_rgba};
pub use encoder::VideoEncoder;
pub use receive::{DecodeWorker, receive};
pub use scale::scale_into;
pub use send::send_video;
