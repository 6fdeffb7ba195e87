//! Per-peer figures: whether audio and video are flowing (from real frames and packets), and
//! the once-a-second `onCallStats` with the network quality derived from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::peer_connection::RTCStatsReport;

use super::congestion::EstimateCell;
use super::events::MediaEvent;
use super::frame::FrameSlot;
use super::link::LinkControl;
use crate::event::{CallStats, NetworkQuality, PlayoutStats, SendingStats};
use crate::model::QualityLimitation;

/// A round trip from the reports not renewed for this long is not used.
const RTT_STALE: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks without a new frame or packet before a stream counts as stopped.
const STALL_TICKS: u32 = 3;

/// What the local video sends now, as its sender last decided (one encoding for every peer).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SentVideo {
    /// Picture width (0: nothing sent).
    pub width: usize,
    /// Picture height.
    pub height: usize,
    /// The encoder's target, in bits per second.
    pub target_bps: u32,
    /// Why it sends less than the source gives.
    pub limitation: QualityLimitation,
    /// Frames sent since the video started.
    pub frames: u64,
}

/// What the audio receiver counts.
#[derive(Debug, Default)]
pub struct AudioCounters {
    /// Opus packets decoded.
    pub packets: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// The last packet's speaking level, 0..=100.
    pub level: AtomicU8,
    /// Samples played (decoded, rebuilt or made up) since the call began.
    pub played_samples: AtomicU64,
    /// Of them, made up to cover lost or late packets.
    pub concealed_samples: AtomicU64,
    /// Lost packets rebuilt from the next one's forward error correction.
    pub fec_recovered: AtomicU64,
    /// How long the frames played so far waited in the jitter buffer, together (µs).
    pub jitter_waited_micros: AtomicU64,
    /// How many frames that is.
    pub jitter_waited_frames: AtomicU64,
}

/// The audio counters as they were at one report.
#[derive(Debug, Default, Clone, Copy)]
struct AudioSoFar {
    played: u64,
    concealed: u64,
    waited_micros: u64,
    waited_frames: u64,
}

impl AudioSoFar {
    fn read(counters: &AudioCounters) -> Self {
        Self {
            played: counters.played_samples.load(Ordering::Relaxed),
            concealed: counters.concealed_samples.load(Ordering::Relaxed),
            waited_micros: counters.jitter_waited_micros.load(Ordering::Relaxed),
            waited_frames: counters.jitter_waited_frames.load(Ordering::Relaxed),
        }
    }
}

/// One stream's availability as last reported.
#[derive(Debug, Default)]
struct Flow {
    last_count: u64,
    stalled_ticks: u32,
    available: bool,
}

impl Flow {
    /// Feeds the current count; `Some(now_available)` when that changed.
    fn update(&mut self, count: u64) -> Option<bool> {
        if count > self.last_count {
            self.last_count = count;
            self.stalled_ticks = 0;
            if !self.available {
                self.available = true;
                return Some(true);
            }
        } else {
            self.stalled_ticks += 1;
            if self.available && self.stalled_ticks >= STALL_TICKS {
                self.available = false;
                return Some(false);
            }
        }
        None
    }
}

/// The figures of one remote participant.
#[derive(Debug)]
pub struct PeerStats {
    user_id: String,
    video: Option<Arc<FrameSlot>>,
    audio: Arc<AudioCounters>,
    video_flow: Flow,
    audio_flow: Flow,
    quality: NetworkQuality,
    last_report: Option<Instant>,
    last_frames: u64,
    last_bytes: u64,
    /// The link's counts of what arrived, and the last report's.
    link: Arc<LinkControl>,
    last_arrivals: (u64, u64),
    /// The round trips measured so far, and when that count last grew.
    rtt_seen: (u64, Option<Instant>),
    /// What our congestion control estimates the path to the participant carries.
    estimate: Arc<EstimateCell>,
    /// Frames our video had sent, and bytes we had sent this participant, at the last report.
    last_sent_frames: u64,
    last_sent_bytes: u64,
    /// The participant's audio counters at the last report.
    last_audio: AudioSoFar,
}

impl PeerStats {
    /// Figures for `user_id`, nothing received yet; arrivals as `link` counts them, and the
    /// path's estimate as `estimate` holds it.
    pub fn new(user_id: &str, link: Arc<LinkControl>, estimate: Arc<EstimateCell>) -> Self {
        Self {
            user_id: user_id.to_owned(),
            video: None,
            audio: Arc::default(),
            video_flow: Flow::default(),
            audio_flow: Flow::default(),
            quality: NetworkQuality::Unknown,
            last_report: None,
            last_frames: 0,
            last_bytes: 0,
            link,
            last_arrivals: (0, 0),
            rtt_seen: (0, None),
            estimate,
            last_sent_frames: 0,
            last_sent_bytes: 0,
            last_audio: AudioSoFar::default(),
        }
    }

    /// Counts the frames of this video stream.
    pub fn watch_video(&mut self, slot: Arc<FrameSlot>) {
        self.video = Some(slot);
    }

