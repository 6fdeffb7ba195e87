//! Media between real peers on 127.0.0.1: callscope clients through a real signaling server
//! carry H.264 video and Opus audio over webrtc, and what arrives is checked frame by frame
//! (the frame marker's counters and timestamps) and in the timeline.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use callscope::engine::{Behaviour, EngineCommand, Script, sign_user_sig};
use callscope::event::{ConnectionState, Event};
use callscope::media::marker::Marker;
use callscope::media::pattern::TestPattern;
use callscope::media::video::{VideoDecoder, VideoEncoder};
use callscope::media::{Devices, FrameSlots, MediaConfig, Resolution};
use callscope::model::{CallStatus, EndReason, ErrorCode, MediaType};
use common::net::{Client, Net, SECRET, WAIT};

/// The media tests share two cores; one at a time keeps their frame rates honest.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Synthetic media at 480p.
fn synthetic() -> MediaConfig {
    MediaConfig {
        resolution: Resolution::P480,
        frames: FrameSlots::default(),
        ..MediaConfig::synthetic()
    }
}

/// The devices the app asks for by default, on a machine that has none (so every machine
/// asserts the same).
fn default_devices_absent() -> MediaConfig {
    MediaConfig {
        resolution: Resolution::P480,
        frames: FrameSlots::default(),
        ice: callscope::media::IceConfig::loopback(),
        devices: Devices::Absent,
        ..MediaConfig::default()
    }
}

/// A client with synthetic media that answers calls at once.
fn answering(net: &Net, user: &str) -> Client {
    let script = Script::new(Behaviour::Answer {
        after: Duration::ZERO,
    });
    net.media_client(user, Some(script), synthetic())
}

/// Alice (synthetic media) places a video call to bob, who answers at once.
fn alice_calls_bob(net: &Net) -> (Client, Client) {
    let bob = answering(net, "bob");
    let alice = net.media_client("alice", None, synthetic());
    alice.dial(&["bob"], MediaType::Video, 30);
    (alice, bob)
}

fn statuses(client: &Client) -> Vec<(CallStatus, CallStatus)> {
    client.transitions()
}

