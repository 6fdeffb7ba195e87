//! `callscope bench call`: N video calls between two callscope clients on 127.0.0.1 (in this
//! process, through a real signaling server), then the same N calls between two aiortc peers as
//! the reference. For each it prints p50/p95 of accept → media connected, accept → first remote
//! frame ready for the UI, glass-to-glass (capture timestamp → RGBA frame handed to the UI), and
//! CPU seconds per call-second.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use callscope::engine::{Behaviour, EngineCommand, Script, sign_user_sig};
use callscope::event::{ConnectionState, Event, SendingStats};
use callscope::media::{FrameSlot, FrameSlots, MediaConfig, Resolution, Ringing};
use callscope::model::{CallStatus, MediaType};
use callscope::signaling::usersig::Keyring;
use callscope::signaling::{Server, ServerConfig};
use callscope::timeline::Clock;

use super::bench_client::{BenchClient, SECRET, first_frame_slot, wait};

/// Options of `callscope bench call`.
// Command-line switches are bools by nature.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, clap::Args)]
pub struct CallBenchArgs {
    /// Calls to place, one after another.
    #[arg(long, default_value_t = 10)]
    pub calls: usize,
    /// Seconds of media per call.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Video resolution sent both ways.
    #[arg(long, default_value = "720p")]
    pub resolution: Resolution,
    /// The Python that has aiortc (default: `$CALLSCOPE_AIORTC_PYTHON`, else
    /// `target/interop-venv/bin/python`).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Measure callscope only, without the aiortc reference.
    #[arg(long)]
    pub no_reference: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Whether the callee's ringing is private (the default); `--private-ringing=false` lets
    /// it prepare the connection while it rings, which is what privacy costs.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub private_ringing: bool,
    /// Both callscope clients share their traces (and hear each other's and the server's), to
    /// measure what sharing costs.
    #[arg(long)]
    pub share_trace: bool,
    /// Impair the caller's media links (as `callscope call --impair`); repeatable.
    #[arg(long = "impair", value_name = "RULE")]
    pub impair: Vec<callscope::media::impair::LinkRule>,
    /// Halfway through each call the caller cuts all media this long; the figure is how soon
    /// after the cut ends the callee decodes a frame again.
    #[arg(long, value_name = "SECS")]
    pub cut_media: Option<f64>,
}

/// How long the callscope callee rings before it accepts.
const RINGING: Duration = Duration::from_millis(500);

/// What one call measured, in milliseconds (CPU as seconds per call-second).
#[derive(Debug, Clone, Default, serde::Serialize)]
struct CallFigures {
    accept_to_connected_millis: f64,
    accept_to_first_frame_millis: f64,
    glass_to_glass_millis: Vec<f64>,
    cpu_per_call_second: f64,
    fps: f64,
    /// Entries of the other side and the server that both clients recorded (sharing traces).
    other_sides_entries: usize,
    /// From the end of the media cut to the callee's next decoded frame.
    recovery_millis: Option<f64>,
    /// The caller's mean `sent_kbps` over the call.
    sent_kbps: f64,
    /// The picture the caller sent last (`1280x720`).
    sent_resolution: String,
}

/// p50 and p95 of each figure over every call of one stack.
#[derive(Debug, Clone, serde::Serialize)]
struct Summary {
    stack: &'static str,
    calls: usize,
    connected_ms: [f64; 2],
    first_frame_ms: [f64; 2],
    glass_to_glass_ms: [f64; 2],
    cpu_per_call_second: [f64; 2],
    fps_p50: f64,
    other_sides_entries: usize,
    /// From the end of a media cut to the next decoded frame, when cut (`--cut-media`).
    recovery_ms: Option<[f64; 2]>,
}

/// The `fraction` percentile of `values` (nearest rank), `NaN` when empty.
pub(super) fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let last = values.len() - 1;
    let rank = (last as f64 * fraction).round();
    // Within 0..=last, so the conversion is exact.
    values[usize::try_from(rank as i64).unwrap_or(last).min(last)]
}

