//! An interceptor that lets key-frame requests (PLI and FIR) from the far end reach the local
//! video track. Inbound RTCP otherwise ends in the interceptor chain, and the encoder would never
//! learn that a receiver lost its picture.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Marks inbound PLI and FIR for the application; every other packet passes unchanged.
#[derive(Default)]
pub struct KeyframeRequests {
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for KeyframeRequests {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyframeRequests")
            .finish_non_exhaustive()
    }
}

/// Whether an RTCP packet asks for a key frame.
pub fn asks_for_keyframe(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &message.message.packet
            && packets
                .iter()
                .any(|packet| asks_for_keyframe(packet.as_ref()))
        {
            message.message.add(Attribute::DeliverToApplication);
        }
        self.inbound.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.outbound.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.outbound.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rtc::interceptor::{Attribute, AttributedPacket, Packet, TaggedPacket};
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::sansio::Protocol as _;
    use rtc::shared::TransportContext;

    use super::KeyframeRequests;

    fn inbound(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(packets)),
        }
    }

    #[test]
    fn a_picture_loss_indication_is_marked_for_the_application_and_a_report_is_not() {
        let mut interceptor = KeyframeRequests::default();
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        interceptor
            .handle_read(inbound(vec![Box::new(pli)]))
            .expect("read");
        interceptor
            .handle_read(inbound(vec![Box::new(ReceiverReport::default())]))
            .expect("read");
        let first = interceptor.poll_read().expect("the PLI passes on");
        assert!(first.message.has(&Attribute::DeliverToApplication));
        let second = interceptor.poll_read().expect("the report passes on");
        assert!(!second.message.has(&Attribute::DeliverToApplication));
        assert!(interceptor.poll_read().is_none());
    }
}
