//! Audio: the send thread (microphone through cpal, or a tone when there is none; Opus at
//! 48 kHz in 20 ms packets; the local speaking level), the receive path (Opus decode, levels,
//! playback), and the speaker (a cpal output stream mixing every remote participant, or a
//! silent sink when there is no speaker).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::hub::{Encoded, Kind};
use super::session::Shared;
use super::stats::AudioCounters;
use super::worker::Pacer;
use super::{DeviceChoice, Devices, MediaError};

/// Opus runs at 48 kHz, mono, 20 ms per packet.
pub const SAMPLE_RATE: u32 = 48_000;
const FRAME_SAMPLES: usize = 960;
const FRAME: Duration = Duration::from_millis(20);
/// The synthetic tone's pitch.
const TONE_HZ: f32 = 440.0;
/// The synthetic tone swells and fades once every this many 20 ms frames (1.7 s), out of step
/// with the once-a-second level samples.
const TONE_BEAT_FRAMES: f32 = 85.0;
/// Audio waiting to be played per participant; older samples drop (200 ms).
const PLAYBACK_LIMIT: usize = 9_600;
/// Captured audio waiting to be encoded (200 ms).
const CAPTURE_LIMIT: usize = 9_600;

/// The sound devices this machine has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioDevices {
    /// Microphones.
    pub inputs: Vec<String>,
    /// Speakers.
    pub outputs: Vec<String>,
}

/// Keeps ALSA's own diagnostics (`ALSA lib … cannot find card`) off stderr for the calling
/// thread: a machine without a sound card is a normal state, which callscope reports itself.
pub fn quiet_sound_library() {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !QUIET.replace(true) {
        // Without the handler ALSA only prints more; nothing else depends on it.
        let _ = alsa::Output::local_error_handler();
    }
}

/// Lists the default host's input and output devices (none on a machine without them).
pub fn list_audio_devices(devices: Devices) -> AudioDevices {
    if devices == Devices::Absent {
        return AudioDevices::default();
    }
    quiet_sound_library();
    let host = cpal::default_host();
    let names = |devices: Option<Vec<cpal::Device>>| -> Vec<String> {
        devices
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    AudioDevices {
        inputs: names(host.input_devices().ok().map(Iterator::collect)),
        outputs: names(host.output_devices().ok().map(Iterator::collect)),
    }
}

/// The speaking level of 16-bit samples, 0 (silence, -60 dBFS or below) to 100 (full scale).
pub fn audio_level(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&sample| {
            let value = f64::from(sample) / 32768.0;
            value * value
        })
        .sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms <= 0.0 {
        return 0;
    }
    let dbfs = 20.0 * rms.log10();
    let level = ((dbfs + 60.0) * 100.0 / 60.0).clamp(0.0, 100.0).round();
    // Clamped to 0..=100, so the conversion is exact.
    u8::try_from(level as i64).unwrap_or(100)
}

fn find_device(
    input: bool,
    choice: &DeviceChoice,
    devices: Devices,
) -> Result<cpal::Device, String> {
    let what = if input { "microphone" } else { "speaker" };
    if devices == Devices::Absent && *choice != DeviceChoice::Synthetic {
        return Err(format!("no {what} found"));
    }
    quiet_sound_library();
    let host = cpal::default_host();
    match choice {
        DeviceChoice::Synthetic => Err(format!("no {what} chosen")),
        DeviceChoice::Default => if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or_else(|| format!("no {what} found")),
        DeviceChoice::Named(name) => {
            let devices = if input {
                host.input_devices().map(Iterator::collect::<Vec<_>>)
            } else {
                host.output_devices().map(Iterator::collect::<Vec<_>>)
            };
            devices
                .map_err(|error| format!("the {what}s could not be listed: {error}"))?
                .into_iter()
                .find(|device| device.to_string() == *name)
                .ok_or_else(|| format!("{what} {name:?} not found"))
        }
    }
}

fn mono_config() -> cpal::StreamConfig {
    cpal::StreamConfig {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        buffer_size: cpal::BufferSize::Default,
    }
}