fn summarize(stack: &'static str, figures: &[CallFigures]) -> Summary {
    let pair = |pick: &dyn Fn(&CallFigures) -> f64| {
        let mut values: Vec<f64> = figures.iter().map(pick).collect();
        [percentile(&mut values, 0.5), percentile(&mut values, 0.95)]
    };
    let mut glass: Vec<f64> = figures
        .iter()
        .flat_map(|call| call.glass_to_glass_millis.iter().copied())
        .collect();
    let mut fps: Vec<f64> = figures.iter().map(|call| call.fps).collect();
    let mut recovery: Vec<f64> = figures
        .iter()
        .filter_map(|call| call.recovery_millis)
        .collect();
    let recovery_ms = (!recovery.is_empty()).then(|| {
        [
            percentile(&mut recovery, 0.5),
            percentile(&mut recovery, 0.95),
        ]
    });
    Summary {
        recovery_ms,
        stack,
        calls: figures.len(),
        connected_ms: pair(&|call| call.accept_to_connected_millis),
        first_frame_ms: pair(&|call| call.accept_to_first_frame_millis),
        glass_to_glass_ms: [percentile(&mut glass, 0.5), percentile(&mut glass, 0.95)],
        cpu_per_call_second: pair(&|call| call.cpu_per_call_second),
        fps_p50: percentile(&mut fps, 0.5),
        other_sides_entries: figures.iter().map(|call| call.other_sides_entries).sum(),
    }
}

/// CPU seconds this process has used (user + system), from `/proc`.
fn process_cpu_secs() -> f64 {
    super::bench::cpu_secs("self")
}

/// Runs the benchmark and prints the figures.
pub fn call(args: &CallBenchArgs) -> anyhow::Result<()> {
    if args.calls == 0 || args.seconds <= 0.0 {
        bail!("--calls and --seconds must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-io")
        .enable_all()
        .build()?;
    let mut config = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Keyring::single(SECRET),
    );
    // The aiortc reference looks its callee up in the contact list.
    config.list_online_users = true;
    let server = runtime.block_on(Server::start(config))?;
    let url = server.url();
    if !args.json {
        println!(
            "callscope bench call: {} calls of {} s at {:?} on {url}",
            args.calls, args.seconds, args.resolution
        );
    }
    let ours = measure_callscope(&runtime, &url, args)?;
    let mut summaries = vec![summarize("callscope", &ours)];
    if !args.no_reference {
        let reference = measure_aiortc(&url, args)?;
        summaries.push(summarize("aiortc", &reference));
    }
    runtime.block_on(server.shutdown());
    let floor = codec_floor(args.resolution)?;
    print_summaries(&summaries, &floor, args);
    Ok(())
}

/// The CPU a call cannot go below: encoding and decoding (to the RGBA the UI takes) the same
/// frames alone, at 30 fps, for both ends of a call.
#[derive(Debug, Clone, serde::Serialize)]
struct CodecFloor {
    frames: usize,
    encode_ms_per_frame: f64,
    decode_ms_per_frame: f64,
    cpu_per_call_second: f64,
}

/// Frames encoded and decoded to measure the floor.
const FLOOR_FRAMES: usize = 300;