/// Waits until each `(client, sender)` stream has decoded `frames` more frames, within
/// [`WAIT`]: the video keeps coming. The rate and the frames lost (of a sender starved of CPU,
/// frames it never sent too) are printed, never asserted: speed is the benches' to measure.
fn keeps_decoding(streams: &[(&Client, &str)], frames: u64) {
    let slots: Vec<_> = streams
        .iter()
        .map(|(at, from)| at.frames.get(from).unwrap())
        .collect();
    let counts = || -> Vec<(u64, u64)> {
        slots
            .iter()
            .map(|slot| {
                (
                    slot.counters.frames_decoded.load(Ordering::Relaxed),
                    slot.counters.frames_lost.load(Ordering::Relaxed),
                )
            })
            .collect()
    };
    let before = counts();
    let started = Instant::now();
    let since = |now: &[(u64, u64)]| -> Vec<(u64, u64)> {
        now.iter()
            .zip(&before)
            .map(|((decoded, lost), (decoded_before, lost_before))| {
                (decoded - decoded_before, lost - lost_before)
            })
            .collect()
    };
    loop {
        let now = since(&counts());
        if now.iter().all(|(decoded, _)| *decoded >= frames) {
            let secs = started.elapsed().as_secs_f64();
            for ((at, from), (decoded, lost)) in streams.iter().zip(&now) {
                let me = at.kit.user_id();
                println!("{me} decoded {decoded} frames of {from} in {secs:.1} s, {lost} lost");
            }
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "the video stopped: {now:?} frames decoded and lost in {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connected_to(user: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::ConnectionStateChanged { user_id, state: ConnectionState::Connected } if user_id == user)
}

#[test]
fn the_frame_marker_survives_an_h264_round_trip() {
    let (width, height) = Resolution::P480.size();
    let mut pattern = TestPattern::new(width, height, "alice");
    let mut encoder = VideoEncoder::new(Resolution::P480, 30).unwrap();
    let mut decoder = VideoDecoder::new().unwrap();
    for frame_number in 0..30_u32 {
        let capture_micros = 1_000_000 + u64::from(frame_number) * 33_333;
        let frame = pattern.next_frame(capture_micros).clone();
        assert_eq!(
            Marker::read(&frame.y, width, width, height),
            Some(Marker {
                counter: frame_number,
                capture_micros
            })
        );
        let unit = encoder.encode(&frame, frame_number == 0).unwrap().to_vec();
        let picture = decoder.decode(&unit).unwrap().unwrap();
        assert_eq!(picture.size(), [width, height]);
        assert_eq!(picture.counter, Some(frame_number));
        assert_eq!(picture.image.pixels.len(), width * height);
    }
    // A damaged marker is refused rather than misread.
    let mut frame = pattern.next_frame(5).clone();
    // The first bit of the magic byte is a white block at (16, 16): paint it black.
    for row in 16..32 {
        frame.y[row * width + 16..row * width + 32].fill(16);
    }
    assert_eq!(Marker::read(&frame.y, width, width, height), None);
}

#[test]
fn two_clients_carry_video_and_audio_both_ways() {
    let _serial = serial();
    let net = Net::start();
    let (alice, bob) = alice_calls_bob(&net);
    alice.wait_for("for bob's first frame", |a| a.decoded("bob") > 0);
    bob.wait_for("for alice's first frame", |b| b.decoded("alice") > 0);

    keeps_decoding(&[(&alice, "bob"), (&bob, "alice")], 30);

    for (me, other) in [(&alice, "bob"), (&bob, "alice")] {
        assert!(
            me.has(connected_to(other)),
            "{} never connected",
            me.kit.user_id()
        );
        assert!(me.has(|e| matches!(e, Event::UserVideoAvailable { user_id, available: true } if user_id == other)));
        assert!(me.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == other)));
        assert!(me.has(|e| matches!(e, Event::CallStats(stats) if stats.user_id == other && stats.fps > 0.0 && stats.resolution == "640x480" && stats.bitrate_kbps > 0.0)));
        // On one machine the path is direct: our end is a host candidate.
        assert!(me.has(|e| matches!(e, Event::CallStats(stats) if stats.user_id == other && stats.local_candidate == "host")));
        assert!(me.has(
            |e| matches!(e, Event::UserNetworkQualityChanged { user_id, .. } if user_id == other)
        ));
        assert!(me.has(|e| matches!(e, Event::UserVoiceVolumeChanged { volumes } if volumes.get(other).is_some_and(|level| *level > 0))));
    }
    assert_eq!(
        statuses(&alice),
        [
            (CallStatus::Idle, CallStatus::DialingC2c),
            (CallStatus::DialingC2c, CallStatus::CallingC2cVideo)
        ]
    );

    alice.send(EngineCommand::Hangup);
    for me in [&alice, &bob] {
        me.wait_for("for afterCalling", |c| c.ended_with().is_some());
        assert_eq!(me.ended_with(), Some(EndReason::Hangup));
    }
    // The call's media is closed: its streams are gone, and nothing more is recorded for it.
    alice.wait_for("for bob's stream to be gone", |a| {
        a.frames.get("bob").is_none()
    });
    let last = alice.kit.timeline().last_seq();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        alice.kit.timeline().last_seq(),
        last,
        "entries after the call ended"
    );
}

#[test]
fn a_group_call_decodes_every_other_participant_and_one_peer_s_link_is_impaired_alone() {
    let _serial = serial();
    let net = Net::start();
    let bob = answering(&net, "bob");
    let carol = answering(&net, "carol");
    let alice = net.media_client("alice", None, synthetic());
    alice.dial(&["bob", "carol"], MediaType::Video, 30);
    let everyone = [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")];
    for (me, name) in everyone {
        for (_, other) in everyone {
            if other != name {
                me.wait_for(&format!("for 30 frames from {other}"), |c| {
                    c.decoded(other) >= 30
                });
                assert!(me.has(connected_to(other)));
            }
        }
    }
    // Alice's link to bob alone loses 10 % of what she sends: bob measures it, carol does not.
    alice.send(EngineCommand::Impair(
        "loss=10%,dir=send,peer=bob".parse().expect("a rule"),
    ));
    let carol_from = stats_of(&carol, "alice").len() + 1;
    let at_bob = mean(
        next_stats(&bob, "alice", 6)
            .iter()
            .map(|stats| stats.loss_pct),
    );
    let at_carol: Vec<f64> = stats_of(&carol, "alice")
        .split_off(carol_from)
        .iter()
        .map(|stats| stats.loss_pct)
        .collect();
    println!("10 % on alice's link to bob: bob measured {at_bob:.2} %, carol {at_carol:?}");
    assert!((7.0..=20.0).contains(&at_bob), "bob measured {at_bob:.2} %");
    assert!(at_carol.len() >= 4, "carol's statistics: {at_carol:?}");
    assert!(
        mean(at_carol.iter().copied()) < 1.0,
        "carol measured {at_carol:?}"
    );
    alice.send(EngineCommand::Hangup);
    bob.send(EngineCommand::Hangup);
    for me in [&alice, &bob, &carol] {
        me.wait_for("for the end", |c| c.ended_with().is_some());
    }
}

#[test]
fn switching_to_audio_stops_the_video_and_back_starts_it() {
    let _serial = serial();
    let net = Net::start();
    let (alice, bob) = alice_calls_bob(&net);
    bob.wait_for("for alice's video", |b| b.decoded("alice") >= 10);

    alice.send(EngineCommand::SwitchMedia(MediaType::Audio));
    for (me, other) in [(&bob, "alice"), (&alice, "bob")] {
        me.wait_for("for the video to stop", |c| {
            c.has(|e| matches!(e, Event::UserVideoAvailable { user_id, available: false } if user_id == other))
        });
        assert!(me.has(|e| matches!(e, Event::CallMediaTypeChanged { .. })));
    }
    let stopped = bob.decoded("alice");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        bob.decoded("alice") <= stopped + 1,
        "video kept flowing after the switch to audio"
    );
    assert!(bob.has(|e| matches!(
        e,
        Event::StatusChanged {
            new_status: CallStatus::CallingC2cAudio,
            ..
        }
    )));

    alice.send(EngineCommand::SwitchMedia(MediaType::Video));
    bob.wait_for("for the video to come back", |b| {
        b.decoded("alice") >= stopped + 15
    });
    let video_back = |c: &Client, other: &str| {
        c.events()
            .iter()
            .filter(|e| matches!(e, Event::UserVideoAvailable { user_id, available: true } if user_id == other))
            .count()
            >= 2
    };
    bob.wait_for("for alice's video to be available again", |b| {
        video_back(b, "alice")
    });
    alice.wait_for("for bob's video to be available again", |a| {
        video_back(a, "bob")
    });
    alice.send(EngineCommand::Hangup);
    for me in [&alice, &bob] {
        me.wait_for("for the end", |c| c.ended_with().is_some());
    }
}