/// A cpal stream held open on its own thread; dropping the handle closes it.
#[derive(Debug)]
pub struct HeldStream {
    _stop: crossbeam_channel::Sender<()>,
}

/// Holds a cpal stream on its own thread (a stream may not move between threads) until the
/// handle is dropped.
fn hold_stream(
    name: &str,
    build: impl FnOnce() -> Result<cpal::Stream, String> + Send + 'static,
) -> Result<HeldStream, String> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            quiet_sound_library();
            let stream = build().and_then(|stream| {
                stream.play().map_err(|error| error.to_string())?;
                Ok(stream)
            });
            match stream {
                Ok(stream) => {
                    let _ = ready_tx.send(Ok(()));
                    // Blocks until the handle is dropped (nothing is ever sent).
                    let _ = stop_rx.recv();
                    drop(stream);
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                }
            }
        })
        .map_err(|error| error.to_string())?;
    ready_rx
        .recv()
        .map_err(|_| "the audio thread stopped".to_owned())??;
    Ok(HeldStream { _stop: stop_tx })
}

/// A level older than this is stale: the participant stopped sending (muted, or gone).
const LEVEL_FRESH: Duration = Duration::from_millis(300);

/// Where received audio goes: the speaker, mixed per participant, or nowhere; and the
/// participants' speaking levels.
#[derive(Debug, Default)]
pub struct Playback {
    queues: Arc<Mutex<BTreeMap<String, VecDeque<i16>>>>,
    levels: Mutex<BTreeMap<String, (u8, Instant)>>,
    /// The open speaker, once the local user joined (`Err` says why there is none).
    speaker: OnceLock<Result<HeldStream, String>>,
}

impl Playback {
    /// Opens the chosen speaker, once; until then (and without one) audio goes nowhere. Opening
    /// a device can block, so this belongs on a thread that may wait. The result says why
    /// there is no speaker, if there is none.
    pub fn open_speaker(&self, choice: &DeviceChoice, devices: Devices) -> Result<(), String> {
        let opened = self.speaker.get_or_init(|| {
            let mixer = Arc::clone(&self.queues);
            let choice = choice.clone();
            hold_stream("audio-playback", move || {
                let device = find_device(false, &choice, devices)?;
                device
                    .build_output_stream(
                        mono_config(),
                        move |output: &mut [i16], _| mix(&mixer, output),
                        |_| {},
                        None,
                    )
                    .map_err(|error| format!("the speaker could not start: {error}"))
            })
        });
        opened.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Queues decoded samples of `user_id` and records their level.
    pub fn push(&self, user_id: &str, samples: &[i16]) {
        self.levels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user_id.to_owned(), (audio_level(samples), Instant::now()));
        if !matches!(self.speaker.get(), Some(Ok(_))) {
            return;
        }
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = queues.entry(user_id.to_owned()).or_default();
        queue.extend(samples);
        let excess = queue.len().saturating_sub(PLAYBACK_LIMIT);
        queue.drain(..excess);
    }

    /// Forgets `user_id` (it left).
    pub fn remove(&self, user_id: &str) {
        self.levels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user_id);
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user_id);
    }

    /// Each remote participant's speaking level now (0 when nothing arrived lately).
    pub fn levels(&self) -> BTreeMap<String, u8> {
        self.levels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(user_id, (level, at))| {
                let fresh = at.elapsed() < LEVEL_FRESH;
                (user_id.clone(), if fresh { *level } else { 0 })
            })
            .collect()
    }
}

