//! The wire end of a peer connection's interceptor chain: what the link does to packets on
//! purpose ([`Impairer`], per direction, set live through a shared [`LinkControl`]), and what
//! arrived from it ([`ArrivalMeter`]): the packets the path lost before any repair, those that
//! came late (retransmitted after a NACK, or reordered), and the NACKs and key-frame requests
//! this side sent.
//!
//! It sits wire-most in the chain, so everything the other interceptors send (retransmissions,
//! reports, NACKs) crosses the impaired link too, and every inbound packet is impaired before
//! anything records its arrival. ICE and DTLS do not pass through interceptors: a media cut
//! leaves the connection's consent checks alone, as "cut media" means.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

use super::impair::{Fate, Impairer, Impairment};
use super::seq::{repeated_sequence_number, unwrap_near};
use crate::model::MonoTime;

/// What the link does in each direction, and a cut of both.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkSettings {
    /// What happens to the packets we send.
    pub send: Impairment,
    /// What happens to the packets we receive.
    pub receive: Impairment,
    /// Media in both directions is dropped from the first instant to the second.
    pub cut: Option<(Instant, Instant)>,
}

impl LinkSettings {
    /// Whether it leaves every packet alone.
    fn is_clear(&self) -> bool {
        self.send.is_none() && self.receive.is_none() && self.cut.is_none()
    }
}

/// Counters of one link, read by the statistics while the interceptor writes them.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Inbound RTP packets the sequence numbers say were sent so far.
    pub expected: AtomicU64,
    /// Inbound RTP packets that arrived in order, the first time.
    pub arrived: AtomicU64,
    /// Inbound RTP packets that arrived late: retransmitted after a NACK, or reordered.
    pub late: AtomicU64,
    /// NACK messages this side sent.
    pub nacks: AtomicU64,
    /// Key-frame requests (PLI or FIR) this side sent.
    pub key_frame_requests: AtomicU64,
    /// Packets the impairment dropped, both directions.
    pub dropped: AtomicU64,
    /// The last round trip measured from our sender reports and the far end's answers to
    /// them, in µs (0: none yet). Unlike the ICE checks, these cross the impaired link.
    pub rtt_micros: AtomicU64,
    /// How many round trips were measured so far (a stale one is not trusted).
    pub rtt_measurements: AtomicU64,
}

/// The handle the media session keeps to one peer's link.
#[derive(Debug, Default)]
pub struct LinkControl {
    settings: Mutex<LinkSettings>,
    /// Bumped on every change, so the interceptor looks at the settings only when they moved.
    generation: AtomicU64,
    /// What arrived and what was asked for again.
    pub counters: LinkCounters,
}

