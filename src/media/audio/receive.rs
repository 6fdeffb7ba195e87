//! The receive path of one remote audio track: packets into the participant's jitter buffer as
//! they arrive; every 20 ms (the playout clock) one frame out of it, decoded, rebuilt from the
//! next packet's forward error correction, or made up by Opus's concealment; its level, the
//! speaker, and a WAV file when asked (`--record-audio`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::jitter::{JitterBuffer, Playout};
use super::wav::WavWriter;
use super::{FRAME, FRAME_SAMPLES, SAMPLE_RATE, audio_level};
use crate::media::MediaError;
use crate::media::session::Shared;
use crate::media::stats::AudioCounters;

/// The longest Opus packet: 120 ms.
const MAX_PACKET_SAMPLES: usize = 5_760;

/// Receives one remote audio track until it ends.
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
    let mut jitter = JitterBuffer::new();
    let mut samples = vec![0_i16; MAX_PACKET_SAMPLES];
    let mut recorder = Recorder::open(&shared, &remote);
    let mut playout = tokio::time::interval(FRAME);
    loop {
        tokio::select! {
            event = track.poll() => match event {
                None => break,
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    counters
                        .bytes
                        .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    counters.packets.fetch_add(1, Ordering::Relaxed);
                    let header = &packet.header;
                    jitter.push(
                        Instant::now(),
                        header.sequence_number,
                        header.timestamp,
                        packet.payload.clone(),
                    );
                }
                Some(_) => {}
            },
            _ = playout.tick() => {
                let frame = jitter.pull(Instant::now());
                if let Some(length) = play(&mut decoder, &frame, &mut samples, &counters) {
                    shared.playback.push(&remote, &samples[..length]);
                    recorder.write(&shared, &remote, &samples[..length]);
                } else {
                    // Nothing played: the recording keeps time with a frame of silence.
                    recorder.write(&shared, &remote, &[0; FRAME_SAMPLES]);
                }
                let (waited, frames) = jitter.take_waited();
                let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
                counters.jitter_waited_micros.fetch_add(micros, Ordering::Relaxed);
                counters.jitter_waited_frames.fetch_add(u64::from(frames), Ordering::Relaxed);
            }
        }
    }
    shared.playback.remove(&remote);
}

/// Where a participant's audio is written as it plays (`--record-audio DIR`): `DIR/CALL-USER.wav`.
#[derive(Debug, Default)]
struct Recorder {
    writer: Option<WavWriter>,
}

impl Recorder {
    /// The recorder of `user_id`'s audio, or none when not asked for (or the file could not be
    /// made, which the timeline says).
    fn open(shared: &Shared, user_id: &str) -> Self {
        let Some(dir) = &shared.config.record_audio else {
            return Self::default();
        };
        let name = format!("{}-{user_id}.wav", shared.call_id)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>();
        let created =
            std::fs::create_dir_all(dir).and_then(|()| WavWriter::create(&dir.join(name)));
        match created {
            Ok(writer) => Self {
                writer: Some(writer),
            },
            Err(error) => {
                shared.error(MediaError::Recording {
                    user_id: user_id.to_owned(),
                    reason: error.to_string(),
                });
                Self::default()
            }
        }
    }

    /// Appends what played; a failure is said once and the recording stops.
    fn write(&mut self, shared: &Shared, user_id: &str, samples: &[i16]) {
        let Some(writer) = &mut self.writer else {
            return;
        };
        if let Err(error) = writer.write(samples) {
            self.writer = None;
            shared.error(MediaError::Recording {
                user_id: user_id.to_owned(),
                reason: error.to_string(),
            });
        }
    }
}

/// Decodes one frame of the playout into `samples`, counting it; how many samples it made
/// (`None` for silence, or a packet the decoder refused).
fn play(
    decoder: &mut opus::Decoder,
    frame: &Playout,
    samples: &mut [i16],
    counters: &AudioCounters,
) -> Option<usize> {
    let result = match frame {
        Playout::Silence => return None,
        Playout::Packet(payload) => decoder.decode(payload, samples, false),
        Playout::Recover(next) => {
            if has_fec(next) {
                counters.fec_recovered.fetch_add(1, Ordering::Relaxed);
            } else {
                // Without error correction in it, the decoder conceals instead.
                counters
                    .concealed_samples
                    .fetch_add(FRAME_SAMPLES as u64, Ordering::Relaxed);
            }
            decoder.decode(next, &mut samples[..FRAME_SAMPLES], true)
        }
        Playout::Conceal => {
            counters
                .concealed_samples
                .fetch_add(FRAME_SAMPLES as u64, Ordering::Relaxed);
            decoder.decode(&[], &mut samples[..FRAME_SAMPLES], false)
        }
    };
    let length = result.ok()?;
    counters
        .played_samples
        .fetch_add(length as u64, Ordering::Relaxed);
    if matches!(frame, Playout::Packet(_)) {
        counters
            .level
            .store(audio_level(&samples[..length]), Ordering::Relaxed);
    }
    Some(length)
}

