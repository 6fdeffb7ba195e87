//! The receive path of one remote video stream: RTP put back in order (waiting for repairs),
//! access units assembled, a decoder thread, I420 to RGBA, the frame slot, a repaint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer as _;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::decoder::VideoDecoder;
use super::encoder::VideoEncoder;
use super::freeze::FreezeMeter;
use super::h264_picture::{PictureChain, PictureStart};
use super::playout::VideoPlayout;
use crate::media::MediaError;
use crate::media::frame::{FrameSlot, I420Frame, RgbaFrame, StreamCounters};
use crate::media::link::LinkControl;
use crate::media::reorder::{MAX_REPAIR_WAIT, Reorder};
use crate::media::session::Shared;
use crate::media::worker::give_way;

/// Access units waiting for a decoder; when it falls behind, units drop and a key frame is asked.
/// A repair that came at the end of its wait releases every picture held behind it at once: up
/// to [`MAX_REPAIR_WAIT`] of them (a second, 60 pictures at 60 fps), which must all fit.
const DECODE_QUEUE: usize = 64;
const _: () = assert!(DECODE_QUEUE as u64 >= 60 * MAX_REPAIR_WAIT.as_secs());
/// A unit that waited this long for the decoder says it is starved (the machine is busy): the
/// units waiting are dropped, and decoding starts again at a key frame. That bounds how old a
/// picture can be when it is shown, which a long queue alone would not.
const DECODE_BEHIND: Duration = Duration::from_millis(500);
/// The largest access unit accepted (a 1080p key frame is a few hundred kilobytes).
const MAX_UNIT_BYTES: usize = 4 << 20;
/// Key-frame requests to the sender are at least this far apart, and two round trips and
/// [`PLI_MARGIN`] more.
const PLI_INTERVAL: Duration = Duration::from_millis(200);
const PLI_MARGIN: Duration = Duration::from_millis(100);
/// Until a key frame begins to arrive after a request, the next waits this much longer: on a
/// narrow path the sender's pacer may hold the key frame back for up to a second, and the
/// pictures sent before it still come, broken. Asked for again and again, each key frame
/// crowds out the last, and none ever arrives whole.
const KEY_FRAME_TRANSIT: Duration = Duration::from_secs(1);

/// A decoder thread for one remote video stream. It starts with the peer connection, before
/// any media flows, and decodes a frame of its own to warm up: a cold decoder takes twice as
/// long over its first picture, which would delay the first frame of the call.
#[derive(Debug)]
pub struct DecodeWorker {
    units: crossbeam_channel::Sender<Unit>,
    slot: Arc<OnceLock<Arc<FrameSlot>>>,
    pli_wanted: Arc<AtomicBool>,
}

impl DecodeWorker {
    /// Starts the thread; `None` if it could not start.
    pub fn start(shared: Arc<Shared>) -> Option<Self> {
        let (units, queue) = crossbeam_channel::bounded::<Unit>(DECODE_QUEUE);
        let slot = Arc::new(OnceLock::new());
        let pli_wanted = Arc::new(AtomicBool::new(false));
        let (thread_slot, thread_pli) = (Arc::clone(&slot), Arc::clone(&pli_wanted));
        std::thread::Builder::new()
            .name("video-decode".into())
            .spawn(move || decode_video(&queue, &thread_slot, &shared, &thread_pli))
            .ok()?;
        Some(Self {
            units,
            slot,
            pli_wanted,
        })
    }
}

