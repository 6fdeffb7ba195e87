//! `callscope bench network`: callscope-to-callscope video calls on 127.0.0.1 through named
//! network profiles, impaired on the caller's side of the link (`--impair`, both directions),
//! the caller sending a camera-like file and recorded speech. Per profile it prints how long
//! the video took to adapt, its frame rate after (p10 and median, whole seconds), freezes and the
//! share of time frozen, glass-to-glass delay, the share of audio concealed, and an audio score:
//! PESQ (ITU-T P.862, wideband) of what the callee heard against the speech sent.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use callscope::engine::{Behaviour, EngineCommand, Script};
use callscope::event::{CallStats, Event, WarningState};
use callscope::media::impair::LinkRule;
use callscope::media::{DeviceChoice, FrameSlot, FrameSlots, MediaConfig};
use callscope::model::{CallStatus, MediaType};
use callscope::signaling::usersig::Keyring;
use callscope::signaling::{Server, ServerConfig};
use callscope::timeline::{Clock, TimelineEntry};

use super::bench_abuse::percentiles;
use super::bench_call::percentile;
use super::bench_chromium::{self, Chromium};
use super::bench_client::{BenchClient, SECRET, first_frame_slot, wait};

/// Options of `callscope bench network`.
#[derive(Debug, clap::Args)]
pub struct NetworkBenchArgs {
    /// The profiles to run, comma-separated (default: every one): clean, cap-300k, cap-150k,
    /// loss5-rtt200, poor-3g, drop, step. Or a link of your own, `NAME=IMPAIRMENT` as `--impair`
    /// takes it, one per `--profiles` (`--profiles lossy=loss=5%,delay=50ms`).
    #[arg(long)]
    pub profiles: Vec<String>,
    /// Seconds of media per call (`step` runs three times this: open, capped, open).
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// The caller's camera: a YUV4MPEG2 file (`bash .ci/bench-network` makes one).
    #[arg(long, default_value = "target/bench-media/camera-720p.y4m")]
    pub camera: PathBuf,
    /// The caller's speech: a 16-bit PCM WAV, also the reference the audio is scored against.
    #[arg(long, default_value = "target/bench-media/speech-48k.wav")]
    pub speech: PathBuf,
    /// The Python that has `pesq` (default: `$CALLSCOPE_BENCH_PYTHON`, else
    /// `target/bench-venv/bin/python`); without it the audio is not scored.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Keep what the callee heard, one WAV per profile's call, in this directory (default: a
    /// temporary one, removed after scoring).
    #[arg(long, value_name = "DIR")]
    pub recordings: Option<PathBuf>,
    /// Print the figures as JSON, one object per profile.
    #[arg(long)]
    pub json: bool,
    /// Also print each second of each call: what the caller sent, and what the callee got.
    #[arg(long)]
    pub each_second: bool,
    /// Skip the reference: a headless Chromium called through the same profiles.
    #[arg(long)]
    pub no_reference: bool,
    /// The Chromium to run as the reference (default: Debian's `chromium`, if installed).
    #[arg(long, value_name = "PATH")]
    pub chromium: Option<PathBuf>,
}

/// A named network: what the caller's link does, and what it changes to over the call.
struct Profile<'a> {
    name: &'a str,
    /// The impairment of each phase (one phase for all but `step`).
    phases: Cow<'a, [&'a str]>,
}

impl<'a> Profile<'a> {
    /// The profile `choice` names: one of [`PROFILES`], or `NAME=IMPAIRMENT`.
    fn chosen(choice: &'a str) -> anyhow::Result<Self> {
        if let Some((name, rule)) = choice.split_once('=') {
            rule.parse::<LinkRule>()
                .with_context(|| format!("profile {name:?}"))?;
            return Ok(Self {
                name,
                phases: Cow::Owned(vec![rule]),
            });
        }
        PROFILES
            .iter()
            .find(|profile| profile.name == choice)
            .map(Self::named)
            .with_context(|| format!("no profile {choice:?}"))
    }

