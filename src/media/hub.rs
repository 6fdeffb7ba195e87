//! Where encoded local media fans out to every connected peer: one bounded queue per peer and
//! kind, filled with `try_send` so a slow peer drops frames (and gets a key frame after) instead
//! of stalling the encoder or the other peers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::congestion::{Estimate, EstimateCell};
use super::worker::Wake;

/// One encoded frame (an H.264 access unit or an Opus packet).
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The bitstream.
    pub data: Bytes,
    /// How long it lasts.
    pub duration: Duration,
}

#[derive(Debug)]
struct Subscriber {
    user_id: String,
    queue: mpsc::Sender<Encoded>,
    /// How much the path to it may carry.
    estimate: Arc<EstimateCell>,
}

/// The local streams' subscribers and the key-frame request flag.
#[derive(Debug, Default)]
pub struct SendHub {
    video: Mutex<Vec<Subscriber>>,
    audio: Mutex<Vec<Subscriber>>,
    keyframe_wanted: AtomicBool,
    /// Rung when subscribers come or go, so an idle sender wakes.
    wake: OnceLock<Wake>,
}

/// What the paths to a stream's peers carry (see [`SendHub::paths`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paths {
    /// The narrowest path's estimate, in bits per second.
    pub narrowest_bps: f64,
    /// The largest share of packets lost on any of them (0 to 1).
    pub worst_loss: f64,
    /// Whether the narrowest estimate has heard from its far end (any path has).
    pub informed: bool,
    /// Whether the narrowest estimate has been measured by a probe (any informed path has):
    /// until then it may be the starting guess.
    pub measured: bool,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// H.264.
    Video,
    /// Opus.
    Audio,
}

impl SendHub {
    /// Rings `wake` whenever subscribers come or go.
    pub fn set_wake(&self, wake: Wake) {
        let _ = self.wake.set(wake);
    }

    fn ring(&self) {
        if let Some(wake) = self.wake.get() {
            wake.ring();
        }
    }

    fn list(&self, kind: Kind) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        match kind {
            Kind::Video => &self.video,
            Kind::Audio => &self.audio,
        }
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts sending `kind` to `user_id` through `queue`, over a path estimated in `estimate`;
    /// a new video subscriber needs a key frame.
    pub fn subscribe(
        &self,
        kind: Kind,
        user_id: &str,
        queue: mpsc::Sender<Encoded>,
        estimate: Arc<EstimateCell>,
    ) {
        let mut list = self.list(kind);
        list.retain(|subscriber| subscriber.user_id != user_id);
        list.push(Subscriber {
            user_id: user_id.to_owned(),
            queue,
            estimate,
        });
        drop(list);
        if kind == Kind::Video {
            self.request_keyframe();
        }
        self.ring();
    }

    /// Stops sending anything to `user_id`.
    pub fn unsubscribe(&self, user_id: &str) {
        for kind in [Kind::Video, Kind::Audio] {
            self.list(kind)
                .retain(|subscriber| subscriber.user_id != user_id);
        }
        self.ring();
    }

    /// What the paths to the peers that receive `kind` carry: one encoding serves every peer, so
    /// it fits the narrowest. A path that has not heard from its far end yet (its estimate is
    /// the starting guess) counts only while none has, and one not yet measured by a probe only
    /// while no informed one is (a peer joining does not pull the others' video down to its
    /// guess). `None` without peers.
    pub fn paths(&self, kind: Kind) -> Option<Paths> {
        let list = self.list(kind);
        let estimates: Vec<Estimate> = list.iter().map(|s| s.estimate.get()).collect();
        drop(list);
        let informed = estimates.iter().any(|estimate| estimate.informed);
        let measured = estimates
            .iter()
            .any(|estimate| estimate.informed && estimate.measured);
        let narrowest = estimates
            .iter()
            .filter(|estimate| estimate.informed == informed && estimate.measured == measured)
            .map(|estimate| estimate.target_bps)
            .min_by(f64::total_cmp)?;
        Some(Paths {
            narrowest_bps: narrowest,
            worst_loss: estimates.iter().map(|e| e.loss).fold(0.0, f64::max),
            informed,
            measured,
        })
    }

