//! Send-side congestion control of one peer connection: the far end reports when each packet
//! arrived (transport-wide congestion control feedback, which the webrtc stack's default
//! interceptors negotiate, record and send at both ends), our
//! [`Estimator`] turns those reports into how much may be sent, a pacer spreads what goes out,
//! [`ResendBudget`] keeps the packets resent on request to a share of it, and the estimate is
//! published in an [`EstimateCell`] for the sender to follow. Now and then the estimator asks
//! the pacer for a probe, more than the media sends for a moment, to find out whether the path
//! carries more; the pacer fills it with copies on the video's retransmission stream.
//!
//! The pieces are the webrtc stack's interceptors, placed at their slots (the send history
//! wire-most, then the sequence numbers, then the pacer; the feedback recorder among the
//! defaults); the estimator and the pacer ([`MediaPacer`]: audio first) are ours, and so is
//! [`RtxSsrc`], below the history, which gives the retransmission stream its own SSRC once the
//! stack has numbered and recorded its packets as the video's. The link a debugging aid impairs
//! sits below all of them, so what it delays or drops is charged to the network as a real
//! bottleneck's would be.

mod estimator;
mod loss;
mod pacer;
mod probe;
mod resend_budget;
mod rtx;
mod trendline;

use std::sync::Arc;

use rtc::interceptor::{CongestionControlBuilder, Registry, Slot, TwccSenderBuilder};

pub use estimator::{Estimate, EstimateCell, Estimator};
pub use pacer::MediaPacer;
pub use resend_budget::ResendBudget;
pub use rtx::RtxSsrc;

use estimator::{INITIAL_BPS, PACING_FACTOR};

/// Adds the sending half of congestion control to `registry`, publishing into `cell`.
pub fn interceptors(registry: Registry, cell: &Arc<EstimateCell>) -> Registry {
    let estimator = Estimator::new(Arc::clone(cell));
    registry
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(
            Slot::Pacer,
            MediaPacer::new(INITIAL_BPS * PACING_FACTOR, Arc::clone(cell)),
        )
        // Wire-ward of the numbering and the history: they know the video's SSRC only.
        .with(Slot::from(750), RtxSsrc::default())
        // Between the NACK responder (4 000) and the pacer.
        .with(Slot::from(3_500), ResendBudget::new(Arc::clone(cell)))
}

#[cfg(test)]
mod simulation;
