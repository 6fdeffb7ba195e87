//! Media between real peers on 127.0.0.1: callscope clients through a real signaling server
//! carry H.264 video and Opus audio over webrtc, and what arrives is checked frame by frame
//! (the frame marker's counters and timestamps) and in the timeline.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use callscope::call::{CallStatus, EndReason, ErrorCode, MediaType};
use callscope::callbacks::{CallKit, ConnectionState, Event};
use callscope::engine::{
    ClientConfig, EngineCommand, EngineMsg, PeerPolicy, Publish, run_client, sign_user_sig,
};
use callscope::media::marker::Marker;
use callscope::media::pattern::TestPattern;
use callscope::media::video::{VideoDecoder, VideoEncoder};
use callscope::media::{FrameSlots, MediaConfig, Resolution, list_cameras};
use callscope::signaling::usersig::DEFAULT_APP_ID;
use callscope::signaling::{Server, ServerConfig};
use callscope::timeline::{Query, TimelineEntry};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const SECRET: &[u8] = b"a media test secret";
const WAIT: Duration = Duration::from_secs(15);
/// How long media must flow in the steady-state checks.
const STEADY: Duration = Duration::from_secs(5);

/// The media tests share two cores; one at a time keeps their frame rates honest.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Net {
    runtime: Runtime,
    url: String,
    _server: Server,
}

impl Net {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(Server::start(ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                secret: SECRET.to_vec(),
                app_id: DEFAULT_APP_ID,
                demo_contacts: Vec::new(),
                kit: None,
            }))
            .unwrap();
        Self {
            url: server.url(),
            runtime,
            _server: server,
        }
    }

    /// A client with synthetic media that answers calls at once.
    fn answering(&self, user: &str) -> Client {
        self.client(
            user,
            Some(PeerPolicy::Accept {
                after: Duration::ZERO,
            }),
            synthetic(),
        )
    }

    /// Alice (synthetic media) places a video call to bob, who answers at once.
    fn alice_calls_bob(&self) -> (Client, Client) {
        let bob = self.answering("bob");
        let alice = self.client("alice", None, synthetic());
        alice.dial(&["bob"], MediaType::Video);
        (alice, bob)
    }

    fn client(&self, user: &str, policy: Option<PeerPolicy>, media: MediaConfig) -> Client {
        let kit = CallKit::builder().user(user).build();
        let (commands, receiver) = mpsc::channel(16);
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let publish: Publish = Arc::new(move |message| sink.lock().unwrap().push(message));
        let frames = media.frames.clone();
        let config = ClientConfig {
            server_url: self.url.clone(),
            user_id: user.to_owned(),
            user_sig: sign_user_sig(SECRET, user),
            policy,
            media: Some(media),
        };
        self.runtime
            .spawn(run_client(config, kit.clone(), receiver, publish));
        let client = Client {
            kit,
            commands,
            frames,
            reports,
        };
        client.wait_for("to log in", |c| {
            c.reports.lock().unwrap().iter().any(|m| {
                matches!(
                    m,
                    EngineMsg::Connection(callscope::engine::ConnectionState::Online)
                )
            })
        });
        client
    }
}

fn synthetic() -> MediaConfig {
    MediaConfig {
        resolution: Resolution::P480,
        frames: FrameSlots::default(),
        ..MediaConfig::synthetic()
    }
}

struct Client {
    kit: CallKit,
    commands: mpsc::Sender<EngineCommand>,
    frames: FrameSlots,
    reports: Arc<Mutex<Vec<EngineMsg>>>,
}

impl Client {
    fn send(&self, command: EngineCommand) {
        self.commands.try_send(command).unwrap();
    }

    fn dial(&self, callees: &[&str], media: MediaType) {
        self.send(EngineCommand::Dial {
            callees: callees.iter().map(|c| (*c).to_owned()).collect(),
            media,
            group: callees.len() > 1,
            timeout_secs: 30,
        });
    }

    fn entries(&self) -> Vec<Arc<TimelineEntry>> {
        self.kit.timeline().query(&Query::all())
    }

    fn events(&self) -> Vec<Event> {
        self.entries().iter().map(|e| e.event.clone()).collect()
    }

