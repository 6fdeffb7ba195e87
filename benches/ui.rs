//! UI frame time: the real window's UI (through `egui_kittest`, no GPU) with 1M entries in the
//! timeline (half of them shown: the other half periodic stats) and a live 720p call to echo,
//! measured as the UI thread's own CPU time per frame. Prints p50, p95 and the mean; the goals
//! are p50 <= 2 ms and p95 <= 4 ms.

#![allow(clippy::unwrap_used)] // A benchmark that cannot set up should stop loudly.

use std::time::{Duration, Instant};

use callscope::engine::{ConnectionState, ServerChoice};
use callscope::event::{CallStats, Event, NetworkQuality};
use callscope::media::{MediaConfig, Resolution};
use callscope::model::Source;
use callscope::ui::{AppOptions, CallscopeApp};
use egui_kittest::Harness;

const ENTRIES: u64 = 1_000_000;
const FRAMES: usize = 300;
/// Run as a test (`cargo test --benches`, or `cargo bench -- --test`): a few entries and frames,
/// to see that it runs, not to measure.
const TEST_ENTRIES: u64 = 2_000;
/// See [`TEST_ENTRIES`].
const TEST_FRAMES: usize = 10;

/// Whether this run measures (`cargo bench`) or only runs through once.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|arg| arg == "--bench") && !args.iter().any(|arg| arg == "--test")
}

/// One frame every 33 ms, like a 30 fps stream: every frame has a new picture to upload.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// CPU time this thread has run, in nanoseconds (Linux `schedstat`).
fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn step_until(
    harness: &mut Harness<'_, CallscopeApp>,
    what: &str,
    done: impl Fn(&CallscopeApp) -> bool,
) {
    let started = Instant::now();
    while !done(harness.state()) {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "timed out waiting for {what}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Records `entries` entries of a call before this one: half network quality, half stats.
fn fill(kit: &callscope::kit::CallKit, entries: u64) {
    for number in 0..entries {
        if number % 2 == 1 {
            let quality = if number % 4 == 1 {
                NetworkQuality::Good
            } else {
                NetworkQuality::Excellent
            };
            kit.dispatch(
                kit.clock().now(),
                Some("c-earlier"),
                Source::Engine,
                Event::UserNetworkQualityChanged {
                    user_id: format!("peer-{}", number % 7),
                    quality,
                },
            );
            continue;
        }
        let stats = CallStats {
            user_id: format!("peer-{}", number % 7),
            rtt_millis: (number % 40) as f64,
            jitter_millis: 1.0,
            loss_pct: 0.0,
            fps: 30.0,
            bitrate_kbps: 2500.0,
            resolution: "1280x720".into(),
            frames_decoded: number,
            repaired: 0,
            nacks: 0,
            key_frame_requests: 0,
            local_candidate: String::new(),
            ..CallStats::default()
        };
        kit.dispatch(
            kit.clock().now(),
            Some("c-earlier"),
            Source::Engine,
            Event::CallStats(stats),
        );
    }
}

fn main() {
    // As a test (an unoptimized build, maybe), 480p: enough to see that it runs.
    let (entries, frames, resolution) = if measuring() {
        (ENTRIES, FRAMES, Resolution::P720)
    } else {
        (TEST_ENTRIES, TEST_FRAMES, Resolution::P480)
    };
    let dir = tempfile::tempdir().unwrap();
    let options = AppOptions {
        user_id: "alice".into(),
        server: ServerChoice::Embedded,
        data_dir: dir.path().to_path_buf(),
        call_on_start: vec!["echo".into()],
        private_ringing: None,
        share_trace: None,
        media: MediaConfig {
            resolution,
            ..MediaConfig::default()
        },
        impairments: Vec::new(),
    };
    let mut harness = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |cc| CallscopeApp::new(&cc.egui_ctx, options).unwrap());
    step_until(&mut harness, "the log-in", |app| {
        app.model().connection == ConnectionState::Online
    });
    let kit = harness.state().kit().clone();
    fill(&kit, entries);
    let (width, height) = resolution.size();
    let size = (
        u32::try_from(width).unwrap(),
        u32::try_from(height).unwrap(),
    );
    step_until(&mut harness, "echo's video", |app| {
        app.frames()
            .get("echo")
            .is_some_and(|slot| slot.counters.resolution() == size && slot.generation() > 30)
    });
    let mut cpu_millis = Vec::with_capacity(frames);
    let slot = harness.state().frames().get("echo").unwrap();
    let pictures_before = slot.generation();
    for _ in 0..frames {
        let started = Instant::now();
        let before = thread_cpu_nanos();
        harness.step();
        cpu_millis.push((thread_cpu_nanos() - before) as f64 / 1e6);
        std::thread::sleep(FRAME_INTERVAL.saturating_sub(started.elapsed()));
    }
    let pictures = slot.generation() - pictures_before;
    let timeline_entries = kit.timeline().len();
    let shown = harness.state().timeline_panel().rows().len();
    cpu_millis.sort_by(f64::total_cmp);
    let at = |fraction: f64| {
        let last = cpu_millis.len() - 1;
        // Within 0..=last, so the conversion is exact.
        let rank = usize::try_from((last as f64 * fraction).round() as i64).unwrap_or(last);
        cpu_millis[rank.min(last)]
    };
    let mean = cpu_millis.iter().sum::<f64>() / cpu_millis.len() as f64;
    println!(
        "ui frame CPU over {frames} frames ({timeline_entries} timeline entries, {shown} rows in the table, \
         {pictures} new {resolution:?} pictures): \
         p50 {:.2} ms, p95 {:.2} ms, mean {mean:.2} ms (goals: p50 <= 2 ms, p95 <= 4 ms)",
        at(0.5),
        at(0.95)
    );
}