/// Receives one remote video track until it ends: access units go to the decode worker (or are
/// only counted when there is none).
pub async fn receive(
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
    worker: Option<DecodeWorker>,
    slot: Arc<FrameSlot>,
    link: Arc<LinkControl>,
) {
    let pli_wanted = worker.as_ref().map_or_else(
        || Arc::new(AtomicBool::new(false)),
        |worker| Arc::clone(&worker.pli_wanted),
    );
    if let Some(worker) = &worker {
        let _ = worker.slot.set(Arc::clone(&slot));
    }
    let mut assembler = Assembler::default();
    let mut reorder = Reorder::new();
    let mut key_requests = KeyRequests::default();
    loop {
        let deadline = reorder.deadline().map(tokio::time::Instant::from_std);
        let event = tokio::select! {
            event = track.poll() => match event {
                Some(event) => Some(event),
                None => break,
            },
            () = wait_until(deadline) => None,
        };
        if let Some(TrackRemoteEvent::OnRtpPacket(packet)) = event {
            slot.counters
                .bytes_received
                .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
            let header = &packet.header;
            let (sequence_number, timestamp) = (header.sequence_number, header.timestamp);
            reorder.push(Instant::now(), sequence_number, timestamp, packet);
        }
        // Repairs take a round trip (and more, if a resend is lost): wait for them as long.
        match link.counters.rtt_micros.load(Ordering::Relaxed) {
            0 => {}
            micros => reorder.set_round_trip(Duration::from_micros(micros)),
        }
        let now = Instant::now();
        while let Some(packet) = reorder.pop_with(now, |packet| assembler.gap_is_harmless(packet)) {
            let Some((timestamp, unit)) = assembler.push(&packet) else {
                continue;
            };
            let unit = Unit {
                whole_at: Instant::now(),
                timestamp,
                data: unit,
            };
            match &worker {
                None => {
                    slot.counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
                }
                Some(worker) => match worker.units.try_send(unit) {
                    Ok(()) => {}
                    Err(crossbeam_channel::TrySendError::Full(_)) => {
                        // What follows refers to the dropped picture.
                        assembler.waiting_for_key = true;
                        pli_wanted.store(true, Ordering::Release);
                    }
                    // The decoder could not start (and said so): nothing more to hand it.
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                },
            }
        }
        if std::mem::take(&mut assembler.news.lost) {
            pli_wanted.store(true, Ordering::Release);
        }
        if std::mem::take(&mut assembler.news.key_started) {
            key_requests.key_started();
        }
        let rtt = Duration::from_micros(link.counters.rtt_micros.load(Ordering::Relaxed));
        if key_requests.due(Instant::now(), rtt) && pli_wanted.swap(false, Ordering::AcqRel) {
            key_requests.sent(Instant::now());
            let request = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            let _ = track.write_rtcp(vec![Box::new(request)]).await;
        }
    }
}

/// When a key frame may be asked for again. Sans-IO.
#[derive(Debug, Default)]
struct KeyRequests {
    last: Option<Instant>,
    /// A key frame began to arrive since the last request.
    key_since: bool,
}

impl KeyRequests {
    /// Whether a request may go at `now`: a key frame takes a round trip to come, and asking
    /// again sooner only asks for another; one not yet begun may be held in the sender's pacer.
    fn due(&self, now: Instant, rtt: Duration) -> bool {
        let mut interval = PLI_INTERVAL.max(rtt * 2 + PLI_MARGIN);
        if !self.key_since {
            interval += KEY_FRAME_TRANSIT;
        }
        self.last
            .is_none_or(|last| now.saturating_duration_since(last) >= interval)
    }

    fn sent(&mut self, now: Instant) {
        self.last = Some(now);
        self.key_since = false;
    }

    fn key_started(&mut self) {
        self.key_since = true;
    }
}

/// Sleeps until `at`, or forever without one.
async fn wait_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Builds access units from RTP packets: one unit per marker bit, dropped whole on a gap that
/// may have taken part of it or of a picture it refers to.
#[derive(Default)]
struct Assembler {
    depacketizer: H264Packet,
    unit: Vec<u8>,
    last_sequence: Option<u16>,
    timestamp: Option<u32>,
    /// The picture the unit being built starts, as its first packet said.
    start: Option<PictureStart>,
    /// Which picture follows which: tells a harmless gap from one that broke the chain.
    chain: PictureChain,
    /// The unit being built lost a packet.
    damaged: bool,
    /// What happened since the caller last looked.
    news: AssemblerNews,
    /// A picture was lost: the ones after it refer to it, so nothing but a key frame can be
    /// decoded until one comes (a decoder would show them broken, or stale).
    waiting_for_key: bool,
}

/// What the assembler has to tell its caller, who takes each flag when it looks.
#[derive(Debug, Default)]
struct AssemblerNews {
    /// A unit was dropped: time to ask for a key frame.
    lost: bool,
    /// A key frame began.
    key_started: bool,
}

/// Whether an Annex B access unit starts a fresh picture: an IDR slice (NAL type 5) or a
/// sequence parameter set (7) in it.
fn is_key_frame(unit: &[u8]) -> bool {
    unit.windows(4)
        .any(|bytes| bytes[..3] == [0, 0, 1] && matches!(bytes[3] & 0x1F, 5 | 7))
}

