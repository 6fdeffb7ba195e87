//! The media side of one call: a peer connection per remote participant (a mesh for group
//! calls), who offers to whom, the local sources while anyone is connected, and what the
//! signaling client must send or do on the media engine's behalf.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::audio::{Playback, send_audio};
use super::hub::SendHub;
use super::peer::{PeerCommand, PeerSpec, run_peer};
use super::video::send_video;
use super::worker::MediaThread;
use super::{DeviceChoice, MediaConfig};
use crate::call::{CallError, ErrorCode, MediaType, MemberState};
use crate::callbacks::{CallKit, Event};
use crate::signaling::ClientMessage;
use crate::timeline::Source;

/// Commands waiting for one peer task.
const PEER_COMMANDS: usize = 32;

/// What the media engine asks of the signaling client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaNote {
    /// Send this message to the server (SDP for a participant).
    Send(ClientMessage),
    /// The media connection to a participant failed or vanished.
    PeerFailed {
        /// The call.
        call_id: String,
        /// The participant.
        user_id: String,
        /// What happened.
        reason: String,
    },
}

/// State every task of a call's media shares.
pub struct Shared {
    /// The call.
    pub call_id: String,
    /// The local user.
    pub me: String,
    /// Where events are recorded.
    pub kit: CallKit,
    /// How media runs.
    pub config: MediaConfig,
    /// Encoded local media, fanned out to the peers.
    pub hub: SendHub,
    /// The local video is sent (a video call, camera on).
    pub video_enabled: AtomicBool,
    /// The local audio is sent (microphone on).
    pub audio_enabled: AtomicBool,
    /// The local speaking level, 0..=100.
    pub local_level: AtomicU8,
    /// Where received audio is played.
    pub playback: Playback,
    /// The local user is in the call: devices may open.
    pub joined: AtomicBool,
    notes: mpsc::Sender<MediaNote>,
}

impl Shared {
    /// Records an engine event of this call.
    pub fn dispatch(&self, event: Event) {
        let now = self.kit.clock().now();
        self.kit
            .dispatch(now, Some(&self.call_id), Source::Engine, event);
    }

    /// Records an `onError` of this call.
    pub fn record_error(&self, code: ErrorCode, message: &str) {
        self.dispatch(Event::Error(CallError::new(code, message)));
    }

    /// Tells the signaling client something.
    pub fn note(&self, note: MediaNote) {
        // The queue is sized for a whole call's negotiation; if the client is gone, so is the call.
        let _ = self.notes.try_send(note);
    }

