//! One WebRTC peer connection to one remote participant, run as its own task: builds the
//! connection, negotiates over signaling, starts the send queues once connected, spawns the
//! receivers for the remote tracks, and reports state and statistics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::media::Sample;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::congestion::EstimateCell;
use super::events::MediaEvent;
use super::hub::{Encoded, Kind};
use super::keyframe::asks_for_keyframe;
use super::link::LinkControl;
use super::negotiation::{
    IceState, Negotiation, Side, Step, description_kind, without_unreachable_candidates,
};
use super::session::Shared;
use super::stats::PeerStats;
use super::video::DecodeWorker;
use super::{MediaConfig, MediaError};

/// H.264 constrained baseline, packetization mode 1, as every browser and aiortc offer it.
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
const H264_PAYLOAD_TYPE: u8 = 102;
/// The video's retransmission stream (RFC 4588), whose SSRC the stack picks: resends, and the
/// padding that probes the path.
const RTX_PAYLOAD_TYPE: u8 = 103;
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// How often availability is checked; statistics go out every fourth check.
/// A path whose far end stops answering this long goes `disconnected`.
pub const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(2);
/// Then this much longer without an answer: `failed`.
pub const ICE_FAILED_AFTER: Duration = Duration::from_secs(5);

const TICK: Duration = Duration::from_millis(250);
const STATS_EVERY_TICKS: u32 = 4;
/// Encoded frames waiting to be written per peer: a little slack, then frames drop.
const VIDEO_QUEUE: usize = 4;
const AUDIO_QUEUE: usize = 16;

/// What the session tells a peer.
#[derive(Debug)]
pub enum PeerCommand {
    /// An SDP offer or answer from the remote side (JSON).
    Description(String),
    /// A trickled ICE candidate from the remote side (JSON).
    Candidate(String),
    /// Who is in the call now: an answer waits until the local side has joined.
    Membership {
        /// The local user has joined (placed or accepted the call).
        local_joined: bool,
        /// The remote user has joined.
        remote_joined: bool,
    },
    /// Close the connection without telling anyone, as if the network had gone: the far side
    /// notices only when its checks time out.
    Vanish,
    /// Close the connection and stop.
    Close,
}

/// How a peer starts.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// The remote participant.
    pub remote: String,
    /// Offer or answer.
    pub side: Side,
    /// Yields in a glare.
    pub polite: bool,
    /// What the link to it does on purpose, and what arrived over it.
    pub link: Arc<LinkControl>,
}

enum Happening {
    Gathered,
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

/// Forwards the connection's callbacks to the peer task; they run inside the connection's
/// driver, so they must not wait.
struct Forwarder {
    happenings: mpsc::Sender<Happening>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Forwarder {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.happenings.try_send(Happening::Gathered);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.happenings.try_send(Happening::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.happenings.try_send(Happening::Track(track));
    }
}

fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

async fn build_connection(
    config: &MediaConfig,
    link: &Arc<LinkControl>,
    estimate: &Arc<EstimateCell>,
    happenings: mpsc::Sender<Happening>,
) -> webrtc::error::Result<Arc<dyn PeerConnection>> {
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: h264_codec(),
            payload_type: H264_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: format!("apt={H264_PAYLOAD_TYPE}"),
                rtcp_feedback: vec![],
            },
            payload_type: RTX_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    // After the codecs, so NACK, PLI and transport-wide feedback are negotiated for them.
    let registry = super::chain::registry(&mut media, link, estimate, Instant::now())?;
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_connection_attempts(Some(config.ice.check_interval), None)
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED_AFTER),
            Some(ICE_FAILED_AFTER),
            Some(Duration::from_millis(500)),
        )
        // A relayed pair waits 2 s by default in case a direct one works; relay-only, none
        // can, so it is taken at once.
        .with_relay_acceptance_min_wait(config.ice.relay_only.then_some(Duration::ZERO))
        .build();
    let servers = config
        .ice
        .servers
        .iter()
        .map(|url| RTCIceServer {
            urls: vec![url.clone()],
            username: config.ice.username.clone(),
            credential: config.ice.credential.clone(),
        })
        .collect();
    let builder = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(servers)
                .with_ice_transport_policy(if config.ice.relay_only {
                    RTCIceTransportPolicy::Relay
                } else {
                    RTCIceTransportPolicy::All
                })
                .build(),
        )
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(Arc::new(Forwarder { happenings }))
        .with_udp_addrs(config.ice.udp_addrs.clone());
    let connection = Box::pin(builder.build()).await?;
    Ok(Arc::new(connection))
}

