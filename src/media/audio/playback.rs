//! Where received audio goes: the speaker, mixed per participant, or nowhere; and the
//! participants' speaking levels.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait as _;

use super::audio_level;
use super::devices::{HeldStream, find_device, hold_stream, mono_config};
use super::processing::FAR_END_LIMIT;
use crate::media::{DeviceChoice, Devices};

/// Audio waiting to be played per participant; older samples drop (200 ms).
const PLAYBACK_LIMIT: usize = 9_600;

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
    /// What the speaker played, for the echo canceller to take out of the microphone.
    played: Arc<Mutex<VecDeque<i16>>>,
}

impl Playback {
    /// Opens the chosen speaker, once; until then (and without one) audio goes nowhere. Opening
    /// a device can block, so this belongs on a thread that may wait. The result says why
    /// there is no speaker, if there is none.
    pub fn open_speaker(&self, choice: &DeviceChoice, devices: Devices) -> Result<(), String> {
        let opened = self.speaker.get_or_init(|| {
            let mixer = Arc::clone(&self.queues);
            let played = Arc::clone(&self.played);
            let choice = choice.clone();
            hold_stream("audio-playback", move || {
                let device = find_device(false, &choice, devices)?;
                device
                    .build_output_stream(
                        mono_config(),
                        move |output: &mut [i16], _| {
                            mix(&mixer, output);
                            keep_played(&played, output);
                        },
                        |_| {},
                        None,
                    )
                    .map_err(|error| format!("the speaker could not start: {error}"))
            })
        });
        opened.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Moves what the speaker played since the last call onto `into` (nothing without a
    /// speaker).
    pub fn take_played(&self, into: &mut VecDeque<i16>) {
        into.extend(
            self.played
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..),
        );
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

/// Keeps a copy of what was played (the latest 200 ms, if nobody takes it).
fn keep_played(played: &Mutex<VecDeque<i16>>, output: &[i16]) {
    let mut played = played.lock().unwrap_or_else(PoisonError::into_inner);
    played.extend(output);
    let excess = played.len().saturating_sub(FAR_END_LIMIT);
    played.drain(..excess);
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