fn device_errors(client: &Client) -> Vec<ErrorCode> {
    client
        .errors()
        .into_iter()
        .filter(|code| {
            matches!(
                code,
                ErrorCode::CameraUnavailable | ErrorCode::MicrophoneUnavailable
            )
        })
        .collect()
}

#[test]
fn without_camera_or_sound_card_the_call_carries_synthetic_media_and_says_why() {
    let _serial = serial();
    let net = Net::start();
    let bob = answering(&net, "bob");
    // Alice asks for the default devices, as the app does, on a machine that has none.
    let alice = net.media_client("alice", None, default_devices_absent());
    alice.dial(&["bob"], MediaType::Video, 30);
    bob.wait_for("for alice's video", |b| b.decoded("alice") >= 10);
    bob.wait_for("for alice's audio", |b| {
        b.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "alice"))
    });
    // The frames carry the test pattern's marker: they are synthetic.
    let slot = bob.frames.get("alice").unwrap();
    assert!(slot.counters.frames_marked.load(Ordering::Relaxed) > 0);
    let errors = device_errors(&alice);
    assert!(errors.contains(&ErrorCode::CameraUnavailable), "{errors:?}");
    assert!(
        errors.contains(&ErrorCode::MicrophoneUnavailable),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 2, "each device is reported once: {errors:?}");
    assert!(alice.has(
        |e| matches!(e, Event::Error(error) if error.message.contains("synthetic test pattern"))
    ));
    // The call itself is unaffected.
    assert!(alice.ended_with().is_none());
    alice.send(EngineCommand::Hangup);
    alice.wait_for("for the end", |a| a.ended_with().is_some());
    bob.wait_for("for the end", |b| b.ended_with().is_some());
}

#[test]
fn an_audio_call_never_opens_the_camera_or_the_video_encoder() {
    let _serial = serial();
    let net = Net::start();
    let bob = answering(&net, "bob");
    let alice = net.media_client("alice", None, default_devices_absent());
    alice.dial(&["bob"], MediaType::Audio, 30);
    bob.wait_for("for alice's audio", |b| {
        b.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "alice"))
    });
    // Two stats reports: long enough for a video thread to have opened a camera.
    bob.wait_for("for two stats reports", |b| {
        b.events()
            .iter()
            .filter(|e| matches!(e, Event::CallStats(stats) if stats.user_id == "alice"))
            .count()
            >= 2
    });
    assert_eq!(device_errors(&alice), [ErrorCode::MicrophoneUnavailable]);
    assert_eq!(bob.decoded("alice"), 0, "an audio call sent video");
    assert!(!bob.has(|e| matches!(
        e,
        Event::UserVideoAvailable {
            available: true,
            ..
        }
    )));
    alice.send(EngineCommand::Hangup);
    alice.wait_for("for the end", |a| a.ended_with().is_some());
    bob.wait_for("for the end", |b| b.ended_with().is_some());
}