fn mix(queues: &Mutex<BTreeMap<String, VecDeque<i16>>>, output: &mut [i16]) {
    let mut queues = queues.lock().unwrap_or_else(PoisonError::into_inner);
    for sample in output.iter_mut() {
        let mut sum = 0_i32;
        for queue in queues.values_mut() {
            sum += i32::from(queue.pop_front().unwrap_or(0));
        }
        *sample = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
}

/// Where local audio comes from.
enum AudioSource {
    Microphone {
        captured: Arc<Mutex<VecDeque<i16>>>,
        _stream: HeldStream,
    },
    Tone {
        phase: f32,
        /// Frames made so far, for its loudness.
        frames: u32,
    },
}

impl AudioSource {
    fn open(shared: &Shared) -> Self {
        let tone = Self::Tone {
            phase: 0.0,
            frames: 0,
        };
        if shared.config.microphone == DeviceChoice::Synthetic {
            return tone;
        }
        let captured: Arc<Mutex<VecDeque<i16>>> = Arc::default();
        let sink = Arc::clone(&captured);
        let choice = shared.config.microphone.clone();
        let devices = shared.config.devices;
        let opened = hold_stream("audio-capture", move || {
            let device = find_device(true, &choice, devices)?;
            device
                .build_input_stream(
                    mono_config(),
                    move |input: &[i16], _| {
                        let mut buffer = sink.lock().unwrap_or_else(PoisonError::into_inner);
                        buffer.extend(input);
                        let excess = buffer.len().saturating_sub(CAPTURE_LIMIT);
                        buffer.drain(..excess);
                    },
                    |_| {},
                    None,
                )
                .map_err(|error| format!("the microphone could not start: {error}"))
        });
        match opened {
            Ok(stream) => Self::Microphone {
                captured,
                _stream: stream,
            },
            Err(reason) => {
                shared.error(MediaError::MicrophoneUnavailable { reason });
                tone
            }
        }
    }

    fn next_frame(&mut self, frame: &mut [i16; FRAME_SAMPLES]) {
        match self {
            Self::Microphone { captured, .. } => {
                let mut buffer = captured.lock().unwrap_or_else(PoisonError::into_inner);
                for sample in frame.iter_mut() {
                    *sample = buffer.pop_front().unwrap_or(0);
                }
            }
            Self::Tone { phase, frames } => {
                let step = TONE_HZ / SAMPLE_RATE as f32 * std::f32::consts::TAU;
                // Louder and softer like speech, so its level moves as a voice's does.
                let beat = *frames as f32 / TONE_BEAT_FRAMES;
                let loudness = 0.55 + 0.45 * (beat * std::f32::consts::TAU).sin();
                *frames = frames.wrapping_add(1);
                for sample in frame.iter_mut() {
                    *sample = (phase.sin() * 8000.0 * loudness) as i16;
                    *phase = (*phase + step) % std::f32::consts::TAU;
                }
            }
        }
    }
}

/// The local audio thread's body: capture or tone, Opus, the peers, until `running` clears.
pub fn send_audio(shared: &Shared, running: &AtomicBool) {
    let mut encoder =
        match opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip) {
            Ok(encoder) => encoder,
            Err(error) => {
                shared.error(MediaError::Codec {
                    codec: "Opus",
                    role: "encoder",
                    reason: error.to_string(),
                });
                return;
            }
        };
    // The microphone opens only once the local user is in the call, not while it rings.
    if !shared.wait_until_joined(running) {
        return;
    }
    let mut source = AudioSource::open(shared);
    let mut frame = [0_i16; FRAME_SAMPLES];
    let mut packet = [0_u8; 1500];
    // Audio may fall a few packets behind before it skips ahead: a gap is worse than a late packet.
    let mut pacer = Pacer::new(FRAME).with_slack(FRAME * 5);
    while running.load(Ordering::Acquire) {
        pacer.wait();
        source.next_frame(&mut frame);
        let enabled = shared.audio_enabled.load(Ordering::Acquire);
        shared.local_level.store(
            if enabled { audio_level(&frame) } else { 0 },
            Ordering::Relaxed,
        );
        if !enabled || shared.hub.subscribers(Kind::Audio) == 0 {
            continue;
        }
        if let Ok(length) = encoder.encode(&frame, &mut packet) {
            shared.hub.publish(
                Kind::Audio,
                &Encoded {
                    data: Bytes::copy_from_slice(&packet[..length]),
                    duration: FRAME,
                },
            );
        }
    }
}