fn codec_floor(resolution: Resolution) -> anyhow::Result<CodecFloor> {
    use callscope::media::pattern::TestPattern;
    use callscope::media::video::{VideoDecoder, VideoEncoder};
    let (width, height) = resolution.size();
    let mut pattern = TestPattern::new(width, height, "bench-floor");
    let mut encoder = VideoEncoder::new(resolution, 30)?;
    let mut decoder = VideoDecoder::new()?;
    let frames: Vec<_> = (0..FLOOR_FRAMES)
        .map(|number| pattern.next_frame(number as u64 * 33_333).clone())
        .collect();
    let cpu_at_start = process_cpu_secs();
    let mut units = Vec::with_capacity(FLOOR_FRAMES);
    for (number, frame) in frames.iter().enumerate() {
        units.push(encoder.encode(frame, number == 0)?.to_vec());
    }
    let cpu_after_encoding = process_cpu_secs();
    let mut spare = None;
    for unit in &units {
        if let Some(frame) = decoder.decode_into(unit, spare.take())? {
            spare = Arc::try_unwrap(frame.image).ok();
        }
    }
    let cpu_after_decoding = process_cpu_secs();
    let encode = (cpu_after_encoding - cpu_at_start) / FLOOR_FRAMES as f64;
    let decode = (cpu_after_decoding - cpu_after_encoding) / FLOOR_FRAMES as f64;
    Ok(CodecFloor {
        frames: FLOOR_FRAMES,
        encode_ms_per_frame: encode * 1000.0,
        decode_ms_per_frame: decode * 1000.0,
        // Each end encodes what it sends and decodes what it receives, 30 times a second.
        cpu_per_call_second: (encode + decode) * 30.0 * 2.0,
    })
}

fn print_summaries(summaries: &[Summary], floor: &CodecFloor, args: &CallBenchArgs) {
    let ringing = if args.private_ringing {
        "private"
    } else {
        "prepared"
    };
    if args.json {
        let figures = serde_json::json!({
            "stacks": summaries,
            "codec_floor": floor,
            "callscope_ringing": ringing,
            "share_trace": args.share_trace,
        });
        println!("{figures}");
        return;
    }
    println!(
        "callscope's callee rings {} (--private-ringing={})",
        if args.private_ringing {
            "privately: its answer and checks start at the accept"
        } else {
            "prepared: its answer and checks run while it rings"
        },
        args.private_ringing
    );
    println!(
        "callscope's clients {}",
        if args.share_trace {
            "share their traces with each other and hear the server's (--share-trace)"
        } else {
            "share nothing (add --share-trace to measure what sharing costs)"
        }
    );
    println!(
        "{:<10} {:>5} {:>22} {:>22} {:>22} {:>20} {:>7}",
        "stack",
        "calls",
        "accept→connected ms",
        "accept→1st frame ms",
        "glass-to-glass ms",
        "CPU s/call-s",
        "fps"
    );
    for summary in summaries {
        let pair = |[p50, p95]: [f64; 2]| format!("{p50:.1} / {p95:.1}");
        println!(
            "{:<10} {:>5} {:>22} {:>22} {:>22} {:>20} {:>7.1}",
            summary.stack,
            summary.calls,
            pair(summary.connected_ms),
            pair(summary.first_frame_ms),
            pair(summary.glass_to_glass_ms),
            format!(
                "{:.3} / {:.3}",
                summary.cpu_per_call_second[0], summary.cpu_per_call_second[1]
            ),
            summary.fps_p50
        );
    }
    println!("(p50 / p95; CPU counts both ends of each call)");
    if let [ours, reference] = summaries {
        let ratio = ours.cpu_per_call_second[0] / reference.cpu_per_call_second[0];
        println!("callscope uses {ratio:.2}x aiortc's CPU per call-second (p50)");
    }
    println!(
        "codec floor: {:.2} ms encode + {:.2} ms decode per frame ({} frames) = {:.3} CPU s per call-second",
        floor.encode_ms_per_frame,
        floor.decode_ms_per_frame,
        floor.frames,
        floor.cpu_per_call_second
    );
    if let Some([p50, p95]) = summaries.first().and_then(|ours| ours.recovery_ms) {
        println!(
            "after a {:.1} s media cut the callee decoded a frame again {p50:.1} / {p95:.1} ms \
             after it ended (p50 / p95)",
            args.cut_media.unwrap_or_default()
        );
    }
    if let Some(ours) = summaries.first() {
        let ratio = ours.cpu_per_call_second[0] / floor.cpu_per_call_second;
        println!("callscope uses {ratio:.2}x the codec floor per call-second (p50)");
        println!(
            "entries of the other side and the server recorded by both clients: {}",
            ours.other_sides_entries
        );
    }
}

