//! The media side of one call: a peer connection per remote participant (a mesh for group
//! calls, planned by [`Mesh`]), the local sources while the local user is in the call, and the
//! [`MediaEvent`]s it reports. It decides nothing about the call: the engine does, from the
//! reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::audio::{Playback, send_audio};
use super::events::{MediaEvent, MediaReport};
use super::hub::SendHub;
use super::impair::LinkPlan;
use super::link::LinkControl;
use super::mesh::{CallView, Mesh, MeshStep};
use super::peer::{PeerCommand, PeerSpec, run_peer};
use super::stats::SentVideo;
use super::video::send_video;
use super::worker::{MediaThread, Wake};
use super::{DeviceChoice, MediaConfig, MediaError};
use crate::model::MediaType;
use crate::timeline::Clock;

/// Commands waiting for one peer task.
const PEER_COMMANDS: usize = 32;

/// What the engine tells the media of the open call.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCommand {
    /// The call as it stands now (membership, media type).
    Sync(CallView),
    /// An SDP offer or answer from a participant (JSON).
    RemoteDescription {
        /// Who sent it.
        from: String,
        /// The description.
        description: String,
    },
    /// A trickled ICE candidate from a participant (JSON).
    RemoteCandidate {
        /// Who sent it.
        from: String,
        /// The candidate.
        candidate: String,
    },
    /// Turn the local camera on or off (the call stays a video call).
    SetCamera(bool),
    /// Unmute or mute the local microphone.
    SetMicrophone(bool),
    /// Drop every connection silently, as a network outage would (a debugging aid).
    Vanish,
    /// Impair the media links from now on (a debugging aid).
    Impair(LinkPlan),
    /// Drop all media both ways for this long, keeping the connections (a debugging aid).
    CutMedia {
        /// How long, in milliseconds.
        for_millis: u64,
    },
}

/// What every task and thread of a call's media shares: the facts it needs, the flags it
/// reads, and where it reports. Nothing here can end a call or speak the wire protocol.
pub struct Shared {
    /// The call.
    pub call_id: String,
    /// The local user.
    pub me: String,
    /// How media runs.
    pub config: MediaConfig,
    /// The engine's clock (negotiation deadlines).
    pub clock: Clock,
    /// Encoded local media, fanned out to the peers.
    pub hub: SendHub,
    /// The local video is wanted (a video call, camera on).
    pub video_enabled: AtomicBool,
    /// The local audio is sent (microphone on).
    pub audio_enabled: AtomicBool,
    /// The local speaking level, 0..=100.
    pub local_level: AtomicU8,
    /// Where received audio is played.
    pub playback: Playback,
    /// The local user is in the call: devices may open.
    pub joined: AtomicBool,
    /// What the local video sends now.
    pub sent_video: Mutex<SentVideo>,
    /// Rung whenever a flag above or the hub's subscribers change, so threads wait without
    /// polling.
    pub wake: Wake,
    reports: mpsc::Sender<MediaReport>,
    /// Reports that did not fit in the engine's queue since the last one that did.
    dropped: AtomicU64,
}

impl Shared {
    /// Reports something the engine must not miss (a description, a failure, a state); waits
    /// for room in the queue.
    pub async fn report(&self, event: MediaEvent) {
        let report = MediaReport {
            call_id: self.call_id.clone(),
            event,
        };
        // The engine gone means the call is gone too.
        let _ = self.reports.send(report).await;
    }