#[test]
fn a_vanished_peer_ends_the_call_with_media_failed_within_ten_seconds() {
    let _serial = serial();
    let net = Net::start();
    let (alice, bob) = alice_calls_bob(&net);
    alice.wait_for("for bob's video", |a| a.decoded("bob") >= 5);

    bob.send(EngineCommand::SimulateMediaLoss);
    let vanished = Instant::now();
    alice.wait_for_within("for the call to fail", Duration::from_secs(12), |a| {
        a.ended_with().is_some()
    });
    let took = vanished.elapsed();
    assert_eq!(alice.ended_with(), Some(EndReason::MediaFailed));
    assert!(took <= Duration::from_secs(10), "took {took:?}");
    assert!(alice.has(|e| matches!(
        e,
        Event::ConnectionStateChanged {
            state: ConnectionState::Failed,
            ..
        }
    )));
    // Bob's side learns it from the server.
    bob.wait_for("for bob's call to end", |b| b.ended_with().is_some());
}

/// The Python that has aiortc: `$CALLSCOPE_AIORTC_PYTHON`, set up by `bash .ci/test`.
fn aiortc_python() -> std::path::PathBuf {
    let python = std::env::var_os("CALLSCOPE_AIORTC_PYTHON").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/interop-venv/bin/python")
        },
        std::path::PathBuf::from,
    );
    assert!(
        python.exists(),
        "{} is missing: run `bash .ci/test`, which sets up the aiortc venv",
        python.display()
    );
    python
}

/// An aiortc peer in its own process, speaking callscope's signaling.
struct Aiortc {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Drop for Aiortc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Aiortc {
    fn start(net: &Net, user: &str, mode: &[&str]) -> Self {
        use std::io::BufRead as _;
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiortc_peer.py");
        let mut child = std::process::Command::new(aiortc_python())
            .arg(script)
            .args(["--server", &net.url(), "--user", user, "--user-sig"])
            .arg(sign_user_sig(SECRET, user))
            .args(["--resolution", "480p"])
            .args(mode)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, events) = std::sync::mpsc::sync_channel(64);
        std::thread::Builder::new()
            .name(format!("aiortc {user}"))
            .spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    if let Ok(event) = serde_json::from_str(&line)
                        && sender.send(event).is_err()
                    {
                        return;
                    }
                }
            })
            .unwrap();
        Self { child, events }
    }

    /// The next event named `name` (an `error` event fails the test).
    fn wait_event(&self, name: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {name} from the aiortc peer within {limit:?}"));
            assert_ne!(event["event"], "error", "the aiortc peer failed: {event}");
            if event["event"] == name {
                return event;
            }
        }
    }
}

fn number(event: &serde_json::Value, field: &str) -> f64 {
    event[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {event}"))
}

#[test]
fn callscope_calls_aiortc_with_video_and_audio_both_ways() {
    let _serial = serial();
    let net = Net::start();
    let peer = Aiortc::start(&net, "rtc-bob", &["--answer"]);
    peer.wait_event("ready", WAIT);
    let alice = net.media_client("alice", None, synthetic());
    alice.dial(&["rtc-bob"], MediaType::Video, 30);
    alice.wait_for("for aiortc's first frame", |a| a.decoded("rtc-bob") > 0);
    keeps_decoding(&[(&alice, "rtc-bob")], 30);
    assert!(alice.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "rtc-bob")));
    assert!(alice.has(|e| matches!(e, Event::UserVoiceVolumeChanged { volumes } if volumes.get("rtc-bob").is_some_and(|level| *level > 0))));
    alice.send(EngineCommand::Hangup);
    alice.wait_for("for the end", |a| a.ended_with().is_some());
    let done = peer.wait_event("call_done", WAIT);
    assert!(
        number(&done, "frames_decoded") >= 10.0,
        "aiortc decoded too few frames: {done}"
    );
    assert!(
        number(&done, "audio_frames") > 0.0,
        "aiortc got no Opus audio: {done}"
    );
    assert!(
        number(&done, "lost_frames") * 100.0 <= number(&done, "frames_decoded"),
        "{done}"
    );
}

