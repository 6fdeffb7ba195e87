//! `MediaPacer`: spreads the video's packets at the pacing rate, and lets audio through at once.
//! A key frame is tens of packets that would leave in one burst; paced, they leave over tens of
//! milliseconds, and the path's queue never sees the burst. Audio is a packet every 20 ms: held
//! behind a key frame in the pacer's queue it would arrive in bursts, late, and the far end
//! would conceal it (libwebrtc's pacer sends audio first too). Audio still counts against the
//! budget, so the video leaves room for it. RTCP passes untouched.
//!
//! What waits is bounded in time, not packets: more than [`MAX_QUEUE_DELAY`] at the pacing rate
//! means the encoder is far above the estimate, and losing a packet (the far end asks for it or
//! for a key frame) then beats seconds of latency.
//!
//! The rate follows the congestion controller: its estimate rides on inbound feedback
//! ([`Attribute::TargetBitrateChanged`]), as the webrtc stack's own pacer reads it. A probe the
//! estimator asks for ([`EstimateCell::take_probe`]) is sent from the feedback that carried the
//! request: for its duration, what the media leaves of the probe's rate is filled with copies of
//! the video's recent packets on its retransmission stream ([`RtxStream`]), which the far end
//! reports on like any packet and otherwise throws away.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Pacer, Packet, StreamInfo, TaggedPacket,
};
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize as _;

use super::EstimateCell;
use super::probe::ProbeRequest;
use super::rtx::RtxStream;

/// The longest the queued video may take to leave at the pacing rate.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(1);
/// The video packets kept to copy into probes.
const RECENT_PACKETS: usize = 32;

/// A probe being sent: from `start` to `end` at `rate_bps`, `sent_bits` so far (media too).
#[derive(Debug, Clone, Copy)]
struct ProbeRun {
    start: Instant,
    end: Instant,
    rate_bps: f64,
    sent_bits: f64,
    /// The next recent packet to copy.
    next: usize,
}

impl ProbeRun {
    fn new(now: Instant, request: ProbeRequest) -> Self {
        Self {
            start: now,
            end: now + request.duration,
            rate_bps: request.rate_bps,
            sent_bits: 0.0,
            next: 0,
        }
    }

    /// When the next copy is due (the rate has paid for what left so far), if within the probe.
    fn next_due(&self) -> Option<Instant> {
        let due = self.start + Duration::from_secs_f64(self.sent_bits / self.rate_bps);
        (due < self.end).then_some(due)
    }
}

/// The pacer.
pub struct MediaPacer {
    bucket: Pacer,
    /// The pacing rate, in bits per second.
    rate_bps: f64,
    /// The local streams that carry audio (sent at once).
    audio: HashSet<u32>,
    /// Video waiting for its budget, and its size in bits.
    queue: VecDeque<TaggedPacket>,
    queued_bits: f64,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
    /// Where probes are asked for.
    estimate: Arc<EstimateCell>,
    probe: Option<ProbeRun>,
    /// The local video's retransmission streams, and its packets last sent.
    rtx: Vec<RtxStream>,
    recent: VecDeque<(rtc::rtp::Packet, TransportContext)>,
}