/// The callee (answering with `answer`) and the caller of `bench call`.
fn start_pair(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    args: &CallBenchArgs,
    clock: &Clock,
    answer: Option<Script>,
) -> (BenchClient, BenchClient) {
    let media = || MediaConfig {
        resolution: args.resolution,
        frames: FrameSlots::default(),
        ringing: Ringing::private(args.private_ringing),
        ..MediaConfig::synthetic()
    };
    let answering = BenchClient::start(
        runtime,
        url,
        "bench-callee",
        clock,
        media(),
        args.share_trace,
        answer,
    );
    let dialing = BenchClient::start(
        runtime,
        url,
        "bench-caller",
        clock,
        media(),
        args.share_trace,
        None,
    );
    (answering, dialing)
}

fn measure_callscope(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    args: &CallBenchArgs,
) -> anyhow::Result<Vec<CallFigures>> {
    let clock = Clock::start();
    // The callee rings for half a second, as a quick person would: what is measured starts at
    // the accept, and the ringing is when both sides prepare (negotiate, warm up the codecs).
    let answer = Some(Script::new(Behaviour::Answer { after: RINGING }));
    let (answering, dialing) = start_pair(runtime, url, args, &clock, answer);
    for rule in &args.impair {
        dialing
            .commands
            .try_send(EngineCommand::Impair(rule.clone()))
            .context("the caller is not taking commands")?;
    }
    let mut figures = Vec::new();
    for number in 1..=args.calls {
        let seq = (
            dialing.kit.timeline().last_seq(),
            answering.kit.timeline().last_seq(),
        );
        let cpu_before = process_cpu_secs();
        let started = Instant::now();
        dialing
            .commands
            .try_send(EngineCommand::Dial {
                callees: vec!["bench-callee".to_owned()],
                media: MediaType::Video,
                group: false,
                timeout_secs: 30,
            })
            .context("the caller is not taking commands")?;
        let slots: [Arc<FrameSlot>; 2] = [
            first_frame_slot(&dialing, "bench-callee")?,
            first_frame_slot(&answering, "bench-caller")?,
        ];
        let accepted = answering
            .instant_of(seq.1, |event| {
                matches!(event, Event::StatusChanged { old_status: CallStatus::BeInvited, new_status } if new_status.is_calling())
            })
            .context("the callee never accepted")?;
        let connected = [
            dialing.instant_of(seq.0, is_connected),
            answering.instant_of(seq.1, is_connected),
        ];
        let connected = connected
            .into_iter()
            .max()
            .flatten()
            .context("a side never reported its media connected")?;
        let first_frame = slots
            .iter()
            .filter_map(|slot| slot.first_frame_at())
            .max()
            .context("no first frame")?;
        let frames_at_start: u64 = slots.iter().map(|slot| slot.generation()).sum();
        let recovery_millis = if let Some(cut) = args.cut_media {
            Some(cut_and_recover(
                &dialing,
                &slots[1],
                seq.0,
                cut,
                args.seconds,
            )?)
        } else {
            std::thread::sleep(Duration::from_secs_f64(args.seconds));
            None
        };
        let frames: u64 = slots.iter().map(|slot| slot.generation()).sum::<u64>() - frames_at_start;
        let glass: Vec<f64> = slots
            .iter()
            .flat_map(|slot| slot.glass_to_glass_samples())
            .map(|micros| f64::from(micros) / 1000.0)
            .collect();
        dialing
            .commands
            .try_send(EngineCommand::Hangup)
            .context("the caller is not taking commands")?;
        wait("for both sides to hang up", || {
            dialing.status() == CallStatus::Idle && answering.status() == CallStatus::Idle
        })?;
        let call_secs = started.elapsed().as_secs_f64();
        let (sent_kbps, sent_resolution) = what_was_sent(&dialing, seq.0);
        let call = CallFigures {
            sent_kbps,
            sent_resolution,
            accept_to_connected_millis: millis_between(accepted, connected),
            accept_to_first_frame_millis: millis_between(accepted, first_frame),
            glass_to_glass_millis: glass,
            cpu_per_call_second: (process_cpu_secs() - cpu_before) / call_secs,
            fps: frames as f64 / 2.0 / args.seconds,
            other_sides_entries: dialing.others_since(seq.0) + answering.others_since(seq.1),
            recovery_millis,
        };
        if !args.json {
            print_call(number, &call);
        }
        figures.push(call);
        // Both sides' media sessions close with the call; let their sockets go before the next.
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(figures)
}

/// The caller's mean sent bitrate over the call and the picture it sent last, from its
/// `onCallStats` entries after `seq`.
fn what_was_sent(caller: &BenchClient, seq: u64) -> (f64, String) {
    let sending: Vec<SendingStats> = caller
        .entries_since(seq)
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::CallStats(stats) => Some(stats.sending.clone()),
            _ => None,
        })
        .collect();
    let mean = sending.iter().map(|sent| sent.sent_kbps).sum::<f64>() / sending.len().max(1) as f64;
    let resolution = sending
        .last()
        .map(|sent| sent.sent_resolution.clone())
        .unwrap_or_default();
    (mean, resolution)
}

