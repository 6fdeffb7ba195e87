//! Replaying a recording: a kit's bound closures driven with the events a timeline recorded,
//! in their order, at the recorded pace or as fast as they go, through the kit's current
//! switches (a switched-off callback is recorded as suppressed, as it would have been).

use std::time::Duration;

use crate::timeline::{Delivery, Origin, TimelineEntry};

use super::CallKit;

/// How fast a recording is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// With the recorded gaps between entries (each at most [`MAX_GAP`]).
    Recorded,
    /// One after another.
    Fast,
}

/// The longest wait between two replayed entries: a recording left running overnight does
/// not keep its replay waiting.
pub const MAX_GAP: Duration = Duration::from_secs(10);

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Entries whose closure ran.
    pub delivered: usize,
    /// Entries whose switch was off.
    pub suppressed: usize,
}

/// Drives `kit`'s closures with the entries its user's kit recorded (another side's and the
/// server's are skipped: no closure of ours ran for them), in order, at `pace`; each is
/// recorded again into `kit`'s timeline, now.
pub fn replay(kit: &CallKit, entries: &[TimelineEntry], pace: Pace) -> Replayed {
    let mut replayed = Replayed::default();
    let mut previous: Option<u64> = None;
    for entry in entries.iter().filter(|entry| entry.origin == Origin::Local) {
        if pace == Pace::Recorded
            && let Some(previous) = previous
        {
            let gap = Duration::from_micros(entry.wall_micros().saturating_sub(previous));
            std::thread::sleep(gap.min(MAX_GAP));
        }
        previous = Some(entry.wall_micros());
        let recorded = kit.dispatch(
            kit.clock().now(),
            entry.call_id.as_deref(),
            entry.source,
            entry.event.clone(),
        );
        match recorded.delivery {
            Delivery::Delivered => replayed.delivered += 1,
            Delivery::Suppressed => replayed.suppressed += 1,
        }
    }
    replayed
}