impl Assembler {
    /// Whether a gap just before `packet` took nothing needed: the last picture was whole and
    /// `packet` starts the one that follows it in the chain of references (what was missing
    /// was padding, or a picture nothing refers to). `None` for padding, which cannot tell.
    fn gap_is_harmless(&self, packet: &rtc::rtp::Packet) -> Option<bool> {
        if packet.payload.is_empty() {
            return None;
        }
        let between_pictures = self.unit.is_empty() && self.timestamp.is_none();
        Some(
            between_pictures
                && self
                    .chain
                    .start_of(&packet.payload)
                    .is_some_and(|start| self.chain.continues(&start)),
        )
    }

    /// The next whole access unit, with its RTP time, once `packet` completes one.
    fn push(&mut self, packet: &rtc::rtp::Packet) -> Option<(u32, Vec<u8>)> {
        let header = &packet.header;
        let follows = self
            .last_sequence
            .is_none_or(|last| last.wrapping_add(1) == header.sequence_number);
        if packet.payload.is_empty() {
            // Padding carries nothing. After a gap it leaves the gap to the next picture.
            if follows {
                self.last_sequence = Some(header.sequence_number);
            }
            return None;
        }
        self.last_sequence = Some(header.sequence_number);
        if !follows && self.gap_is_harmless(packet) != Some(true) {
            self.damaged = true;
            self.depacketizer = H264Packet::default();
        }
        self.chain.learn(&packet.payload);
        if self.timestamp != Some(header.timestamp) {
            // A new picture began without the last one's marker: drop what was half built.
            if !self.unit.is_empty() {
                self.damaged = true;
            }
            self.unit.clear();
            self.timestamp = Some(header.timestamp);
            self.start = self.chain.start_of(&packet.payload);
            self.news.key_started |= self.start.as_ref().is_some_and(|start| start.key);
        }
        match self.depacketizer.depacketize(&packet.payload) {
            Ok(bytes) => self.unit.extend_from_slice(&bytes),
            Err(_) => self.damaged = true,
        }
        if self.unit.len() > MAX_UNIT_BYTES {
            // A sender that never marks the end of a picture must not grow this without end.
            self.damaged = true;
            self.unit.clear();
        }
        if !header.marker {
            return None;
        }
        self.finish(header.timestamp)
    }

    /// The unit its marker ended, unless it or a picture it refers to was lost.
    fn finish(&mut self, timestamp: u32) -> Option<(u32, Vec<u8>)> {
        let unit = std::mem::take(&mut self.unit);
        self.timestamp = None;
        if std::mem::take(&mut self.damaged) {
            self.news.lost = true;
            self.waiting_for_key = true;
            self.chain.broken();
            return None;
        }
        if self.waiting_for_key {
            if !is_key_frame(&unit) {
                // Still broken: keep asking.
                self.news.lost = true;
                return None;
            }
            self.waiting_for_key = false;
        }
        self.chain.handed_on(self.start.as_ref());
        (!unit.is_empty()).then_some((timestamp, unit))
    }
}

/// Decodes one black key frame at the local resolution (most calls send alike both ways).
fn warm_up(decoder: &mut VideoDecoder, shared: &Shared) {
    let (width, height) = shared.config.resolution.size();
    let Ok(mut encoder) = VideoEncoder::new(shared.config.resolution, shared.config.fps) else {
        return;
    };
    if let Ok(unit) = encoder.encode(&I420Frame::black(width, height), true) {
        let unit = unit.to_vec();
        let _ = decoder.decode(&unit);
    }
}

/// An access unit for the decoder: when it became whole, its RTP time, its bytes.
#[derive(Debug)]
struct Unit {
    whole_at: Instant,
    timestamp: u32,
    data: Vec<u8>,
}

