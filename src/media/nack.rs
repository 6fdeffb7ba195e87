//! `NackRequests`: asks the far end to resend the video packets that did not arrive, once a
//! round trip apart. A missing packet is asked for as soon as the gap shows, again only when
//! its resend should have come (a round trip and a little later) and did not, and given up when
//! the reorder buffer stops waiting for it ([`repair_wait`]) or after [`MAX_REQUESTS`]: a resend
//! that comes later is thrown away, so asking for it only costs the path. On a long path each
//! request is sent twice, [`ECHO_AFTER`] apart: a request or resend lost costs a whole round trip
//! more, which the playout delay does not cover, and two copies are lost together far less
//! often than one. Asking every 100 ms regardless
//! (the webrtc stack's own generator) resends each packet several times over a long path, and on
//! a narrow one the resends crowd out the stream they were meant to repair.
//!
//! The round trip is the one the link measures from sender reports ([`LinkControl`]).
//!
//! A resend may come on the stream's retransmission stream (RFC 4588): it is read there, by
//! the sequence number it carries, and that stream's own numbers are never asked for.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::interceptor::{AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;

use super::link::LinkControl;
use super::reorder::repair_wait;
use super::seq::{repeated_sequence_number, unwrap_near};

/// The most times one packet is asked for.
pub const MAX_REQUESTS: u32 = 3;
/// Beyond the round trip, the time a resend may take to come before it is asked for again.
const RESEND_MARGIN: Duration = Duration::from_millis(20);
/// From this round trip on, each request goes out twice, this far apart (lost together less
/// often than back to back, and the second resend still comes well inside the same round trip).
const ECHO_FROM_RTT: Duration = Duration::from_millis(60);
const ECHO_AFTER: Duration = Duration::from_millis(20);
/// The round trip assumed before one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// A gap wider than this many packets is an outage: nothing in it is asked for.
const MAX_GAP: u64 = 1_000;
/// How often the missing packets are looked at while any are missing.
const TICK: Duration = Duration::from_millis(10);

/// One missing packet: when it was found missing, when last asked for, how often, and when
/// the last request's second copy is due.
#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    asked: Option<Instant>,
    requests: u32,
    echo: Option<Instant>,
}

/// The missing packets of one stream. Sans-IO.
#[derive(Debug, Default)]
pub struct MissingPackets {
    /// The highest sequence number so far, unwrapped.
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
    /// Packets given up without arriving.
    pub given_up: u64,
}

impl MissingPackets {
    /// A packet with `sequence_number` arrived at `now`.
    pub fn arrived(&mut self, now: Instant, sequence_number: u16) {
        let number = unwrap_near(self.highest, sequence_number);
        let Some(highest) = self.highest else {
            self.highest = Some(number);
            return;
        };
        if number <= highest {
            self.missing.remove(&number);
            return;
        }
        if number - highest > MAX_GAP {
            self.given_up += self.missing.len() as u64;
            self.missing.clear();
        } else {
            for gap in highest + 1..number {
                self.missing.insert(
                    gap,
                    Missing {
                        since: now,
                        asked: None,
                        requests: 0,
                        echo: None,
                    },
                );
            }
        }
        self.highest = Some(number);
    }

    /// The sequence numbers to ask for at `now`, given the round trip `rtt`; those asked for too
    /// often, or missing longer than the reorder buffer waits, are given up.
    pub fn due(&mut self, now: Instant, rtt: Duration) -> Vec<u16> {
        let again_after = rtt + RESEND_MARGIN;
        let give_up_after = repair_wait(rtt);
        let before = self.missing.len();
        self.missing.retain(|_, missing| {
            missing.requests < MAX_REQUESTS
                && now.saturating_duration_since(missing.since) < give_up_after
        });
        self.given_up += (before - self.missing.len()) as u64;
        let mut due = Vec::new();
        for (&number, missing) in &mut self.missing {
            let in_time = now.saturating_duration_since(missing.since) + rtt < give_up_after;
            if in_time
                && missing
                    .asked
                    .is_none_or(|asked| now.saturating_duration_since(asked) >= again_after)
            {
                missing.asked = Some(now);
                missing.requests += 1;
                missing.echo = (rtt >= ECHO_FROM_RTT).then_some(now + ECHO_AFTER);
                due.push(number as u16);
            } else if missing.echo.is_some_and(|echo| now >= echo) {
                missing.echo = None;
                due.push(number as u16);
            }
        }
        due
    }

