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
//! ([`Attribute::TargetBitrateChanged`]), as the webrtc stack's own pacer reads it.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Pacer, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize as _;

/// The longest the queued video may take to leave at the pacing rate.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(1);

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
    /// A pacer releasing `bits_per_second` until told otherwise.
    pub fn new(bits_per_second: f64) -> Self {
        Self {
            bucket: Pacer::new(bits_per_second),
            rate_bps: bits_per_second,
            audio: HashSet::new(),
            queue: VecDeque::new(),
            queued_bits: 0.0,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
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
                self.write_queue.push_back(packet);
            }
        }
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
            self.write_queue.push_back(message);
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
        let head = self.queue.front()?;
        self.bucket.releasable_at(Self::bits_of(head))
    }
}

impl Interceptor for MediaPacer {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if info.mime_type.to_ascii_lowercase().starts_with("audio/") || info.clock_rate == 48_000 {
            self.audio.insert(info.ssrc);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.audio.remove(&info.ssrc);
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
        let mut pacer = MediaPacer::new(1_000_000.0);
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
        let mut pacer = MediaPacer::new(100_000.0);
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
    fn video_more_than_a_second_behind_is_refused() {
        // 100 kbit/s: a second is about eight packets of 1 500 bytes.
        let mut pacer = MediaPacer::new(100_000.0);
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
