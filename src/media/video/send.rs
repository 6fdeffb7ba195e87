//! The local video thread: camera or test pattern, scaled to the rung the ladder chose,
//! H.264 at the target the path's estimate leaves, a key frame whenever a receiver asks or a
//! new picture size needs one. One encoding serves every peer, so it follows the narrowest
//! path (a mesh call of two or three peers encodes once, not once per peer: two cores would
//! not keep up with more).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::encoder::VideoEncoder;
use super::scale::scale_into;
use super::source::{VideoSource, open_file};
use super::y4m::Y4mFile;
use crate::media::MediaError;
use crate::media::events::MediaEvent;
use crate::media::frame::{FrameSlot, I420Frame, LOCAL_STREAM};
use crate::media::hub::{Encoded, Kind};
use crate::media::ladder::{Ladder, Step, estimate_for_budget_bps};
use crate::media::marker::{self, Marker};
use crate::media::session::Shared;
use crate::media::stats::SentVideo;
use crate::media::worker::{Pacer, give_way};
use crate::model::MonoTime;

/// A far end that sends no congestion feedback this long after video starts leaves the
/// estimate blind: the sender then keeps to the resolution's own bitrate, as a fixed-rate
/// sender would.
const BLIND_AFTER: Duration = Duration::from_secs(5);
/// While the ladder has paused the video, it looks at the estimate this often.
const PAUSED_LOOK: Duration = Duration::from_millis(200);
/// A change of target smaller than this share is not worth telling the encoder.
const RETARGET_SHARE: f64 = 0.05;

/// Whether anyone wants local video now: a video call with the camera on, and a peer.
fn video_wanted(shared: &Shared) -> bool {
    shared.video_enabled.load(Ordering::Acquire) && shared.hub.subscribers(Kind::Video) > 0
}

fn frame_interval(fps: u32) -> Duration {
    Duration::from_nanos(1_000_000_000_u64.div_ceil(u64::from(fps.max(1))))
}

/// The sending side's state between frames.
struct VideoSender {
    ladder: Ladder,
    encoder: VideoEncoder,
    pacer: Pacer,
    source: Option<VideoSource>,
    /// The source frame at the rung's size.
    scaled: I420Frame,
    preview: Option<Arc<FrameSlot>>,
    keyframe: bool,
    encoding_failed: bool,
    /// Time of frames skipped since the last one sent, carried into the next one's duration.
    owed: Duration,
    /// When video was first wanted, for the blind estimate's grace.
    wanted_since: Option<MonoTime>,
    /// Frames sent so far.
    frames: u64,
    /// Frames captured so far (the frame marker's counter).
    captured: u32,
    /// The file the camera choice names, opened early for its size (a file is no device).
    file: Option<Result<Y4mFile, String>>,
}

impl VideoSender {
    fn new(shared: &Shared) -> Result<Self, openh264::Error> {
        let file = open_file(&shared.config.camera);
        let (width, height) = match &file {
            Some(Ok(file)) => file.size(),
            _ => shared.config.resolution.size(),
        };
        let ladder = Ladder::new(width, height, shared.config.fps.max(1));
        let rung = ladder.rung();
        let mut encoder = VideoEncoder::with_size(rung.width, rung.height, rung.fps, 1_000_000)?;
        // The first encode allocates the encoder's buffers; do it now, not when the call
        // connects.
        let _ = encoder.encode(&I420Frame::black(rung.width, rung.height), true);
        Ok(Self {
            pacer: Pacer::new(frame_interval(rung.fps)),
            scaled: I420Frame::black(rung.width, rung.height),
            ladder,
            encoder,
            source: None,
            preview: None,
            keyframe: true,
            encoding_failed: false,
            owed: Duration::ZERO,
            wanted_since: None,
            frames: 0,
            captured: 0,
            file,
        })
    }

    /// Idle until someone wants frames (or the call ends); the first frame after is a key
    /// frame.
    fn idle(&mut self, shared: &Shared, running: &AtomicBool) {
        self.keyframe = true;
        self.wanted_since = None;
        // Nothing is sent meanwhile, and the statistics say so.
        *shared
            .sent_video
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = SentVideo {
            frames: self.frames,
            ..SentVideo::default()
        };
        shared
            .wake
            .wait_until(|| !running.load(Ordering::Acquire) || video_wanted(shared));
        self.pacer.restart();
    }

    /// One turn: follow the estimate, then capture, scale, encode and publish one frame.
    fn turn(&mut self, shared: &Shared) {
        let now = shared.clock.now();
        self.follow_estimate(shared, now);
        if self.ladder.rung().is_paused() {
            self.keyframe = true;
            std::thread::sleep(PAUSED_LOOK);
            return;
        }
        self.pacer.wait();
        if !self.capture(shared) {
            self.keyframe = true;
            return;
        }
        self.encode(shared, now);
    }