#[test]
fn aiortc_calls_callscope_with_video_and_audio_both_ways() {
    let _serial = serial();
    let net = Net::start();
    let alice = answering(&net, "alice");
    let peer = Aiortc::start(&net, "rtc-carol", &["--call", "alice", "--seconds", "8"]);
    alice.wait_for("for aiortc's first frame", |a| a.decoded("rtc-carol") > 0);
    keeps_decoding(&[(&alice, "rtc-carol")], 30);
    assert!(alice.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "rtc-carol")));
    let done = peer.wait_event("call_done", WAIT);
    assert!(
        number(&done, "frames_decoded") >= 10.0,
        "aiortc decoded too few frames: {done}"
    );
    assert!(
        number(&done, "audio_frames") > 0.0,
        "aiortc got no Opus audio: {done}"
    );
    alice.wait_for("for the call to end", |a| a.ended_with().is_some());
    assert_eq!(alice.ended_with(), Some(EndReason::Hangup));
}

#[test]
fn the_ringtone_is_two_seconds_of_sound_at_48_khz() {
    let samples = callscope::media::ringtone_samples().unwrap();
    assert_eq!(samples.len(), 96_000);
    assert!(callscope::media::audio_level(&samples) > 30);
}

#[test]
fn speaking_levels_follow_loudness() {
    use callscope::media::audio_level;
    assert_eq!(audio_level(&[0; 960]), 0);
    assert_eq!(audio_level(&[i16::MAX; 960]), 100);
    let quiet: Vec<i16> = (0..960)
        .map(|n| if n % 2 == 0 { 300 } else { -300 })
        .collect();
    let loud: Vec<i16> = quiet.iter().map(|s| s * 20).collect();
    assert!(audio_level(&quiet) < audio_level(&loud));
}

#[test]
fn a_ringing_callee_keeps_its_camera_and_microphone_closed_until_it_accepts() {
    let _serial = serial();
    let net = Net::start();
    // Carol asks for the default devices, as the app does, on a machine that has none: opening
    // them records 60003 and 60004.
    let carol = net.media_client("carol", None, default_devices_absent());
    let alice = net.media_client("alice", None, synthetic());
    alice.dial(&["carol"], MediaType::Video, 30);
    // The offer arrives while carol rings: her media connection exists...
    carol.wait_for("for alice's offer", |c| {
        c.has(|e| matches!(e, Event::ConnectionStateChanged { user_id, state: ConnectionState::New } if user_id == "alice"))
    });
    // ...but makes no answer, runs no checks and touches no device, however long it rings
    // (a second here; the virtual-time flows ring the whole 30 s).
    std::thread::sleep(Duration::from_secs(1));
    assert!(device_errors(&carol).is_empty());
    assert!(!carol.has(|e| matches!(
        e,
        Event::ConnectionStateChanged {
            state: ConnectionState::Connecting,
            ..
        }
    )));
    carol.send(EngineCommand::Accept);
    carol.wait_for("for carol's video at alice", |_| alice.decoded("carol") > 0);
    assert_eq!(device_errors(&carol).len(), 2);
    alice.send(EngineCommand::Hangup);
    alice.wait_for("for the end", |a| a.ended_with().is_some());
    carol.wait_for("for the end", |c| c.ended_with().is_some());
}

/// The statistics `client` recorded about `other`'s media, in order.
fn stats_of(client: &Client, other: &str) -> Vec<callscope::event::CallStats> {
    client
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::CallStats(stats) if stats.user_id == other => Some(stats),
            _ => None,
        })
        .collect()
}

/// Waits for `count` more statistics of `other` at `client` and returns them (the first one
/// after a change covers a partial interval, so it is skipped).
fn next_stats(client: &Client, other: &str, count: usize) -> Vec<callscope::event::CallStats> {
    let from = stats_of(client, other).len() + 1;
    client.wait_for(&format!("for {count} statistics of {other}"), |c| {
        stats_of(c, other).len() >= from + count
    });
    stats_of(client, other).split_off(from)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn warnings(client: &Client, wanted: callscope::event::QualityWarningName) -> Vec<&'static str> {
    client
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::QualityWarning { name, state, .. } if name == wanted => Some(state.as_str()),
            _ => None,
        })
        .collect()
}

/// Waits until `me`'s statistics of `from` count NACKs sent and packets repaired since
/// `first`: lost packets are asked for again and resent.
fn wait_for_repairs(me: &Client, from: &str, first: &callscope::event::CallStats) {
    me.wait_for("for NACKs and repaired packets", |client| {
        stats_of(client, from)
            .last()
            .is_some_and(|last| last.nacks > first.nacks && last.repaired > first.repaired)
    });
}

