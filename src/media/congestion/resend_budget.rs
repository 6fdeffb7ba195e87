//! `ResendBudget`: keeps the packets resent after NACKs within a share of the estimate. When a
//! narrow path's queue overflows, every packet it dropped is asked for again; resending them all
//! at once, on the path that just overflowed, keeps it overflowing (the resends are lost in turn
//! and asked for again). Over budget, a resend is dropped: the far end gives its picture up and
//! asks for a key frame, which costs less than a path that never drains.
//!
//! It sits between the NACK responder and the pacer, so it sees every resend before it is paced.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize as _;

use super::EstimateCell;

/// The share of the estimate resends may take.
pub const RESEND_SHARE: f64 = 0.3;
/// The window the resent bytes are counted over.
const WINDOW: Duration = Duration::from_secs(1);

/// The interceptor.
pub struct ResendBudget {
    estimate: Arc<EstimateCell>,
    /// Resends let through in the window: when, and their bytes.
    resent: VecDeque<(Instant, usize)>,
    resent_bytes: usize,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for ResendBudget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ResendBudget")
            .field("resent_bytes", &self.resent_bytes)
            .finish_non_exhaustive()
    }
}

impl ResendBudget {
    /// A budget following `estimate`.
    pub fn new(estimate: Arc<EstimateCell>) -> Self {
        Self {
            estimate,
            resent: VecDeque::new(),
            resent_bytes: 0,
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
        // The NACK responder marks what it resends.
        if let Packet::Rtp(rtp) = &message.message.packet
            && message.message.has(&Attribute::Retransmission)
            && !self.fits(message.now, rtp.marshal_size())
        {
            // Over budget: dropped.
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
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    use super::*;

    fn rtp(now: Instant, resend: bool) -> TaggedPacket {
        let packet = rtc::rtp::Packet {
            payload: vec![0_u8; 1_188].into(),
            ..Default::default()
        };
        let mut message = AttributedPacket::new(Packet::Rtp(packet));
        if resend {
            message = message.with(Attribute::Retransmission);
        }
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message,
        }
    }

    #[test]
    fn resends_take_at_most_their_share_of_the_estimate_and_first_sends_all_go() {
        // The starting estimate, 300 kbit/s: 30 % of it is about 11 kB a second, nine packets.
        let mut budget = ResendBudget::new(EstimateCell::new());
        let start = Instant::now();
        let out = |budget: &mut ResendBudget, now, resend| {
            budget.handle_write(rtp(now, resend)).expect("write");
            budget.poll_write().is_some()
        };
        let first = (0..50).filter(|_| out(&mut budget, start, false)).count();
        assert_eq!(first, 50);
        let resent = (0..50).filter(|_| out(&mut budget, start, true)).count();
        assert_eq!(resent, 9);
        // A window later there is room again.
        assert!(out(&mut budget, start + WINDOW, true));
    }
}
