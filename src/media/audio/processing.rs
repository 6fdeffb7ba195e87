//! `VoiceProcessing`: the microphone cleaned before it is encoded: echo cancellation (what the
//! speaker played, heard again by the microphone, taken out), noise suppression and automatic
//! gain, by WebRTC's own audio processing (AEC3, NS, AGC2, a high-pass filter) in its pure-Rust
//! port, `sonora`. It needs no system library and no C++ build, and the echo path is measured
//! by the tests (on recorded speech through a simulated room: the echo falls by over 20 dB,
//! the near talker is kept).
//!
//! The processor works in 10 ms frames; ours are 20 ms, so each is two. The far end is fed as
//! the speaker plays it ([`super::Playback`] keeps a copy of what it mixed); AEC3 finds the delay
//! between the two itself, given a hint.

use std::collections::VecDeque;

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
    NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use super::{FRAME_SAMPLES, SAMPLE_RATE};

/// The processor's frame: 10 ms.
const CHUNK: usize = FRAME_SAMPLES / 2;
/// What the speaker-to-microphone delay is first taken to be (AEC3 finds the real one).
const DELAY_HINT_MS: i32 = 50;
/// The most the gain control lifts a quiet microphone: enough for a soft talker, not so much
/// that what is left of the echo comes back up.
const MAX_GAIN_DB: f32 = 20.0;
/// Far-end audio kept waiting for the capture side at most (200 ms); older is dropped.
pub const FAR_END_LIMIT: usize = 9_600;

/// The microphone's processing.
pub struct VoiceProcessing {
    apm: AudioProcessing,
    scratch: Vec<i16>,
}

impl std::fmt::Debug for VoiceProcessing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VoiceProcessing")
            .finish_non_exhaustive()
    }
}

impl Default for VoiceProcessing {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceProcessing {
    /// Echo cancellation, noise suppression (high) and adaptive gain, for 48 kHz mono.
    pub fn new() -> Self {
        let config = Config {
            high_pass_filter: Some(HighPassFilter::default()),
            echo_canceller: Some(EchoCanceller::default()),
            noise_suppression: Some(NoiseSuppression {
                level: NoiseSuppressionLevel::High,
                ..NoiseSuppression::default()
            }),
            // Without the adaptive digital part, AGC2 is only a limiter.
            gain_controller2: Some(GainController2 {
                adaptive_digital: Some(AdaptiveDigital {
                    max_gain_db: MAX_GAIN_DB,
                    initial_gain_db: 0.0,
                    ..AdaptiveDigital::default()
                }),
                ..GainController2::default()
            }),
            ..Config::default()
        };
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        Self {
            apm: AudioProcessing::builder()
                .config(config)
                .capture_config(stream)
                .render_config(stream)
                .build(),
            scratch: vec![0; CHUNK],
        }
    }

    /// Feeds what the speaker played, 10 ms at a time (a part left over waits in `far_end`).
    pub fn render(&mut self, far_end: &mut VecDeque<i16>) {
        while far_end.len() >= CHUNK {
            let chunk: Vec<i16> = far_end.drain(..CHUNK).collect();
            // Only analysed: the render output is not played.
            let _ = self.apm.process_render_i16(&chunk, &mut self.scratch);
        }
    }

