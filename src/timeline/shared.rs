//! Shared traces: our entries about a call as its other participants receive them (with their
//! time on the server's clock, which both sides estimate), and theirs placed on our clock: the
//! two offsets carry a time across, their error bounds add up, and the signaling both sides
//! recorded keeps every send before its receipt.

use serde::Deserialize as _;
use serde_json::Value;

use crate::model::MonoTime;

use super::import::{alignment, shift_entry};
use super::{Clock, ClockOffset, Origin, TimelineEntry};

/// The largest number the store keeps (SQLite integers are signed 64-bit).
const MAX_STORED: u64 = i64::MAX as u64;

/// An entry of ours in the shape it is shared in: the contract's JSON, plus `server_us` (its
/// time on the server's clock) and `clock_error_us` once our offset to it is known.
pub fn shared_json(entry: &TimelineEntry, offset: Option<ClockOffset>) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or_default();
    if let (Some(offset), Some(object)) = (offset, value.as_object_mut()) {
        let server_micros = entry
            .wall_micros()
            .saturating_add_signed(offset.offset_micros);
        object.insert("server_us".into(), server_micros.into());
        object.insert("clock_error_us".into(), offset.error_micros.into());
    }
    value
}

/// Another participant's shared entries, read and placed on our clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placed {
    /// The entries, as `from`'s peer entries of the call, in the order they came.
    pub entries: Vec<TimelineEntry>,
    /// Entries that were not entries of the contract (left out).
    pub unreadable: usize,
    /// The shift (µs) the signaling of the call asked for beyond the clocks' estimate.
    pub shift_micros: i64,
}

/// Where on our clock a time of the server's clock falls, and within how much: `None` until
/// our offset to the server is known.
pub fn server_time_on_our_clock(
    server_micros: u64,
    clock: &Clock,
    offset: Option<ClockOffset>,
) -> Option<(MonoTime, u64)> {
    let offset = offset?;
    let ours = server_micros.saturating_add_signed(offset.offset_micros.saturating_neg());
    Some((clock.mono_at_wall(ours), offset.error_micros))
}

/// Reads the entries `from` shared about `call_id` (received at `received` on our clock) and
/// places them on our clock: through the server's clock when both sides know their offset to
/// it, else at their receipt; then moved, as little as needed, so that every signaling send
/// comes before its receipt against `ours` (our own entries of the call) and none comes after
/// it reached us. Who recorded them is who the server says sent them.
pub fn place_shared(
    values: &[Value],
    from: &str,
    call_id: &str,
    clock: &Clock,
    offset: Option<ClockOffset>,
    received: MonoTime,
    ours: &[TimelineEntry],
) -> Placed {
    let mut placed = Placed::default();
    for value in values {
        let Ok(mut entry) = TimelineEntry::deserialize(value) else {
            placed.unreadable += 1;
            continue;
        };
        let server_micros = value.get("server_us").and_then(Value::as_u64);
        let their_error = value.get("clock_error_us").and_then(Value::as_u64);
        let (at, error) = match (server_micros, their_error) {
            (Some(server_micros), Some(their_error)) => {
                match server_time_on_our_clock(server_micros, clock, offset) {
                    Some((at, our_error)) => (at, Some(our_error.saturating_add(their_error))),
                    None => (received, None),
                }
            }
            _ => (received, None),
        };
        entry.at = clock.stamp(at.min(received));
        // What SQLite can hold (a peer's numbers are not trusted).
        entry.clock_error_micros = error.map(|error| error.min(MAX_STORED));
        entry.handler_micros = entry.handler_micros.min(MAX_STORED);
        from.clone_into(&mut entry.user_id);
        entry.origin = Origin::Peer;
        entry.call_id = Some(call_id.to_owned());
        entry.session = None;
        placed.entries.push(entry);
    }
    let received_micros = clock.wall_micros(received);
    placed.shift_micros = alignment(ours, &placed.entries, Some(received_micros));
    if placed.shift_micros != 0 {
        for entry in &mut placed.entries {
            shift_entry(entry, placed.shift_micros);
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::model::{CallStatus, Source};
    use crate::timeline::Delivery;

    fn entry(
        user: &str,
        at: MonoTime,
        clock: &Clock,
        source: Source,
        event: Event,
    ) -> TimelineEntry {
        TimelineEntry {
            seq: 1,
            run: 1,
            at: clock.stamp(at),
            call_id: Some("c-1".into()),
            user_id: user.into(),
            source,
            event,
            delivery: Delivery::Delivered,
            handler_micros: 2,
            origin: Origin::Local,
            session: None,
            clock_error_micros: None,
        }
    }

    fn accept() -> Event {
        Event::StatusChanged {
            old_status: CallStatus::BeInvited,
            new_status: CallStatus::CallingC2cVideo,
        }
    }

    #[test]
    fn a_shared_entry_crosses_through_the_server_clock_with_both_error_bounds() {
        // Bob's clock reads 3 s ahead of the server's; ours 2 s behind it.
        let theirs = Clock::start_shifted(3_000_000);
        let ours = Clock::start_shifted(-2_000_000);
        let their_offset = ClockOffset {
            offset_micros: -3_000_000,
            error_micros: 400,
            rtt_micros: 700,
            samples: 8,
        };
        let our_offset = ClockOffset {
            offset_micros: 2_000_000,
            error_micros: 300,
            rtt_micros: 500,
            samples: 8,
        };
        let at = theirs.now();
        let sent = entry("bob", at, &theirs, Source::Local, accept());
        let json = shared_json(&sent, Some(their_offset));
        assert_eq!(json["clock_error_us"], 400);
        let received = MonoTime::from_micros(ours.now().as_micros() + 50_000);
        let placed = place_shared(
            &[
                json,
                serde_json::json!({"kind": "nothing"}),
                serde_json::json!(3),
            ],
            "bob",
            "c-1",
            &ours,
            Some(our_offset),
            received,
            &[],
        );
        assert_eq!(placed.unreadable, 2);
        assert_eq!(placed.shift_micros, 0);
        let [got] = placed.entries.as_slice() else {
            unreachable!("{placed:?}")
        };
        assert_eq!(got.clock_error_micros, Some(700));
        assert_eq!((got.origin, got.user_id.as_str()), (Origin::Peer, "bob"));
        // The same moment on both clocks, 5 s apart: within a millisecond of the truth.
        let truth = sent.wall_micros().cast_signed() - 5_000_000;
        let error = got.wall_micros().cast_signed() - truth;
        assert!(error.abs() < 1_000, "off by {error} µs");
    }

    #[test]
    fn a_receipt_is_kept_after_its_send_when_the_clocks_misjudge() {
        let clock = Clock::start();
        let base = clock.now().as_micros();
        let at = |micros: u64| MonoTime::from_micros(base + micros);
        // We saw bob join at +1 ms; his accept, by the offsets, at +1.4 ms.
        let ours = vec![entry(
            "alice",
            at(1_000),
            &clock,
            Source::Remote,
            Event::UserJoin {
                user_id: "bob".into(),
            },
        )];
        let offset = ClockOffset {
            offset_micros: 0,
            error_micros: 300,
            rtt_micros: 500,
            samples: 8,
        };
        let mut sent = entry("bob", at(1_400), &clock, Source::Local, accept());
        sent.user_id = "bob".into();
        let json = shared_json(&sent, Some(offset));
        let placed = place_shared(
            &[json],
            "bob",
            "c-1",
            &clock,
            Some(offset),
            at(5_000),
            &ours,
        );
        assert_eq!(placed.shift_micros, -400);
        assert!(placed.entries[0].wall_micros() <= ours[0].wall_micros());
    }
}