fn print_call(number: usize, call: &CallFigures) {
    let recovery = call
        .recovery_millis
        .map(|millis| format!(", a frame {millis:.1} ms after the cut"))
        .unwrap_or_default();
    println!(
        "  callscope call {number}: connected {:.1} ms, first frame {:.1} ms, {:.1} fps, CPU {:.3} s/s, \
         sent {} at {:.0} kbit/s{recovery}",
        call.accept_to_connected_millis,
        call.accept_to_first_frame_millis,
        call.fps,
        call.cpu_per_call_second,
        call.sent_resolution,
        call.sent_kbps
    );
}

/// Halfway through `seconds` of media the caller cuts its media for `cut` seconds; returns how
/// many ms after the cut ended the callee decoded the caller's next frame (in `slot`).
fn cut_and_recover(
    caller: &BenchClient,
    slot: &FrameSlot,
    seq: u64,
    cut: f64,
    seconds: f64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds / 2.0));
    let for_millis = super::session::seconds(cut).as_millis() as u64;
    caller
        .commands
        .try_send(EngineCommand::CutMedia { for_millis })
        .context("the caller is not taking commands")?;
    let cut_at = || {
        caller.instant_of(
            seq,
            |event| matches!(event, Event::ImpairmentChanged { cut_ms, .. } if *cut_ms > 0),
        )
    };
    wait("for the cut to start", || cut_at().is_some())?;
    let ends = cut_at().context("no cut")? + Duration::from_millis(for_millis);
    std::thread::sleep(ends.saturating_duration_since(Instant::now()));
    let frames = slot.generation();
    wait("for a frame after the cut", || slot.generation() != frames)?;
    let recovered = millis_between(ends, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds).saturating_sub(started.elapsed()));
    Ok(recovered)
}

fn is_connected(event: &Event) -> bool {
    matches!(
        event,
        Event::ConnectionStateChanged {
            state: ConnectionState::Connected,
            ..
        }
    )
}

fn millis_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// The aiortc peer script, looked for next to the working directory and the executable.
fn peer_script() -> anyhow::Result<PathBuf> {
    let relative = Path::new("tests/interop/aiortc_peer.py");
    let mut roots = vec![std::env::current_dir()?];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    roots
        .iter()
        .map(|root| root.join(relative))
        .find(|path| path.is_file())
        .context("tests/interop/aiortc_peer.py not found: run from the callscope checkout")
}

