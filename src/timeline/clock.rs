//! `Clock`: the one place that reads the time, giving monotonic and wall-clock stamps together.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::model::MonoTime;

use super::Timestamp;

/// Reads the monotonic clock and maps it onto the wall clock of the moment it started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    origin_wall_micros: u64,
}

impl Clock {
    /// A clock whose monotonic origin is now.
    pub fn start() -> Self {
        Self::start_shifted(0)
    }

    /// A clock whose wall clock reads `shift_micros` ahead of the system's (behind when
    /// negative): a machine whose clock is off, as tests of clock alignment need.
    pub fn start_shifted(shift_micros: i64) -> Self {
        let now = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as u64)
            .saturating_add_signed(shift_micros);
        // The origin is put on a whole millisecond, so that an entry's millisecond wall time
        // and its monotonic time together give its wall time to the microsecond.
        let into_millisecond = wall % 1000;
        match now.checked_sub(std::time::Duration::from_micros(into_millisecond)) {
            Some(origin) => Self {
                origin,
                origin_wall_micros: wall - into_millisecond,
            },
            None => Self {
                origin: now,
                origin_wall_micros: wall,
            },
        }
    }

    /// The wall clock at a monotonic time of this clock, in microseconds since the Unix epoch.
    pub fn wall_micros(&self, at: MonoTime) -> u64 {
        self.origin_wall_micros + at.as_micros()
    }

    /// The monotonic time of a wall-clock time of this clock (microseconds since the Unix
    /// epoch); a time before the clock started is its start.
    pub fn mono_at_wall(&self, wall_micros: u64) -> MonoTime {
        MonoTime::from_micros(wall_micros.saturating_sub(self.origin_wall_micros))
    }

    /// The monotonic time now.
    pub fn now(&self) -> MonoTime {
        MonoTime::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// The `Instant` of a monotonic time of this clock, for timers.
    pub fn instant_of(&self, at: MonoTime) -> Instant {
        self.origin + std::time::Duration::from_micros(at.as_micros())
    }

    /// Both stamps of a monotonic time.
    pub fn stamp(&self, at: MonoTime) -> Timestamp {
        Timestamp {
            wall_millis: self.wall_micros(at) / 1000,
            mono_micros: at.as_micros(),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::start()
    }
}