    fn named(profile: &'static Profile<'static>) -> Self {
        Self {
            name: profile.name,
            phases: Cow::Borrowed(&profile.phases),
        }
    }
}

static PROFILES: [Profile<'static>; 7] = [
    Profile {
        name: "clean",
        phases: Cow::Borrowed(&["none"]),
    },
    Profile {
        name: "cap-300k",
        phases: Cow::Borrowed(&["rate=300kbit"]),
    },
    Profile {
        name: "cap-150k",
        phases: Cow::Borrowed(&["rate=150kbit"]),
    },
    Profile {
        name: "loss5-rtt200",
        phases: Cow::Borrowed(&["loss=5%,delay=100ms,jitter=20ms"]),
    },
    Profile {
        name: "poor-3g",
        phases: Cow::Borrowed(&["rate=400kbit,delay=175ms,loss=5%"]),
    },
    Profile {
        name: "drop",
        phases: Cow::Borrowed(&["rate=50kbit,delay=250ms,loss=20%"]),
    },
    Profile {
        name: "step",
        phases: Cow::Borrowed(&["rate=2000kbit", "rate=300kbit", "rate=2000kbit"]),
    },
];

/// What one profile's call measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Figures {
    profile: String,
    /// From the first frame until the frame rate reached 90 % of its later median and stayed
    /// there for three seconds.
    adapt_s: Option<f64>,
    fps_p10: f64,
    fps_median: f64,
    freezes: u64,
    frozen_pct: f64,
    glass_to_glass_ms: [f64; 2],
    concealed_pct: f64,
    audio_score: Option<f64>,
    /// The caller's sent bitrate and estimate, medians over the call (kbit/s).
    sent_kbps: f64,
    estimate_kbps: f64,
    /// `step`: seconds after the cap lifted until the caller sent 90 % of what it sent before.
    recovered_s: Option<f64>,
    /// The quality warnings raised during the call, either side.
    warnings: Vec<String>,
    /// The caller's video's last rung.
    last_rung: String,
}

/// Runs the profiles and prints their figures.
pub fn network(args: &NetworkBenchArgs) -> anyhow::Result<()> {
    if args.seconds < 6.0 {
        bail!("--seconds must be at least 6");
    }
    for file in [&args.camera, &args.speech] {
        if !file.is_file() {
            bail!(
                "{} is missing: `bash .ci/bench-network` makes the test media (ffmpeg, espeak-ng)",
                file.display()
            );
        }
    }
    let profiles: Vec<Profile> = if args.profiles.is_empty() {
        PROFILES.iter().map(Profile::named).collect()
    } else {
        args.profiles
            .iter()
            .flat_map(|choice| {
                if choice.contains('=') {
                    vec![choice.as_str()]
                } else {
                    choice.split(',').collect()
                }
            })
            .map(Profile::chosen)
            .collect::<anyhow::Result<_>>()?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-io")
        .enable_all()
        .build()?;
    let config = ServerConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Keyring::single(SECRET),
    );
    let server = runtime.block_on(Server::start(config))?;
    let recordings = args.recordings.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("callscope-bench-network-{}", std::process::id()))
    });
    let pair = Pair::start(&runtime, &server.url(), args, &recordings);
    let chromium = reference(args, &server.url());
    let mut outcome = Ok(());
    for profile in &profiles {
        match pair.run(profile, args, &recordings) {
            Ok(figures) => print(&figures, args.json),
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
        if let Some(chromium) = &chromium {
            match pair.run_reference(profile, args, chromium) {
                Ok(reference) => reference.print(args.json),
                Err(error) => eprintln!("{}: the reference call failed: {error:#}", profile.name),
            }
        }
    }
    drop(chromium);
    runtime.block_on(server.shutdown());
    if args.recordings.is_none() {
        // The recordings were only for scoring.
        let _ = std::fs::remove_dir_all(&recordings);
    }
    outcome
}