fn python(args: &CallBenchArgs) -> PathBuf {
    args.python
        .clone()
        .or_else(|| std::env::var_os("CALLSCOPE_AIORTC_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/interop-venv/bin/python"))
}

struct PeerProcess {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PeerProcess {
    fn start(args: &CallBenchArgs, url: &str, user: &str, mode: &[String]) -> anyhow::Result<Self> {
        let resolution = match args.resolution {
            Resolution::P480 => "480p",
            Resolution::P720 => "720p",
            Resolution::P1080 => "1080p",
        };
        let mut child = Command::new(python(args))
            .arg(peer_script()?)
            .args(["--server", url, "--user", user, "--user-sig"])
            .arg(sign_user_sig(SECRET, user))
            .args(["--resolution", resolution])
            .args(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting the aiortc peer with {} (bash .ci/test sets up its venv; or pass --python)",
                    python(args).display()
                )
            })?;
        let stdout = child
            .stdout
            .take()
            .context("no output from the aiortc peer")?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Reads JSON lines until `stop` says so; returns every `call_done` seen.
    fn read_until(
        &mut self,
        stop: impl Fn(&serde_json::Value, usize) -> bool,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut done = Vec::new();
        for line in self.lines.by_ref() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line?) else {
                continue;
            };
            if event["event"] == "error" {
                bail!("the aiortc peer failed: {event}");
            }
            if event["event"] == "call_done" {
                done.push(event.clone());
            }
            if stop(&event, done.len()) {
                break;
            }
        }
        Ok(done)
    }
}

fn measure_aiortc(url: &str, args: &CallBenchArgs) -> anyhow::Result<Vec<CallFigures>> {
    let mut answerer = PeerProcess::start(args, url, "ref-callee", &["--answer".to_owned()])?;
    answerer.read_until(|event, _| event["event"] == "ready")?;
    let mut caller = PeerProcess::start(
        args,
        url,
        "ref-caller",
        &[
            "--call".to_owned(),
            "ref-callee".to_owned(),
            "--calls".to_owned(),
            args.calls.to_string(),
            "--seconds".to_owned(),
            args.seconds.to_string(),
        ],
    )?;
    let calls = args.calls;
    let callee_reader = std::thread::Builder::new()
        .name("aiortc-callee".into())
        .spawn(move || answerer.read_until(|_, done| done >= calls))?;
    let dialer_reports = caller.read_until(|_, done| done >= calls)?;
    let answerer_reports = callee_reader
        .join()
        .map_err(|_| anyhow::anyhow!("the callee reader stopped"))??;
    if dialer_reports.len() < calls || answerer_reports.len() < calls {
        bail!(
            "the aiortc reference finished {} caller and {} callee calls of {calls}",
            dialer_reports.len(),
            answerer_reports.len()
        );
    }
    let number = |value: &serde_json::Value| value.as_f64().unwrap_or(f64::NAN);
    let figures = dialer_reports
        .iter()
        .zip(&answerer_reports)
        .map(|(caller, callee)| {
            let both = |field: &str| number(&caller[field]).max(number(&callee[field]));
            let seconds = number(&caller["seconds"]).max(0.001);
            CallFigures {
                accept_to_connected_millis: both("accept_to_connected_ms"),
                accept_to_first_frame_millis: both("accept_to_first_frame_ms"),
                glass_to_glass_millis: [&caller["g2g_ms"], &callee["g2g_ms"]]
                    .iter()
                    .filter_map(|samples| samples.as_array())
                    .flatten()
                    .map(number)
                    .collect(),
                cpu_per_call_second: (number(&caller["cpu_s"]) + number(&callee["cpu_s"]))
                    / seconds,
                fps: f64::midpoint(number(&caller["fps"]), number(&callee["fps"])),
                // aiortc records no trace, its peer script cuts nothing and reports no sending
                // statistics.
                ..CallFigures::default()
            }
        })
        .collect();
    Ok(figures)
}