    /// Cleans one 20 ms microphone frame in place.
    pub fn capture(&mut self, frame: &mut [i16; FRAME_SAMPLES]) {
        for chunk in frame.chunks_exact_mut(CHUNK) {
            // Out of range is clamped; the hint is only that.
            let _ = self.apm.set_stream_delay_ms(DELAY_HINT_MS);
            if self
                .apm
                .process_capture_i16(chunk, &mut self.scratch)
                .is_ok()
            {
                chunk.copy_from_slice(&self.scratch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded speech (espeak-ng, kept in `assets/`), looped to `frames` frames.
    fn speech(wav: &[u8], frames: usize) -> Vec<i16> {
        let samples = super::super::wav::decode(wav).expect("the speech asset");
        samples
            .iter()
            .copied()
            .cycle()
            .take(frames * FRAME_SAMPLES)
            .collect()
    }

    fn far_talker(frames: usize) -> Vec<i16> {
        speech(include_bytes!("../../../assets/talker-far.wav"), frames)
    }

    fn near_talker(frames: usize) -> Vec<i16> {
        speech(include_bytes!("../../../assets/talker-near.wav"), frames)
    }

    fn energy(samples: &[i16]) -> f64 {
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
    }

    /// A conversation in turns of 1.5 s, the far end first: the microphone hears the far end
    /// through the room (40 ms later, at half the level, with a faint reflection) during its
    /// turns, and the near talker during theirs. What goes out, against what the microphone
    /// heard: (echo reduction over the far end's last turns, near talker kept, in dB).
    fn conversation(mut processing: VoiceProcessing) -> (f64, f64) {
        let seconds = 15;
        let far = far_talker(seconds * 50);
        let near = near_talker(seconds * 50);
        let turn = SAMPLE_RATE as usize * 3 / 2;
        let far_turn = |at: usize| (at / turn).is_multiple_of(2);
        let delay = 40 * 48;
        let mut played = VecDeque::new();
        let (mut heard, mut sent) = (Vec::new(), Vec::new());
        for number in 0..seconds * 50 {
            let start = number * FRAME_SAMPLES;
            let far_frame: Vec<i16> = (start..start + FRAME_SAMPLES)
                .map(|at| if far_turn(at) { far[at] } else { 0 })
                .collect();
            played.extend(&far_frame);
            processing.render(&mut played);
            let mut frame = [0_i16; FRAME_SAMPLES];
            for (index, sample) in frame.iter_mut().enumerate() {
                let at = start + index;
                let echo = |lag: usize, gain: f32| {
                    at.checked_sub(lag)
                        .filter(|&past| far_turn(past))
                        .map_or(0.0, |past| f32::from(far[past]) * gain)
                };
                let talk = if far_turn(at) {
                    0.0
                } else {
                    f32::from(near[at])
                };
                *sample = (echo(delay, 0.5) + echo(delay + 480, 0.15) + talk) as i16;
            }
            heard.extend_from_slice(&frame);
            processing.capture(&mut frame);
            sent.extend_from_slice(&frame);
        }
        // The last five seconds, once it has converged; the edges of each turn left out.
        let from = heard.len() - 5 * SAMPLE_RATE as usize;
        let (mut echo, mut talk) = ((0.0, 0.0), (0.0, 0.0));
        for at in from..heard.len() {
            let within = at % turn;
            if within < SAMPLE_RATE as usize / 10 || within > turn - SAMPLE_RATE as usize / 10 {
                continue;
            }
            let pair = (f64::from(heard[at]).powi(2), f64::from(sent[at]).powi(2));
            let sums = if far_turn(at) { &mut echo } else { &mut talk };
            sums.0 += pair.0;
            sums.1 += pair.1;
        }
        (
            10.0 * (echo.0 / f64::max(echo.1, 1.0)).log10(),
            10.0 * (talk.1 / f64::max(talk.0, 1.0)).log10(),
        )
    }

    #[test]
    fn in_a_conversation_the_far_end_heard_through_the_room_is_taken_out() {
        let (reduction_db, kept_db) = conversation(VoiceProcessing::new());
        println!(
            "the echo fell by {reduction_db:.1} dB, the near talker by {:.1} dB",
            -kept_db
        );
        assert!(
            reduction_db >= 20.0,
            "the echo fell by {reduction_db:.1} dB"
        );
        assert!(kept_db > -6.0, "the near talker fell by {:.1} dB", -kept_db);
    }

    #[test]
    fn a_near_end_talker_with_no_far_end_comes_through() {
        let mut processing = VoiceProcessing::new();
        let near = near_talker(150);
        let mut played = VecDeque::new();
        let mut sent = Vec::new();
        for chunk in near.chunks_exact(FRAME_SAMPLES) {
            // The speaker plays silence.
            played.extend([0_i16; FRAME_SAMPLES]);
            processing.render(&mut played);
            let mut frame = [0_i16; FRAME_SAMPLES];
            frame.copy_from_slice(chunk);
            processing.capture(&mut frame);
            sent.extend_from_slice(&frame);
        }
        let tail = SAMPLE_RATE as usize;
        let kept_db = 10.0
            * (energy(&sent[sent.len() - tail..]) / energy(&near[near.len() - tail..])).log10();
        assert!(kept_db > -6.0, "the talker fell by {:.1} dB", -kept_db);
    }
}