struct LocalTrack {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
}

async fn add_local_track(
    connection: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
    user: &str,
) -> webrtc::error::Result<LocalTrack> {
    let ssrc = random_ssrc();
    let (codec, name) = match kind {
        RtpCodecKind::Video => (h264_codec(), "video"),
        _ => (opus_codec(), "audio"),
    };
    let track = Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            user.to_owned(),
            format!("{user}-{name}"),
            name.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        ),
    )?);
    let sender = connection
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await?;
    Ok(LocalTrack {
        track,
        sender,
        ssrc,
    })
}

pub(super) fn random_ssrc() -> u32 {
    let mut bytes = [0_u8; 4];
    // A clock-derived SSRC is good enough if the system has no random source.
    if getrandom::fill(&mut bytes).is_err() {
        return crate::media::marker::now_micros() as u32;
    }
    u32::from_be_bytes(bytes)
}

/// The peer task's state: the connection, its tracks, and the negotiation machine that says
/// what to do with them.
struct Peer {
    spec: PeerSpec,
    shared: Arc<Shared>,
    connection: Arc<dyn PeerConnection>,
    video: LocalTrack,
    audio: LocalTrack,
    negotiation: Negotiation,
    vanished: bool,
    stats: PeerStats,
    /// The decoder for the remote video, started early so it is warm when media flows.
    decoder: Option<DecodeWorker>,
    /// How much the path to the remote may carry, as our congestion control estimates it.
    estimate: Arc<EstimateCell>,
}

/// Runs one peer connection until told to close (or the connection closes).
pub async fn run_peer(
    spec: PeerSpec,
    mut commands: mpsc::Receiver<PeerCommand>,
    shared: Arc<Shared>,
) {
    // What the connection reports: a handful of events per call (gathering, a few states,
    // the tracks); the handler may not wait, so a full queue would drop one, and 64 leaves room.
    let (happenings_tx, mut happenings) = mpsc::channel(64);
    let mut peer = match Box::pin(Peer::start(
        spec.clone(),
        Arc::clone(&shared),
        happenings_tx,
    ))
    .await
    {
        Ok(peer) => peer,
        Err(error) => {
            let error = MediaError::Connection {
                user_id: spec.remote.clone(),
                reason: format!("it could not be built: {error}"),
            };
            shared
                .report(MediaEvent::PeerFailed {
                    user_id: spec.remote,
                    error,
                })
                .await;
            return;
        }
    };
    peer.carry_out().await;
    let mut tick = tokio::time::interval(TICK);
    let mut ticks = 0_u32;
    loop {
        let deadline = peer
            .negotiation
            .poll_timeout()
            .map(|at| tokio::time::Instant::from_std(shared.clock.instant_of(at)));
        tokio::select! {
            // Commands first: a close queued behind a burst of events still comes promptly.
            biased;
            command = commands.recv() => match command {
                None | Some(PeerCommand::Close) => break,
                Some(command) => peer.command(command).await,
            },
            Some(happening) = happenings.recv() => peer.happening(happening).await,
            () = sleep_until(deadline) => {
                let now = shared.clock.now();
                peer.negotiation.handle_timeout(now);
            }
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                peer.tick(ticks.is_multiple_of(STATS_EVERY_TICKS)).await;
            }
        }
        peer.carry_out().await;
    }
    peer.negotiation.handle_close();
    peer.carry_out().await;
    peer.close().await;
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn ice_state(state: RTCPeerConnectionState) -> Option<IceState> {
    match state {
        RTCPeerConnectionState::Connecting => Some(IceState::Checking),
        RTCPeerConnectionState::Connected => Some(IceState::Connected),
        RTCPeerConnectionState::Disconnected => Some(IceState::Disconnected),
        RTCPeerConnectionState::Failed => Some(IceState::Failed),
        RTCPeerConnectionState::Closed => Some(IceState::Closed),
        _ => None,
    }
}

