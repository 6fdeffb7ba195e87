//! The retransmission stream (RFC 4588) of each local video stream, as congestion control uses
//! it: the NACK responder's resends and the pacer's probe padding both go out on it, so the far
//! end can tell them from first copies and a duplicate never meets its replay protection.
//!
//! The webrtc stack numbers (transport-wide) and records (send history) only packets of a
//! stream it bound, and binds the video's own SSRC, not its retransmission SSRC. So a packet
//! for the retransmission stream travels the chain under the video's SSRC with the
//! retransmission payload type, is numbered and recorded like the video's, and only
//! [`RtxSsrc`], wire-ward of both, gives it its own SSRC. The pacer gives each its sequence
//! number ([`RtxStream::adopt`]) in the order they leave, so resends and probe copies
//! ([`RtxStream::encapsulate`]) never share one.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{BufMut as _, BytesMut};
use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// One video stream's retransmission stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxStream {
    /// The video's own SSRC.
    pub primary: u32,
    /// The retransmission stream's SSRC.
    pub ssrc: u32,
    /// Its payload type.
    pub payload_type: u8,
    /// Its next sequence number.
    next_sequence: u16,
}

impl RtxStream {
    /// The retransmission stream `info` negotiated, if any.
    pub fn of(info: &StreamInfo) -> Option<Self> {
        Some(Self {
            primary: info.ssrc,
            ssrc: info.ssrc_rtx?,
            payload_type: info.payload_type_rtx?,
            next_sequence: 0,
        })
    }

    /// Whether `packet` is meant for this retransmission stream (under either SSRC).
    pub fn carries(&self, packet: &rtc::rtp::Packet) -> bool {
        packet.header.payload_type == self.payload_type
            && (packet.header.ssrc == self.primary || packet.header.ssrc == self.ssrc)
    }

    /// Takes a resend the NACK responder made for the stream: it travels under the video's
    /// SSRC (so it is numbered and recorded) with the next sequence number.
    pub fn adopt(&mut self, packet: &mut rtc::rtp::Packet) {
        packet.header.ssrc = self.primary;
        packet.header.sequence_number = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
    }

    /// A copy of the video's `original` packet for the retransmission stream: its sequence
    /// number, then its payload (RFC 4588 §4). It is numbered ([`Self::adopt`]) when it leaves.
    pub fn encapsulate(&self, original: &rtc::rtp::Packet) -> rtc::rtp::Packet {
        let mut payload = BytesMut::with_capacity(2 + original.payload.len());
        payload.put_u16(original.header.sequence_number);
        payload.extend_from_slice(&original.payload);
        let mut packet = original.clone();
        packet.header.payload_type = self.payload_type;
        packet.header.padding = false;
        packet.payload = payload.freeze();
        packet
    }
}

/// The interceptor that gives packets for a retransmission stream its SSRC, wire-ward of the
/// numbering and the history.
#[derive(Default)]
pub struct RtxSsrc {
    streams: Vec<RtxStream>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for RtxSsrc {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RtxSsrc")
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtxSsrc {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.read_queue.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, mut message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(rtp) = &mut message.message.packet
            && let Some(stream) = self.streams.iter().find(|stream| stream.carries(rtp))
        {
            rtp.header.ssrc = stream.ssrc;
        }
        self.write_queue.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for RtxSsrc {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.extend(RtxStream::of(info));
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.retain(|stream| stream.primary != info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    use super::*;

    fn video(ssrc: u32, sequence_number: u16) -> rtc::rtp::Packet {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = ssrc;
        packet.header.payload_type = 102;
        packet.header.sequence_number = sequence_number;
        packet.payload = vec![7_u8; 100].into();
        packet
    }

    #[test]
    fn resends_and_copies_share_one_sequence_and_leave_under_the_retransmission_ssrc() {
        let info = StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            payload_type: 102,
            payload_type_rtx: Some(103),
            ..StreamInfo::default()
        };
        let mut stream = RtxStream::of(&info).expect("negotiated");
        let mut copy = stream.encapsulate(&video(10, 500));
        assert!(stream.carries(&copy));
        stream.adopt(&mut copy);
        assert_eq!(copy.header.payload_type, 103);
        assert_eq!(copy.header.ssrc, 10, "numbered and recorded as the video");
        assert_eq!(&copy.payload[..2], &500_u16.to_be_bytes());
        assert_eq!(copy.payload.len(), 102);
        // The responder's own resend, numbered from its own zero, takes the next number.
        let mut resend = video(11, 0);
        resend.header.payload_type = 103;
        assert!(stream.carries(&resend));
        stream.adopt(&mut resend);
        assert_eq!(
            (copy.header.sequence_number, resend.header.sequence_number),
            (0, 1)
        );
        let mut wire = RtxSsrc::default();
        wire.bind_local_stream(&info);
        for packet in [copy, resend, video(10, 501)] {
            wire.handle_write(TaggedPacket {
                now: Instant::now(),
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .expect("write");
        }
        let ssrcs: Vec<u32> = std::iter::from_fn(|| wire.poll_write())
            .filter_map(|packet| match packet.message.packet {
                Packet::Rtp(rtp) => Some(rtp.header.ssrc),
                _ => None,
            })
            .collect();
        assert_eq!(ssrcs, [11, 11, 10]);
    }
}