impl LinkControl {
    /// A link that leaves packets alone.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The settings now.
    pub fn settings(&self) -> LinkSettings {
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies new impairments; a cut in progress stays.
    pub fn impair(&self, send: Impairment, receive: Impairment) {
        self.change(|settings| {
            settings.send = send;
            settings.receive = receive;
        });
    }

    /// Drops all media both ways from `from` for `duration`.
    pub fn cut(&self, from: Instant, duration: Duration) {
        self.change(|settings| settings.cut = Some((from, from + duration)));
    }

    fn change(&self, apply: impl FnOnce(&mut LinkSettings)) {
        apply(&mut self.settings.lock().unwrap_or_else(PoisonError::into_inner));
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// One direction's packets: impaired when asked, held until they arrive, then passed on.
#[derive(Default)]
struct Lane {
    impairer: Option<Impairer>,
    /// Packets on their way, in arrival order (jitter never reorders).
    held: VecDeque<(Instant, TaggedPacket)>,
    ready: VecDeque<TaggedPacket>,
}

impl Lane {
    /// A packet enters the link at `now`; given back when the link lost it.
    fn enter(&mut self, epoch: Instant, packet: TaggedPacket) -> Option<TaggedPacket> {
        let Some(impairer) = &mut self.impairer else {
            // Packets still held from before the link cleared go first.
            match self.held.back() {
                Some(&(at, _)) => self.held.push_back((at, packet)),
                None => self.ready.push_back(packet),
            }
            return None;
        };
        let now = packet.now;
        let entered = mono(epoch, now);
        match impairer.packet(entered, size_of(&packet.message.packet)) {
            Fate::Dropped => Some(packet),
            Fate::Arrives(at) => {
                let at = now + Duration::from_micros(at.as_micros() - entered.as_micros());
                if at <= now && self.held.is_empty() {
                    self.ready.push_back(packet);
                } else if self.held.len() >= MAX_HELD {
                    return Some(packet);
                } else {
                    // A fresh impairer (the settings changed) knows nothing of what is held.
                    let at = self.held.back().map_or(at, |(last, _)| at.max(*last));
                    self.held.push_back((at, packet));
                }
                None
            }
        }
    }

    /// Moves what has arrived by `now` on, stamped with its arrival.
    fn release(&mut self, now: Instant) -> usize {
        let mut released = 0;
        while self.held.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((at, mut packet)) = self.held.pop_front() {
                packet.now = at.max(packet.now);
                self.ready.push_back(packet);
                released += 1;
            }
        }
        released
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.held.front().map(|(at, _)| *at)
    }
}

fn mono(epoch: Instant, at: Instant) -> MonoTime {
    MonoTime::from_micros(at.saturating_duration_since(epoch).as_micros() as u64)
}

fn size_of(packet: &Packet) -> usize {
    match packet {
        Packet::Rtp(rtp) => rtp.marshal_size(),
        Packet::Rtcp(packets) => packets.iter().map(|packet| packet.raw_size()).sum(),
        // Whatever else the chain may carry some day is about the size of a report.
        _ => 100,
    }
}

/// One SSRC's highest sequence number so far, unwrapped, and the numbers below it that have
/// not come.
#[derive(Debug, Clone, Default)]
struct Stream {
    highest: u64,
    missing: BTreeSet<u64>,
}

/// The most missing numbers remembered per stream (a few seconds of video); older ones are
/// forgotten, and count as lost if they come after all.
const MISSING_KEPT: usize = 2_048;

/// Counts arrivals per stream from their sequence numbers: a packet past the highest so far
/// arrived in order (the ones it skipped are missing), a missing one arrived late, and a copy of
/// one that already came counts for nothing. A packet on a retransmission stream (RFC 4588)
/// counts as the one it carries. Sans-IO.
#[derive(Debug, Default)]
pub struct ArrivalMeter {
    streams: BTreeMap<u32, Stream>,
    /// The retransmission streams' SSRCs, and the SSRC of the stream each repairs.
    repairs: BTreeMap<u32, u32>,
    /// Packets the sequence numbers say were sent.
    pub expected: u64,
    /// Packets that arrived in order.
    pub arrived: u64,
    /// Missing packets that arrived after all (repairs and reordered ones).
    pub late: u64,
}

impl ArrivalMeter {
    /// Packets of `repair` repair those of `ssrc`.
    pub fn repairs(&mut self, repair: u32, ssrc: u32) {
        self.repairs.insert(repair, ssrc);
    }

    /// Whether `ssrc` has a retransmission stream.
    pub fn is_repaired(&self, ssrc: u32) -> bool {
        self.repairs.values().any(|&primary| primary == ssrc)
    }

    /// One RTP packet arrived.
    pub fn rtp(&mut self, rtp: &rtc::rtp::Packet) {
        let Some(&primary) = self.repairs.get(&rtp.header.ssrc) else {
            self.packet(rtp.header.ssrc, rtp.header.sequence_number);
            return;
        };
        // Padding alone names no packet.
        if let Some(repeated) = repeated_sequence_number(&rtp.payload) {
            self.packet(primary, repeated);
        }
    }

    /// One RTP packet of `ssrc` arrived.
    pub fn packet(&mut self, ssrc: u32, sequence_number: u16) {
        let Some(stream) = self.streams.get_mut(&ssrc) else {
            self.streams.insert(
                ssrc,
                Stream {
                    highest: unwrap_near(None, sequence_number),
                    missing: BTreeSet::new(),
                },
            );
            self.expected += 1;
            self.arrived += 1;
            return;
        };
        let number = unwrap_near(Some(stream.highest), sequence_number);
        if number > stream.highest {
            self.expected += number - stream.highest;
            self.arrived += 1;
            let skipped = (number - stream.highest - 1).min(MISSING_KEPT as u64);
            stream.missing.extend(number - skipped..number);
            while stream.missing.len() > MISSING_KEPT {
                stream.missing.pop_first();
            }
            stream.highest = number;
        } else if stream.missing.remove(&number) {
            self.late += 1;
        }
    }
}

/// The interceptor: the two lanes, the meter, and the control it follows.
pub struct LinkInterceptor {
    control: Arc<LinkControl>,
    generation: u64,
    /// Impairments run on microseconds since this instant.
    epoch: Instant,
    outbound: Lane,
    inbound: Lane,
    meter: ArrivalMeter,
    /// Our recent sender reports by their short NTP time, with when they went out.
    reports_sent: VecDeque<(u32, Instant)>,
    /// Inbound RTP packets this link dropped, by stream and sequence number, oldest first.
    lost: VecDeque<((u32, u16), TaggedPacket)>,
    /// Copies of them on their way after our NACK, by when they arrive.
    resent: BTreeMap<(Instant, u64), TaggedPacket>,
    resent_count: u64,
}

impl std::fmt::Debug for LinkInterceptor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LinkInterceptor")
            .field("settings", &self.control.settings())
            .finish_non_exhaustive()
    }
}