impl Peer {
    async fn start(
        spec: PeerSpec,
        shared: Arc<Shared>,
        happenings: mpsc::Sender<Happening>,
    ) -> webrtc::error::Result<Self> {
        let estimate = EstimateCell::new();
        let connection = Box::pin(build_connection(
            &shared.config,
            &spec.link,
            &estimate,
            happenings,
        ))
        .await?;
        let video = add_local_track(&connection, RtpCodecKind::Video, &shared.me).await?;
        let audio = add_local_track(&connection, RtpCodecKind::Audio, &shared.me).await?;
        spawn_keyframe_listener(Arc::clone(&video.track), Arc::clone(&shared));
        let negotiation =
            Negotiation::new(&spec.remote, spec.side, spec.polite).ringing(shared.config.ringing);
        let mut peer = Self {
            stats: PeerStats::new(&spec.remote, Arc::clone(&spec.link), Arc::clone(&estimate)),
            spec,
            shared,
            connection,
            video,
            audio,
            negotiation,
            vanished: false,
            decoder: None,
            estimate,
        };
        if peer.shared.config.decode {
            peer.decoder = DecodeWorker::start(Arc::clone(&peer.shared));
        }
        Ok(peer)
    }

    async fn command(&mut self, command: PeerCommand) {
        let now = self.shared.clock.now();
        match command {
            PeerCommand::Description(json) => match description_kind(&json) {
                Ok(kind) => self.negotiation.handle_remote_description(now, kind, json),
                Err(reason) => self.refused(reason).await,
            },
            PeerCommand::Candidate(json) => self.negotiation.handle_remote_candidate(json),
            PeerCommand::Membership {
                local_joined,
                remote_joined,
            } => self
                .negotiation
                .handle_membership(now, local_joined, remote_joined),
            PeerCommand::Vanish => {
                self.shared.hub.unsubscribe(&self.spec.remote);
                self.vanished = true;
                let _ = self.connection.close().await;
            }
            PeerCommand::Close => {}
        }
    }

    async fn happening(&mut self, happening: Happening) {
        let now = self.shared.clock.now();
        match happening {
            Happening::Gathered => self.negotiation.handle_gathered(now),
            Happening::State(state) => {
                // A connection closed on purpose to look vanished says nothing more.
                if let Some(state) = ice_state(state).filter(|_| !self.vanished) {
                    self.negotiation.handle_ice(now, state);
                }
            }
            Happening::Track(track) => self.track(track).await,
        }
    }

    /// Carries out what the negotiation asks of the stack, and reports its conclusions.
    async fn carry_out(&mut self) {
        while let Some(step) = self.negotiation.poll_step() {
            if let Err(reason) = self.step(step).await {
                self.refused(reason).await;
            }
        }
        while let Some(report) = self.negotiation.poll_report() {
            let event = MediaEvent::of_negotiation(&self.spec.remote, report);
            self.shared.report(event).await;
        }
    }

    async fn refused(&self, reason: String) {
        let error = MediaError::Negotiation {
            user_id: self.spec.remote.clone(),
            reason,
        };
        self.shared.report(MediaEvent::Error(error)).await;
    }

    async fn step(&mut self, step: Step) -> Result<(), String> {
        let failed = |error: webrtc::error::Error| error.to_string();
        match step {
            Step::CreateOffer => {
                let offer = self.connection.create_offer(None).await.map_err(failed)?;
                self.connection
                    .set_local_description(offer)
                    .await
                    .map_err(failed)?;
            }
            Step::CreateAnswer => {
                let answer = self.connection.create_answer(None).await.map_err(failed)?;
                self.connection
                    .set_local_description(answer)
                    .await
                    .map_err(failed)?;
            }
            Step::ApplyRemote(json) => {
                let description: RTCSessionDescription = serde_json::from_str(&json)
                    .map_err(|error| format!("malformed description: {error}"))?;
                self.connection
                    .set_remote_description(description)
                    .await
                    .map_err(failed)?;
            }
            Step::Rollback => {
                let rollback = RTCSessionDescription::rollback(None).map_err(failed)?;
                self.connection
                    .set_local_description(rollback)
                    .await
                    .map_err(failed)?;
            }
            Step::AddCandidate(json) => {
                let candidate: RTCIceCandidateInit = serde_json::from_str(&json)
                    .map_err(|error| format!("malformed candidate: {error}"))?;
                self.connection
                    .add_ice_candidate(candidate)
                    .await
                    .map_err(failed)?;
            }
            Step::SendLocal => self.send_local_description().await,
            Step::StartSending => self.start_sending().await,
            Step::Close => {}
        }
        Ok(())
    }