#[test]
fn loss_injected_is_measured_by_the_far_end_and_resent_packets_keep_the_video_going() {
    use callscope::event::QualityWarningName;
    let _serial = serial();
    let net = Net::start();
    let (alice, bob) = alice_calls_bob(&net);
    bob.wait_for("for alice's first frame", |b| b.decoded("alice") > 0);
    let clear = next_stats(&bob, "alice", 2);
    assert!(clear.iter().all(|stats| stats.loss_pct < 1.0), "{clear:?}");

    // Alice's sending loses 10 %: bob measures it, asks for the lost packets again, and the
    // resent ones complete the pictures, so the video goes on.
    alice.send(EngineCommand::Impair(
        "loss=10%,dir=send".parse().expect("a rule"),
    ));
    let lossy = next_stats(&bob, "alice", 8);
    let measured = mean(lossy.iter().map(|stats| stats.loss_pct));
    println!(
        "10 % injected, bob measured {measured:.2} % (samples {:?})",
        lossy.iter().map(|stats| stats.loss_pct).collect::<Vec<_>>()
    );
    assert!(
        (7.0..=20.0).contains(&measured),
        "10 % injected, {measured:.2} % measured"
    );
    wait_for_repairs(&bob, "alice", &lossy[0]);
    // The video keeps coming under the loss.
    keeps_decoding(&[(&bob, "alice")], 10);
    assert!(alice.has(|e| matches!(e, Event::ImpairmentChanged { user_id, send, receive, cut_ms: 0 } if user_id == "*" && send == "loss=10%" && receive == "none")));
    bob.wait_for("for the loss warning", |b| {
        warnings(b, QualityWarningName::HighPacketLoss) == ["raised"]
    });

    // The link clears: the loss goes, and so does the warning.
    alice.send(EngineCommand::Impair("none".parse().expect("a rule")));
    let cleared = next_stats(&bob, "alice", 2);
    assert!(
        cleared.iter().all(|stats| stats.loss_pct < 1.0),
        "{cleared:?}"
    );
    bob.wait_for("for the loss warning to clear", |b| {
        warnings(b, QualityWarningName::HighPacketLoss) == ["raised", "cleared"]
    });

    // The same loss on bob's receiving side: measured and repaired alike.
    bob.send(EngineCommand::Impair(
        "loss=10%,dir=receive".parse().expect("a rule"),
    ));
    let receiving = next_stats(&bob, "alice", 6);
    let measured = mean(receiving.iter().map(|stats| stats.loss_pct));
    println!("10 % injected on receiving, bob measured {measured:.2} %");
    assert!(
        (7.0..=20.0).contains(&measured),
        "10 % injected on receiving, {measured:.2} % measured"
    );
    keeps_decoding(&[(&bob, "alice")], 10);
    wait_for_repairs(&bob, "alice", &receiving[0]);
    bob.send(EngineCommand::Impair("none".parse().expect("a rule")));

    // A one-second cut of all media: no frame comes through it, and the video is back soon
    // after it ends.
    let slot = bob.frames.get("alice").expect("alice's stream");
    let frames = || slot.counters.frames_decoded.load(Ordering::Relaxed);
    alice.send(EngineCommand::CutMedia { for_millis: 1000 });
    alice.wait_for("for the cut to start", |a| {
        a.has(|e| matches!(e, Event::ImpairmentChanged { cut_ms: 1000, .. }))
    });
    let cut_at = Instant::now();
    // Frames already decoded or on their way may still land in the first moments.
    std::thread::sleep(Duration::from_millis(300));
    let during = frames();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(frames(), during, "frames came through the cut");
    let end = cut_at + Duration::from_secs(1);
    while frames() == during {
        assert!(
            cut_at.elapsed() < Duration::from_secs(6),
            "the video never came back after the cut"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let recovered = Instant::now().saturating_duration_since(end);
    println!(
        "after a 1 s media cut the first frame was decoded {:.0} ms after it ended",
        recovered.as_secs_f64() * 1000.0
    );

    alice.send(EngineCommand::Hangup);
    for me in [&alice, &bob] {
        me.wait_for("for afterCalling", |c| c.ended_with().is_some());
    }
}

#[test]
fn the_flaky_peer_makes_the_warnings_and_the_network_quality_rise_and_fall_alone() {
    use callscope::event::{NetworkQuality, QualityWarningName};
    let _serial = serial();
    let net = Net::start();
    let script = Script::new(Behaviour::Flaky {
        after: Duration::ZERO,
        phase: Duration::from_secs(12),
    });
    let flaky = net.media_client("flaky", Some(script), synthetic());
    let alice = net.media_client("alice", None, synthetic());
    alice.dial(&["flaky"], MediaType::Video, 30);
    // Its link turns bad 3 s into the call: alice's side raises the warnings of a late, lossy
    // link on its own, and the network quality falls.
    for name in [
        QualityWarningName::HighRtt,
        QualityWarningName::HighPacketLoss,
    ] {
        alice.wait_for(&format!("for {name} to be raised"), |a| {
            warnings(a, name).first() == Some(&"raised")
        });
    }
    let qualities = |client: &Client| -> Vec<NetworkQuality> {
        client
            .events()
            .into_iter()
            .filter_map(|event| match event {
                Event::UserNetworkQualityChanged { user_id, quality } if user_id == "flaky" => {
                    Some(quality)
                }
                _ => None,
            })
            .collect()
    };
    assert!(
        qualities(&alice)
            .iter()
            .any(|q| matches!(q, NetworkQuality::Bad | NetworkQuality::Vbad)),
        "{:?}",
        qualities(&alice)
    );
    // Twelve seconds later it is good again, and so is everything it raised.
    for name in [
        QualityWarningName::HighRtt,
        QualityWarningName::HighPacketLoss,
    ] {
        alice.wait_for(&format!("for {name} to clear"), |a| {
            warnings(a, name).get(1) == Some(&"cleared")
        });
    }
    alice.wait_for("for the quality to come back", |a| {
        qualities(a)
            .last()
            .is_some_and(|q| matches!(q, NetworkQuality::Excellent | NetworkQuality::Good))
    });
    // Twenty seconds of the synthetic tone, whose loudness moves like a voice's: never taken
    // for a dead microphone.
    assert_eq!(
        warnings(&alice, QualityWarningName::NoAudioInput),
        Vec::<&str>::new()
    );
    alice.send(EngineCommand::Hangup);
    for me in [&alice, &flaky] {
        me.wait_for("for afterCalling", |c| c.ended_with().is_some());
    }
}

#[test]
fn a_capped_link_is_found_and_followed_and_frames_keep_coming() {
    use callscope::model::QualityLimitation;
    let _serial = serial();
    let net = Net::start();
    let bob = answering(&net, "bob");
    // 480p of the test pattern with its audio takes about 275 kbit/s: more than the cap.
    let mut config = synthetic();
    config
        .link
        .apply(&"rate=200kbit,dir=send".parse().expect("a rule"));
    let alice = net.media_client("alice", None, config);
    alice.dial(&["bob"], MediaType::Video, 30);
    bob.wait_for("for alice's first frame", |b| b.decoded("alice") > 0);
    alice.wait_for_within(
        "for the estimate of the path to bob to fall below the cap",
        Duration::from_mins(1),
        |a| {
            stats_of(a, "bob")
                .last()
                .is_some_and(|stats| stats.sending.estimate_kbps < 200.0)
        },
    );
    // It steps down for bandwidth; on a starved machine it may step down for the encoder's
    // sake first, and then need no step for bandwidth.
    alice.wait_for_within(
        "for alice's video to step down for bandwidth (or the CPU)",
        Duration::from_mins(1),
        |a| {
            a.has(|e| {
                matches!(
                    e,
                    Event::LocalVideoAdapted {
                        reason: QualityLimitation::Bandwidth | QualityLimitation::Cpu,
                        ..
                    }
                )
            })
        },
    );
    // Adapted, the video keeps coming: a stream frozen behind a full link decodes nothing.
    keeps_decoding(&[(&bob, "alice")], 10);
    // And its statistics say it sends within the cap, held back by something.
    alice.wait_for("for statistics of sending held back under the cap", |a| {
        stats_of(a, "bob").iter().any(|stats| {
            stats.sending.sent_kbps > 0.0
                && stats.sending.sent_kbps < 200.0
                && stats.sending.quality_limitation != QualityLimitation::None
        })
    });
    alice.send(EngineCommand::Hangup);
    for me in [&alice, &bob] {
        me.wait_for("for afterCalling", |c| c.ended_with().is_some());
    }
}

/// A YUV4MPEG2 file of `frames` frames of `width` x `height`: a gradient that moves.
fn y4m_file(
    dir: &std::path::Path,
    width: usize,
    height: usize,
    frames: usize,
) -> std::path::PathBuf {
    let mut bytes = format!("YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for frame in 0..frames {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend(
            (0..width * height).map(|index| ((index % width + frame * 4) % 220 + 16) as u8),
        );
        bytes.extend(
            (0..width * height / 2).map(|index| ((index / width + frame) % 200 + 28) as u8),
        );
    }
    let path = dir.join("camera.y4m");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A 16-bit PCM WAV at 16 kHz of a voice-band tone that comes and goes.
fn wav_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let samples: Vec<i16> = (0..32_000_u32)
        .map(|index| {
            let t = f64::from(index) / 16_000.0;
            // Half a second loud, half a second soft.
            let swell = if (index / 8_000).is_multiple_of(2) {
                1.0
            } else {
                0.1
            };
            ((t * 300.0 * std::f64::consts::TAU).sin() * 12_000.0 * swell) as i16
        })
        .collect();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    for field in [
        16_u32.to_le_bytes().to_vec(),
        1_u16.to_le_bytes().to_vec(),
        1_u16.to_le_bytes().to_vec(),
        16_000_u32.to_le_bytes().to_vec(),
        32_000_u32.to_le_bytes().to_vec(),
        2_u16.to_le_bytes().to_vec(),
        16_u16.to_le_bytes().to_vec(),
    ] {
        bytes.extend_from_slice(&field);
    }
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_camera_and_a_microphone_played_from_files_reach_the_far_end_which_records_what_it_heard() {
    use callscope::media::DeviceChoice;
    let _serial = serial();
    let net = Net::start();
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("heard");
    let mut bob_media = synthetic();
    bob_media.record_audio = Some(recordings.clone());
    let bob = net.media_client(
        "bob",
        Some(Script::new(Behaviour::Answer {
            after: Duration::ZERO,
        })),
        bob_media,
    );
    let alice_media = MediaConfig {
        camera: DeviceChoice::File(y4m_file(dir.path(), 320, 240, 20)),
        microphone: DeviceChoice::File(wav_file(dir.path(), "speech.wav")),
        ..synthetic()
    };
    let alice = net.media_client("alice", None, alice_media);
    alice.dial(&["bob"], MediaType::Video, 30);
    bob.wait_for("for 30 of alice's frames", |b| b.decoded("alice") >= 30);
    // The file's size, its frames marked (so loss and latency are measured as for the pattern).
    let slot = bob.frames.get("alice").unwrap();
    assert_eq!(slot.counters.resolution(), (320, 240));
    assert!(slot.counters.frames_marked.load(Ordering::Relaxed) > 0);
    assert!(
        device_errors(&alice).is_empty(),
        "{:?}",
        device_errors(&alice)
    );
    std::thread::sleep(Duration::from_secs(2));
    alice.send(EngineCommand::Hangup);
    for me in [&alice, &bob] {
        me.wait_for("for afterCalling", |c| c.ended_with().is_some());
    }
    let recording = std::fs::read_dir(&recordings)
        .unwrap()
        .flatten()
        .find(|entry| entry.file_name().to_string_lossy().ends_with("-alice.wav"))
        .expect("a recording of alice");
    let bytes = std::fs::read(recording.path()).unwrap();
    let heard = callscope::media::wav::load(&recording.path()).unwrap_or_else(|error| {
        panic!(
            "{error}: {} bytes, header {:?}",
            bytes.len(),
            &bytes[..44.min(bytes.len())]
        )
    });
    assert!(heard.len() >= 48_000, "{} samples", heard.len());
    let loud = heard
        .iter()
        .filter(|sample| sample.unsigned_abs() > 3_000)
        .count();
    assert!(loud > 4_800, "the tone was heard: {loud} loud samples");
}

#[test]
fn camera_and_microphone_files_that_cannot_play_say_why_and_the_synthetic_sources_stand_in() {
    use callscope::media::DeviceChoice;
    let _serial = serial();
    let net = Net::start();
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("cut.y4m");
    std::fs::write(&truncated, b"YUV4MPEG2 W320 H240 F30:1\nFRAME\n\x10\x10").unwrap();
    let not_wav = dir.path().join("noise.wav");
    std::fs::write(&not_wav, [0xAB_u8; 4_000]).unwrap();
    for (camera, microphone, says) in [
        (
            dir.path().join("missing.y4m"),
            not_wav.clone(),
            "could not be opened",
        ),
        (
            truncated.clone(),
            dir.path().join("missing.wav"),
            "has no whole frame",
        ),
    ] {
        let bob = answering(&net, "bob");
        let alice_media = MediaConfig {
            camera: DeviceChoice::File(camera),
            microphone: DeviceChoice::File(microphone),
            ..synthetic()
        };
        let alice = net.media_client("alice", None, alice_media);
        alice.dial(&["bob"], MediaType::Video, 30);
        bob.wait_for("for alice's video", |b| b.decoded("alice") >= 10);
        let errors = device_errors(&alice);
        assert!(errors.contains(&ErrorCode::CameraUnavailable), "{errors:?}");
        assert!(
            errors.contains(&ErrorCode::MicrophoneUnavailable),
            "{errors:?}"
        );
        assert!(alice.has(|e| matches!(e, Event::Error(error) if error.message.contains(says))));
        alice.send(EngineCommand::Hangup);
        for me in [&alice, &bob] {
            me.wait_for("for afterCalling", |c| c.ended_with().is_some());
        }
    }
}
