//! The timeline writer thread: takes entries off the channel and commits them in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use rusqlite::{Connection, params};

use super::TimelineEntry;

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 8_192;
/// How long the writer waits for the channel before it looks at the overflow list.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// How often a failing batch is retried before its entries are given up (and counted).
const MAX_ATTEMPTS: u32 = 50;

/// Entries that did not fit in the channel, in order, after everything in the channel.
#[derive(Debug, Default)]
pub(super) struct Overflow {
    /// While set, appends go here instead of the channel, so order is kept.
    pub active: bool,
    /// The entries waiting.
    pub entries: Vec<Arc<TimelineEntry>>,
}

/// What the writer shares with the store's handles.
#[derive(Debug)]
pub(super) struct Shared {
    pub overflow: Mutex<Overflow>,
    committed: Mutex<u64>,
    committed_changed: Condvar,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(committed: u64) -> Self {
        Self {
            overflow: Mutex::new(Overflow::default()),
            committed: Mutex::new(committed),
            committed_changed: Condvar::new(),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub fn committed(&self) -> u64 {
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn failures(&self) -> (u64, Option<String>) {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (self.failures.load(Ordering::Relaxed), last)
    }

    /// Waits until `target` is committed; false if `timeout` passed first.
    pub fn wait_committed(&self, target: u64, timeout: Duration) -> bool {
        let guard = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .committed_changed
            .wait_timeout_while(guard, timeout, |committed| *committed < target)
            .unwrap_or_else(PoisonError::into_inner);
        *guard >= target
    }

    fn mark_committed(&self, seq: u64) {
        let mut committed = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *committed = (*committed).max(seq);
        self.committed_changed.notify_all();
    }

    fn record_failure(&self, error: &rusqlite::Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
    }

    /// Takes the overflow list and lets appends use the channel again.
    fn take_overflow(&self) -> Vec<Arc<TimelineEntry>> {
        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        overflow.active = false;
        std::mem::take(&mut overflow.entries)
    }
}

/// Creates the tables and indexes if they are missing, and sets WAL mode.
pub(super) fn prepare_schema(connection: &Connection) -> rusqlite::Result<()> {
    // WAL with synchronous=NORMAL: a committed transaction survives the process being killed.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS runs (
             run_id INTEGER PRIMARY KEY,
             started_ms INTEGER NOT NULL,
             pid INTEGER NOT NULL,
             version TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS entries (
             seq INTEGER PRIMARY KEY,
             run_id INTEGER NOT NULL,
             at_ms INTEGER NOT NULL,
             mono_us INTEGER NOT NULL,
             call_id TEXT,
             user_id TEXT NOT NULL,
             source TEXT NOT NULL,
             kind TEXT NOT NULL,
             delivery TEXT NOT NULL,
             handler_us INTEGER NOT NULL,
             summary TEXT NOT NULL,
             payload TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS entries_by_kind ON entries (kind);
         CREATE INDEX IF NOT EXISTS entries_by_call ON entries (call_id);",
    )
}

/// Records this run and returns its number.
pub(super) fn start_run(connection: &Connection) -> rusqlite::Result<i64> {
    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64);
    connection.execute(
        "INSERT INTO runs (started_ms, pid, version) VALUES (?1, ?2, ?3)",
        params![started_ms, std::process::id(), env!("CARGO_PKG_VERSION")],
    )?;
    Ok(connection.last_insert_rowid())
}

/// The writer loop: runs until every sender is gone and everything queued is committed.
pub(super) fn run(
    mut connection: Connection,
    run_id: i64,
    receiver: &Receiver<Arc<TimelineEntry>>,
    shared: &Shared,
) {
    loop {
        let (batch, disconnected) = next_batch(receiver, shared);
        if !batch.is_empty() {
            commit_with_retries(&mut connection, run_id, &batch, shared);
        }
        if disconnected {
            let rest = shared.take_overflow();
            if !rest.is_empty() {
                commit_with_retries(&mut connection, run_id, &rest, shared);
            }
            return;
        }
    }
}

/// Collects the next batch: the channel first, then the overflow once the channel is empty.
fn next_batch(
    receiver: &Receiver<Arc<TimelineEntry>>,
    shared: &Shared,
) -> (Vec<Arc<TimelineEntry>>, bool) {
    let mut batch = Vec::new();
    match receiver.recv_timeout(IDLE_WAIT) {
        Ok(entry) => batch.push(entry),
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => return (batch, true),
    }
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(entry) => batch.push(entry),
            Err(TryRecvError::Empty) => {
                batch.extend(shared.take_overflow());
                break;
            }
            Err(TryRecvError::Disconnected) => return (batch, true),
        }
    }
    (batch, false)
}

fn commit_with_retries(
    connection: &mut Connection,
    run_id: i64,
    batch: &[Arc<TimelineEntry>],
    shared: &Shared,
) {
    for attempt in 1..=MAX_ATTEMPTS {
        match commit(connection, run_id, batch) {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    shared.mark_committed(last.seq);
                }
                return;
            }
            Err(error) => {
                shared.record_failure(&error);
                std::thread::sleep(Duration::from_millis(20 * u64::from(attempt.min(10))));
            }
        }
    }
}

fn commit(
    connection: &mut Connection,
    run_id: i64,
    batch: &[Arc<TimelineEntry>],
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT OR REPLACE INTO entries (seq, run_id, at_ms, mono_us, call_id, user_id, source,
                 kind, delivery, handler_us, summary, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut summary = String::new();
        for entry in batch {
            summary.clear();
            std::fmt::Write::write_fmt(&mut summary, format_args!("{}", entry.event))
                .unwrap_or_default();
            let payload = entry.event.payload_json().to_string();
            insert.execute(params![
                entry.seq,
                run_id,
                entry.at.wall_millis,
                entry.at.mono_micros,
                entry.call_id,
                entry.user_id,
                entry.source.as_str(),
                entry.kind().as_str(),
                entry.delivery.as_str(),
                entry.handler_micros,
                summary,
                payload,
            ])?;
        }
    }
    transaction.commit()
}
