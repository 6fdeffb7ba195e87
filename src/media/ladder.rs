//! `Ladder`: what the local video sends as the path's estimate moves. The estimate pays for the
//! audio first; what is left (the budget) is the encoder's target, and picks a rung of
//! resolution and frame rate: the source's own, then 720p, 540p, 360p, 240p, 180p at 30 frames
//! a second, 180p at 15, then none (video paused, the audio alone).
//!
//! Steps down happen when the budget is below what the rung needs *and the encoder shows it*:
//! its quantiser high, or frames skipped (easy content at a small budget looks fine and stays);
//! the frame rate is halved only when frames are being skipped already.
//! Below the rung's floor for [`DOWN_AFTER`] steps down, far below steps at once, several rungs
//! if need be. A step up takes the budget staying above the next rung's need for [`UP_AFTER`],
//! never soon after a step down, and then goes as many rungs up as the budget pays for (each
//! step costs a key frame). An encoder that keeps skipping frames for [`SKIPPING_AFTER`]
//! steps down to a smaller picture even within the rung's floor (content harder to code than most, such as a noisy
//! camera), and that rung is not climbed to again before the budget grows by half. An encoder
//! that cannot keep up with the frame rate steps down too. Each step is reported with its
//! reason. Sans-IO: time is an argument.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{MonoTime, QualityLimitation as Limitation};

/// How long the budget must stay below a rung (with the encoder strained) before stepping down.
pub const DOWN_AFTER: Duration = Duration::from_secs(1);
/// How long the budget must stay above the next rung's need before stepping up.
pub const UP_AFTER: Duration = Duration::from_secs(4);
/// No step up sooner than this after a step down (the estimate is still settling).
pub const UP_HOLD_AFTER_DOWN: Duration = Duration::from_secs(8);
/// An estimate no probe has measured this long after the first (its feedback stopped before a
/// probe could be judged) is followed all the same.
pub const GUESS_AT_MOST: Duration = Duration::from_secs(2);
/// Frames skipped for this long, with the budget within the rung's floor, step down: the content
/// needs more than the floor says.
pub const SKIPPING_AFTER: Duration = Duration::from_secs(2);
/// A rung left that way is climbed to again only once the budget is this many times what it was.
const SKIPPED_RUNG_BUDGET_GROWTH: f64 = 1.5;
/// A budget below this share of a rung's floor steps down at once (with the encoder strained).
const FAR_BELOW: f64 = 0.5;
/// The least budget worth sending video for; below it the video pauses.
pub const MIN_VIDEO_BPS: f64 = 20_000.0;
/// Bits a rung needs per pixel and frame: its floor, the budget to climb to it, its ceiling.
const FLOOR_BITS_PER_PIXEL: f64 = 0.025;
const CLIMB_BITS_PER_PIXEL: f64 = 0.035;
const CEILING_BITS_PER_PIXEL: f64 = 0.09;
/// The heights below the source's own, each at 30 frames a second; the last again at 15.
const HEIGHTS: [usize; 5] = [720, 540, 360, 240, 180];
const LOW_FPS: u32 = 15;
/// A mean quantiser above this over the last second means the encoder is starved (libwebrtc's
/// H.264 high threshold); frames skipped above this share, too.
const QP_STRAINED: f64 = 37.0;
/// A mean quantiser below this, nothing skipped, means bits to spare.
const QP_RELAXED: f64 = 30.0;
const SKIPPED_STRAINED: f64 = 0.2;
/// The frames the encoder's strain is judged over.
const STRAIN_WINDOW: Duration = Duration::from_secs(1);
/// Fewer frames than this in the window say nothing yet.
const STRAIN_MIN_FRAMES: usize = 8;
/// Encoding taking more than this share of the frame interval, over [`CPU_WINDOW`], is more
/// than the machine can give.
const CPU_BUSY_SHARE: f64 = 0.8;
const CPU_WINDOW: Duration = Duration::from_secs(2);
/// A rung the machine could not encode is not tried again for this long, whatever the budget:
/// each try costs a new encoder, a key frame, and seconds of stutter before it steps down again.
pub const CPU_HOLD: Duration = Duration::from_mins(1);
/// RTP, SRTP, UDP and IP headers, as a share of the video's bytes (about 60 of 1,200).
const VIDEO_OVERHEAD: f64 = 0.05;
/// What one audio packet costs on the wire besides its payload (RTP 12 + extensions 8 + SRTP
/// 10 + UDP 8 + IP 20 bytes), 50 packets a second.
const AUDIO_OVERHEAD_BPS: f64 = 58.0 * 8.0 * 50.0;
/// Opus's bitrate on a wide path: near transparent for wideband speech (PESQ 4.2 against 3.75
/// at 32 kbit/s, the same speech through ffmpeg's libopus), and what leaves a lost packet's
/// forward error correction room to be good.
pub const AUDIO_MAX_BPS: u32 = 48_000;
/// The least Opus goes down to on a narrow path.
pub const AUDIO_MIN_BPS: u32 = 16_000;