    /// Waits (on a media thread) until the local user has joined; false if told to stop first.
    pub fn wait_until_joined(&self, running: &AtomicBool) -> bool {
        while !self.joined.load(Ordering::Acquire) {
            if !running.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        running.load(Ordering::Acquire)
    }

    /// Reports that the connection to `user_id` is lost.
    pub fn failed(&self, user_id: &str, reason: &str) {
        self.note(MediaNote::PeerFailed {
            call_id: self.call_id.clone(),
            user_id: user_id.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

/// What the media session needs to know about the call, taken from the call core.
#[derive(Debug, Clone, Copy)]
pub struct SessionView<'a> {
    /// Who placed the call.
    pub caller: &'a str,
    /// Whether the local user is in the call (placed it, or accepted).
    pub joined: bool,
    /// Everyone else and whether they joined.
    pub members: &'a [(String, MemberState)],
    /// Audio or video.
    pub media: MediaType,
}

struct PeerHandle {
    commands: mpsc::Sender<PeerCommand>,
    task: JoinHandle<()>,
    remote_joined: bool,
    failed: bool,
    /// The membership last told to the peer, so it is told only of changes.
    told: Option<(bool, bool)>,
}

/// The media of one call.
pub struct MediaSession {
    shared: Arc<Shared>,
    peers: BTreeMap<String, PeerHandle>,
    joined: bool,
    camera_on: bool,
    sources: Option<(MediaThread, MediaThread)>,
    volume_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MediaSession")
            .field("call_id", &self.shared.call_id)
            .field("peers", &self.peers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Whether `me` sends the offer to `other`: the caller offers to everyone; between two
/// callees, the smaller user id offers, so both sides agree without asking.
fn offers_to(me: &str, other: &str, caller: &str) -> bool {
    me == caller || (other != caller && me < other)
}

impl MediaSession {
    /// Media for `call_id`; nothing starts until the first peer is needed.
    pub fn new(
        call_id: &str,
        kit: CallKit,
        config: MediaConfig,
        notes: mpsc::Sender<MediaNote>,
    ) -> Self {
        let shared = Arc::new(Shared {
            call_id: call_id.to_owned(),
            me: kit.user_id().to_owned(),
            kit,
            config,
            hub: SendHub::default(),
            video_enabled: AtomicBool::new(false),
            audio_enabled: AtomicBool::new(true),
            local_level: AtomicU8::new(0),
            playback: Playback::default(),
            joined: AtomicBool::new(false),
            notes,
        });
        Self {
            shared,
            peers: BTreeMap::new(),
            joined: false,
            camera_on: true,
            sources: None,
            volume_task: None,
        }
    }

    /// The call this media belongs to.
    pub fn call_id(&self) -> &str {
        &self.shared.call_id
    }

    /// Brings the peer connections in line with the call: new members get one, members who
    /// left lose theirs.
    pub fn sync(&mut self, view: SessionView<'_>) {
        if view.joined && !self.joined {
            self.join();
        }
        self.joined = view.joined;
        self.apply_video(view.media == MediaType::Video);
        let me = self.shared.me.clone();
        for (user_id, state) in view.members {
            let present = matches!(state, MemberState::Ringing | MemberState::Joined);
            if present
                && self.joined
                && !self.peers.contains_key(user_id)
                && offers_to(&me, user_id, view.caller)
            {
                self.spawn_peer(user_id, true);
            }
            if let Some(peer) = self.peers.get_mut(user_id) {
                peer.remote_joined = *state == MemberState::Joined;
            }
        }
        let gone: Vec<String> = self
            .peers
            .keys()
            .filter(|user_id| {
                !view.members.iter().any(|(member, state)| {
                    member == *user_id
                        && matches!(state, MemberState::Ringing | MemberState::Joined)
                })
            })
            .cloned()
            .collect();
        for user_id in gone {
            self.close_peer(&user_id);
        }
        self.tell_membership();
    }

    /// The local user is in the call: the devices open (the speaker here, the camera and the
    /// microphone on their threads), never while the call only rings.
    fn join(&mut self) {
        self.shared.joined.store(true, Ordering::Release);
        // Opening a device can block; the engine's runtime has other workers meanwhile.
        let speaker = tokio::task::block_in_place(|| {
            self.shared
                .playback
                .open_speaker(&self.shared.config.speaker)
        });
        if let Err(reason) = speaker
            && self.shared.config.speaker != DeviceChoice::Synthetic
        {
            self.shared.record_error(
                ErrorCode::InitFailed,
                &format!(
                    "{}; received audio is not played",
                    reason.trim_end_matches('.')
                ),
            );
        }
        self.start_sources();
    }

    /// Tells each peer who is in the call, when that changed.
    fn tell_membership(&mut self) {
        for (user_id, peer) in &mut self.peers {
            let now = (self.joined, peer.remote_joined);
            if peer.told == Some(now) {
                continue;
            }
            let told = peer.commands.try_send(PeerCommand::Membership {
                local_joined: now.0,
                remote_joined: now.1,
            });
            if told.is_ok() {
                peer.told = Some(now);
            } else {
                self.shared.record_error(
                    ErrorCode::InitFailed,
                    &format!("the media connection to {user_id} is not taking commands"),
                );
            }
        }
    }

    fn apply_video(&self, video_call: bool) {
        self.shared
            .video_enabled
            .store(video_call && self.camera_on, Ordering::Release);
    }

    /// Turns the local camera on or off (the call stays a video call).
    pub fn set_camera(&mut self, on: bool, media: MediaType) {
        self.camera_on = on;
        self.apply_video(media == MediaType::Video);
        self.shared.dispatch(Event::UserVideoAvailable {
            user_id: self.shared.me.clone(),
            available: on && media == MediaType::Video,
        });
    }

    /// Mutes or unmutes the local microphone.
    pub fn set_microphone(&mut self, on: bool) {
        self.shared.audio_enabled.store(on, Ordering::Release);
        self.shared.dispatch(Event::UserAudioAvailable {
            user_id: self.shared.me.clone(),
            available: on,
        });
    }

    /// Drops every media connection silently, as a network outage would (a debugging aid: the
    /// far ends should end the call with `media-failed`).
    pub fn simulate_media_loss(&self) {
        for peer in self.peers.values() {
            let _ = peer.commands.try_send(PeerCommand::Vanish);
        }
    }

    /// An SDP offer or answer from `from`.
    pub fn remote_description(&mut self, from: &str, description: String) {
        if !self.peers.contains_key(from) {
            self.spawn_peer(from, false);
        }
        if let Some(peer) = self.peers.get(from)
            && peer
                .commands
                .try_send(PeerCommand::Description(description))
                .is_err()
        {
            self.shared.record_error(
                ErrorCode::InitFailed,
                &format!("the media connection to {from} is not taking its description"),
            );
        }
        self.tell_membership();
    }

    /// A trickled ICE candidate from `from`.
    pub fn remote_candidate(&mut self, from: &str, candidate: String) {
        match self.peers.get(from) {
            Some(peer) => {
                let _ = peer.commands.try_send(PeerCommand::Candidate(candidate));
            }
            None => self.shared.record_error(
                ErrorCode::InvalidParameter,
                &format!("an ICE candidate from {from}, who has no media connection"),
            ),
        }
    }

    /// Marks the connection to `user_id` failed; true when no connection is left working,
    /// so the call cannot go on.
    pub fn peer_failed(&mut self, user_id: &str) -> bool {
        if let Some(peer) = self.peers.get_mut(user_id) {
            peer.failed = true;
        }
        !self.peers.is_empty() && self.peers.values().all(|peer| peer.failed)
    }

    fn spawn_peer(&mut self, user_id: &str, offerer: bool) {
        // The media threads start now to warm their encoders up; they open the devices only
        // once the local user joins.
        self.start_sources();
        let (commands, receiver) = mpsc::channel(PEER_COMMANDS);
        let task = tokio::spawn(run_peer(
            PeerSpec {
                remote: user_id.to_owned(),
                offerer,
            },
            receiver,
            Arc::clone(&self.shared),
        ));
        self.peers.insert(
            user_id.to_owned(),
            PeerHandle {
                commands,
                task,
                remote_joined: false,
                failed: false,
                told: None,
            },
        );
    }

    fn close_peer(&mut self, user_id: &str) {
        if let Some(peer) = self.peers.remove(user_id) {
            let _ = peer.commands.try_send(PeerCommand::Close);
            // The task closes its connection and ends; it is not awaited here.
            drop(peer.task);
        }
    }

    fn start_sources(&mut self) {
        if self.sources.is_some() {
            return;
        }
        let video = MediaThread::spawn("video-send", Arc::clone(&self.shared), send_video);
        let audio = MediaThread::spawn("audio-send", Arc::clone(&self.shared), send_audio);
        self.sources = Some((video, audio));
        self.volume_task = Some(tokio::spawn(report_volumes(Arc::clone(&self.shared))));
    }

    /// Closes every connection and stops the sources.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        let users: Vec<String> = self.peers.keys().cloned().collect();
        for user_id in users {
            self.close_peer(&user_id);
        }
        if let Some(task) = self.volume_task.take() {
            task.abort();
        }
        self.sources = None;
    }
}

/// `onUserVoiceVolumeChanged` once a second with the local level and each remote level.
async fn report_volumes(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        if !shared.joined.load(Ordering::Acquire) {
            continue;
        }
        let mut volumes = shared.playback.levels();
        if shared.audio_enabled.load(Ordering::Acquire) {
            volumes.insert(
                shared.me.clone(),
                shared.local_level.load(Ordering::Relaxed),
            );
        }
        if !volumes.is_empty() {
            shared.dispatch(Event::UserVoiceVolumeChanged { volumes });
        }
    }
}