    /// Whether any packet is missing.
    pub fn any(&self) -> bool {
        !self.missing.is_empty()
    }
}

/// The interceptor: the missing packets of each remote stream that takes NACKs.
pub struct NackRequests {
    link: Arc<LinkControl>,
    sender_ssrc: u32,
    /// By SSRC, in order, so requests for several streams go out in the same order each time.
    streams: BTreeMap<u32, MissingPackets>,
    /// The retransmission streams' SSRCs, and the SSRC of the stream each repairs.
    repairs: BTreeMap<u32, u32>,
    next_look: Option<Instant>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for NackRequests {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NackRequests")
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl NackRequests {
    /// Requests signed `sender_ssrc`, paced by the round trip `link` measures.
    pub fn new(link: Arc<LinkControl>, sender_ssrc: u32) -> Self {
        Self {
            link,
            sender_ssrc,
            streams: BTreeMap::new(),
            repairs: BTreeMap::new(),
            next_look: None,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    /// The stream and sequence number `rtp` brings: its own, or for a resend on a
    /// retransmission stream, those of the packet it repairs (none for padding).
    fn repaired(&self, rtp: &rtc::rtp::Packet) -> Option<(u32, u16)> {
        let Some(&primary) = self.repairs.get(&rtp.header.ssrc) else {
            return Some((rtp.header.ssrc, rtp.header.sequence_number));
        };
        Some((primary, repeated_sequence_number(&rtp.payload)?))
    }

    fn rtt(&self) -> Duration {
        match self.link.counters.rtt_micros.load(Ordering::Relaxed) {
            0 => DEFAULT_RTT,
            micros => Duration::from_micros(micros),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(rtp) = &message.message.packet
            && let Some((ssrc, sequence_number)) = self.repaired(rtp)
            && let Some(stream) = self.streams.get_mut(&ssrc)
        {
            stream.arrived(message.now, sequence_number);
            if stream.any() && self.next_look.is_none() {
                // The first request goes out at once: a gap is as sure now as it will be later.
                self.next_look = Some(message.now);
            }
        }
        self.read_queue.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        if self.next_look.is_none_or(|at| now < at) {
            return Ok(());
        }
        let rtt = self.rtt();
        let mut any = false;
        for (&ssrc, stream) in &mut self.streams {
            let due = stream.due(now, rtt);
            any |= stream.any();
            if due.is_empty() {
                continue;
            }
            let nack = TransportLayerNack {
                sender_ssrc: self.sender_ssrc,
                media_ssrc: ssrc,
                nacks: nack_pairs_from_sequence_numbers(&due),
            };
            self.write_queue.push_back(TaggedPacket {
                now,
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(nack)])),
            });
        }
        self.next_look = any.then_some(now + TICK);
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        self.next_look
    }
}

impl Interceptor for NackRequests {
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(repair) = info.ssrc_rtx {
            self.repairs.insert(repair, info.ssrc);
        }
        if self.repairs.contains_key(&info.ssrc) {
            return;
        }
        let takes_nacks = info
            .rtcp_feedback
            .iter()
            .any(|feedback| feedback.typ == "nack" && feedback.parameter.is_empty());
        if takes_nacks {
            self.streams.insert(info.ssrc, MissingPackets::default());
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
        self.repairs.retain(|_, primary| *primary != info.ssrc);
    }

    fn bind_local_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn a_gap_is_asked_for_at_once_and_again_only_a_round_trip_later() {
        let start = Instant::now();
        let mut missing = MissingPackets::default();
        missing.arrived(start, 65_534);
        missing.arrived(start, 2);
        let rtt = ms(50);
        assert_eq!(missing.due(start, rtt), [65_535, 0, 1]);
        assert!(missing.due(start + ms(40), rtt).is_empty());
        // 0 came back; 65535 and 1 are asked for again once a round trip has passed.
        missing.arrived(start + ms(45), 0);
        assert_eq!(missing.due(start + ms(70), rtt), [65_535, 1]);
        missing.arrived(start + ms(100), 65_535);
        missing.arrived(start + ms(100), 1);
        assert!(!missing.any());
        assert_eq!(missing.given_up, 0);
    }

    /// What `missing` asks for every 10 ms until `until_ms`, each `(ms, number)`, with the
    /// packets in `arrivals` coming at their time.
    fn requests(
        missing: &mut MissingPackets,
        (start, rtt): (Instant, Duration),
        until_ms: u64,
        arrivals: &[(u64, u16)],
    ) -> Vec<(u64, u16)> {
        let mut asked = Vec::new();
        for at in (0..until_ms).step_by(10) {
            let now = start + ms(at);
            for &(_, number) in arrivals.iter().filter(|(when, _)| *when == at) {
                missing.arrived(now, number);
            }
            asked.extend(missing.due(now, rtt).into_iter().map(|number| (at, number)));
        }
        asked
    }

    #[test]
    fn on_a_long_path_each_request_goes_out_twice_a_little_apart() {
        let start = Instant::now();
        let mut missing = MissingPackets::default();
        missing.arrived(start, 10);
        missing.arrived(start, 13);
        // 11's resend comes at 150 ms; 12's does not.
        let asked = requests(&mut missing, (start, ms(200)), 600, &[(150, 11)]);
        assert_eq!(
            asked,
            [(0, 11), (0, 12), (20, 11), (20, 12), (220, 12), (240, 12)]
        );
    }

    #[test]
    fn a_packet_is_given_up_when_the_reorder_buffer_stops_waiting_for_it() {
        let start = Instant::now();
        let mut missing = MissingPackets::default();
        missing.arrived(start, 10);
        missing.arrived(start, 12);
        // 200 ms round trip: asked at 0 and 220 ms (each twice); the reorder buffer waits
        // 450 ms, so a third request at 440 ms could not bring the resend in time and is not sent.
        let asked = requests(&mut missing, (start, ms(200)), 1_000, &[]);
        assert_eq!(asked, [(0, 11), (20, 11), (220, 11), (240, 11)]);
        assert_eq!(missing.given_up, 1);
        // On a short path the request limit comes first.
        missing.arrived(start, 14);
        let short = ms(1);
        let mut asked = 0;
        for step in 0..100 {
            asked += missing.due(start + ms(step), short).len();
        }
        assert_eq!(asked, MAX_REQUESTS as usize);
        assert_eq!(missing.given_up, 2);
    }

    fn read(requests: &mut NackRequests, now: Instant, ssrc: u32, number: u16, payload: &[u8]) {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = ssrc;
        packet.header.sequence_number = number;
        packet.payload = payload.to_vec().into();
        requests
            .handle_read(TaggedPacket {
                now,
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .expect("read");
        while requests.poll_read().is_some() {}
    }

    #[test]
    fn a_resend_on_the_retransmission_stream_fills_its_gap_and_that_stream_is_never_asked_for() {
        let mut requests = NackRequests::new(LinkControl::new(), 1);
        let nack = |parameter: &str| rtc::interceptor::RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: parameter.to_owned(),
        };
        let video = StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            rtcp_feedback: vec![nack(""), nack("pli")],
            ..StreamInfo::default()
        };
        requests.bind_remote_stream(&video);
        requests.bind_remote_stream(&StreamInfo {
            ssrc: 11,
            ssrc_rtx: None,
            ..video.clone()
        });
        let start = Instant::now();
        read(&mut requests, start, 10, 1, &[0; 10]);
        read(&mut requests, start, 10, 4, &[0; 10]);
        // 2 comes back on the retransmission stream; that stream skips from 7 to 9.
        read(&mut requests, start, 11, 7, &[0, 2, 0]);
        read(&mut requests, start, 11, 9, &[0, 2, 0]);
        // Padding alone names no packet.
        read(&mut requests, start, 11, 10, &[]);
        requests.handle_timeout(start).expect("timeout");
        let asked: Vec<(u32, Vec<u16>)> =
            std::iter::from_fn(|| requests.poll_write())
                .filter_map(|packet| match packet.message.packet {
                    Packet::Rtcp(rtcp) => rtcp[0]
                        .as_any()
                        .downcast_ref::<TransportLayerNack>()
                        .map(|nack| {
                            let numbers = nack.nacks.iter().flat_map(NackPair::packet_list);
                            (nack.media_ssrc, numbers.collect())
                        }),
                    _ => None,
                })
                .collect();
        assert_eq!(asked, [(10, vec![3])]);
    }

    #[test]
    fn an_outage_s_gap_is_not_asked_for() {
        let start = Instant::now();
        let mut missing = MissingPackets::default();
        missing.arrived(start, 0);
        missing.arrived(start, 5_000);
        assert!(!missing.any());
        assert!(missing.due(start, ms(50)).is_empty());
    }
}