/// One rung: a picture size and a frame rate, and the budgets it needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rung {
    /// Picture size in pixels, the source's shape (0 x 0 when paused).
    pub width: usize,
    /// Picture height.
    pub height: usize,
    /// Frames a second (0 when paused).
    pub fps: u32,
    /// Below this budget (bits per second), with the encoder strained, the rung is left.
    pub floor_bps: f64,
    /// A budget this high (held for [`UP_AFTER`]) climbs to it from the rung below; so does its
    /// floor, when the encoder below has bits to spare.
    pub climb_bps: f64,
    /// The most it is given: more shows no better.
    pub ceiling_bps: f64,
}

impl Rung {
    fn new(width: usize, height: usize, fps: u32) -> Self {
        let pixels_per_sec = (width * height) as f64 * f64::from(fps);
        Self {
            width,
            height,
            fps,
            floor_bps: pixels_per_sec * FLOOR_BITS_PER_PIXEL,
            climb_bps: pixels_per_sec * CLIMB_BITS_PER_PIXEL,
            ceiling_bps: pixels_per_sec * CEILING_BITS_PER_PIXEL,
        }
    }

    /// Whether video is paused here.
    pub fn is_paused(&self) -> bool {
        self.fps == 0
    }

    /// `1280x720@30`, or `paused`.
    pub fn label(&self) -> String {
        if self.is_paused() {
            "paused".to_owned()
        } else {
            format!("{}x{}@{}", self.width, self.height, self.fps)
        }
    }
}

/// A step on the ladder, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The picture and rate before (`1280x720@30`, or `paused`).
    pub from: String,
    /// The picture and rate after.
    pub to: String,
    /// What moved it: the bandwidth (down, or back up) or the encoder's time.
    pub reason: Limitation,
    /// What limits the video after it (`none` at the top rung).
    pub limitation: Limitation,
    /// The video's budget when it stepped, in bits per second.
    pub budget_bps: u32,
}

/// The rungs of a source of `width` x `height` at `fps`, highest first: the source itself, the
/// standard heights below it at the source's shape (sides a multiple of 8), the smallest at 15, none.
pub fn rungs(width: usize, height: usize, fps: u32) -> Vec<Rung> {
    let mut rungs = vec![Rung::new(width, height, fps)];
    for rung_height in HEIGHTS.into_iter().filter(|&h| h < height) {
        let rung_width = ((width * rung_height / height.max(1)) & !7).max(16);
        rungs.push(Rung::new(rung_width, rung_height, fps.min(30)));
    }
    if let Some(&lowest) = rungs.last()
        && lowest.fps > LOW_FPS
    {
        rungs.push(Rung::new(lowest.width, lowest.height, LOW_FPS));
    }
    rungs.push(Rung::new(0, 0, 0));
    rungs
}

/// What the encoder did with its recent frames.
#[derive(Debug, Clone, Default)]
struct Strain {
    /// (when, quantiser, skipped)
    frames: VecDeque<(MonoTime, u8, bool)>,
}

impl Strain {
    fn add(&mut self, now: MonoTime, qp: u8, skipped: bool) {
        self.frames.push_back((now, qp, skipped));
        while self
            .frames
            .front()
            .is_some_and(|(at, _, _)| now.since(*at) > STRAIN_WINDOW)
        {
            self.frames.pop_front();
        }
    }