/// Whether an Opus packet carries in-band forward error correction for the one before it
/// (libopus's `opus_packet_has_lbrr`): a SILK or hybrid packet whose first frame has its LBRR
/// flag set.
pub fn has_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    // Configurations 16 to 31 are CELT only: no SILK layer, no FEC.
    if toc & 0x80 != 0 {
        return false;
    }
    let (Ok(parsed), Ok(per_frame)) = (
        opus::packet::parse(packet),
        opus::packet::get_samples_per_frame(packet, SAMPLE_RATE),
    ) else {
        return false;
    };
    let Some(&first) = parsed.frames.first().and_then(|frame| frame.first()) else {
        return false;
    };
    // SILK codes 20 ms frames: a 40 or 60 ms packet has two or three before the LBRR flag.
    let silk_frames = u32::try_from((per_frame / FRAME_SAMPLES).max(1)).unwrap_or(1);
    let mut flag = (first >> (7 - silk_frames)) & 1 == 1;
    if toc & 0x04 != 0 {
        flag |= (first >> (6 - 2 * silk_frames)) & 1 == 1;
    }
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech_like(frames: usize) -> Vec<Vec<i16>> {
        // A voice-band tone that swells, so the encoder's voice detector counts it active.
        (0..frames)
            .map(|frame| {
                (0..FRAME_SAMPLES)
                    .map(|index| {
                        let t = (frame * FRAME_SAMPLES + index) as f32 / SAMPLE_RATE as f32;
                        let swell = 0.5 + 0.5 * (t * 3.0).sin();
                        ((t * 220.0 * std::f32::consts::TAU).sin()
                            * (0.6 + 0.4 * (t * 700.0).sin())
                            * 9_000.0
                            * swell) as i16
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_lost_packet_is_rebuilt_from_the_next_one_s_error_correction() {
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .expect("an encoder");
        encoder.set_signal(opus::Signal::Voice).expect("voice");
        encoder.set_inband_fec(true).expect("FEC");
        encoder.set_packet_loss_perc(10).expect("loss");
        encoder
            .set_bitrate(opus::Bitrate::Bits(32_000))
            .expect("bitrate");
        let mut packet = [0_u8; 1_500];
        let packets: Vec<Vec<u8>> = speech_like(50)
            .iter()
            .map(|frame| {
                let length = encoder.encode(frame, &mut packet).expect("a packet");
                packet[..length].to_vec()
            })
            .collect();
        assert!(
            packets[10..].iter().any(|packet| has_fec(packet)),
            "no packet carries FEC"
        );
        let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).expect("a decoder");
        let counters = AudioCounters::default();
        let mut samples = vec![0_i16; MAX_PACKET_SAMPLES];
        let packet = |number: usize| bytes::Bytes::from(packets[number].clone());
        // A packet lost where the next one carries error correction (the encoder adds it to
        // frames its voice detector finds active), and one lost where the next does not.
        let rebuilt = (20..40)
            .find(|&number| has_fec(&packets[number + 1]))
            .expect("error correction in some packet");
        let made_up = (20..48)
            .find(|&number| number != rebuilt && !has_fec(&packets[number + 1]))
            .unwrap_or(45);
        for number in 0..50 {
            let frame = if number == rebuilt || number == made_up {
                Playout::Recover(packet(number + 1))
            } else if number == 49 {
                Playout::Conceal
            } else {
                Playout::Packet(packet(number))
            };
            let played = play(&mut decoder, &frame, &mut samples, &counters);
            assert_eq!(played, Some(FRAME_SAMPLES), "frame {number}");
        }
        assert_eq!(
            play(&mut decoder, &Playout::Silence, &mut samples, &counters),
            None
        );
        let with_fec = u64::from(has_fec(&packets[made_up + 1])) + 1;
        assert_eq!(counters.fec_recovered.load(Ordering::Relaxed), with_fec);
        let concealed = counters.concealed_samples.load(Ordering::Relaxed);
        assert_eq!(concealed, (3 - with_fec) * FRAME_SAMPLES as u64);
        assert_eq!(
            counters.played_samples.load(Ordering::Relaxed),
            50 * FRAME_SAMPLES as u64
        );
        // Garbage is refused by the decoder, never a panic.
        let garbage = Playout::Packet(bytes::Bytes::from_static(&[0xFF, 0xFF, 0xFF]));
        assert_eq!(play(&mut decoder, &garbage, &mut samples, &counters), None);
        assert!(!has_fec(&[]));
        assert!(!has_fec(&[0xFC, 0x00]));
    }
}
