//! Send-side congestion control of one peer connection: the far end reports when each packet
//! arrived (transport-wide congestion control feedback, which the webrtc stack's default
//! interceptors negotiate, record and send at both ends), our
//! [`Estimator`] turns those reports into how much may be sent, a pacer spreads what goes out,
//! [`ResendBudget`] keeps the packets resent on request to a share of it, and the estimate is
//! published in an [`EstimateCell`] for the sender to follow.
//!
//! The pieces are the webrtc stack's interceptors, placed at their slots (the send history
//! wire-most, then the sequence numbers, then the pacer; the feedback recorder among the
//! defaults); the estimator and the pacer ([`MediaPacer`]: audio first) are ours. The link a debugging aid impairs sits below all of
//! them, so what it delays or drops is charged to the network as a real bottleneck's would be.

mod estimator;
mod loss;
mod pacer;
mod resend_budget;
mod trendline;

use std::sync::Arc;

use rtc::interceptor::{CongestionControlBuilder, Registry, Slot, TwccSenderBuilder};

pub use estimator::{Estimate, EstimateCell, Estimator};
pub use pacer::MediaPacer;
pub use resend_budget::ResendBudget;

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
        .with(Slot::Pacer, MediaPacer::new(INITIAL_BPS * PACING_FACTOR))
        // Between the NACK responder (4 000) and the pacer.
        .with(Slot::from(3_500), ResendBudget::new(Arc::clone(cell)))
}

#[cfg(test)]
mod simulation;