    /// Whether the encoder has bits to spare: a fine quantiser, nothing skipped.
    fn relaxed(&self) -> bool {
        self.frames.len() >= STRAIN_MIN_FRAMES
            && self.frames.iter().all(|frame| !frame.2)
            && self.mean_qp() < QP_RELAXED
    }

    fn mean_qp(&self) -> f64 {
        let encoded: Vec<f64> = self
            .frames
            .iter()
            .filter(|frame| !frame.2)
            .map(|frame| f64::from(frame.1))
            .collect();
        encoded.iter().sum::<f64>() / (encoded.len() as f64).max(1.0)
    }

    /// Whether the encoder skips frames it cannot pay for.
    fn skipping(&self) -> bool {
        let skipped = self.frames.iter().filter(|frame| frame.2).count();
        self.frames.len() >= STRAIN_MIN_FRAMES
            && skipped as f64 / self.frames.len() as f64 > SKIPPED_STRAINED
    }

    /// Whether the encoder is starved of bits: a coarse quantiser, or frames skipped.
    fn strained(&self) -> bool {
        if self.frames.len() < STRAIN_MIN_FRAMES {
            return false;
        }
        let count = self.frames.len() as f64;
        let skipped = self.frames.iter().filter(|frame| frame.2).count() as f64;
        skipped / count > SKIPPED_STRAINED || (skipped < count && self.mean_qp() > QP_STRAINED)
    }
}

/// The sender's ladder.
#[derive(Debug, Clone)]
pub struct Ladder {
    rungs: Vec<Rung>,
    current: usize,
    budget_bps: f64,
    /// When the first estimate came.
    following_since: Option<MonoTime>,
    /// When the budget went below the current rung's floor, or above the next one's climb.
    below_since: Option<MonoTime>,
    above_since: Option<MonoTime>,
    last_down: Option<MonoTime>,
    strain: Strain,
    /// Encoding time against frame time over the recent window: (busy, elapsed, since).
    cpu: (Duration, Duration, Option<MonoTime>),
    /// The rung the machine last could not encode, and when it stepped down from it.
    too_heavy: Option<(usize, MonoTime)>,
    /// Since when the encoder skips frames within the rung's floor.
    skipping_since: Option<MonoTime>,
    /// The rung last left for skipping frames within its floor, and the budget then.
    too_hard: Option<(usize, f64)>,
    limitation: Limitation,
    steps: VecDeque<Step>,
}

impl Ladder {
    /// A ladder for a source of `width` x `height` at `fps`, starting at the source's own rung
    /// (the encoder's strain says soon enough when that is too much).
    pub fn new(width: usize, height: usize, fps: u32) -> Self {
        Self {
            rungs: rungs(width, height, fps),
            current: 0,
            budget_bps: 0.0,
            following_since: None,
            below_since: None,
            above_since: None,
            last_down: None,
            strain: Strain::default(),
            cpu: (Duration::ZERO, Duration::ZERO, None),
            too_heavy: None,
            skipping_since: None,
            too_hard: None,
            limitation: Limitation::None,
            steps: VecDeque::new(),
        }
    }

    /// The rung now.
    pub fn rung(&self) -> Rung {
        self.rungs[self.current]
    }

    /// What the encoder aims at now, in bits per second: the budget, within the rung's ceiling.
    pub fn target_bps(&self) -> u32 {
        whole_bps(self.budget_bps.min(self.rung().ceiling_bps))
    }

    /// Why the video is below the source's own now.
    pub fn limitation(&self) -> Limitation {
        self.limitation
    }