/// Packets on their way in one direction at most (10 s of delay at 800 packets a second);
/// more are dropped.
const MAX_HELD: usize = 8_192;

/// Inbound packets dropped here that a NACK may still ask for (about two seconds of video).
const LOST_KEPT: usize = 512;

/// Sender reports remembered for the round trip: a few seconds' worth, one per stream each.
const REPORTS_KEPT: usize = 16;

/// Seeds of the two directions; fixed, so one setting always makes the same link.
const SEND_SEED: u64 = 0x5EED_0001;
const RECEIVE_SEED: u64 = 0x5EED_0002;

impl LinkInterceptor {
    /// The link of one peer connection, following `control`; its impairments count time
    /// from `epoch`.
    pub fn new(control: Arc<LinkControl>, epoch: Instant) -> Self {
        Self {
            control,
            generation: 0,
            epoch,
            outbound: Lane::default(),
            inbound: Lane::default(),
            meter: ArrivalMeter::default(),
            reports_sent: VecDeque::new(),
            lost: VecDeque::new(),
            resent: BTreeMap::new(),
            resent_count: 0,
        }
    }

    /// Picks up changed settings: fresh impairers (a clear link has none, and costs nothing).
    fn follow(&mut self) {
        let generation = self.control.generation.load(Ordering::Acquire);
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let settings = self.control.settings();
        let lane = |impairment: Impairment, seed: u64| {
            if settings.is_clear() {
                return None;
            }
            let mut impairer = Impairer::new(impairment, seed);
            if let Some((from, until)) = settings.cut {
                let from = from.max(self.epoch);
                impairer.cut(
                    mono(self.epoch, from),
                    until.saturating_duration_since(from),
                );
            }
            Some(impairer)
        };
        self.outbound.impairer = lane(settings.send, SEND_SEED);
        self.inbound.impairer = lane(settings.receive, RECEIVE_SEED);
    }

