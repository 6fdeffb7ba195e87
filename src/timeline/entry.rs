//! `TimelineEntry`: one occurrence of a callback or engine event, and its JSON shape.

use serde::{Deserialize, Serialize};

use crate::event::{CallbackKind, Event};
use crate::model::Source;

/// Whether the bound closure was invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The switch was on: the closure ran.
    Delivered,
    /// The switch was off: recorded only.
    Suppressed,
}

impl Delivery {
    /// `delivered` or `suppressed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Suppressed => "suppressed",
        }
    }
}

/// Where an entry of a call trace comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// This client's own kit recorded it.
    #[default]
    Local,
    /// Another participant's kit recorded it (a demo peer, a shared or imported trace).
    Peer,
    /// The signaling server recorded it (its routing of the call).
    Server,
}

impl Origin {
    /// Every origin.
    pub const ALL: [Self; 3] = [Self::Local, Self::Peer, Self::Server];

    /// Whether this client recorded it.
    // A `&self` receiver is what serde's `skip_serializing_if` calls.
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub const fn is_local(&self) -> bool {
        matches!(self, Self::Local)
    }

    /// `local`, `peer` or `server`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Peer => "peer",
            Self::Server => "server",
        }
    }
}

impl std::str::FromStr for Origin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|origin| origin.as_str() == text)
            .ok_or_else(|| format!("unknown origin {text:?}: local, peer or server"))
    }
}

/// When an entry happened, on two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Wall clock, milliseconds since the Unix epoch.
    pub wall_millis: u64,
    /// Monotonic clock, microseconds since the app's clock started.
    pub mono_micros: u64,
}

/// One occurrence of a callback or engine event: what the closure got, the panel shows,
/// SQLite keeps and export writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "EntryJson", try_from = "EntryJson")]
pub struct TimelineEntry {
    /// Position in the timeline; grows across runs and is never handed out twice by one store
    /// (a run reserves its numbers before it uses them).
    pub seq: u64,
    /// The run of the store that recorded it (0: a timeline kept in memory only).
    pub run: u64,
    /// When it happened.
    pub at: Timestamp,
    /// The call it belongs to, if any.
    pub call_id: Option<String>,
    /// The local user whose kit recorded it.
    pub user_id: String,
    /// Which kind of input caused it.
    pub source: Source,
    /// The callback or event with its payload.
    pub event: Event,
    /// Whether the closure ran.
    pub delivery: Delivery,
    /// How long the closure ran, in microseconds (0 when suppressed).
    pub handler_micros: u64,
    /// Who recorded it: this client, another participant or the server.
    pub origin: Origin,
    /// The recorder's session, when the trace names it (one user may have several).
    pub session: Option<String>,
    /// For an entry of another side placed on our clock (through the server's clock): the
    /// true time lies within this many microseconds of `at`. `None` for our own entries, a
    /// demo peer's (it shares our clock) and imports.
    pub clock_error_micros: Option<u64>,
}

/// Who recorded an entry: the user and the side (ours, another participant's, the server's).
/// Entries of one recorder share its clocks and its walk through the contract.
pub type Recorder<'entry> = (&'entry str, Origin);

impl TimelineEntry {
    /// Who recorded it.
    pub fn recorder(&self) -> Recorder<'_> {
        (self.user_id.as_str(), self.origin)
    }

    /// The wall-clock time in microseconds since the Unix epoch: exact for entries stamped by
    /// a [`super::Clock`] (its origin is a whole millisecond), within a millisecond otherwise.
    pub fn wall_micros(&self) -> u64 {
        self.at
            .wall_millis
            .saturating_mul(1000)
            .saturating_add(self.at.mono_micros % 1000)
    }

    /// The entry's kind.
    pub fn kind(&self) -> CallbackKind {
        self.event.kind()
    }

    /// The entry as one line for people: `#12 05:10:01.123 c-1 local statusChanged …`.
    pub fn readable(&self) -> String {
        let suppressed = match self.delivery {
            Delivery::Delivered => "",
            Delivery::Suppressed => " (suppressed)",
        };
        // Another participant's or the server's entry says whose it is.
        let recorder = match self.origin {
            Origin::Local => String::new(),
            origin => format!("{}:{} ", origin.as_str(), self.user_id),
        };
        format!(
            "#{} {} {} {} {recorder}{}{suppressed}: {}",
            self.seq,
            clock_time(self.at.wall_millis),
            self.call_id.as_deref().unwrap_or("-"),
            self.source.as_str(),
            self.kind(),
            self.event
        )
    }

    /// The entry as one line of the contract's JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The contract's flat JSON shape of an entry.
#[derive(Serialize, Deserialize)]
struct EntryJson {
    seq: u64,
    #[serde(default)]
    run: u64,
    at_ms: u64,
    mono_us: u64,
    call_id: Option<String>,
    user_id: String,
    source: Source,
    kind: CallbackKind,
    delivery: Delivery,
    handler_us: u64,
    payload: serde_json::Value,
    /// Written only when not local, so a client's own entries keep the contract's shape (and
    /// exports made before call traces read back as local).
    #[serde(default, skip_serializing_if = "Origin::is_local")]
    origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clock_error_us: Option<u64>,
}

impl From<TimelineEntry> for EntryJson {
    fn from(entry: TimelineEntry) -> Self {
        Self {
            seq: entry.seq,
            run: entry.run,
            at_ms: entry.at.wall_millis,
            mono_us: entry.at.mono_micros,
            kind: entry.event.kind(),
            payload: entry.event.payload_json(),
            call_id: entry.call_id,
            user_id: entry.user_id,
            source: entry.source,
            delivery: entry.delivery,
            handler_us: entry.handler_micros,
            origin: entry.origin,
            session: entry.session,
            clock_error_us: entry.clock_error_micros,
        }
    }
}

impl TryFrom<EntryJson> for TimelineEntry {
    type Error = serde_json::Error;

    fn try_from(json: EntryJson) -> Result<Self, Self::Error> {
        Ok(Self {
            seq: json.seq,
            run: json.run,
            at: Timestamp {
                wall_millis: json.at_ms,
                mono_micros: json.mono_us,
            },
            event: Event::from_parts(json.kind, json.payload)?,
            call_id: json.call_id,
            user_id: json.user_id,
            source: json.source,
            delivery: json.delivery,
            handler_micros: json.handler_us,
            origin: json.origin,
            session: json.session,
            clock_error_micros: json.clock_error_us,
        })
    }
}

/// `HH:MM:SS.mmm` (UTC) of a wall-clock time in milliseconds since the Unix epoch.
pub fn clock_time(wall_millis: u64) -> String {
    let millis = wall_millis % 1000;
    let secs = wall_millis / 1000;
    format!(
        "{:02}:{:02}:{:02}.{millis:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a wall-clock time in milliseconds since the Unix epoch.
pub fn date_time(wall_millis: u64) -> String {
    let secs = wall_millis / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Days to a civil date, proleptic Gregorian (after H. Hinnant's `civil_from_days`).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_the_calendar_does() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        // 2026-12-02 18:21:34 UTC.
        assert_eq!(date_time(1_796_235_694_000), "2026-12-02 18:21:34");
        // A leap day.
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00:00");
    }
}