    /// How many peers receive `kind`.
    pub fn subscribers(&self, kind: Kind) -> usize {
        self.list(kind).len()
    }

    /// Hands a frame to every subscriber of `kind`; a full video queue asks for a key frame.
    pub fn publish(&self, kind: Kind, frame: &Encoded) {
        let mut dropped = false;
        self.list(kind).retain(
            |subscriber| match subscriber.queue.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    dropped = true;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        );
        if dropped && kind == Kind::Video {
            self.request_keyframe();
        }
    }

    /// Asks the encoder for a key frame (a peer lost one, or joined).
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Release);
    }

    /// Whether a key frame was asked for since the last call; clears the request.
    pub fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use tokio::sync::mpsc;

    use super::{Encoded, Kind, SendHub};
    use crate::media::congestion::{Estimate, EstimateCell};

    fn frame() -> Encoded {
        Encoded {
            data: Bytes::from_static(b"frame"),
            duration: std::time::Duration::from_millis(33),
        }
    }

    #[test]
    fn a_new_video_subscriber_and_a_full_queue_each_ask_for_a_key_frame() {
        let hub = SendHub::default();
        let (queue, mut frames) = mpsc::channel(1);
        hub.subscribe(Kind::Video, "bob", queue, EstimateCell::new());
        assert!(hub.take_keyframe_request());
        assert!(!hub.take_keyframe_request());
        hub.publish(Kind::Video, &frame());
        assert!(!hub.take_keyframe_request());
        // Bob has not taken the first frame: the second is dropped and a key frame is due.
        hub.publish(Kind::Video, &frame());
        assert!(hub.take_keyframe_request());
        assert!(frames.try_recv().is_ok());
        assert!(frames.try_recv().is_err());
    }

    #[test]
    fn a_closed_queue_unsubscribes_and_audio_never_asks_for_key_frames() {
        let hub = SendHub::default();
        let (queue, frames) = mpsc::channel(1);
        hub.subscribe(Kind::Audio, "carol", queue, EstimateCell::new());
        assert!(!hub.take_keyframe_request());
        drop(frames);
        hub.publish(Kind::Audio, &frame());
        assert_eq!(hub.subscribers(Kind::Audio), 0);
        assert!(!hub.take_keyframe_request());
    }

    #[test]
    fn the_narrowest_informed_path_decides_and_a_silent_one_only_while_all_are() {
        let hub = SendHub::default();
        let (queue, _frames) = mpsc::channel(1);
        let silent = EstimateCell::new();
        hub.subscribe(Kind::Video, "bob", queue.clone(), silent);
        let paths = hub.paths(Kind::Video).expect("a path");
        assert!(!paths.informed && !paths.measured);
        assert!((paths.narrowest_bps - Estimate::default().target_bps).abs() < 1.0);
        // Carol's path is informed and wider than the starting guess: it decides.
        let heard = EstimateCell::new();
        heard.set(Estimate {
            target_bps: 500_000.0,
            loss: 0.02,
            informed: true,
            ..Estimate::default()
        });
        hub.subscribe(Kind::Video, "carol", queue, Arc::clone(&heard));
        let paths = hub.paths(Kind::Video).expect("paths");
        assert!(paths.informed && !paths.measured);
        assert!((paths.narrowest_bps - 500_000.0).abs() < 1.0);
        assert!((paths.worst_loss - 0.02).abs() < 1e-9);
        assert!(hub.paths(Kind::Audio).is_none());
        // Once a probe measures carol's path, it decides; dave, joining, is heard from but not
        // measured yet: his guess (narrower) does not decide.
        heard.set(Estimate {
            measured: true,
            ..heard.get()
        });
        let joining = EstimateCell::new();
        joining.set(Estimate {
            informed: true,
            ..Estimate::default()
        });
        let (queue, _more) = mpsc::channel(1);
        hub.subscribe(Kind::Video, "dave", queue, joining);
        let paths = hub.paths(Kind::Video).expect("paths");
        assert!(paths.measured);
        assert!((paths.narrowest_bps - 500_000.0).abs() < 1.0);
    }
}