    fn dropped(&self) {
        self.control
            .counters
            .dropped
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an inbound packet on its way up the chain.
    fn measure(&mut self, packet: &TaggedPacket) {
        let Packet::Rtp(rtp) = &packet.message.packet else {
            return;
        };
        self.meter.rtp(rtp);
        let counters = &self.control.counters;
        counters
            .expected
            .store(self.meter.expected, Ordering::Relaxed);
        counters
            .arrived
            .store(self.meter.arrived, Ordering::Relaxed);
        counters.late.store(self.meter.late, Ordering::Relaxed);
    }

    /// Keeps an inbound RTP packet the link dropped, for a NACK to bring back (unless its
    /// stream has a retransmission stream: then the far end's own resend comes).
    fn keep_lost(&mut self, packet: TaggedPacket) {
        let Packet::Rtp(rtp) = &packet.message.packet else {
            return;
        };
        if self.meter.is_repaired(rtp.header.ssrc) {
            return;
        }
        if self.lost.len() == LOST_KEPT {
            self.lost.pop_front();
        }
        let key = (rtp.header.ssrc, rtp.header.sequence_number);
        self.lost.push_back((key, packet));
    }

    /// Our NACK asks for packets: those this link dropped on the way in come, a round trip
    /// later, unless the link loses them again. The far end resends them too, but without a
    /// retransmission stream its copies cannot arrive: the originals were decrypted before this
    /// link dropped them, so the copies are refused as replays. This stands in for them.
    fn resend_asked(&mut self, now: Instant, asked: &[(u32, u16)]) {
        let rtt = Duration::from_micros(
            self.control
                .counters
                .rtt_micros
                .load(Ordering::Relaxed)
                .max(1_000),
        );
        for &key in asked {
            let Some(index) = self.lost.iter().position(|(lost, _)| *lost == key) else {
                continue;
            };
            let Some((_, copy)) = self.lost.remove(index) else {
                continue;
            };
            // The copy crosses the link as any packet does (its loss, its cap, its delay),
            // and comes no sooner than a round trip after the request.
            let entered = mono(self.epoch, now);
            let fate = match self.inbound.impairer.as_mut() {
                Some(impairer) => impairer.packet(entered, size_of(&copy.message.packet)),
                None => Fate::Arrives(entered),
            };
            let Fate::Arrives(at) = fate else {
                self.dropped();
                self.lost.push_back((key, copy));
                continue;
            };
            let crossed = now + Duration::from_micros(at.as_micros() - entered.as_micros());
            self.resent_count += 1;
            self.resent
                .insert((crossed.max(now + rtt), self.resent_count), copy);
        }
    }

    /// Measures the round trip from a report block answering one of our sender reports
    /// (RFC 3550: arrival, less the report's departure, less the far end's delay).
    fn answered(&self, arrived: Instant, blocks: &[ReceptionReport]) {
        for block in blocks {
            let Some(&(_, sent)) = self
                .reports_sent
                .iter()
                .find(|(short, _)| *short == block.last_sender_report && *short != 0)
            else {
                continue;
            };
            // The far end's delay is in 1/65536 s.
            let held = Duration::from_micros(u64::from(block.delay) * 1_000_000 / 65_536);
            let rtt = arrived.saturating_duration_since(sent).saturating_sub(held);
            let counters = &self.control.counters;
            counters
                .rtt_micros
                .store(rtt.as_micros().max(1) as u64, Ordering::Relaxed);
            counters.rtt_measurements.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Looks at an inbound packet's reports.
    fn read_reports(&self, packet: &TaggedPacket) {
        let Packet::Rtcp(packets) = &packet.message.packet else {
            return;
        };
        for report in packets {
            let any = report.as_any();
            if let Some(receiver) = any.downcast_ref::<ReceiverReport>() {
                self.answered(packet.now, &receiver.reports);
            } else if let Some(sender) = any.downcast_ref::<SenderReport>() {
                self.answered(packet.now, &sender.reports);
            }
        }
    }

    /// Counts the requests for repair among what we send, and notes our sender reports.
    fn count_requests(&mut self, packet: &TaggedPacket) {
        let Packet::Rtcp(packets) = &packet.message.packet else {
            return;
        };
        let counters = &self.control.counters;
        for packet_ in packets {
            if let Some(report) = packet_.as_any().downcast_ref::<SenderReport>() {
                if self.reports_sent.len() == REPORTS_KEPT {
                    self.reports_sent.pop_front();
                }
                self.reports_sent
                    .push_back(((report.ntp_time >> 16) as u32, packet.now));
            }
        }
        for packet in packets {
            let any = packet.as_any();
            if any.is::<TransportLayerNack>() {
                counters.nacks.fetch_add(1, Ordering::Relaxed);
            } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                counters.key_frame_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The packets a NACK among `packet`'s RTCP asks for again, by stream and number.
fn asked_again(packet: &TaggedPacket) -> Vec<(u32, u16)> {
    let Packet::Rtcp(packets) = &packet.message.packet else {
        return Vec::new();
    };
    packets
        .iter()
        .filter_map(|packet| packet.as_any().downcast_ref::<TransportLayerNack>())
        .flat_map(|nack| {
            nack.nacks
                .iter()
                .flat_map(NackPair::packet_list)
                .map(move |number| (nack.media_ssrc, number))
        })
        .collect()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for LinkInterceptor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.follow();
        if let Some(packet) = self.inbound.enter(self.epoch, message) {
            self.dropped();
            self.keep_lost(packet);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        let packet = self.inbound.ready.pop_front()?;
        self.measure(&packet);
        self.read_reports(&packet);
        Some(packet)
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.follow();
        self.count_requests(&message);
        let now = message.now;
        let asked = asked_again(&message);
        if self.outbound.enter(self.epoch, message).is_some() {
            self.dropped();
        } else if !asked.is_empty() {
            // Only a NACK that got through brings anything back.
            self.resend_asked(now, &asked);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.outbound.ready.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.outbound.release(now);
        self.inbound.release(now);
        while let Some(entry) = self.resent.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let mut packet = entry.remove();
            packet.now = now;
            self.inbound.ready.push_back(packet);
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        [
            self.outbound.next_arrival(),
            self.inbound.next_arrival(),
            self.resent.keys().next().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Interceptor for LinkInterceptor {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(repair) = info.ssrc_rtx {
            self.meter.repairs(repair, info.ssrc);
        }
    }
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    use super::*;

    fn rtp(now: Instant, sequence_number: u16) -> TaggedPacket {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = 7;
        packet.header.sequence_number = sequence_number;
        packet.payload = vec![0_u8; 1000].into();
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    fn rtcp(now: Instant, packet: Box<dyn rtc::rtcp::Packet>) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![packet])),
        }
    }

    #[test]
    fn the_meter_counts_gaps_as_missing_and_repairs_as_late_across_the_wrap() {
        let mut meter = ArrivalMeter::default();
        for number in [65_530_u16, 65_531, 65_533, 65_534, 65_535, 0, 3] {
            meter.packet(1, number);
        }
        // 65530..=3 is 10 packets; 65532, 1 and 2 are missing.
        assert_eq!((meter.expected, meter.arrived, meter.late), (10, 7, 0));
        meter.packet(1, 65_532);
        meter.packet(1, 1);
        assert_eq!((meter.expected, meter.arrived, meter.late), (10, 7, 2));
        // A copy of one that came counts for nothing; 2 comes on the retransmission stream.
        meter.packet(1, 65_533);
        meter.packet(1, 1);
        meter.repairs(9, 1);
        let mut resent = rtc::rtp::Packet::default();
        resent.header.ssrc = 9;
        resent.header.sequence_number = 40;
        resent.payload = vec![0, 2, 0xAA].into();
        meter.rtp(&resent);
        // Padding alone on it names nothing.
        resent.header.sequence_number = 41;
        resent.payload = bytes::Bytes::new();
        meter.rtp(&resent);
        assert_eq!((meter.expected, meter.arrived, meter.late), (10, 7, 3));
        // A second stream counts on its own.
        meter.packet(2, 100);
        meter.packet(2, 102);
        assert_eq!((meter.expected, meter.arrived), (13, 9));
    }

    #[test]
    fn a_clear_link_passes_every_packet_at_once() {
        let control = LinkControl::new();
        let mut link = LinkInterceptor::new(Arc::clone(&control), Instant::now());
        let now = Instant::now();
        for number in 0..100 {
            link.handle_write(rtp(now, number)).expect("write");
            assert!(link.poll_write().is_some());
            link.handle_read(rtp(now, number)).expect("read");
            assert!(link.poll_read().is_some());
        }
        assert_eq!(link.poll_timeout(), None);
        assert_eq!(control.counters.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(control.counters.expected.load(Ordering::Relaxed), 100);
        assert_eq!(control.counters.arrived.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn loss_asked_on_one_direction_is_lost_there_and_measured_by_the_other_end() {
        let control = LinkControl::new();
        let loss: Impairment = "loss=10%".parse().expect("setting");
        control.impair(loss, Impairment::default());
        let mut sender = LinkInterceptor::new(control, Instant::now());
        let far = LinkControl::new();
        let mut receiver = LinkInterceptor::new(Arc::clone(&far), Instant::now());
        let start = Instant::now();
        for number in 0..20_000_u16 {
            let now = start + Duration::from_millis(u64::from(number));
            sender.handle_write(rtp(now, number)).expect("write");
            while let Some(packet) = sender.poll_write() {
                receiver.handle_read(packet).expect("read");
                assert!(receiver.poll_read().is_some());
            }
            // Nothing sent goes through the receiving direction's impairment.
            receiver.handle_write(rtp(now, number)).expect("write");
            assert!(receiver.poll_write().is_some());
        }
        let expected = far.counters.expected.load(Ordering::Relaxed) as f64;
        let arrived = far.counters.arrived.load(Ordering::Relaxed) as f64;
        let measured = (expected - arrived) * 100.0 / expected;
        assert!((9.0..=11.0).contains(&measured), "measured {measured:.2} %");
    }

    #[test]
    fn delay_holds_a_packet_until_it_arrives_and_a_cut_drops_everything() {
        let control = LinkControl::new();
        let delay: Impairment = "delay=80ms".parse().expect("setting");
        control.impair(Impairment::default(), delay);
        let mut link = LinkInterceptor::new(Arc::clone(&control), Instant::now());
        let start = Instant::now();
        link.handle_read(rtp(start, 1)).expect("read");
        assert!(link.poll_read().is_none(), "still on its way");
        let due = link.poll_timeout().expect("a timeout for the arrival");
        assert_eq!(due.duration_since(start), Duration::from_millis(80));
        link.handle_timeout(due.checked_sub(Duration::from_millis(1)).expect("later"))
            .expect("timeout");
        assert!(link.poll_read().is_none());
        link.handle_timeout(due).expect("timeout");
        let packet = link.poll_read().expect("arrived");
        assert_eq!(packet.now, due, "stamped with its arrival");
        // Sending is not delayed.
        link.handle_write(rtp(start, 1)).expect("write");
        assert!(link.poll_write().is_some());

        control.cut(start + Duration::from_secs(1), Duration::from_secs(1));
        for millis in [1_000_u64, 1_500, 1_999] {
            let now = start + Duration::from_millis(millis);
            link.handle_write(rtp(now, 2)).expect("write");
            assert!(link.poll_write().is_none(), "cut at {millis} ms");
        }
        let after = start + Duration::from_secs(2);
        link.handle_write(rtp(after, 3)).expect("write");
        assert!(link.poll_write().is_some(), "the cut is over");
        assert_eq!(control.counters.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_round_trip_is_measured_from_a_sender_report_and_its_answer() {
        let control = LinkControl::new();
        let mut link = LinkInterceptor::new(Arc::clone(&control), Instant::now());
        let start = Instant::now();
        let ntp_time = 0x1234_5678_9ABC_DEF0_u64;
        let report = SenderReport {
            ssrc: 1,
            ntp_time,
            ..SenderReport::default()
        };
        link.handle_write(rtcp(start, Box::new(report)))
            .expect("write");
        assert!(link.poll_write().is_some());
        // The far end held it 10 ms before answering; the answer arrives 110 ms after.
        let answer = ReceiverReport {
            ssrc: 2,
            reports: vec![ReceptionReport {
                ssrc: 1,
                last_sender_report: (ntp_time >> 16) as u32,
                delay: 655,
                ..ReceptionReport::default()
            }],
            ..ReceiverReport::default()
        };
        link.handle_read(rtcp(start + Duration::from_millis(110), Box::new(answer)))
            .expect("read");
        assert!(link.poll_read().is_some());
        let rtt = control.counters.rtt_micros.load(Ordering::Relaxed);
        assert!((99_900..=100_100).contains(&rtt), "{rtt} µs");
    }

    #[test]
    fn a_packet_dropped_on_the_way_in_comes_a_round_trip_after_our_nack_for_it() {
        let control = LinkControl::new();
        let everything: Impairment = "loss=100%".parse().expect("setting");
        control.impair(Impairment::default(), everything);
        let mut link = LinkInterceptor::new(Arc::clone(&control), Instant::now());
        let start = Instant::now();
        link.handle_read(rtp(start, 5)).expect("read");
        assert!(link.poll_read().is_none(), "dropped");
        control.impair(Impairment::default(), Impairment::default());
        let nack = || TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 7,
            nacks: vec![NackPair {
                packet_id: 5,
                lost_packets: 0,
            }],
        };
        let asked = start + Duration::from_millis(30);
        link.handle_write(rtcp(asked, Box::new(nack())))
            .expect("write");
        assert!(link.poll_write().is_some(), "the NACK goes out");
        assert!(link.poll_read().is_none(), "not before a round trip");
        let due = link.poll_timeout().expect("the copy is on its way");
        assert_eq!(due, asked + Duration::from_millis(1));
        link.handle_timeout(due).expect("timeout");
        let copy = link.poll_read().expect("the copy arrived");
        assert!(matches!(&copy.message.packet, Packet::Rtp(p) if p.header.sequence_number == 5));
        assert_eq!(control.counters.late.load(Ordering::Relaxed), 0);
        // Asked again, it is not sent twice.
        link.handle_write(rtcp(due, Box::new(nack())))
            .expect("write");
        assert_eq!(link.poll_timeout(), None);
    }

    #[test]
    fn a_nack_lost_on_the_way_out_brings_nothing_back() {
        let control = LinkControl::new();
        let everything: Impairment = "loss=100%".parse().expect("setting");
        control.impair(everything, everything);
        let mut link = LinkInterceptor::new(Arc::clone(&control), Instant::now());
        let start = Instant::now();
        link.handle_read(rtp(start, 5)).expect("read");
        control.impair(everything, Impairment::default());
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 7,
            nacks: vec![NackPair {
                packet_id: 5,
                lost_packets: 0,
            }],
        };
        link.handle_write(rtcp(start, Box::new(nack)))
            .expect("write");
        assert!(link.poll_write().is_none(), "the NACK was lost");
        assert_eq!(link.poll_timeout(), None, "so no copy is on its way");
    }

    #[test]
    fn nacks_and_key_frame_requests_sent_are_counted() {
        let control = LinkControl::new();
        let mut link = LinkInterceptor::new(Arc::clone(&control), Instant::now());
        let now = Instant::now();
        link.handle_write(rtcp(now, Box::new(TransportLayerNack::default())))
            .expect("write");
        link.handle_write(rtcp(now, Box::new(PictureLossIndication::default())))
            .expect("write");
        link.handle_write(rtcp(now, Box::new(FullIntraRequest::default())))
            .expect("write");
        assert_eq!(control.counters.nacks.load(Ordering::Relaxed), 1);
        assert_eq!(
            control.counters.key_frame_requests.load(Ordering::Relaxed),
            2
        );
        assert_eq!(std::iter::from_fn(|| link.poll_write()).count(), 3);
    }
}