    /// The video stream's slot, once there is one.
    pub fn video_slot(&self) -> Option<Arc<FrameSlot>> {
        self.video.clone()
    }

    /// The counters the audio receiver updates.
    pub fn audio_counters(&self) -> Arc<AudioCounters> {
        Arc::clone(&self.audio)
    }

    fn frames(&self) -> u64 {
        self.video.as_ref().map_or(0, |slot| {
            slot.counters.frames_decoded.load(Ordering::Relaxed)
        })
    }

    /// The streams that started or stopped since the last look.
    pub fn availability(&mut self) -> Vec<MediaEvent> {
        let mut events = Vec::new();
        if let Some(available) = self.video_flow.update(self.frames()) {
            events.push(MediaEvent::Video {
                user_id: self.user_id.clone(),
                available,
            });
        }
        if let Some(available) = self
            .audio_flow
            .update(self.audio.packets.load(Ordering::Relaxed))
        {
            events.push(MediaEvent::Audio {
                user_id: self.user_id.clone(),
                available,
            });
        }
        events
    }

    /// The figures since the last report, and the quality if it moved. `sent` is what the
    /// local video sends now.
    pub fn report(&mut self, report: &RTCStatsReport, sent: &SentVideo) -> Vec<MediaEvent> {
        let now = Instant::now();
        let elapsed_secs = self.last_report.map_or(1.0, |last| {
            now.duration_since(last).as_secs_f64().max(0.001)
        });
        self.last_report = Some(now);
        let rtt_millis = self.rtt_millis(report, now);
        let (mut bytes, mut jitter_millis) = (0_u64, 0.0_f64);
        for stream in report.inbound_rtp_streams() {
            let rtp = &stream.received_rtp_stream_stats;
            bytes += stream.bytes_received;
            // The library reports jitter in RTP timestamp units.
            let clock = match rtp.rtp_stream_stats.kind {
                RtpCodecKind::Video => 90.0,
                _ => 48.0,
            };
            jitter_millis = jitter_millis.max(rtp.jitter / clock);
        }
        let frames = self.frames();
        let fps = (frames - self.last_frames.min(frames)) as f64 / elapsed_secs;
        let bitrate_kbps =
            (bytes.saturating_sub(self.last_bytes)) as f64 * 8.0 / elapsed_secs / 1000.0;
        let (loss_pct, received) = self.path_loss();
        self.last_frames = frames;
        self.last_bytes = bytes;
        let (width, height) = self
            .video
            .as_ref()
            .map_or((0, 0), |slot| slot.counters.resolution());
        let counters = &self.link.counters;
        let mut events = vec![MediaEvent::Stats(CallStats {
            user_id: self.user_id.clone(),
            rtt_millis: round2(rtt_millis),
            jitter_millis: round2(jitter_millis),
            loss_pct: round2(loss_pct),
            fps: round2(fps),
            bitrate_kbps: round2(bitrate_kbps),
            resolution: if width == 0 {
                String::new()
            } else {
                format!("{width}x{height}")
            },
            frames_decoded: frames,
            repaired: counters.late.load(Ordering::Relaxed),
            nacks: counters.nacks.load(Ordering::Relaxed),
            key_frame_requests: counters.key_frame_requests.load(Ordering::Relaxed),
            local_candidate: path_kind(report),
            sending: self.sending(report, sent, elapsed_secs),
            playout: self.playout(),
        })];
        // Down means no working path; a muted peer sends nothing but its path still answers.
        let path_up = report.candidate_pairs().any(|pair| pair.nominated);
        let quality = if path_up || received > 0 {
            quality_of(rtt_millis, loss_pct)
        } else {
            NetworkQuality::Down
        };
        if quality != self.quality {
            self.quality = quality;
            events.push(MediaEvent::Quality {
                user_id: self.user_id.clone(),
                quality,
            });
        }
        events
    }

    /// The media's own round trip (sender reports and their answers) once there is one: it
    /// crosses the same link as the media, while the ICE checks' may not.
    fn rtt_millis(&mut self, report: &RTCStatsReport, now: Instant) -> f64 {
        let measurements = self.link.counters.rtt_measurements.load(Ordering::Relaxed);
        if measurements != self.rtt_seen.0 {
            self.rtt_seen = (measurements, Some(now));
        }
        // Reports go out every second or so; one not renewed for a while is stale (a cut, or
        // nothing sent), and the ICE checks' figure stands in.
        let fresh = self
            .rtt_seen
            .1
            .is_some_and(|at| now.duration_since(at) < RTT_STALE);
        let rtcp_rtt = self.link.counters.rtt_micros.load(Ordering::Relaxed);
        if rtcp_rtt > 0 && fresh {
            rtcp_rtt as f64 / 1000.0
        } else {
            report
                .candidate_pairs()
                .filter(|pair| pair.nominated)
                .map(|pair| pair.current_round_trip_time * 1000.0)
                .fold(0.0, f64::max)
        }
    }