    fn has(&self, wanted: impl Fn(&Event) -> bool) -> bool {
        self.entries().iter().any(|e| wanted(&e.event))
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Self) -> bool) {
        self.wait_for_within(what, WAIT, done);
    }

    fn wait_for_within(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < limit,
                "{} timed out waiting {what}; kinds: {:?}",
                self.kit.user_id(),
                self.entries()
                    .iter()
                    .map(|e| e.kind().as_str())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Frames decoded from `from` so far.
    fn decoded(&self, from: &str) -> u64 {
        self.frames.get(from).map_or(0, |slot| {
            slot.counters.frames_decoded.load(Ordering::Relaxed)
        })
    }

    fn statuses(&self) -> Vec<(CallStatus, CallStatus)> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::StatusChanged {
                    old_status,
                    new_status,
                } => Some((*old_status, *new_status)),
                _ => None,
            })
            .collect()
    }

    fn ended_with(&self) -> Option<EndReason> {
        self.events().iter().find_map(|e| match e {
            Event::AfterCalling(summary) => Some(summary.reason),
            _ => None,
        })
    }
}

/// For each `(client, sender)`: frames per second decoded over `STEADY`, frames decoded and
/// frames lost meanwhile. All streams are measured over the same seconds.
fn steady_rates(streams: &[(&Client, &str)]) -> Vec<(f64, u64, u64)> {
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
    std::thread::sleep(STEADY);
    let elapsed = started.elapsed().as_secs_f64();
    counts()
        .into_iter()
        .zip(before)
        .map(|((frames, lost), (frames_before, lost_before))| {
            let decoded = frames - frames_before;
            (decoded as f64 / elapsed, decoded, lost - lost_before)
        })
        .collect()
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
    let (alice, bob) = net.alice_calls_bob();
    alice.wait_for("for bob's first frame", |a| a.decoded("bob") > 0);
    bob.wait_for("for alice's first frame", |b| b.decoded("alice") > 0);

    let streams = [(&alice, "bob"), (&bob, "alice")];
    for ((me, from), (fps, frames, lost)) in streams.iter().zip(steady_rates(&streams)) {
        let me = me.kit.user_id();
        assert!(fps >= 20.0, "{me} decoded {fps:.1} fps from {from}");
        assert!(
            lost * 100 <= frames,
            "{me} lost {lost} of {frames} frames from {from}"
        );
    }

    for (me, other) in [(&alice, "bob"), (&bob, "alice")] {
        assert!(
            me.has(connected_to(other)),
            "{} never connected",
            me.kit.user_id()
        );
        assert!(me.has(|e| matches!(e, Event::UserVideoAvailable { user_id, available: true } if user_id == other)));
        assert!(me.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == other)));
        assert!(me.has(|e| matches!(e, Event::CallStats(stats) if stats.user_id == other && stats.fps >= 20.0 && stats.resolution == "640x480" && stats.bitrate_kbps > 0.0)));
        assert!(me.has(
            |e| matches!(e, Event::UserNetworkQualityChanged { user_id, .. } if user_id == other)
        ));
        assert!(me.has(|e| matches!(e, Event::UserVoiceVolumeChanged { volumes } if volumes.get(other).is_some_and(|level| *level > 0))));
    }
    assert_eq!(
        alice.statuses(),
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
    alice.wait_for("for bob's video to be gone", |a| {
        a.has(|e| matches!(e, Event::UserVideoAvailable { user_id, available: false } if user_id == "bob"))
    });
}

#[test]
fn a_group_call_decodes_every_other_participant() {
    let _serial = serial();
    let net = Net::start();
    let bob = net.answering("bob");
    let carol = net.answering("carol");
    let alice = net.client("alice", None, synthetic());
    alice.dial(&["bob", "carol"], MediaType::Video);
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
    alice.send(EngineCommand::Hangup);
    bob.send(EngineCommand::Hangup);
    carol.send(EngineCommand::Hangup);
}

#[test]
fn switching_to_audio_stops_the_video_and_back_starts_it() {
    let _serial = serial();
    let net = Net::start();
    let (alice, bob) = net.alice_calls_bob();
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
}

fn sound_cards() -> bool {
    std::fs::read_to_string("/proc/asound/cards")
        .is_ok_and(|cards| !cards.contains("no soundcards") && !cards.trim().is_empty())
}

