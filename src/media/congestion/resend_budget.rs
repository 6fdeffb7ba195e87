//! `ResendBudget`: keeps the packets resent after NACKs within a share of the estimate. When a
//! narrow path's queue overflows, every packet it dropped is asked for again; resending them all
//! at once, on the path that just overflowed, keeps it overflowing (the resends are lost in turn
//! and asked for again). Over budget, a resend is dropped: the far end gives its picture up and
//! asks for a key frame, which costs less than a path that never drains.
//!
//! It sits between the NACK responder and the pacer, so it sees every resend before it is paced.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize as _;

use super::EstimateCell;

/// The share of the estimate resends may take.
pub const RESEND_SHARE: f64 = 0.3;
/// The window the resent bytes are counted over.
const WINDOW: Duration = Duration::from_secs(1);
/// Sequence numbers remembered per stream, to tell a resend from a first send.
const REMEMBERED: usize = 2_048;

/// The recent sequence numbers of one outgoing stream.
#[derive(Debug, Default)]
struct Sent {
    order: VecDeque<u16>,
    numbers: std::collections::HashSet<u16>,
}

impl Sent {
    /// Notes `number`; whether it was sent before.
    fn note(&mut self, number: u16) -> bool {
        if !self.numbers.insert(number) {
            return true;
        }
        self.order.push_back(number);
        if self.order.len() > REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.numbers.remove(&oldest);
        }
        false
    }
}

/// The interceptor.
pub struct ResendBudget {
    estimate: Arc<EstimateCell>,
    sent: HashMap<u32, Sent>,
    /// Resends let through in the window: when, and their bytes.
    resent: VecDeque<(Instant, usize)>,
    resent_bytes: usize,
    /// Resends dropped over budget so far.
    pub dropped: u64,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for ResendBudget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ResendBudget")
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl ResendBudget {
    /// A budget following `estimate`.
    pub fn new(estimate: Arc<EstimateCell>) -> Self {
        Self {
            estimate,
            sent: HashMap::new(),
            resent: VecDeque::new(),
            resent_bytes: 0,
            dropped: 0,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    /// Whether a resend of `bytes` at `now` fits the budget (and counts it if so).
    fn fits(&mut self, now: Instant, bytes: usize) -> bool {
        while self
            .resent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= WINDOW)
        {
            if let Some((_, old)) = self.resent.pop_front() {
                self.resent_bytes -= old;
            }
        }
        let budget_bytes =
            self.estimate.get().target_bps * RESEND_SHARE * WINDOW.as_secs_f64() / 8.0;
        if (self.resent_bytes + bytes) as f64 > budget_bytes {
            return false;
        }
        self.resent.push_back((now, bytes));
        self.resent_bytes += bytes;
        true
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for ResendBudget {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.read_queue.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(rtp) = &message.message.packet
            && let Some(sent) = self.sent.get_mut(&rtp.header.ssrc)
            && sent.note(rtp.header.sequence_number)
            && !self.fits(message.now, rtp.marshal_size())
        {
            self.dropped += 1;
            return Ok(());
        }
        self.write_queue.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for ResendBudget {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.sent.insert(info.ssrc, Sent::default());
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.sent.remove(&info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