    /// Reports a periodic or best-effort fact; when the engine's queue is full it is counted
    /// as dropped, and the count goes out with the next report that fits.
    pub fn report_now(&self, event: MediaEvent) {
        let dropped = self.dropped.swap(0, Ordering::AcqRel);
        if dropped > 0 {
            let note = MediaReport {
                call_id: self.call_id.clone(),
                event: MediaEvent::Dropped(dropped),
            };
            if self.reports.try_send(note).is_err() {
                self.dropped.fetch_add(dropped, Ordering::AcqRel);
            }
        }
        let report = MediaReport {
            call_id: self.call_id.clone(),
            event,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.reports.try_send(report) {
            self.dropped.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Reports a media error (best effort, like [`Shared::report_now`]).
    pub fn error(&self, error: MediaError) {
        self.report_now(MediaEvent::Error(error));
    }

    /// Waits (on a media thread) until the local user has joined; false if told to stop first.
    pub fn wait_until_joined(&self, running: &AtomicBool) -> bool {
        self.wake
            .wait_until(|| !running.load(Ordering::Acquire) || self.joined.load(Ordering::Acquire));
        running.load(Ordering::Acquire)
    }
}

struct PeerHandle {
    commands: mpsc::Sender<PeerCommand>,
    task: JoinHandle<()>,
    link: Arc<LinkControl>,
}

/// The media of one call.
pub struct MediaSession {
    shared: Arc<Shared>,
    mesh: Mesh,
    peers: BTreeMap<String, PeerHandle>,
    camera_on: bool,
    media: MediaType,
    video_thread: Option<MediaThread>,
    audio_thread: Option<MediaThread>,
    volume_task: Option<JoinHandle<()>>,
    /// What the links to the peers do on purpose.
    plan: LinkPlan,
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

impl MediaSession {
    /// Media for `call_id` of `me`; nothing starts until a connection is needed. Reports go to
    /// `reports`.
    pub fn new(
        call_id: &str,
        me: &str,
        config: MediaConfig,
        clock: Clock,
        reports: mpsc::Sender<MediaReport>,
    ) -> Self {
        let shared = Arc::new(Shared {
            call_id: call_id.to_owned(),
            me: me.to_owned(),
            config,
            clock,
            hub: SendHub::default(),
            video_enabled: AtomicBool::new(false),
            audio_enabled: AtomicBool::new(true),
            local_level: AtomicU8::new(0),
            playback: Playback::default(),
            joined: AtomicBool::new(false),
            sent_video: Mutex::default(),
            wake: Wake::default(),
            reports,
            dropped: AtomicU64::new(0),
        });
        shared.hub.set_wake(shared.wake.clone());
        let plan = shared.config.link.clone();
        Self {
            plan,
            mesh: Mesh::new(me),
            shared,
            peers: BTreeMap::new(),
            camera_on: true,
            media: MediaType::Audio,
            video_thread: None,
            audio_thread: None,
            volume_task: None,
        }
    }

    /// The call this media belongs to.
    pub fn call_id(&self) -> &str {
        &self.shared.call_id
    }

    /// Carries out one command of the engine.
    pub fn apply(&mut self, command: MediaCommand) {
        match command {
            MediaCommand::Sync(view) => self.sync(&view),
            MediaCommand::RemoteDescription { from, description } => {
                let steps = self.mesh.remote_description(&from);
                self.carry_out(steps);
                self.tell(&from, PeerCommand::Description(description));
            }
            MediaCommand::RemoteCandidate { from, candidate } => {
                if self.mesh.has_link(&from) {
                    self.tell(&from, PeerCommand::Candidate(candidate));
                } else {
                    self.shared.error(MediaError::Negotiation {
                        user_id: from,
                        reason: "an ICE candidate before any description".to_owned(),
                    });
                }
            }
            MediaCommand::SetCamera(on) => {
                self.camera_on = on;
                self.apply_video();
            }
            MediaCommand::SetMicrophone(on) => {
                self.shared.audio_enabled.store(on, Ordering::Release);
                self.shared.wake.ring();
            }
            MediaCommand::Vanish => {
                for peer in self.peers.values() {
                    let _ = peer.commands.try_send(PeerCommand::Vanish);
                }
            }
            MediaCommand::Impair(plan) => self.impair(plan),
            MediaCommand::CutMedia { for_millis } => self.cut_media(for_millis),
        }
    }

    fn sync(&mut self, view: &CallView) {
        self.media = view.media;
        let steps = self.mesh.sync(view);
        self.carry_out(steps);
        self.apply_video();
    }

    fn carry_out(&mut self, steps: Vec<MeshStep>) {
        for step in steps {
            match step {
                MeshStep::Join => self.join(),
                MeshStep::Open {
                    user_id,
                    side,
                    polite,
                } => self.spawn_peer(PeerSpec {
                    link: self.link_to(&user_id),
                    remote: user_id,
                    side,
                    polite,
                }),
                MeshStep::Membership {
                    user_id,
                    local_joined,
                    remote_joined,
                } => self.tell(
                    &user_id,
                    PeerCommand::Membership {
                        local_joined,
                        remote_joined,
                    },
                ),
                MeshStep::Close { user_id } => self.close_peer(&user_id),
            }
        }
    }

    /// The local user is in the call: the speaker opens here, the microphone (and, for video,
    /// the camera) on their threads; never while the call only rings.
    fn join(&mut self) {
        self.shared.joined.store(true, Ordering::Release);
        self.shared.wake.ring();
        // Opening a device can block; the engine's runtime has other workers meanwhile.
        let speaker = tokio::task::block_in_place(|| {
            self.shared
                .playback
                .open_speaker(&self.shared.config.speaker, self.shared.config.devices)
        });
        if let Err(reason) = speaker
            && self.shared.config.speaker != DeviceChoice::Synthetic
        {
            self.shared.error(MediaError::SpeakerUnavailable { reason });
        }
        self.start_sources();
    }

    fn tell(&mut self, user_id: &str, command: PeerCommand) {
        let Some(peer) = self.peers.get(user_id) else {
            return;
        };
        if peer.commands.try_send(command).is_err() {
            self.shared.error(MediaError::Connection {
                user_id: user_id.to_owned(),
                reason: "its connection is not taking commands".to_owned(),
            });
        }
    }

    fn apply_video(&mut self) {
        let wanted = self.media == MediaType::Video && self.camera_on;
        self.shared.video_enabled.store(wanted, Ordering::Release);
        if wanted && self.video_thread.is_none() && !self.peers.is_empty() {
            // An audio call never opens the encoder or the camera; a switch to video does.
            self.video_thread = Some(MediaThread::spawn("video-send", &self.shared, send_video));
        }
        self.shared.wake.ring();
    }

    fn spawn_peer(&mut self, spec: PeerSpec) {
        // The media threads start with the first connection, to warm their encoders up; they
        // open the devices only once the local user joins.
        self.start_sources();
        let (commands, receiver) = mpsc::channel(PEER_COMMANDS);
        let remote = spec.remote.clone();
        let link = Arc::clone(&spec.link);
        let task = tokio::spawn(run_peer(spec, receiver, Arc::clone(&self.shared)));
        self.peers.insert(
            remote,
            PeerHandle {
                commands,
                task,
                link,
            },
        );
        self.apply_video();
    }

    /// A new link to `user_id`, impaired as the plan says.
    fn link_to(&self, user_id: &str) -> Arc<LinkControl> {
        let link = LinkControl::new();
        let directions = self.plan.for_peer(user_id);
        if !directions.is_none() {
            link.impair(directions.send, directions.receive);
        }
        link
    }

    fn impair(&mut self, plan: LinkPlan) {
        for (user_id, peer) in &self.peers {
            let directions = plan.for_peer(user_id);
            peer.link.impair(directions.send, directions.receive);
        }
        self.plan = plan;
    }

    fn cut_media(&self, for_millis: u64) {
        let now = std::time::Instant::now();
        for peer in self.peers.values() {
            peer.link
                .cut(now, std::time::Duration::from_millis(for_millis));
        }
    }

    fn close_peer(&mut self, user_id: &str) {
        if let Some(peer) = self.peers.remove(user_id) {
            let _ = peer.commands.try_send(PeerCommand::Close);
            // The task closes its connection and ends; it is not awaited here.
            drop(peer.task);
        }
    }

    fn start_sources(&mut self) {
        if self.audio_thread.is_none() {
            self.audio_thread = Some(MediaThread::spawn("audio-send", &self.shared, send_audio));
            self.volume_task = Some(tokio::spawn(report_volumes(Arc::clone(&self.shared))));
        }
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
        self.video_thread = None;
        self.audio_thread = None;
        self.shared.wake.ring();
    }
}

/// The speaking levels once a second: the local level and each remote participant's.
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
            shared.report_now(MediaEvent::Volumes(volumes));
        }
    }
}