    /// The next step taken, oldest first.
    pub fn poll_step(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// The path's estimate is `estimate_bps` at `now`, `measured` by a probe or still the
    /// starting guess. [`GUESS_AT_MOST`] after the first, it counts all the same.
    pub fn follow(&mut self, now: MonoTime, estimate_bps: f64, measured: bool) {
        let since = *self.following_since.get_or_insert(now);
        if measured || now.since(since) >= GUESS_AT_MOST {
            self.handle_estimate(now, estimate_bps);
        } else {
            self.handle_guess(estimate_bps);
        }
    }

    /// The path's estimate is still the starting guess, `estimate_bps`: the encoder aims at
    /// it, but no rung moves on a figure that says nothing about the path (a call would start
    /// a rung or two down, and climb back for seconds), and no wait to move one runs.
    fn handle_guess(&mut self, estimate_bps: f64) {
        self.budget_bps = video_budget_bps(estimate_bps);
        self.below_since = None;
        self.above_since = None;
    }

    /// The path's estimate is `estimate_bps` at `now`; the audio takes its share first.
    fn handle_estimate(&mut self, now: MonoTime, estimate_bps: f64) {
        self.budget_bps = video_budget_bps(estimate_bps);
        if self.budget_bps < MIN_VIDEO_BPS {
            let paused = self.rungs.len() - 1;
            self.step(now, paused, Limitation::Bandwidth);
            return;
        }
        let rung = self.rung();
        if self.budget_bps < rung.floor_bps {
            self.above_since = None;
            let since = *self.below_since.get_or_insert(now);
            let far_below = self.budget_bps < rung.floor_bps * FAR_BELOW;
            let long_enough = now.since(since) >= DOWN_AFTER;
            if (far_below || long_enough) && self.strain.strained() {
                let mut to = self.fitting(self.budget_bps).max(self.current + 1);
                // Halving the frame rate at the same size is for an encoder that skips frames
                // already; a coarse picture at the full rate moves better than a fine one that
                // stutters.
                let fps_only = self
                    .rungs
                    .get(to)
                    .is_some_and(|lower| lower.width == rung.width && lower.height == rung.height);
                if fps_only && !self.strain.skipping() {
                    to = self.current;
                }
                self.step(now, to, Limitation::Bandwidth);
            }
            return;
        }
        self.below_since = None;
        if self.skipping_for_long(now) {
            self.too_hard = Some((self.current, self.budget_bps));
            self.step(now, self.current + 1, Limitation::Bandwidth);
            return;
        }
        self.consider_climbing(now);
    }

    /// Whether the encoder has been skipping frames for [`SKIPPING_AFTER`].
    fn skipping_for_long(&mut self, now: MonoTime) -> bool {
        // Only to a smaller picture: the frame rate is halved, and the video paused, only for
        // a budget below the rung's floor.
        let rung = self.rung();
        let smaller = self
            .rungs
            .get(self.current + 1)
            .is_some_and(|next| !next.is_paused() && next.height < rung.height);
        if !self.strain.skipping() || !smaller {
            self.skipping_since = None;
            return false;
        }
        let since = *self.skipping_since.get_or_insert(now);
        now.since(since) >= SKIPPING_AFTER
    }

    fn consider_climbing(&mut self, now: MonoTime) {
        let Some(next) = self.current.checked_sub(1) else {
            return;
        };
        let held_after_down = self
            .last_down
            .is_some_and(|at| now.since(at) < UP_HOLD_AFTER_DOWN);
        if held_after_down || !self.may_climb_to(now, next) {
            self.above_since = None;
            return;
        }
        let since = *self.above_since.get_or_insert(now);
        if now.since(since) >= UP_AFTER {
            // As far up as the budget pays for now: each step costs a key frame, and a
            // budget that held above the next rung's need has settled.
            let mut to = next;
            while to > 0 && self.may_climb_to(now, to - 1) {
                to -= 1;
            }
            self.step(now, to, Limitation::Bandwidth);
        }
    }

    /// Whether the budget pays for rung `to`, above the current one, and nothing holds it back:
    /// a rung the machine could not encode lately, or one left for skipping frames until the
    /// budget has grown.
    fn may_climb_to(&self, now: MonoTime, to: usize) -> bool {
        let rung = self.rungs[to];
        let too_heavy = self
            .too_heavy
            .is_some_and(|(heavy, at)| to <= heavy && now.since(at) < CPU_HOLD);
        let too_hard = self.too_hard.is_some_and(|(hard, budget)| {
            to <= hard && self.budget_bps < budget * SKIPPED_RUNG_BUDGET_GROWTH
        });
        // Content that needs less than its budget keeps the estimate from showing more (it only
        // grows with what is sent): the next rung, if the budget reaches its floor, is tried if
        // the encoder is at ease here. Paused, there is no encoder to ask: the floor is enough
        // to try video again.
        let at_ease = to + 1 == self.current && (self.strain.relaxed() || self.rung().is_paused());
        let affordable =
            self.budget_bps >= rung.climb_bps || (self.budget_bps >= rung.floor_bps && at_ease);
        affordable && !too_heavy && !too_hard
    }

    /// The highest rung whose floor `budget_bps` reaches (the lowest with video if none).
    fn fitting(&self, budget_bps: f64) -> usize {
        let lowest_with_video = self.rungs.len() - 2;
        self.rungs[..=lowest_with_video]
            .iter()
            .position(|rung| budget_bps >= rung.floor_bps)
            .unwrap_or(lowest_with_video)
    }

    /// The encoder made a frame at `now` with quantiser `qp` (or skipped it).
    pub fn handle_frame(&mut self, now: MonoTime, qp: u8, skipped: bool) {
        self.strain.add(now, qp, skipped);
    }

    /// Encoding one frame took `spent` at `now`; frames are `interval` apart at this rung.
    pub fn handle_encode_time(&mut self, now: MonoTime, spent: Duration, interval: Duration) {
        let (busy, elapsed, since) = &mut self.cpu;
        *busy += spent;
        *elapsed += interval;
        let started = *since.get_or_insert(now);
        if now.since(started) < CPU_WINDOW {
            return;
        }
        let share = busy.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        self.cpu = (Duration::ZERO, Duration::ZERO, Some(now));
        let lowest_with_video = self.rungs.len() - 2;
        if share > CPU_BUSY_SHARE && self.current < lowest_with_video {
            self.too_heavy = Some((self.current, now));
            self.step(now, self.current + 1, Limitation::Cpu);
        }
    }

    fn step(&mut self, now: MonoTime, to: usize, reason: Limitation) {
        let to = to.min(self.rungs.len() - 1);
        if to == self.current {
            return;
        }
        let (from, next) = (self.rung(), self.rungs[to]);
        if to > self.current {
            self.last_down = Some(now);
        }
        self.current = to;
        self.below_since = None;
        self.above_since = None;
        self.skipping_since = None;
        self.strain = Strain::default();
        self.limitation = if to == 0 { Limitation::None } else { reason };
        self.steps.push_back(Step {
            from: from.label(),
            to: next.label(),
            reason,
            limitation: self.limitation,
            budget_bps: whole_bps(self.budget_bps),
        });
    }
}

/// Opus's bitrate against the path's estimate, corner by corner, straight between them and
/// flat beyond: below about 20 kbit/s wideband speech cannot carry its forward error
/// correction at 5 % loss (Opus narrows to mediumband for it), so the audio is kept above that
/// from 100 kbit/s on (24 kbit/s at 130, where a 150 kbit/s path's estimate sits), and grows to
/// [`AUDIO_MAX_BPS`] on a wide one. The video pays: at 130 kbit/s, 6 % of its budget.
const AUDIO_SHARE: [(f64, f64); 3] = [
    (60_000.0, AUDIO_MIN_BPS as f64),
    (200_000.0, 32_000.0),
    (500_000.0, AUDIO_MAX_BPS as f64),
];

/// What Opus is given out of `estimate_bps`: all it wants on a wide path, less (never below
/// [`AUDIO_MIN_BPS`]) on a narrow one.
pub fn audio_bitrate_bps(estimate_bps: f64) -> u32 {
    let mut audio = AUDIO_SHARE[0].1;
    for pair in AUDIO_SHARE.windows(2) {
        let [(from, low), (to, high)] = [pair[0], pair[1]];
        if estimate_bps > from {
            audio = low + (high - low) * ((estimate_bps - from) / (to - from)).min(1.0);
        }
    }
    whole_bps(audio)
}

/// What is left for the video of `estimate_bps` once the audio (with its headers) is paid for,
/// less the video's own headers.
pub fn video_budget_bps(estimate_bps: f64) -> f64 {
    let audio = f64::from(audio_bitrate_bps(estimate_bps)) + AUDIO_OVERHEAD_BPS;
    ((estimate_bps - audio) * (1.0 - VIDEO_OVERHEAD)).max(0.0)
}

/// The estimate whose video budget is `budget_bps` (the inverse of [`video_budget_bps`]): the
/// estimate less the audio's share grows with the estimate, corner by corner.
pub fn estimate_for_budget_bps(budget_bps: f64) -> f64 {
    let rest = budget_bps / (1.0 - VIDEO_OVERHEAD) + AUDIO_OVERHEAD_BPS;
    let (first, least) = AUDIO_SHARE[0];
    if rest <= first - least {
        return rest + least;
    }
    for pair in AUDIO_SHARE.windows(2) {
        let [(from, low), (to, high)] = [pair[0], pair[1]];
        if rest <= to - high {
            let slope = (high - low) / (to - from);
            return from + (rest - (from - low)) / (1.0 - slope);
        }
    }
    rest + f64::from(AUDIO_MAX_BPS)
}

/// A rate in whole bits per second (0 for anything below).
pub fn whole_bps(bps: f64) -> u32 {
    u32::try_from(bps.max(0.0).round() as i64).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> MonoTime {
        MonoTime::from_millis(millis)
    }

    /// Frames every 33 ms from `from` for `frames` frames at quantiser `qp`.
    fn encode(ladder: &mut Ladder, from: u64, frames: u64, qp: u8) {
        for frame in 0..frames {
            ladder.handle_frame(at(from + frame * 33), qp, false);
        }
    }

    /// Frames every 33 ms from `*millis` for `frames` frames, each told the estimate
    /// `estimate_bps`; every other one skipped when `skipping`.
    fn run(
        ladder: &mut Ladder,
        millis: &mut u64,
        frames: u64,
        (estimate_bps, skipping): (f64, bool),
    ) {
        for frame in 0..frames {
            ladder.handle_frame(
                at(*millis),
                if skipping { 40 } else { 25 },
                skipping && frame % 2 == 0,
            );
            ladder.handle_estimate(at(*millis), estimate_bps);
            *millis += 33;
        }
    }

    #[test]
    fn an_encoder_that_keeps_skipping_within_the_floor_steps_down_until_the_budget_grows() {
        let mut ladder = Ladder::new(424, 240, 30);
        let mut millis = 0;
        // 140 kbit/s leaves the video 93, above 424x240's floor (76), but the content needs
        // more: every other frame is skipped.
        while ladder.rung().height == 240 && millis < 10_000 {
            run(&mut ladder, &mut millis, 1, (140_000.0, true));
        }
        assert_eq!(ladder.rung().label(), "312x180@30");
        assert!((2_000..3_100).contains(&millis), "stepped at {millis} ms");
        assert_eq!(
            ladder.poll_step().map(|step| step.reason),
            Some(Limitation::Bandwidth)
        );
        // At ease at 312x180 on the same budget for 20 s: 424x240 is not tried again.
        run(&mut ladder, &mut millis, 600, (140_000.0, false));
        assert_eq!(ladder.rung().label(), "312x180@30");
        // Once the budget has grown by half, it is.
        run(&mut ladder, &mut millis, 300, (220_000.0, false));
        assert_eq!(ladder.rung().label(), "424x240@30");
        // Skipping on the smallest picture neither halves its frame rate nor pauses it.
        let mut lowest = Ladder::new(320, 180, 30);
        run(&mut lowest, &mut millis, 600, (120_000.0, true));
        assert_eq!(lowest.rung().label(), "320x180@30");
    }

    #[test]
    fn the_rungs_keep_the_source_s_shape_and_need_more_the_bigger_they_are() {
        let labels: Vec<String> = rungs(1280, 720, 30).iter().map(Rung::label).collect();
        assert_eq!(
            labels,
            [
                "1280x720@30",
                "960x540@30",
                "640x360@30",
                "424x240@30",
                "320x180@30",
                "320x180@15",
                "paused"
            ]
        );
        let vga: Vec<String> = rungs(640, 480, 30).iter().map(Rung::label).collect();
        assert_eq!(
            vga,
            [
                "640x480@30",
                "480x360@30",
                "320x240@30",
                "240x180@30",
                "240x180@15",
                "paused"
            ]
        );
        let ladder = rungs(1280, 720, 30);
        assert!(
            ladder
                .windows(2)
                .all(|pair| pair[0].floor_bps > pair[1].floor_bps)
        );
        assert!(ladder.iter().all(|rung| rung.climb_bps >= rung.floor_bps));
    }

    #[test]
    fn a_starved_encoder_below_the_floor_steps_down_and_an_easy_picture_stays() {
        let mut ladder = Ladder::new(1280, 720, 30);
        // 450 kbit/s leaves ~375 for video: below 720p's floor, not far below.
        encode(&mut ladder, 0, 30, 25);
        for millis in (0..3_000).step_by(100) {
            ladder.handle_estimate(at(millis), 450_000.0);
        }
        assert_eq!(
            ladder.rung().height,
            720,
            "an easy picture at its budget stays"
        );
        assert!(ladder.poll_step().is_none());
        encode(&mut ladder, 3_000, 30, 45);
        ladder.handle_estimate(at(4_000), 450_000.0);
        let step = ladder.poll_step().expect("a step");
        assert_eq!(
            (step.from.as_str(), step.to.as_str()),
            ("1280x720@30", "640x360@30")
        );
        assert_eq!(step.reason, Limitation::Bandwidth);
        assert_eq!(ladder.limitation(), Limitation::Bandwidth);
        assert!((350_000..400_000).contains(&ladder.target_bps()));
    }

    #[test]
    fn far_below_steps_at_once_and_a_tiny_budget_pauses_the_video() {
        let mut ladder = Ladder::new(1280, 720, 30);
        encode(&mut ladder, 0, 10, 51);
        ladder.handle_estimate(at(300), 150_000.0);
        assert_eq!(ladder.rung().label(), "424x240@30");
        ladder.handle_estimate(at(400), 45_000.0);
        assert!(ladder.rung().is_paused());
        let steps: Vec<Step> = std::iter::from_fn(|| ladder.poll_step()).collect();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].to, "paused");
    }

    #[test]
    fn a_starting_guess_sets_the_target_but_moves_no_rung() {
        let mut ladder = Ladder::new(1280, 720, 30);
        encode(&mut ladder, 0, 10, 51);
        ladder.handle_guess(150_000.0);
        assert_eq!(ladder.rung().height, 720);
        assert!(ladder.poll_step().is_none());
        assert!(ladder.target_bps() < 150_000);
        // The same figure, measured, steps down at once.
        ladder.handle_estimate(at(300), 150_000.0);
        assert_eq!(ladder.rung().label(), "424x240@30");
    }

    #[test]
    fn a_guess_no_probe_measures_is_followed_after_2_s() {
        let mut ladder = Ladder::new(1280, 720, 30);
        encode(&mut ladder, 0, 10, 51);
        ladder.follow(at(300), 150_000.0, false);
        encode(&mut ladder, 1_300, 30, 51);
        ladder.follow(at(2_200), 150_000.0, false);
        assert_eq!(ladder.rung().height, 720, "1.9 s after the first estimate");
        ladder.follow(at(2_300), 150_000.0, false);
        assert_eq!(ladder.rung().label(), "424x240@30");
    }

    #[test]
    fn climbing_back_waits_for_the_budget_to_hold_and_never_soon_after_a_step_down() {
        let mut ladder = Ladder::new(1280, 720, 30);
        encode(&mut ladder, 0, 10, 51);
        ladder.handle_estimate(at(300), 150_000.0);
        assert_eq!(ladder.rung().height, 240);
        std::iter::from_fn(|| ladder.poll_step()).for_each(drop);
        // More again at once: held for UP_HOLD_AFTER_DOWN, then UP_AFTER, then as far up as
        // the budget pays for in one step: 700 kbit/s pays for 540p, not 720p.
        let mut millis = 400;
        while ladder.rung().height == 240 {
            ladder.handle_estimate(at(millis), 700_000.0);
            millis += 100;
        }
        let first_climb = millis - 100;
        assert!(
            first_climb >= 300 + 8_000 + 4_000,
            "climbed at {first_climb} ms"
        );
        assert_eq!(ladder.rung().height, 540);
        let step = ladder.poll_step().expect("a step");
        assert_eq!(
            (step.from.as_str(), step.to.as_str()),
            ("424x240@30", "960x540@30")
        );
        for _ in 0..39 {
            ladder.handle_estimate(at(millis), 3_000_000.0);
            millis += 100;
        }
        assert_eq!(
            ladder.rung().height,
            540,
            "the next climb holds for UP_AFTER too"
        );
        for _ in 0..10 {
            ladder.handle_estimate(at(millis), 3_000_000.0);
            millis += 100;
        }
        assert_eq!(ladder.rung().label(), "1280x720@30");
        assert_eq!(ladder.limitation(), Limitation::None);
    }

    #[test]
    fn an_encoder_that_cannot_keep_up_steps_down_for_cpu() {
        let mut ladder = Ladder::new(1280, 720, 30);
        let interval = Duration::from_millis(33);
        for frame in 0..100 {
            ladder.handle_encode_time(at(frame * 33), Duration::from_millis(30), interval);
        }
        let step = ladder.poll_step().expect("a step");
        assert_eq!(step.reason, Limitation::Cpu);
        assert_eq!(ladder.rung().height, 540);
        assert_eq!(ladder.limitation(), Limitation::Cpu);
        // Ample bandwidth and an encoder at ease at 540p: 720p is not tried again (and the
        // limitation stays the CPU's) until CPU_HOLD has passed.
        let stepped = 3_300;
        let mut millis = stepped;
        while ladder.rung().height == 540 {
            encode(&mut ladder, millis, 3, 20);
            ladder.handle_estimate(at(millis + 100), 3_000_000.0);
            if millis < stepped + 59_000 {
                assert_eq!(ladder.limitation(), Limitation::Cpu, "at {millis} ms");
            }
            millis += 100;
        }
        let climbed = millis - 100;
        assert!(
            (stepped + 60_000..stepped + 66_000).contains(&climbed),
            "climbed at {climbed} ms"
        );
    }

    #[test]
    fn the_audio_is_paid_first_and_shrinks_on_a_narrow_path() {
        // Corners in order, each slope below 1: the video's budget grows with the estimate,
        // so it has an inverse.
        for pair in AUDIO_SHARE.windows(2) {
            let slope = (pair[1].1 - pair[0].1) / (pair[1].0 - pair[0].0);
            assert!(
                pair[0].0 < pair[1].0 && (0.0..1.0).contains(&slope),
                "{pair:?}"
            );
        }
        assert_eq!(audio_bitrate_bps(2_000_000.0), AUDIO_MAX_BPS);
        for budget in [30_000.0, 150_000.0, 300_000.0, 1_000_000.0, 2_500_000.0] {
            let back = video_budget_bps(estimate_for_budget_bps(budget));
            assert!((back - budget).abs() < 1.0, "{budget} came back as {back}");
        }
        assert_eq!(audio_bitrate_bps(50_000.0), AUDIO_MIN_BPS);
        // Above 20 kbit/s, where Opus keeps wideband with its FEC, from 100 kbit/s on.
        assert!((20_000..21_000).contains(&audio_bitrate_bps(100_000.0)));
        assert_eq!(audio_bitrate_bps(130_000.0), 24_000);
        assert_eq!(audio_bitrate_bps(350_000.0), 40_000);
        for estimate in [
            45_000.0, 60_000.0, 100_000.0, 150_000.0, 400_000.0, 600_000.0,
        ] {
            let back = estimate_for_budget_bps(video_budget_bps(estimate));
            assert!(
                (back - estimate).abs() < 1.0,
                "{estimate} came back as {back}"
            );
        }
        assert!(video_budget_bps(30_000.0) <= 0.0);
        let budget = video_budget_bps(1_000_000.0);
        assert!((880_000.0..=920_000.0).contains(&budget), "{budget}");
    }
}