#[test]
fn without_camera_or_sound_card_the_call_carries_synthetic_media_and_says_why() {
    let _serial = serial();
    let net = Net::start();
    let bob = net.answering("bob");
    // Alice asks for the default devices, as the app does.
    let alice = net.client(
        "alice",
        None,
        MediaConfig {
            resolution: Resolution::P480,
            frames: FrameSlots::default(),
            ice: callscope::media::IceConfig::loopback(),
            ..MediaConfig::default()
        },
    );
    alice.dial(&["bob"], MediaType::Video);
    bob.wait_for("for alice's video", |b| b.decoded("alice") >= 10);
    bob.wait_for("for alice's audio", |b| {
        b.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "alice"))
    });
    // The frames carry the test pattern's marker: they are synthetic.
    let slot = bob.frames.get("alice").unwrap();
    assert!(slot.counters.frames_marked.load(Ordering::Relaxed) > 0);
    let errors: Vec<ErrorCode> = alice
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Error(error) => Some(error.code),
            _ => None,
        })
        .collect();
    if list_cameras().is_empty() {
        assert!(errors.contains(&ErrorCode::CameraUnavailable), "{errors:?}");
        assert!(alice.has(
            |e| matches!(e, Event::Error(error) if error.message.contains("synthetic test pattern"))
        ));
    }
    if !sound_cards() {
        assert!(
            errors.contains(&ErrorCode::MicrophoneUnavailable),
            "{errors:?}"
        );
    }
    // The call itself is unaffected.
    assert!(alice.ended_with().is_none());
    alice.send(EngineCommand::Hangup);
}

#[test]
fn a_vanished_peer_ends_the_call_with_media_failed_within_ten_seconds() {
    let _serial = serial();
    let net = Net::start();
    let (alice, bob) = net.alice_calls_bob();
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
            .args(["--server", &net.url, "--user", user, "--user-sig"])
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
    let alice = net.client("alice", None, synthetic());
    alice.dial(&["rtc-bob"], MediaType::Video);
    alice.wait_for("for aiortc's first frame", |a| a.decoded("rtc-bob") > 0);
    let streams = [(&alice, "rtc-bob")];
    let [(fps, frames, lost)] = steady_rates(&streams)[..] else {
        unreachable!()
    };
    assert!(fps >= 20.0, "callscope decoded {fps:.1} fps from aiortc");
    assert!(lost * 100 <= frames, "lost {lost} of {frames} frames");
    assert!(alice.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "rtc-bob")));
    assert!(alice.has(|e| matches!(e, Event::UserVoiceVolumeChanged { volumes } if volumes.get("rtc-bob").is_some_and(|level| *level > 0))));
    alice.send(EngineCommand::Hangup);
    let done = peer.wait_event("call_done", WAIT);
    assert!(
        number(&done, "fps") >= 20.0,
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
    let alice = net.answering("alice");
    let peer = Aiortc::start(&net, "rtc-carol", &["--call", "alice", "--seconds", "8"]);
    alice.wait_for("for aiortc's first frame", |a| a.decoded("rtc-carol") > 0);
    let streams = [(&alice, "rtc-carol")];
    let [(fps, frames, lost)] = steady_rates(&streams)[..] else {
        unreachable!()
    };
    assert!(fps >= 20.0, "callscope decoded {fps:.1} fps from aiortc");
    assert!(lost * 100 <= frames, "lost {lost} of {frames} frames");
    assert!(alice.has(|e| matches!(e, Event::UserAudioAvailable { user_id, available: true } if user_id == "rtc-carol")));
    let done = peer.wait_event("call_done", WAIT);
    assert!(
        number(&done, "fps") >= 20.0,
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
    // Carol asks for the default devices, as the app does; this machine has none, so opening
    // them records 60003 and 60004.
    let carol = net.client(
        "carol",
        None,
        MediaConfig {
            resolution: Resolution::P480,
            frames: FrameSlots::default(),
            ice: callscope::media::IceConfig::loopback(),
            ..MediaConfig::default()
        },
    );
    let alice = net.client("alice", None, synthetic());
    alice.dial(&["carol"], MediaType::Video);
    // The offer arrives while carol rings: her media connection exists...
    carol.wait_for("for alice's offer", |c| {
        c.has(|e| matches!(e, Event::ConnectionStateChanged { user_id, state: ConnectionState::New } if user_id == "alice"))
    });
    std::thread::sleep(Duration::from_secs(1));
    let device_errors = |c: &Client| {
        c.events()
            .iter()
            .filter(|e| {
                matches!(e, Event::Error(error) if matches!(error.code, ErrorCode::CameraUnavailable | ErrorCode::MicrophoneUnavailable))
            })
            .count()
    };
    // ...but no device was touched.
    assert_eq!(device_errors(&carol), 0);
    carol.send(EngineCommand::Accept);
    carol.wait_for("for carol's video at alice", |_| alice.decoded("carol") > 0);
    if list_cameras().is_empty() && !sound_cards() {
        assert_eq!(device_errors(&carol), 2);
    }
    alice.send(EngineCommand::Hangup);
}