    /// Captures the next frame into `scaled`, at the rung's size, with the frame marker on
    /// test content; false when the source had none this time.
    fn capture(&mut self, shared: &Shared) -> bool {
        let source = self.source.get_or_insert_with(|| {
            self.preview = shared
                .config
                .preview
                .then(|| shared.config.frames.reset(LOCAL_STREAM));
            VideoSource::open(shared, self.file.take())
        });
        let marked = source.is_marked();
        let capture_micros = marker::now_micros();
        let Some(frame) = source.next_frame(shared, capture_micros) else {
            return false;
        };
        if let Some(slot) = &self.preview
            && let Some(rgba) = super::decoder::to_rgba(frame)
        {
            let _ = slot.put(rgba);
            shared.config.frames.repaint();
        }
        scale_into(frame, &mut self.scaled);
        if marked {
            // Drawn at the size sent, so the receiver reads it back whatever the rung.
            let (width, height) = (self.scaled.width, self.scaled.height);
            Marker {
                counter: self.captured,
                capture_micros,
            }
            .draw(&mut self.scaled.y, width, width, height);
        }
        self.captured = self.captured.wrapping_add(1);
        true
    }

    /// Encodes the captured frame and hands it to the peers.
    fn encode(&mut self, shared: &Shared, now: MonoTime) {
        let frame = &self.scaled;
        self.keyframe |= shared.hub.take_keyframe_request();
        let started = Instant::now();
        let encoded = self.encoder.encode(frame, self.keyframe);
        let interval = self.pacer.interval();
        self.ladder
            .handle_encode_time(now, started.elapsed(), interval);
        match encoded {
            Ok(data) if !data.is_empty() => {
                self.keyframe = false;
                let unit = Encoded {
                    data: Bytes::copy_from_slice(data),
                    duration: interval + std::mem::take(&mut self.owed),
                };
                shared.hub.publish(Kind::Video, &unit);
                self.frames += 1;
                if let Some(qp) = self.encoder.last_qp() {
                    self.ladder.handle_frame(now, qp, false);
                }
            }
            // Said once: a broken encoder would otherwise fill the timeline 30 times a second.
            Err(error) if !std::mem::replace(&mut self.encoding_failed, true) => {
                shared.error(MediaError::Codec {
                    codec: "H.264",
                    role: "encoder",
                    reason: error.to_string(),
                });
            }
            // Skipped by the rate control: its time goes to the next frame's.
            Ok(_) => {
                self.owed += interval;
                self.ladder.handle_frame(now, 51, true);
            }
            // An encoder failure already reported.
            Err(_) => {}
        }
    }

    /// The narrowest path's estimate moves the ladder and the encoder's target.
    fn follow_estimate(&mut self, shared: &Shared, now: MonoTime) {
        let Some(paths) = shared.hub.paths(Kind::Video) else {
            return;
        };
        let wanted_for = now.since(*self.wanted_since.get_or_insert(now));
        if !paths.informed && wanted_for >= BLIND_AFTER {
            let resolution = f64::from(shared.config.resolution.bitrate_bps());
            // Not a guess, but all there is: followed.
            self.ladder
                .follow(now, estimate_for_budget_bps(resolution), true);
        } else {
            self.ladder.follow(now, paths.narrowest_bps, paths.measured);
        }
        while let Some(step) = self.ladder.poll_step() {
            self.take_step(shared, step);
        }
        let rung = self.ladder.rung();
        let target = self.ladder.target_bps();
        let current = f64::from(self.encoder.target_bps());
        if (f64::from(target) - current).abs() > current * RETARGET_SHARE {
            self.encoder.set_rates(target, rung.fps);
        }
        *shared
            .sent_video
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = SentVideo {
            width: rung.width,
            height: rung.height,
            target_bps: target,
            limitation: self.ladder.limitation(),
            frames: self.frames,
        };
    }

    /// A new rung: a new picture size needs a new encoder (its first frame a key frame), a new
    /// frame rate a new pace.
    fn take_step(&mut self, shared: &Shared, step: Step) {
        let rung = self.ladder.rung();
        shared.report_now(MediaEvent::VideoStep {
            from: step.from,
            to: step.to,
            reason: step.reason,
            limitation: step.limitation,
            budget_kbps: step.budget_bps / 1_000,
        });
        if rung.is_paused() {
            return;
        }
        // A new frame rate at the same size too: OpenH264 budgets each frame as bitrate / fps.
        self.encoder.set_rates(self.ladder.target_bps(), rung.fps);
        if (rung.width, rung.height) != self.encoder.size() {
            match VideoEncoder::with_size(
                rung.width,
                rung.height,
                rung.fps,
                self.ladder.target_bps(),
            ) {
                Ok(encoder) => {
                    self.encoder = encoder;
                    self.scaled = I420Frame::black(rung.width, rung.height);
                    self.keyframe = true;
                }
                Err(error) => shared.error(MediaError::Codec {
                    codec: "H.264",
                    role: "encoder",
                    reason: error.to_string(),
                }),
            }
        }
        self.pacer = Pacer::new(frame_interval(rung.fps));
    }
}

/// The local video thread's body: camera or pattern, H.264, the peers, until `running` clears.
/// It starts only for video; the camera opens the first time video is wanted after the local
/// user joined.
pub fn send_video(shared: &Shared, running: &AtomicBool) {
    give_way();
    let mut sender = match VideoSender::new(shared) {
        Ok(sender) => sender,
        Err(error) => {
            shared.error(MediaError::Codec {
                codec: "H.264",
                role: "encoder",
                reason: error.to_string(),
            });
            return;
        }
    };
    // The camera opens only once the local user is in the call, not while it rings.
    if !shared.wait_until_joined(running) {
        return;
    }
    while running.load(Ordering::Acquire) {
        if video_wanted(shared) {
            sender.turn(shared);
        } else {
            sender.idle(shared, running);
        }
    }
    if let Some(slot) = sender.preview {
        slot.clear();
    }
}
