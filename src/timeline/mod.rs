//! The event timeline: every callback and engine event, in memory and in SQLite, queryable,
//! exportable, and checked against the call contract. Nothing appended is lost: appends never
//! block and the writer retries. Imports the model and the event vocabulary only.

mod check;
mod check_media;
mod check_trace;
mod clock;
mod clock_sync;
mod diff;
mod entry;
mod export;
mod import;
mod memory;
mod query;
mod shared;
mod sql;
mod store;
mod writer;

pub use check::{CheckOptions, Finding, Rule, check};
pub use clock::Clock;
pub use clock_sync::{ClockOffset, ClockSync, SAMPLES_KEPT};
pub use diff::{DiffError, DiffOptions, Difference, MAX_CELLS, diff};
pub use entry::{Delivery, Origin, Recorder, TimelineEntry, Timestamp, clock_time, date_time};
pub use export::{ExportFormat, export, write_json_lines, write_perfetto};
pub use import::{ImportError, Imported, alignment, import, local_entries, read_json_lines};
pub use memory::{DEFAULT_MEMORY_CAPACITY, Timeline};
pub use query::{Matcher, Query, searchable_lowercase, write_searchable};
pub use shared::{Placed, place_shared, server_time_on_our_clock, shared_json};
pub use store::{
    CHANNEL_CAPACITY, DATABASE_FILE, LOCK_FILE, Store, StoreError, default_data_dir, read_stored,
};