/// The caller (whose link is impaired) and the callee (who records what it hears).
struct Pair {
    caller: BenchClient,
    callee: BenchClient,
}

impl Pair {
    fn start(
        runtime: &tokio::runtime::Runtime,
        url: &str,
        args: &NetworkBenchArgs,
        recordings: &Path,
    ) -> Self {
        let clock = Clock::start();
        let sender_media = MediaConfig {
            camera: DeviceChoice::File(args.camera.clone()),
            microphone: DeviceChoice::File(args.speech.clone()),
            frames: FrameSlots::default(),
            ..MediaConfig::synthetic()
        };
        let listener_media = MediaConfig {
            frames: FrameSlots::default(),
            record_audio: Some(recordings.to_owned()),
            ..MediaConfig::synthetic()
        };
        let answer = Some(Script::new(Behaviour::Answer {
            after: Duration::from_millis(300),
        }));
        Self {
            callee: BenchClient::start(
                runtime,
                url,
                "net-callee",
                &clock,
                listener_media,
                false,
                answer,
            ),
            caller: BenchClient::start(
                runtime,
                url,
                "net-caller",
                &clock,
                sender_media,
                false,
                None,
            ),
        }
    }

    fn impair(&self, rule: &str) -> anyhow::Result<()> {
        let rule: LinkRule = rule.parse()?;
        self.caller
            .commands
            .try_send(EngineCommand::Impair(rule))
            .context("the caller is not taking commands")
    }

    /// One call to the callee through `profile`.
    fn run(
        &self,
        profile: &Profile,
        args: &NetworkBenchArgs,
        recordings: &Path,
    ) -> anyhow::Result<Figures> {
        let seq = self.callee.kit.timeline().last_seq();
        let call = self.call("net-callee", (&self.callee, "net-caller"), profile, args)?;
        wait("for the callee to hang up", || {
            self.callee.status() == CallStatus::Idle
        })?;
        if args.each_second {
            print_each_second(
                &stats(&self.caller.entries_since(call.seq), "net-callee"),
                &stats(&self.callee.entries_since(seq), "net-caller"),
            );
        }
        let mut figures = self.figures(profile, &call, seq);
        figures.audio_score = call.id.as_ref().and_then(|call_id| {
            let heard = recordings.join(format!("{call_id}-net-caller.wav"));
            score_audio(args, &heard)
        });
        std::thread::sleep(Duration::from_millis(500));
        Ok(figures)
    }

    /// One call to Chromium through `profile`: both directions' video, as each end decoded it.
    fn run_reference(
        &self,
        profile: &Profile,
        args: &NetworkBenchArgs,
        chromium: &Chromium,
    ) -> anyhow::Result<Reference> {
        chromium.clear();
        let call = self.call(
            bench_chromium::USER,
            (&self.caller, bench_chromium::USER),
            profile,
            args,
        )?;
        let lines = chromium.stats_of(call.id.as_deref().unwrap_or_default())?;
        let sent = stats(&self.caller.entries_since(call.seq), bench_chromium::USER);
        std::thread::sleep(Duration::from_millis(500));
        Ok(Reference {
            profile: profile.name.to_owned(),
            to_browser: Direction::of_ours(&lines, &sent, call.seconds.len()),
            from_browser: Direction::of_chromium(&lines, &call),
        })
    }