fn decode_video(
    queue: &crossbeam_channel::Receiver<Unit>,
    slot: &OnceLock<Arc<FrameSlot>>,
    shared: &Shared,
    pli_wanted: &AtomicBool,
) {
    give_way();
    let mut decoder = match VideoDecoder::new() {
        Ok(decoder) => decoder,
        Err(error) => {
            shared.error(MediaError::Codec {
                codec: "H.264",
                role: "decoder",
                reason: error.to_string(),
            });
            return;
        }
    };
    warm_up(&mut decoder, shared);
    let mut seen = Seen::default();
    let mut spare = None;
    let mut playout = VideoPlayout::default();
    // Fallen behind: what was queued went, and decoding starts again at a key frame.
    let mut skip_to_key = false;
    loop {
        if let Some(slot) = slot.get() {
            while let Some(frame) = playout.pop(Instant::now()) {
                seen.count(&slot.counters, &frame);
                spare = slot.put(frame).or(spare);
                shared.config.frames.repaint();
            }
        }
        let next = match playout.next_due() {
            Some(due) => match queue.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(unit) => unit,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            },
            None => match queue.recv() {
                Ok(unit) => unit,
                Err(_) => return,
            },
        };
        if !skip_to_key && next.whole_at.elapsed() > DECODE_BEHIND {
            // A starved decoder would show ever older pictures: drop the backlog instead.
            skip_to_key = true;
            queue.try_iter().for_each(drop);
            pli_wanted.store(true, Ordering::Release);
        }
        if skip_to_key {
            // The first key frame is decoded however late: a starved decoder must still move.
            if !is_key_frame(&next.data) {
                continue;
            }
            skip_to_key = false;
        }
        match decoder.decode_into(&next.data, spare.take()) {
            Ok(Some(frame)) => playout.push(next.whole_at, next.timestamp, frame),
            Ok(None) => {}
            Err(_) => pli_wanted.store(true, Ordering::Release),
        }
    }
}

/// What the decoder thread remembers of the frames it handed on.
#[derive(Debug, Default)]
struct Seen {
    /// The last marker counter read.
    last_counter: Option<u32>,
    freezes: FreezeMeter,
}

