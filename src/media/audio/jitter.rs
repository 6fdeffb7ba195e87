//! `JitterBuffer`: one remote participant's Opus packets, held just long enough to play them
//! at an even pace. Packets go in by sequence number as they arrive; the playout clock takes one
//! 20 ms frame at a time and is told what to make of it:
//! - the packet itself;
//! - a lost packet's audio rebuilt from the in-band forward error correction of the one after
//!   it, when that one is here ([`Playout::Recover`]);
//! - concealment, when neither is (the decoder makes up 20 ms that fit what came before);
//! - nothing, before the stream starts or after it stopped (muted, gone).
//!
//! How long packets wait (the target delay) follows the measured arrival jitter: the 98th
//! percentile, over the last seconds, of how much later each packet came than the quickest
//! (a floor that drifts up slowly, so clocks that disagree are not taken for jitter), plus a
//! frame, within [`MIN_DELAY`] and [`MAX_DELAY`]. A buffer that holds more than that plays a frame
//! less (the sender's clock runs fast, or a burst came late); one that runs dry conceals
//! without moving on (the sender's clock runs slow, or a packet is on its way), so a late
//! packet is still played instead of thrown away. Packets older than the one playing are too
//! late and are dropped. Sans-IO: given the arrival and pull times.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{FRAME, SAMPLE_RATE};
use crate::media::seq::unwrap_near;
use crate::media::spread::ArrivalSpread;

/// The least and the most the buffer waits.
pub const MIN_DELAY: Duration = Duration::from_millis(40);
/// See [`MIN_DELAY`].
pub const MAX_DELAY: Duration = Duration::from_millis(200);
/// Frames made up in a row, with nothing newer here, after which the stream counts as stopped
/// (it starts again, with a fresh wait, when packets come back).
const STOPPED_AFTER_FRAMES: u32 = 10;
/// How far back the arrival delays are remembered for the target.
const DELAY_MEMORY: Duration = Duration::from_secs(10);
/// The share of packets the target waits for (the rest come too late and are made up).
const WAITED_FOR: usize = 98;
/// A buffer this many frames over its target for [`ACCELERATE_AFTER`] pulls in a row plays
/// one less: a burst after a stall drains by itself, only a surplus that stays (a sender's clock
/// running fast) is played out.
const EXCESS_FRAMES: u64 = 4;
const ACCELERATE_AFTER: u32 = 50;
/// A gap of more frames than the buffer ever waits is jumped, not made up frame by frame
/// (which would play everything after it that much later, for a minute until caught up).
const JUMP_FRAMES: u64 = 10;

/// What the playout clock plays for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nothing: the stream has not started, or has stopped.
    Silence,
    /// Decode this packet.
    Packet(Bytes),
    /// The packet is lost; the next one is here: decode its forward error correction for this
    /// frame (the decoder conceals if it carries none).
    Recover(Bytes),
    /// Make this frame up.
    Conceal,
}

/// What the buffer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterCounts {
    /// Frames played from their own packet.
    pub played: u64,
    /// Frames rebuilt from the next packet's forward error correction.
    pub recovered: u64,
    /// Frames made up.
    pub concealed: u64,
    /// Packets that came after their turn.
    pub late: u64,
    /// Frames left out to catch up.
    pub skipped: u64,
}

#[derive(Debug, Clone)]
struct Held {
    payload: Bytes,
    arrived: Instant,
}