/// Receives one remote audio track until it ends: decode, level, playback.
pub async fn receive(
    track: Arc<dyn TrackRemote>,
    remote: String,
    counters: Arc<AudioCounters>,
    shared: Arc<Shared>,
) {
    let mut decoder = match opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono) {
        Ok(decoder) => decoder,
        Err(error) => {
            shared.error(MediaError::Codec {
                codec: "Opus",
                role: "decoder",
                reason: error.to_string(),
            });
            return;
        }
    };
    // 120 ms, the longest Opus packet.
    let mut samples = vec![0_i16; 5_760];
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        counters
            .bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        let Ok(length) = decoder.decode(&packet.payload, &mut samples, false) else {
            continue;
        };
        let level = audio_level(&samples[..length]);
        counters.level.store(level, Ordering::Relaxed);
        counters.packets.fetch_add(1, Ordering::Relaxed);
        shared.playback.push(&remote, &samples[..length]);
    }
    shared.playback.remove(&remote);
}

/// The incoming-call ringtone, built into the binary.
const RINGTONE_WAV: &[u8] = include_bytes!("../../assets/ringtone.wav");

/// The ringtone's samples at 48 kHz mono, decoded once.
fn ringtone() -> Result<Arc<[i16]>, String> {
    static SAMPLES: OnceLock<Result<Arc<[i16]>, String>> = OnceLock::new();
    SAMPLES
        .get_or_init(|| ringtone_samples().map(Arc::from))
        .clone()
}

/// The ringtone's samples at 48 kHz mono: a 16-bit PCM WAV, resampled by nearest neighbour.
pub fn ringtone_samples() -> Result<Vec<i16>, String> {
    let bad = |what: &str| format!("the ringtone is not a 16-bit PCM WAV: {what}");
    if RINGTONE_WAV.get(..4) != Some(b"RIFF") || RINGTONE_WAV.get(8..12) != Some(b"WAVE") {
        return Err(bad("no RIFF/WAVE header"));
    }
    let (mut rate, mut channels, mut data) = (0_u32, 0_usize, None);
    let mut offset = 12;
    while let Some(header) = RINGTONE_WAV.get(offset..offset + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = RINGTONE_WAV
            .get(offset + 8..offset + 8 + size)
            .ok_or_else(|| bad("a chunk runs past the end"))?;
        match &header[..4] {
            b"fmt " if body.len() >= 16 => {
                channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                if u16::from_le_bytes([body[14], body[15]]) != 16 {
                    return Err(bad("not 16 bits per sample"));
                }
            }
            b"data" => data = Some(body),
            _ => {}
        }
        offset += 8 + size + size % 2;
    }
    let data = data.ok_or_else(|| bad("no data chunk"))?;
    if rate == 0 || channels == 0 {
        return Err(bad("no format chunk"));
    }
    let frames: Vec<i16> = data
        .chunks_exact(2 * channels)
        .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
        .collect();
    let length = frames.len() * SAMPLE_RATE as usize / rate as usize;
    Ok((0..length)
        .map(|index| frames[index * rate as usize / SAMPLE_RATE as usize])
        .collect())
}

/// The ringtone looping through the speaker; it stops when dropped.
#[derive(Debug)]
pub struct Ringtone {
    _stream: HeldStream,
}

impl Ringtone {
    /// Starts ringing on the chosen speaker; an error when there is none.
    pub fn start(choice: &DeviceChoice, devices: Devices) -> Result<Self, String> {
        let samples = ringtone()?;
        if samples.is_empty() {
            return Err("the ringtone has no samples".to_owned());
        }
        let choice = choice.clone();
        let stream = hold_stream("ringtone", move || {
            let device = find_device(false, &choice, devices)?;
            let mut position = 0;
            device
                .build_output_stream(
                    mono_config(),
                    move |output: &mut [i16], _| {
                        for sample in output {
                            *sample = samples[position];
                            position = (position + 1) % samples.len();
                        }
                    },
                    |_| {},
                    None,
                )
                .map_err(|error| format!("the speaker could not start: {error}"))
        })?;
        Ok(Self { _stream: stream })
    }
}