    /// Dials `callee` through `profile`'s phases, counting each second's frames that
    /// `receiver` shows from `sender`, then hangs up.
    fn call(
        &self,
        callee: &str,
        (receiver, sender): (&BenchClient, &str),
        profile: &Profile,
        args: &NetworkBenchArgs,
    ) -> anyhow::Result<Call> {
        let seq = self.caller.kit.timeline().last_seq();
        self.impair(profile.phases[0])?;
        self.caller
            .commands
            .try_send(EngineCommand::Dial {
                callees: vec![callee.to_owned()],
                media: MediaType::Video,
                group: false,
                timeout_secs: 30,
            })
            .context("the caller is not taking commands")?;
        // On a path too narrow for video (the audio alone goes through), none comes: the
        // figures say so and the audio is still measured.
        let slot =
            first_frame_slot(receiver, sender).unwrap_or_else(|_| Arc::new(FrameSlot::default()));
        let before = Frozen::of(&slot);
        let phase = Duration::from_secs_f64(args.seconds);
        let mut seconds = Vec::new();
        // When each phase began, on the timeline's wall clock.
        let mut phase_starts = Vec::new();
        for (index, rule) in profile.phases.iter().enumerate() {
            if index > 0 {
                self.impair(rule)?;
            }
            let clock = self.caller.kit.clock();
            phase_starts.push(clock.stamp(clock.now()).wall_millis);
            seconds.extend(frames_per_second(&slot, phase));
        }
        let id = self
            .caller
            .kit
            .timeline()
            .since(seq, usize::MAX)
            .iter()
            .find_map(|entry| entry.call_id.clone());
        self.caller
            .commands
            .try_send(EngineCommand::Hangup)
            .context("the caller is not taking commands")?;
        wait("for the caller to hang up", || {
            self.caller.status() == CallStatus::Idle
        })?;
        let frozen = Frozen::of(&slot).since(before);
        Ok(Call {
            seq,
            id,
            slot,
            seconds,
            phase_starts,
            frozen,
        })
    }

    fn figures(&self, profile: &Profile, call: &Call, callee_seq: u64) -> Figures {
        let seconds = &call.seconds;
        let adapt = adapt_seconds(seconds);
        let mut after: Vec<f64> = seconds[adapt.unwrap_or(0)..].to_vec();
        let ours = self.caller.entries_since(call.seq);
        let theirs = self.callee.entries_since(callee_seq);
        let sent = stats(&ours, "net-callee");
        let heard = stats(&theirs, "net-caller");

        let mut glass: Vec<f64> = call
            .slot
            .glass_to_glass_samples()
            .into_iter()
            .map(|micros| f64::from(micros) / 1000.0)
            .collect();
        Figures {
            profile: profile.name.to_owned(),
            adapt_s: adapt.map(|index| index as f64),
            fps_p10: percentile(&mut after, 0.1),
            fps_median: percentile(&mut after, 0.5),
            freezes: call.frozen.freezes,
            frozen_pct: call.frozen.percent_of(seconds.len()),
            glass_to_glass_ms: percentiles(&mut glass),
            concealed_pct: mean(heard.iter().map(|(_, stats)| stats.playout.concealed_pct)),
            audio_score: None,
            sent_kbps: median_of(&sent, |stats| stats.sending.sent_kbps),
            estimate_kbps: median_of(&sent, |stats| stats.sending.estimate_kbps),
            recovered_s: recovery_seconds(&sent, &call.phase_starts),
            warnings: warnings(&ours).chain(warnings(&theirs)).collect(),
            last_rung: last_rung(&ours),
        }
    }
}

/// The headless Chromium the profiles are also run against, unless `--no-reference`; without
/// one, says why on stderr.
fn reference(args: &NetworkBenchArgs, server: &str) -> Option<Chromium> {
    if args.no_reference {
        return None;
    }
    let Some(binary) = Chromium::find(args.chromium.as_deref()) else {
        eprintln!("no reference: chromium is not installed (`bash .ci/bench-network` installs it)");
        return None;
    };
    match Chromium::start(&binary, server, &args.camera, &args.speech) {
        Ok(chromium) => {
            eprintln!(
                "reference: {} (`--no-reference` skips it)",
                chromium.version
            );
            Some(chromium)
        }
        Err(error) => {
            eprintln!("no reference: {error:#}");
            None
        }
    }
}

