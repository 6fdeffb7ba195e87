//! The interceptor chain of every peer connection, in one place so that a call in virtual time
//! runs through the same chain as a real one. From the wire up:
//! - 500, the link ([`LinkInterceptor`]): what a debugging aid does to packets on purpose, below
//!   everything, so its delay and loss are the network's to every interceptor above;
//! - 750 to 3 500, congestion control ([`congestion`]): the retransmission stream's SSRC, the
//!   send history, transport-wide sequence numbers, the pacer (which also sends probes), and
//!   (3 500) the budget that caps resends at a share of the estimate;
//! - 4 000, the webrtc stack's NACK responder; 7 000, our [`NackRequests`], paced by the round
//!   trip; the stack's feedback recorder (8 000) and receiver and sender reports;
//! - 14 000, [`KeyframeRequests`]: the far end's key-frame requests reach the video track.

use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{NackResponderBuilder, Registry, Slot};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use webrtc::peer_connection::{
    MediaEngine, configure_rtcp_reports, configure_simulcast_extension_headers,
    configure_twcc_receiver_only,
};

use super::congestion::{self, EstimateCell};
use super::keyframe::KeyframeRequests;
use super::link::{LinkControl, LinkInterceptor};
use super::nack::NackRequests;

/// The chain for one connection, its feedback negotiated in `media` (whose codecs must be
/// registered first, so NACK, PLI and transport-wide feedback are offered for them).
pub fn registry(
    media: &mut MediaEngine,
    link: &Arc<LinkControl>,
    estimate: &Arc<EstimateCell>,
    epoch: Instant,
) -> webrtc::error::Result<Registry> {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(media)?;
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackRequests::new(Arc::clone(link), super::peer::random_ssrc()),
        );
    let registry = configure_rtcp_reports(configure_twcc_receiver_only(registry, media)?);
    Ok(congestion::interceptors(registry, estimate)
        .with(Slot::from(14_000), KeyframeRequests::default())
        .with(
            Slot::from(500),
            LinkInterceptor::new(Arc::clone(link), epoch),
        ))
}