    /// Loss as the path made it over the interval: what the sequence numbers say was sent
    /// against what came in order, before NACKs resend any of it. With the packets received.
    fn path_loss(&mut self) -> (f64, u64) {
        let counters = &self.link.counters;
        let expected = counters.expected.load(Ordering::Relaxed);
        let arrived = counters.arrived.load(Ordering::Relaxed);
        let interval_expected = expected.saturating_sub(self.last_arrivals.0);
        let interval_received = arrived.saturating_sub(self.last_arrivals.1);
        self.last_arrivals = (expected, arrived);
        let loss_pct = if interval_expected == 0 {
            0.0
        } else {
            interval_expected.saturating_sub(interval_received) as f64 * 100.0
                / interval_expected as f64
        };
        (loss_pct, interval_received)
    }

    /// What we send this participant: the path's estimate and what the video makes of it.
    fn sending(
        &mut self,
        report: &RTCStatsReport,
        sent: &SentVideo,
        elapsed_secs: f64,
    ) -> SendingStats {
        let frames = sent
            .frames
            .saturating_sub(self.last_sent_frames.min(sent.frames));
        self.last_sent_frames = sent.frames;
        let bytes: u64 = report
            .outbound_rtp_streams()
            .map(|stream| stream.sent_rtp_stream_stats.bytes_sent + stream.header_bytes_sent)
            .sum();
        let interval_bytes = bytes.saturating_sub(self.last_sent_bytes.min(bytes));
        self.last_sent_bytes = bytes;
        SendingStats {
            estimate_kbps: round2(self.estimate.get().target_bps / 1000.0),
            send_target_kbps: round2(f64::from(sent.target_bps) / 1000.0),
            sent_kbps: round2(interval_bytes as f64 * 8.0 / elapsed_secs / 1000.0),
            sent_resolution: if sent.width == 0 {
                String::new()
            } else {
                format!("{}x{}", sent.width, sent.height)
            },
            sent_fps: round2(frames as f64 / elapsed_secs),
            quality_limitation: sent.limitation,
        }
    }

    /// How smoothly this participant's media plays.
    fn playout(&mut self) -> PlayoutStats {
        let video = self.video.as_ref().map(|slot| &slot.counters);
        let now = AudioSoFar::read(&self.audio);
        let before = std::mem::replace(&mut self.last_audio, now);
        let interval_played = now.played.saturating_sub(before.played);
        let interval_concealed = now.concealed.saturating_sub(before.concealed);
        let waited_frames = now.waited_frames.saturating_sub(before.waited_frames);
        let waited_micros = now.waited_micros.saturating_sub(before.waited_micros);
        PlayoutStats {
            freeze_count: video.map_or(0, |counters| counters.freezes.load(Ordering::Relaxed)),
            freeze_ms: video.map_or(0, |counters| {
                counters.frozen_micros.load(Ordering::Relaxed) / 1000
            }),
            concealed_pct: if interval_played == 0 {
                0.0
            } else {
                round2(interval_concealed as f64 * 100.0 / interval_played as f64).min(100.0)
            },
            jitter_buffer_ms: if waited_frames == 0 {
                0.0
            } else {
                round2(waited_micros as f64 / waited_frames as f64 / 1000.0)
            },
            fec_recovered: self.audio.fec_recovered.load(Ordering::Relaxed),
        }
    }
}

/// The candidate type of our end of the nominated pair (`host`, `srflx`, `prflx`, `relay`).
/// The report lists our candidates only, so the far end's kind is not known here.
fn path_kind(report: &RTCStatsReport) -> String {
    use webrtc::peer_connection::RTCStatsReportEntry as Entry;
    let Some(pair) = report.candidate_pairs().find(|pair| pair.nominated) else {
        return String::new();
    };
    // A pair names its candidates by their own ids; the report files them under a prefix.
    let kind = |id: &str| {
        report
            .iter()
            .find_map(|entry| match entry {
                Entry::LocalCandidate(candidate) | Entry::RemoteCandidate(candidate)
                    if !id.is_empty() && candidate.stats.id.ends_with(id) =>
                {
                    Some(candidate.candidate_type.to_string())
                }
                _ => None,
            })
            .unwrap_or_default()
    };
    kind(&pair.local_candidate_id)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// TUICallKit's quality scale from round-trip time and loss.
pub fn quality_of(rtt_millis: f64, loss_pct: f64) -> NetworkQuality {
    if loss_pct < 1.0 && rtt_millis < 100.0 {
        NetworkQuality::Excellent
    } else if loss_pct < 3.0 && rtt_millis < 200.0 {
        NetworkQuality::Good
    } else if loss_pct < 8.0 && rtt_millis < 400.0 {
        NetworkQuality::Poor
    } else if loss_pct < 15.0 && rtt_millis < 800.0 {
        NetworkQuality::Bad
    } else if loss_pct < 30.0 {
        NetworkQuality::Vbad
    } else {
        NetworkQuality::Down
    }
}
