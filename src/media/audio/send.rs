//! The local audio thread: microphone or tone, Opus, the peers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cpal::traits::DeviceTrait as _;

use super::devices::{HeldStream, find_device, hold_stream, mono_config};
use super::playback::Playback;
use super::processing::VoiceProcessing;
use super::{FRAME, FRAME_SAMPLES, SAMPLE_RATE, audio_level};
use crate::media::hub::{Encoded, Kind};
use crate::media::ladder::{AUDIO_MAX_BPS, audio_bitrate_bps};
use crate::media::session::Shared;
use crate::media::worker::Pacer;
use crate::media::{DeviceChoice, MediaError};

/// The synthetic tone's pitch.
const TONE_HZ: f32 = 440.0;
/// The synthetic tone swells and fades once every this many 20 ms frames (1.7 s), out of step
/// with the once-a-second level samples.
const TONE_BEAT_FRAMES: f32 = 85.0;
/// Captured audio waiting to be encoded (200 ms).
const CAPTURE_LIMIT: usize = 9_600;
/// The encoder follows the paths once a second.
const FOLLOW_EVERY_FRAMES: u32 = 50;
/// The most loss the encoder is told to expect (more spends the bitrate on protection alone).
const MAX_EXPECTED_LOSS_PCT: i32 = 30;

/// Where local audio comes from.
enum AudioSource {
    Microphone {
        captured: Arc<Mutex<VecDeque<i16>>>,
        _stream: HeldStream,
        /// Echo cancellation, noise suppression and gain (when on), and the far end it has yet
        /// to hear.
        processing: Option<Box<(VoiceProcessing, VecDeque<i16>)>>,
    },
    Tone {
        phase: f32,
        /// Frames made so far, for its loudness.
        frames: u32,
    },
    /// A WAV file's samples, looped.
    File { samples: Vec<i16>, position: usize },
}

impl AudioSource {
    fn open(shared: &Shared) -> Self {
        let tone = Self::Tone {
            phase: 0.0,
            frames: 0,
        };
        match &shared.config.microphone {
            DeviceChoice::Synthetic => return tone,
            DeviceChoice::File(path) => {
                return match super::wav::load(path) {
                    Ok(samples) => Self::File {
                        samples,
                        position: 0,
                    },
                    Err(reason) => {
                        shared.error(MediaError::MicrophoneUnavailable { reason });
                        tone
                    }
                };
            }
            DeviceChoice::Default | DeviceChoice::Named(_) => {}
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
                processing: shared
                    .config
                    .audio_processing
                    .then(|| Box::new((VoiceProcessing::new(), VecDeque::new()))),
            },
            Err(reason) => {
                shared.error(MediaError::MicrophoneUnavailable { reason });
                tone
            }
        }
    }

    fn next_frame(&mut self, frame: &mut [i16; FRAME_SAMPLES], playback: &Playback) {
        match self {
            Self::Microphone {
                captured,
                processing,
                ..
            } => {
                let mut buffer = captured.lock().unwrap_or_else(PoisonError::into_inner);
                for sample in frame.iter_mut() {
                    *sample = buffer.pop_front().unwrap_or(0);
                }
                drop(buffer);
                if let Some(processing) = processing {
                    let (processing, far_end) = &mut **processing;
                    playback.take_played(far_end);
                    processing.render(far_end);
                    processing.capture(frame);
                }
            }
            Self::File { samples, position } => {
                for sample in frame.iter_mut() {
                    *sample = samples[*position];
                    *position = (*position + 1) % samples.len();
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
    let mut encoder = match voice_encoder() {
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
    let mut settings = EncoderSettings::default();
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
        source.next_frame(&mut frame, &shared.playback);
        let enabled = shared.audio_enabled.load(Ordering::Acquire);
        shared.local_level.store(
            if enabled { audio_level(&frame) } else { 0 },
            Ordering::Relaxed,
        );
        if !enabled || shared.hub.subscribers(Kind::Audio) == 0 {
            continue;
        }
        settings.follow(&mut encoder, shared);
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

/// An Opus encoder for speech: a voice signal (so the SILK layer, which carries the forward
/// error correction, is used at call bitrates), FEC on.
fn voice_encoder() -> Result<opus::Encoder, opus::Error> {
    let mut encoder =
        opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
    encoder.set_signal(opus::Signal::Voice)?;
    encoder.set_inband_fec(true)?;
    encoder.set_bitrate(opus::Bitrate::Bits(
        i32::try_from(AUDIO_MAX_BPS).unwrap_or(i32::MAX),
    ))?;
    Ok(encoder)
}

/// The encoder's bitrate and expected loss, as last set: they follow the paths to the peers.
#[derive(Debug, Default)]
struct EncoderSettings {
    bitrate_bps: u32,
    loss_pct: i32,
    frames: u32,
}

impl EncoderSettings {
    /// Once a second: the bitrate the narrowest path's estimate allows the audio, and the loss
    /// the lossiest path reports, so the forward error correction carries what it may lose.
    fn follow(&mut self, encoder: &mut opus::Encoder, shared: &Shared) {
        self.frames += 1;
        if self.frames % FOLLOW_EVERY_FRAMES != 1 {
            return;
        }
        let Some(paths) = shared.hub.paths(Kind::Audio) else {
            return;
        };
        let bitrate = if paths.informed {
            audio_bitrate_bps(paths.narrowest_bps)
        } else {
            AUDIO_MAX_BPS
        };
        if bitrate != self.bitrate_bps
            && encoder
                .set_bitrate(opus::Bitrate::Bits(
                    i32::try_from(bitrate).unwrap_or(i32::MAX),
                ))
                .is_ok()
        {
            self.bitrate_bps = bitrate;
        }
        // Rounded up: a little loss asks for a little protection.
        let loss = ((paths.worst_loss * 100.0).ceil() as i32).clamp(0, MAX_EXPECTED_LOSS_PCT);
        if loss != self.loss_pct && encoder.set_packet_loss_perc(loss).is_ok() {
            self.loss_pct = loss;
        }
    }
}