    async fn send_local_description(&self) {
        let Some(mut description) = self.connection.local_description().await else {
            return;
        };
        description.sdp = without_unreachable_candidates(&description.sdp);
        let Ok(json) = serde_json::to_string(&description) else {
            return;
        };
        self.shared
            .report(MediaEvent::LocalDescription {
                to: self.spec.remote.clone(),
                description: json,
            })
            .await;
    }

    async fn start_sending(&self) {
        for (local, kind, capacity) in [
            (&self.video, Kind::Video, VIDEO_QUEUE),
            (&self.audio, Kind::Audio, AUDIO_QUEUE),
        ] {
            let payload_type = match local.sender.get_parameters().await {
                Ok(parameters) => parameters
                    .rtp_parameters
                    .codecs
                    .first()
                    .map(|codec| codec.payload_type),
                Err(_) => None,
            };
            let Some(payload_type) = payload_type else {
                // The remote side did not accept this kind of media; nothing to send.
                continue;
            };
            let (queue, frames) = mpsc::channel(capacity);
            tokio::spawn(write_samples(
                Arc::clone(&local.track),
                local.ssrc,
                payload_type,
                frames,
            ));
            self.shared
                .hub
                .subscribe(kind, &self.spec.remote, queue, Arc::clone(&self.estimate));
        }
    }

    async fn track(&mut self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let Some(ssrc) = track.ssrcs().await.first().copied() else {
            return;
        };
        let remote = self.spec.remote.clone();
        let shared = Arc::clone(&self.shared);
        match kind {
            RtpCodecKind::Video => {
                let slot = self.shared.config.frames.reset(&remote);
                self.stats.watch_video(Arc::clone(&slot));
                tokio::spawn(super::video::receive(
                    track,
                    ssrc,
                    self.decoder.take(),
                    slot,
                    Arc::clone(&self.spec.link),
                ));
            }
            RtpCodecKind::Audio => {
                let counters = self.stats.audio_counters();
                tokio::spawn(super::audio::receive(track, remote, counters, shared));
            }
            _ => {}
        }
    }

    async fn tick(&mut self, with_stats: bool) {
        for event in self.stats.availability() {
            self.shared.report_now(event);
        }
        if with_stats && self.negotiation.phase() == super::negotiation::Phase::Connected {
            let report = self
                .connection
                .get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None)
                .await;
            let sent = *self
                .shared
                .sent_video
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for event in self.stats.report(&report, &sent) {
                self.shared.report_now(event);
            }
        }
    }

    async fn close(self) {
        self.shared.hub.unsubscribe(&self.spec.remote);
        let _ = self.connection.close().await;
        if let Some(slot) = self.stats.video_slot() {
            // Only this connection's slot: a new call with the same user may have its own now.
            self.shared
                .config
                .frames
                .remove_if_same(&self.spec.remote, &slot);
        }
    }
}

/// Writes queued frames to a local track until the queue closes.
async fn write_samples(
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    mut frames: mpsc::Receiver<Encoded>,
) {
    while let Some(frame) = frames.recv().await {
        let sample = Sample {
            data: frame.data,
            duration: frame.duration,
            ..Sample::new(Instant::now())
        };
        if track
            .write_sample(ssrc, payload_type, &sample, &[])
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Asks the encoder for a key frame whenever the far end sends PLI or FIR.
fn spawn_keyframe_listener(track: Arc<TrackLocalStaticSample>, shared: Arc<Shared>) {
    tokio::spawn(async move {
        while let Some(event) = track.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(packets) = event
                && packets
                    .iter()
                    .any(|packet| asks_for_keyframe(packet.as_ref()))
            {
                shared.hub.request_keyframe();
            }
        }
    });
}
