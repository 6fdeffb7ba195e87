//! `MediaEvent`: the one typed report of the media engine. The engine turns each into
//! timeline entries, signaling messages or call-core inputs; media itself decides nothing.

use std::collections::BTreeMap;

use crate::event::{CallStats, ConnectionState, NetworkQuality};
use crate::model::QualityLimitation;

use super::MediaError;
use super::negotiation::Report;

/// A media report with the call it is about (a report of a call that ended is stale).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaReport {
    /// The call.
    pub call_id: String,
    /// What happened.
    pub event: MediaEvent,
}

/// Something the media engine saw or made.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// Our description for `to`, with its candidates (JSON), to go out through signaling.
    LocalDescription {
        /// The participant it is for.
        to: String,
        /// The description.
        description: String,
    },
    /// The connection to a participant changed state.
    Connection {
        /// The participant.
        user_id: String,
        /// The state now.
        state: ConnectionState,
    },
    /// The connection to a participant failed for good (or never came up).
    PeerFailed {
        /// The participant.
        user_id: String,
        /// Why.
        error: MediaError,
    },
    /// Frames from a participant started or stopped arriving.
    Video {
        /// The participant.
        user_id: String,
        /// Whether frames arrive.
        available: bool,
    },
    /// Audio from a participant started or stopped arriving.
    Audio {
        /// The participant.
        user_id: String,
        /// Whether audio arrives.
        available: bool,
    },
    /// A participant's figures, about once a second.
    Stats(CallStats),
    /// A participant's network quality changed.
    Quality {
        /// The participant.
        user_id: String,
        /// The quality now.
        quality: NetworkQuality,
    },
    /// The local video stepped on its ladder of resolution and frame rate.
    VideoStep {
        /// The picture and rate before (`1280x720@30`, or `paused`).
        from: String,
        /// The picture and rate after.
        to: String,
        /// What moved it.
        reason: QualityLimitation,
        /// What limits the video after it.
        limitation: QualityLimitation,
        /// The video's budget when it stepped, in kbit/s.
        budget_kbps: u32,
    },
    /// Everyone's speaking level, about once a second.
    Volumes(BTreeMap<String, u8>),
    /// A failure that ends nothing by itself: a missing device, a codec error, a message that
    /// could not be used.
    Error(MediaError),
    /// This many best-effort reports did not fit in the engine's queue and were dropped.
    Dropped(u64),
}

impl MediaEvent {
    /// What a negotiation's conclusion about the connection to `user_id` reports.
    pub fn of_negotiation(user_id: &str, report: Report) -> Self {
        let user_id = user_id.to_owned();
        match report {
            Report::State(state) => Self::Connection { user_id, state },
            Report::Failed(reason) => Self::PeerFailed {
                error: MediaError::Connection {
                    user_id: user_id.clone(),
                    reason,
                },
                user_id,
            },
            Report::Refused(reason) => Self::Error(MediaError::Negotiation { user_id, reason }),
        }
    }
}