impl std::fmt::Debug for MediaPacer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MediaPacer")
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl MediaPacer {
    /// A pacer releasing `bits_per_second` until told otherwise, sending the probes asked
    /// for in `estimate`.
    pub fn new(bits_per_second: f64, estimate: Arc<EstimateCell>) -> Self {
        Self {
            bucket: Pacer::new(bits_per_second),
            rate_bps: bits_per_second,
            audio: HashSet::new(),
            queue: VecDeque::new(),
            queued_bits: 0.0,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
            estimate,
            probe: None,
            rtx: Vec::new(),
            recent: VecDeque::new(),
        }
    }

    fn bits_of(packet: &TaggedPacket) -> f64 {
        match &packet.message.packet {
            Packet::Rtp(rtp) => (rtp.marshal_size() * 8) as f64,
            // Control traffic is not paced.
            _ => 0.0,
        }
    }

    /// Releases the video the budget pays for, stamped with when it leaves.
    fn release(&mut self, now: Instant) {
        self.bucket.refill(now);
        while let Some(head) = self.queue.front() {
            let bits = Self::bits_of(head);
            if !self.bucket.can_release(bits) {
                break;
            }
            if let Some(mut packet) = self.queue.pop_front() {
                self.bucket.consume(bits);
                self.queued_bits -= bits;
                // It leaves now: what records departures below must see this instant.
                packet.now = now;
                self.send(packet);
            }
        }
        self.pad(now);
    }

    /// Sends `packet`: a resend gets its retransmission stream's next number, a first copy of
    /// video is kept for probes, and either counts towards a probe being sent.
    fn send(&mut self, mut packet: TaggedPacket) {
        if let Packet::Rtp(rtp) = &mut packet.message.packet {
            if let Some(stream) = self.rtx.iter_mut().find(|stream| stream.carries(rtp)) {
                stream.adopt(rtp);
            } else if self
                .rtx
                .iter()
                .any(|stream| stream.primary == rtp.header.ssrc)
            {
                if self.recent.len() == RECENT_PACKETS {
                    self.recent.pop_front();
                }
                self.recent.push_back((rtp.clone(), packet.transport));
            }
        }
        if let Some(probe) = &mut self.probe {
            probe.sent_bits += Self::bits_of(&packet);
        }
        self.write_queue.push_back(packet);
    }

    /// Fills what the media left of a probe's rate with copies of recent video.
    fn pad(&mut self, now: Instant) {
        while let Some(probe) = self.probe {
            if now >= probe.end {
                self.probe = None;
                return;
            }
            if probe.next_due().is_none_or(|due| due > now) {
                return;
            }
            let Some(copy) = self.copy_recent(now, probe.next) else {
                // Nothing to copy (no video yet, or no retransmission stream): the media alone
                // is the probe.
                self.probe = None;
                return;
            };
            if let Some(probe) = &mut self.probe {
                probe.next += 1;
            }
            self.send(copy);
        }
    }

    /// The `index`th recent video packet (cycling), as a copy for its retransmission stream,
    /// leaving at `now`.
    fn copy_recent(&self, now: Instant, index: usize) -> Option<TaggedPacket> {
        let (original, transport) = self.recent.get(index % self.recent.len().max(1))?;
        let stream = self
            .rtx
            .iter()
            .find(|stream| stream.primary == original.header.ssrc)?;
        Some(TaggedPacket {
            now,
            transport: *transport,
            message: AttributedPacket::new(Packet::Rtp(stream.encapsulate(original))),
        })
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for MediaPacer {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            message.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
        {
            self.bucket.set_target_bitrate(*bits_per_second);
            self.rate_bps = *bits_per_second;
        }
        if let Some(request) = self.estimate.take_probe() {
            self.probe = Some(ProbeRun::new(message.now, request));
        }
        self.read_queue.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        let Packet::Rtp(rtp) = &message.message.packet else {
            // RTCP (and whatever else the chain may carry) is not paced.
            self.write_queue.push_back(message);
            return Ok(());
        };
        let audio = self.audio.contains(&rtp.header.ssrc);
        self.bucket.refill(message.now);
        if audio {
            // At once, but paid for: the video behind it waits that much longer.
            self.bucket.consume(Self::bits_of(&message));
            self.send(message);
            return Ok(());
        }
        let bits = Self::bits_of(&message);
        let room = self.rate_bps * MAX_QUEUE_DELAY.as_secs_f64();
        if !self.queue.is_empty() && self.queued_bits + bits > room {
            // The newest is refused, not an older one: a hole in the middle of what is queued
            // would cost a picture anyway, and the older packets are nearer to going.
            return Ok(());
        }
        let now = message.now;
        self.queued_bits += bits;
        self.queue.push_back(message);
        self.release(now);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.release(now);
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        let head = self
            .queue
            .front()
            .and_then(|head| self.bucket.releasable_at(Self::bits_of(head)));
        let probe = self
            .probe
            .map(|probe| probe.next_due().unwrap_or(probe.end));
        head.into_iter().chain(probe).min()
    }
}

impl Interceptor for MediaPacer {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if info.mime_type.to_ascii_lowercase().starts_with("audio/") || info.clock_rate == 48_000 {
            self.audio.insert(info.ssrc);
        }
        self.rtx.extend(RtxStream::of(info));
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.audio.remove(&info.ssrc);
        self.rtx.retain(|stream| stream.primary != info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    use super::*;

    fn rtp(now: Instant, ssrc: u32, bytes: usize) -> TaggedPacket {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = ssrc;
        packet.payload = vec![0_u8; bytes].into();
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    #[test]
    fn a_key_frame_is_spread_and_audio_behind_it_goes_at_once() {
        let mut pacer = MediaPacer::new(1_000_000.0, EstimateCell::new());
        pacer.bind_local_stream(&StreamInfo {
            ssrc: 2,
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            ..StreamInfo::default()
        });
        let start = Instant::now();
        // A key frame of 40 packets: 480 kbit, half a second at 1 Mbit/s.
        for _ in 0..40 {
            pacer.handle_write(rtp(start, 1, 1_488)).expect("write");
        }
        let first: Vec<_> = std::iter::from_fn(|| pacer.poll_write()).collect();
        // The bucket's burst goes at once (about ten packets), not the frame.
        assert!(first.len() <= 10, "{} left at once", first.len());
        // Audio 20 ms later goes straight out, ahead of the frame's rest.
        let later = start + Duration::from_millis(20);
        pacer.handle_write(rtp(later, 2, 100)).expect("write");
        let out = pacer.poll_write().expect("the audio");
        assert!(matches!(&out.message.packet, Packet::Rtp(p) if p.header.ssrc == 2));
        // The rest of the frame leaves over about half a second, each stamped as it goes.
        let mut released = first.len();
        let mut last = start;
        while let Some(due) = pacer.poll_timeout() {
            pacer.handle_timeout(due).expect("timeout");
            while let Some(packet) = pacer.poll_write() {
                assert_eq!(packet.now, due);
                released += 1;
                last = due;
            }
        }
        assert_eq!(released, 40);
        let spread = last.duration_since(start);
        assert!(
            (Duration::from_millis(300)..=Duration::from_millis(600)).contains(&spread),
            "{spread:?}"
        );
    }

    #[test]
    fn the_rate_follows_the_estimate_on_the_feedback() {
        let mut pacer = MediaPacer::new(100_000.0, EstimateCell::new());
        let start = Instant::now();
        let mut feedback = rtp(start, 9, 10);
        feedback.message.add(Attribute::TargetBitrateChanged {
            bits_per_second: 10_000_000.0,
        });
        pacer.handle_read(feedback).expect("read");
        assert!(pacer.poll_read().is_some());
        for _ in 0..40 {
            pacer.handle_write(rtp(start, 1, 1_188)).expect("write");
        }
        let mut released = std::iter::from_fn(|| pacer.poll_write()).count();
        while let Some(due) = pacer.poll_timeout() {
            assert!(
                due <= start + Duration::from_millis(50),
                "{:?}",
                due - start
            );
            pacer.handle_timeout(due).expect("timeout");
            released += std::iter::from_fn(|| pacer.poll_write()).count();
        }
        assert_eq!(released, 40);
    }

    #[test]
    fn a_probe_fills_what_the_media_leaves_with_copies_on_the_retransmission_stream() {
        let cell = EstimateCell::new();
        let mut pacer = MediaPacer::new(10_000_000.0, Arc::clone(&cell));
        pacer.bind_local_stream(&StreamInfo {
            ssrc: 1,
            ssrc_rtx: Some(5),
            payload_type: 102,
            payload_type_rtx: Some(103),
            ..StreamInfo::default()
        });
        let start = Instant::now();
        for sequence_number in 0..4_u16 {
            let mut packet = rtp(start, 1, 1_188);
            if let Packet::Rtp(rtp) = &mut packet.message.packet {
                rtp.header.payload_type = 102;
                rtp.header.sequence_number = sequence_number;
            }
            pacer.handle_write(packet).expect("write");
        }
        let media = std::iter::from_fn(|| pacer.poll_write()).count();
        assert_eq!(media, 4);
        // 1.2 Mbit/s for 100 ms: 120 kbit, about thirteen packets (the media sent before the
        // probe is not part of it).
        cell.request_probe(ProbeRequest {
            rate_bps: 1_200_000.0,
            duration: Duration::from_millis(100),
        });
        pacer.handle_read(rtp(start, 9, 10)).expect("read");
        let mut copies = Vec::new();
        while let Some(due) = pacer.poll_timeout() {
            assert!(
                due <= start + Duration::from_millis(100),
                "{:?}",
                due - start
            );
            pacer.handle_timeout(due).expect("timeout");
            copies.extend(std::iter::from_fn(|| pacer.poll_write()));
        }
        assert!((12..=14).contains(&copies.len()), "{} copies", copies.len());
        for (index, copy) in copies.iter().enumerate() {
            let Packet::Rtp(copy) = &copy.message.packet else {
                panic!("a copy is RTP");
            };
            // Under the video's SSRC until the wire, numbered on the retransmission stream,
            // each carrying a recent packet's number and payload.
            assert_eq!((copy.header.ssrc, copy.header.payload_type), (1, 103));
            assert_eq!(usize::from(copy.header.sequence_number), index);
            let original = u16::from_be_bytes([copy.payload[0], copy.payload[1]]);
            assert_eq!(usize::from(original), index % 4);
            assert_eq!(copy.payload.len(), 1_190);
        }
    }

    #[test]
    fn video_more_than_a_second_behind_is_refused() {
        // 100 kbit/s: a second is about eight packets of 1 500 bytes.
        let mut pacer = MediaPacer::new(100_000.0, EstimateCell::new());
        let start = Instant::now();
        for _ in 0..40 {
            pacer.handle_write(rtp(start, 1, 1_488)).expect("write");
        }
        let mut released = std::iter::from_fn(|| pacer.poll_write()).count();
        let mut last = start;
        while let Some(due) = pacer.poll_timeout() {
            pacer.handle_timeout(due).expect("timeout");
            released += std::iter::from_fn(|| pacer.poll_write()).count();
            last = due;
        }
        assert!((8..=12).contains(&released), "{released} released");
        assert!(last - start <= MAX_QUEUE_DELAY, "{:?}", last - start);
    }
}