impl Seen {
    /// Counts a decoded frame: its size, the frames its marker says were lost before it, and
    /// whether it ends a freeze.
    fn count(&mut self, counters: &StreamCounters, frame: &RgbaFrame) {
        counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
        let [width, height] = frame.size();
        counters
            .resolution
            .store((width as u64) << 32 | height as u64, Ordering::Relaxed);
        if let Some(counter) = frame.counter {
            if let Some(last) = self.last_counter
                && counter > last
            {
                counters
                    .frames_lost
                    .fetch_add(u64::from(counter - last - 1), Ordering::Relaxed);
            }
            self.last_counter = Some(counter);
        }
        if frame.glass_to_glass_micros.is_some() {
            counters.frames_marked.fetch_add(1, Ordering::Relaxed);
        }
        if self.freezes.frame(Instant::now()) {
            counters
                .freezes
                .store(self.freezes.count, Ordering::Relaxed);
            counters.frozen_micros.store(
                u64::try_from(self.freezes.frozen.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rtc::rtp::{Header, Packet};

    use std::time::{Duration, Instant};

    use super::{Assembler, KeyRequests};

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn a_key_frame_is_asked_for_again_after_two_round_trips_once_one_began_and_later_if_none_did() {
        let start = Instant::now();
        let rtt = ms(100);
        let mut requests = KeyRequests::default();
        assert!(requests.due(start, rtt));
        requests.sent(start);
        // Nothing of a key frame yet: broken pictures sent before it keep coming, and the
        // key frame may wait in the sender's pacer.
        assert!(!requests.due(start + ms(300), rtt));
        assert!(!requests.due(start + ms(1_200), rtt));
        assert!(requests.due(start + ms(1_300), rtt));
        requests.sent(start + ms(1_300));
        // This time one began to arrive (and then broke): two round trips are enough.
        requests.key_started();
        assert!(!requests.due(start + ms(1_550), rtt));
        assert!(requests.due(start + ms(1_600), rtt));
    }

    /// A packet carrying one whole NAL unit of picture `picture`.
    fn packet(sequence_number: u16, picture: u32, marker: bool) -> Packet {
        Packet {
            header: Header {
                sequence_number,
                timestamp: picture * 3000,
                marker,
                ..Header::default()
            },
            // A non-IDR slice NAL (type 1) with a few bytes of payload.
            payload: Bytes::from_static(&[0x41, 0x9a, 0x02, 0x03]),
        }
    }

    #[test]
    fn a_picture_in_two_packets_becomes_one_access_unit() {
        let mut assembler = Assembler::default();
        assert_eq!(assembler.push(&packet(1, 0, false)), None);
        let (_, unit) = assembler.push(&packet(2, 0, true)).expect("a whole unit");
        // Each NAL comes back with a start code.
        assert_eq!(unit.len(), 2 * (4 + 4));
        assert!(!assembler.news.lost);
        assert!(!assembler.news.key_started);
    }

    #[test]
    fn a_sequence_gap_drops_the_picture_and_asks_for_a_key_frame() {
        let mut assembler = Assembler::default();
        assert!(assembler.push(&packet(1, 0, true)).is_some());
        // Packet 2 (the first half of picture 1) is lost.
        assert_eq!(assembler.push(&packet(3, 1, true)), None);
        assert!(std::mem::take(&mut assembler.news.lost));
        // The next whole picture refers to the lost one: dropped, and the request stands.
        assert!(assembler.push(&packet(4, 2, false)).is_none());
        assert!(assembler.push(&packet(5, 2, true)).is_none());
        assert!(std::mem::take(&mut assembler.news.lost));
        // A key frame passes, and so does what follows it.
        let key = Packet {
            payload: Bytes::from_static(&[0x65, 0x88, 0x02, 0x03]),
            ..packet(6, 3, true)
        };
        assert!(assembler.push(&key).is_some());
        assert!(assembler.push(&packet(7, 4, true)).is_some());
        assert!(!assembler.news.lost);
    }

    #[test]
    fn a_missing_marker_drops_the_half_built_picture() {
        let mut assembler = Assembler::default();
        assert_eq!(assembler.push(&packet(1, 0, false)), None);
        // Picture 1 starts without picture 0's marker packet, but nothing is missing in sequence.
        assert_eq!(assembler.push(&packet(2, 1, false)), None);
        assert_eq!(assembler.push(&packet(3, 1, true)), None);
        assert!(assembler.news.lost);
    }

    /// A P slice (`nal_ref_idc` 2) numbered `frame_num` in four bits, after the Exp-Golomb
    /// codes `1` (first macroblock 0), `011` (slice type 2) and `1` (PPS 0).
    fn p_slice(frame_num: u16) -> Bytes {
        let bits = 0b1_0111_u16 << 11 | frame_num << 7;
        Bytes::from([&[0x41][..], &bits.to_be_bytes(), &[0x80]].concat())
    }

    fn with_payload(sequence_number: u16, picture: u32, payload: Bytes) -> Packet {
        Packet {
            payload,
            ..packet(sequence_number, picture, true)
        }
    }

    /// A key frame in packets 1 (SPS and PPS, aggregated) and 2 (an IDR slice), handed on.
    fn after_key_frame() -> Assembler {
        let mut assembler = Assembler::default();
        // SPS: baseline, id 0, log2_max_frame_num 4; PPS.
        let sets = [0x78, 0, 5, 0x67, 0x42, 0xC0, 0x1E, 0xC0, 0, 2, 0x68, 0xCE];
        let sets = Packet {
            payload: Bytes::copy_from_slice(&sets),
            ..packet(1, 0, false)
        };
        assert_eq!(assembler.push(&sets), None);
        let idr = with_payload(2, 0, Bytes::from_static(&[0x65, 0b1011_1000, 0x80]));
        assert!(assembler.push(&idr).is_some());
        assert!(std::mem::take(&mut assembler.news.key_started));
        assembler
    }

    #[test]
    fn padding_and_a_gap_that_took_only_padding_lose_no_picture() {
        let mut assembler = after_key_frame();
        // Padding (no payload) between pictures, then picture 1.
        assert_eq!(assembler.push(&with_payload(3, 0, Bytes::new())), None);
        assert!(assembler.push(&with_payload(4, 1, p_slice(1))).is_some());
        // Padding 5 and 6 are lost: picture 2 follows picture 1, so nothing needed was.
        let next = with_payload(7, 2, p_slice(2));
        assert_eq!(assembler.gap_is_harmless(&next), Some(true));
        assert!(assembler.push(&next).is_some());
        assert!(!assembler.news.lost);
    }

    #[test]
    fn a_gap_that_took_a_whole_reference_picture_waits_for_a_key_frame() {
        let mut assembler = after_key_frame();
        assert!(assembler.push(&with_payload(3, 1, p_slice(1))).is_some());
        // Packet 4, all of picture 2, is lost: picture 3 refers to it.
        let next = with_payload(5, 3, p_slice(3));
        assert_eq!(assembler.gap_is_harmless(&next), Some(false));
        assert_eq!(assembler.push(&next), None);
        assert!(assembler.news.lost);
        assert_eq!(assembler.push(&with_payload(6, 4, p_slice(4))), None);
    }
}