/// The jitter buffer of one participant's audio.
#[derive(Debug)]
pub struct JitterBuffer {
    held: BTreeMap<u64, Held>,
    /// The highest sequence number so far, unwrapped.
    highest: Option<u64>,
    /// The frame to play next; `None` until playing.
    next: Option<u64>,
    /// Frames made up in a row with nothing newer here.
    dry: u32,
    /// Pulls in a row with the buffer well over its target.
    over: u32,
    /// How late packets come over the quickest.
    spread: ArrivalSpread,
    /// The wait each played packet had, summed, and how many, since the last look.
    waited: (Duration, u32),
    /// What it has done so far.
    pub counts: JitterCounts,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            held: BTreeMap::new(),
            highest: None,
            next: None,
            dry: 0,
            over: 0,
            spread: ArrivalSpread::new(SAMPLE_RATE, DELAY_MEMORY),
            waited: (Duration::ZERO, 0),
            counts: JitterCounts::default(),
        }
    }

    /// A packet with `sequence_number` and RTP `timestamp` arrived at `now`.
    pub fn push(&mut self, now: Instant, sequence_number: u16, timestamp: u32, payload: Bytes) {
        let number = unwrap_near(self.highest, sequence_number);
        self.highest = Some(self.highest.map_or(number, |highest| highest.max(number)));
        self.spread.arrived(now, timestamp);
        if self.next.is_some_and(|next| number < next) {
            self.counts.late += 1;
            return;
        }
        self.held.entry(number).or_insert(Held {
            payload,
            arrived: now,
        });
    }

    /// How long packets should wait now: the arrival jitter's 98th percentile and a frame.
    pub fn target(&self) -> Duration {
        (self.spread.percentile(WAITED_FOR) + FRAME).clamp(MIN_DELAY, MAX_DELAY)
    }

    /// The audio held now, from the next frame to play to the newest here.
    pub fn depth(&self) -> Duration {
        match (self.next, self.held.last_key_value()) {
            (Some(next), Some((&newest, _))) if newest >= next => {
                FRAME * u32::try_from(newest - next + 1).unwrap_or(u32::MAX)
            }
            _ => Duration::ZERO,
        }
    }

    /// How long the frames played since the last call waited here, together, and how many.
    pub fn take_waited(&mut self) -> (Duration, u32) {
        std::mem::take(&mut self.waited)
    }

    /// What to play for the frame due at `now`.
    pub fn pull(&mut self, now: Instant) -> Playout {
        let Some(next) = self.next else {
            return self.start(now);
        };
        self.catch_up(next);
        let next = self.next.unwrap_or(next);
        if let Some(held) = self.held.remove(&next) {
            self.play(now, next, &held);
            return Playout::Packet(held.payload);
        }
        let newer_here = self
            .held
            .keys()
            .next()
            .copied()
            .filter(|&number| number > next);
        if let Some(newer) = newer_here {
            // Lost: its turn has come and later ones are here.
            self.next = Some(if newer - next > JUMP_FRAMES {
                self.counts.skipped += newer - next - 1;
                newer
            } else {
                next + 1
            });
            self.dry = 0;
            if let Some(after) = self.held.get(&(next + 1)) {
                self.counts.recovered += 1;
                return Playout::Recover(after.payload.clone());
            }
            self.counts.concealed += 1;
            return Playout::Conceal;
        }
        // Dry: nothing newer yet. Make the frame up without moving on, so the packet still
        // plays if it is only late; after a while the stream has stopped.
        self.dry += 1;
        if self.dry > STOPPED_AFTER_FRAMES {
            self.next = None;
            self.dry = 0;
            return Playout::Silence;
        }
        self.counts.concealed += 1;
        Playout::Conceal
    }

    /// Starts playing once the oldest packet here has waited the target delay.
    fn start(&mut self, now: Instant) -> Playout {
        let Some((&first, held)) = self.held.first_key_value() else {
            return Playout::Silence;
        };
        if now.saturating_duration_since(held.arrived) < self.target() {
            return Playout::Silence;
        }
        self.next = Some(first);
        self.pull(now)
    }

    /// A buffer well over its target for a while leaves one frame out.
    fn catch_up(&mut self, next: u64) {
        let target_frames =
            u64::try_from(self.target().as_millis() / FRAME.as_millis()).unwrap_or(0);
        let depth_frames = u64::try_from(self.depth().as_millis() / FRAME.as_millis()).unwrap_or(0);
        if depth_frames <= target_frames + EXCESS_FRAMES {
            self.over = 0;
            return;
        }
        self.over += 1;
        if self.over < ACCELERATE_AFTER {
            return;
        }
        self.over = 0;
        if self.held.remove(&next).is_some() {
            self.counts.skipped += 1;
        }
        self.next = Some(next + 1);
    }

    fn play(&mut self, now: Instant, number: u64, held: &Held) {
        self.next = Some(number + 1);
        self.dry = 0;
        self.counts.played += 1;
        self.waited.0 += now.saturating_duration_since(held.arrived);
        self.waited.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(number: u16) -> Bytes {
        Bytes::from(number.to_be_bytes().to_vec())
    }

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// What was played, frame by frame: the packet number, `R` and the next one's number for a
    /// recovery, `C` for concealment, `-` for silence.
    fn label(playout: &Playout) -> String {
        match playout {
            Playout::Silence => "-".to_owned(),
            Playout::Packet(bytes) => format!("{}", u16::from_be_bytes([bytes[0], bytes[1]])),
            Playout::Recover(bytes) => format!("R{}", u16::from_be_bytes([bytes[0], bytes[1]])),
            Playout::Conceal => "C".to_owned(),
        }
    }

    /// Pushes each `(number, arrival ms)` at its arrival and pulls every 20 ms from 0, `pulls`
    /// times; what was played.
    fn run(arrivals: &[(u16, u64)], pulls: u64) -> Vec<String> {
        let start = Instant::now();
        let mut buffer = JitterBuffer::new();
        let mut arrivals: Vec<(u16, u64)> = arrivals.to_vec();
        arrivals.sort_by_key(|(_, at)| *at);
        let mut pending = arrivals.into_iter().peekable();
        let mut played = Vec::new();
        for pull in 0..pulls {
            let due = pull * 20;
            while let Some((number, at)) = pending.next_if(|(_, at)| *at <= due) {
                buffer.push(
                    start + ms(at),
                    number,
                    u32::from(number) * 960,
                    payload(number),
                );
            }
            played.push(label(&buffer.pull(start + ms(due))));
        }
        played
    }

    #[test]
    fn packets_play_in_order_after_a_short_wait_and_reordering_costs_nothing() {
        // 1 and 2 swap places on the way.
        let arrivals = [
            (0, 0),
            (2, 20),
            (1, 25),
            (3, 60),
            (4, 80),
            (5, 100),
            (6, 120),
        ];
        let played = run(&arrivals, 10);
        let waited = played.iter().take_while(|frame| *frame == "-").count();
        assert!((2..=3).contains(&waited), "{played:?}");
        let heard: Vec<&str> = played[waited..].iter().map(String::as_str).collect();
        assert_eq!(
            heard,
            ["0", "1", "2", "3", "4", "5", "6", "C"][..heard.len()]
        );
    }

    #[test]
    fn a_lost_packet_is_recovered_from_the_next_or_concealed_and_duplicates_play_once() {
        // 2 is lost (3 is here in time: recover); 5 and 6 lost (5 concealed, 7 recovers 6).
        let arrivals = [
            (0, 0),
            (1, 20),
            (3, 60),
            (3, 61),
            (4, 80),
            (7, 140),
            (8, 160),
            (9, 180),
        ];
        let played = run(&arrivals, 12);
        assert_eq!(
            played,
            ["-", "-", "0", "1", "R3", "3", "4", "C", "R7", "7", "8", "9"]
        );
    }

    #[test]
    fn a_late_packet_waits_in_concealment_and_one_too_late_is_dropped() {
        let start = Instant::now();
        let mut buffer = JitterBuffer::new();
        buffer.push(start, 0, 0, payload(0));
        buffer.push(start + ms(20), 1, 960, payload(1));
        let pull = |buffer: &mut JitterBuffer, at: u64| label(&buffer.pull(start + ms(at)));
        assert_eq!(pull(&mut buffer, 40), "0");
        assert_eq!(pull(&mut buffer, 60), "1");
        // 2 is late: nothing newer is here, so the frame is made up and 2 still plays.
        assert_eq!(pull(&mut buffer, 80), "C");
        buffer.push(start + ms(90), 2, 1_920, payload(2));
        assert_eq!(pull(&mut buffer, 100), "2");
        // 3 is lost, 4 is here: 3's turn passes; when 3 comes after all, it is too late.
        buffer.push(start + ms(110), 4, 3_840, payload(4));
        assert_eq!(pull(&mut buffer, 120), "R4");
        buffer.push(start + ms(125), 3, 2_880, payload(3));
        assert_eq!(pull(&mut buffer, 140), "4");
        assert_eq!(buffer.counts.late, 1);
        assert_eq!(
            (
                buffer.counts.played,
                buffer.counts.recovered,
                buffer.counts.concealed
            ),
            (4, 1, 1)
        );
    }

    #[test]
    fn the_wait_follows_the_jitter_within_bounds() {
        let start = Instant::now();
        let mut steady = JitterBuffer::new();
        let mut jittery = JitterBuffer::new();
        for number in 0..200_u16 {
            let sent = u64::from(number) * 20;
            steady.push(
                start + ms(sent),
                number,
                u32::from(number) * 960,
                payload(number),
            );
            // Every fifth packet 60 ms late, the others on time.
            let late = if number % 5 == 0 { 60 } else { 0 };
            jittery.push(
                start + ms(sent + late),
                number,
                u32::from(number) * 960,
                payload(number),
            );
        }
        assert_eq!(steady.target(), MIN_DELAY);
        let target = jittery.target();
        assert!((ms(75)..=ms(80)).contains(&target), "{target:?}");
    }

    #[test]
    fn a_fast_sender_s_surplus_is_played_out_and_a_stopped_stream_falls_silent() {
        let start = Instant::now();
        let mut buffer = JitterBuffer::new();
        // The sender's clock runs 1 % fast: 101 packets for every 100 pulls.
        let mut sent = 0_u16;
        for pull in 0..3_000_u64 {
            let now = start + ms(pull * 20);
            while u64::from(sent) * 20 * 100 / 101 <= pull * 20 {
                buffer.push(now, sent, u32::from(sent) * 960, payload(sent));
                sent += 1;
            }
            buffer.pull(now);
        }
        assert!(buffer.depth() <= ms(120), "{:?} held", buffer.depth());
        assert!(buffer.counts.skipped >= 20, "{:?}", buffer.counts);
        assert_eq!(buffer.counts.concealed, 0, "{:?}", buffer.counts);
        // The sender stops: a few frames are made up, then silence.
        let later = start + ms(40_000);
        let frames: Vec<String> = (0..20)
            .map(|pull| label(&buffer.pull(later + ms(pull * 20))))
            .collect();
        assert!(frames.last().is_some_and(|last| last == "-"), "{frames:?}");
    }

    #[test]
    fn a_long_gap_is_jumped_not_walked() {
        // 0 to 49, then the numbers jump to 1 000 (hundreds lost at once) while packets keep
        // coming every 20 ms.
        let mut arrivals: Vec<(u16, u64)> = (0..50).map(|n| (n, u64::from(n) * 20)).collect();
        arrivals.extend((0..100).map(|k| (1_000 + k, u64::from(50 + k) * 20)));
        let played = run(&arrivals, 150);
        // 1 000 plays right after 49 and a frame made up, not 950 frames later.
        let after = played
            .iter()
            .position(|frame| frame == "49")
            .expect("49 plays");
        assert_eq!(played[after + 1..after + 3], ["C", "1000"], "{played:?}");
    }
}