/// One call through a profile: what the caller's timeline held before it, its id, and the
/// frames the watched receiver showed.
struct Call {
    seq: u64,
    id: Option<String>,
    slot: Arc<FrameSlot>,
    /// Frames shown in each second of the call.
    seconds: Vec<f64>,
    /// When each phase began, on the timeline's wall clock (ms).
    phase_starts: Vec<u64>,
    frozen: Frozen,
}

/// Freezes of one stream, W3C's way, and their time together.
#[derive(Debug, Clone, Copy)]
struct Frozen {
    freezes: u64,
    micros: u64,
}

impl Frozen {
    fn of(slot: &FrameSlot) -> Self {
        let counters = &slot.counters;
        Self {
            freezes: counters.freezes.load(std::sync::atomic::Ordering::Relaxed),
            micros: counters
                .frozen_micros
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            freezes: self.freezes.saturating_sub(before.freezes),
            micros: self.micros.saturating_sub(before.micros),
        }
    }

    /// The share of `seconds` frozen, in percent.
    fn percent_of(self, seconds: usize) -> f64 {
        self.micros as f64 / 1e6 / seconds.max(1) as f64 * 100.0
    }
}

/// The reference call of one profile: the caller's video as Chromium decoded it, and
/// Chromium's as the caller decoded it, on the same link at the same time.
#[derive(Debug, serde::Serialize)]
struct Reference {
    profile: String,
    to_browser: Direction,
    from_browser: Direction,
}

/// One direction of the reference call.
#[derive(Debug, serde::Serialize)]
struct Direction {
    adapt_s: Option<f64>,
    fps_p10: f64,
    fps_median: f64,
    freezes: u64,
    frozen_pct: f64,
    /// What its sender sent, median over the call (kbit/s).
    sent_kbps: f64,
    /// Its sender's last resolution, and why it was limited then.
    resolution: String,
    limitation: String,
}

impl Direction {
    /// Ours, from the page's `video_in` and our own sending statistics.
    fn of_ours(lines: &[serde_json::Value], sent: &[(u64, CallStats)], seconds: usize) -> Self {
        let last = lines.last().cloned().unwrap_or_default();
        let video_in = &last["video_in"];
        let frozen_s = video_in["totalFreezesDuration"].as_f64().unwrap_or(0.0);
        let sending = sent.last().map(|(_, stats)| &stats.sending);
        Self {
            freezes: video_in["freezeCount"].as_u64().unwrap_or(0),
            frozen_pct: frozen_s / seconds.max(1) as f64 * 100.0,
            sent_kbps: median_of(sent, |stats| stats.sending.sent_kbps),
            resolution: sending.map_or_else(String::new, |s| s.sent_resolution.clone()),
            limitation: sending
                .map_or_else(String::new, |s| s.quality_limitation.as_str().to_owned()),
            ..Self::rates(&bench_chromium::frames_per_second(lines))
        }
    }

    /// Chromium's, from what we decoded and the page's `video_out`.
    fn of_chromium(lines: &[serde_json::Value], call: &Call) -> Self {
        let last = lines.last().cloned().unwrap_or_default();
        let video_out = &last["video_out"];
        Self {
            freezes: call.frozen.freezes,
            frozen_pct: call.frozen.percent_of(call.seconds.len()),
            sent_kbps: percentile(&mut bench_chromium::sent_kbps(lines), 0.5),
            resolution: format!(
                "{}x{}",
                video_out["frameWidth"].as_u64().unwrap_or(0),
                video_out["frameHeight"].as_u64().unwrap_or(0)
            ),
            limitation: video_out["qualityLimitationReason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ..Self::rates(&call.seconds)
        }
    }

    /// The adaptation time and frame rates after it, of frames counted each second.
    fn rates(seconds: &[f64]) -> Self {
        let adapt = adapt_seconds(seconds);
        let mut after = seconds[adapt.unwrap_or(0).min(seconds.len())..].to_vec();
        Self {
            adapt_s: adapt.map(|index| index as f64),
            fps_p10: percentile(&mut after, 0.1),
            fps_median: percentile(&mut after, 0.5),
            freezes: 0,
            frozen_pct: 0.0,
            sent_kbps: 0.0,
            resolution: String::new(),
            limitation: String::new(),
        }
    }
}

impl Reference {
    fn print(&self, json: bool) {
        if json {
            if let Ok(line) = serde_json::to_string(self) {
                println!("{line}");
            }
            return;
        }
        for (label, direction) in [
            ("to Chromium", &self.to_browser),
            ("from Chromium", &self.from_browser),
        ] {
            println!(
                "{:<13}   {label:<13} adapt {:>6}  fps p10 {:>4.1} median {:>4.1}  freezes {:>2} \
                 ({:.1} % frozen)  sent {:.0} kbit/s  last {} ({})",
                self.profile,
                direction
                    .adapt_s
                    .map_or_else(|| "-".to_owned(), |value| format!("{value:.1} s")),
                direction.fps_p10,
                direction.fps_median,
                direction.freezes,
                direction.frozen_pct,
                direction.sent_kbps,
                direction.resolution,
                direction.limitation,
            );
        }
    }
}

/// Frames decoded in each whole second of `span`.
fn frames_per_second(slot: &FrameSlot, span: Duration) -> Vec<f64> {
    let started = Instant::now();
    let mut last = slot.generation();
    let mut per_second = Vec::new();
    for second in 1..=span.as_secs() {
        let due = started + Duration::from_secs(second);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let now = slot.generation();
        per_second.push((now - last) as f64);
        last = now;
    }
    per_second
}

/// The first second from which three seconds in a row reach 90 % of the median of the
/// second half.
fn adapt_seconds(seconds: &[f64]) -> Option<usize> {
    let mut later = seconds[seconds.len() / 2..].to_vec();
    let steady = percentile(&mut later, 0.5);
    if steady <= 0.0 {
        return None;
    }
    seconds
        .windows(3)
        .position(|window| window.iter().all(|fps| *fps >= 0.9 * steady))
}

/// `step` (three phases: open, capped, open): seconds after the cap lifted until the caller
/// sent 90 % of the median of the second half of the first open phase. Times are the
/// statistics' own, on the wall clock, as are `phase_starts`.
fn recovery_seconds(sent: &[(u64, CallStats)], phase_starts: &[u64]) -> Option<f64> {
    let &[first, capped, lifted] = phase_starts else {
        return None;
    };
    let settled = first + (capped - first) / 2;
    let mut open: Vec<f64> = sent
        .iter()
        .filter(|(at, _)| (settled..capped).contains(at))
        .map(|(_, stats)| stats.sending.sent_kbps)
        .collect();
    let goal = 0.9 * percentile(&mut open, 0.5);
    sent.iter()
        .find(|(at, stats)| *at >= lifted && stats.sending.sent_kbps >= goal)
        .map(|(at, _)| (at - lifted) as f64 / 1_000.0)
}

/// The statistics of `other` in `entries`, each with its wall-clock time in ms.
fn stats(entries: &[Arc<TimelineEntry>], other: &str) -> Vec<(u64, CallStats)> {
    entries
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::CallStats(stats) if stats.user_id == other => {
                Some((entry.at.wall_millis, stats.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Each second's statistics of the caller (what it sent) beside the callee's (what it got).
fn print_each_second(sent: &[(u64, CallStats)], heard: &[(u64, CallStats)]) {
    let start = sent.first().map_or(0, |(at, _)| *at);
    println!(
        "{:>6}  {:>22} {:>5} {:>6} {:>6}  | {:>5} {:>7} {:>6} {:>5} {:>5} {:>5} {:>6}",
        "s",
        "sent",
        "fps",
        "kbit/s",
        "est",
        "fps",
        "freezes",
        "ms",
        "nacks",
        "fixed",
        "keys",
        "loss %"
    );
    for (at, sending) in sent {
        let Some((_, got)) = heard.iter().min_by_key(|(when, _)| when.abs_diff(*at)) else {
            continue;
        };
        println!(
            "{:>6.1}  {:>22} {:>5.1} {:>6.0} {:>6.0}  | {:>5.1} {:>7} {:>6} {:>5} {:>5} {:>5} {:>6.1}",
            at.saturating_sub(start) as f64 / 1000.0,
            sending.sending.sent_resolution,
            sending.sending.sent_fps,
            sending.sending.sent_kbps,
            sending.sending.estimate_kbps,
            got.fps,
            got.playout.freeze_count,
            got.playout.freeze_ms,
            got.nacks,
            got.repaired,
            got.key_frame_requests,
            got.loss_pct,
        );
    }
}

/// The quality warnings raised in `entries`.
fn warnings(entries: &[Arc<TimelineEntry>]) -> impl Iterator<Item = String> + '_ {
    entries.iter().filter_map(|entry| match &entry.event {
        Event::QualityWarning {
            user_id,
            name,
            state: WarningState::Raised,
            ..
        } => Some(format!("{name} ({user_id})")),
        _ => None,
    })
}

/// The rung of our video's last step in `entries`.
fn last_rung(entries: &[Arc<TimelineEntry>]) -> String {
    entries
        .iter()
        .rev()
        .find_map(|entry| match &entry.event {
            Event::LocalVideoAdapted { to, .. } => Some(to.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "its own".to_owned())
}

/// The median of one figure of `stats`.
fn median_of(stats: &[(u64, CallStats)], figure: impl Fn(&CallStats) -> f64) -> f64 {
    percentile(
        &mut stats
            .iter()
            .map(|(_, stats)| figure(stats))
            .collect::<Vec<_>>(),
        0.5,
    )
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The PESQ wideband score of `heard` against the speech sent, from `benches/score_audio.py`;
/// `None` (said on stderr) when it cannot be had.
fn score_audio(args: &NetworkBenchArgs, heard: &Path) -> Option<f64> {
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("CALLSCOPE_BENCH_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/bench-venv/bin/python"));
    let output = Command::new(&python)
        .arg("benches/score_audio.py")
        .arg(&args.speech)
        .arg(heard)
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!(
                "the audio was not scored: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        Err(error) => {
            eprintln!("the audio was not scored ({}): {error}", python.display());
            return None;
        }
    };
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    value["pesq"].as_f64()
}

fn print(figures: &Figures, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(figures) {
            println!("{line}");
        }
        return;
    }
    let optional = |value: Option<f64>, unit: &str| {
        value.map_or_else(|| "-".to_owned(), |value| format!("{value:.1}{unit}"))
    };
    println!(
        "{:<13} adapt {:>6}  fps p10 {:>4.1} median {:>4.1}  freezes {:>2} ({:.1} % frozen)  \
         glass-to-glass p50 {:.0} ms p95 {:.0} ms  concealed {:.1} %  audio {:>4}  \
         sent {:.0} kbit/s (estimate {:.0})  back {}  rung {}",
        figures.profile,
        optional(figures.adapt_s, " s"),
        figures.fps_p10,
        figures.fps_median,
        figures.freezes,
        figures.frozen_pct,
        figures.glass_to_glass_ms[0],
        figures.glass_to_glass_ms[1],
        figures.concealed_pct,
        optional(figures.audio_score, ""),
        figures.sent_kbps,
        figures.estimate_kbps,
        optional(figures.recovered_s, " s"),
        figures.last_rung,
    );
    if !figures.warnings.is_empty() {
        println!("{:<13} warnings: {}", "", figures.warnings.join(", "));
    }
}
