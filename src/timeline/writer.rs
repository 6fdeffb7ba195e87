//! The timeline writer thread: takes entries off the channel and commits them in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rusqlite::{Connection, params};

use super::TimelineEntry;
use super::query::searchable_lowercase;

/// An entry's lowercased searchable text, computed once by whoever needs it first (the encoder
/// thread, or a query) and shared with the in-memory timeline.
pub(super) type Search = Arc<OnceLock<Box<str>>>;

/// An entry on its way to disk.
pub(super) type Queued = (Arc<TimelineEntry>, Search);

/// An entry ready for SQLite: its searchable text and its event JSON computed.
pub(super) struct Encoded {
    entry: Arc<TimelineEntry>,
    search: Search,
    json: String,
}

/// Encoded batches waiting for the SQLite writer.
pub(super) const ENCODED_BATCHES: usize = 4;

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
    pub entries: Vec<Queued>,
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
    fn take_overflow(&self) -> Vec<Queued> {
        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        overflow.active = false;
        std::mem::take(&mut overflow.entries)
    }
}

/// Creates the tables and indexes if they are missing, and sets WAL mode.
pub(super) fn prepare_schema(connection: &Connection) -> rusqlite::Result<()> {
    // Larger pages: fewer page splits for an append-only table (applies to a new database).
    connection.pragma_update(None, "page_size", 16_384)?;
    // WAL with synchronous=NORMAL: a committed transaction survives the process being killed.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints (the only fsyncs under NORMAL) every 64 MiB of log rather than every 4 MiB.
    connection.pragma_update(None, "wal_autocheckpoint", 16_384)?;
    connection.pragma_update(None, "cache_size", -32_768)?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS runs (
             run_id INTEGER PRIMARY KEY,
             started_ms INTEGER NOT NULL,
             pid INTEGER NOT NULL,
             version TEXT NOT NULL,
             reserved_until INTEGER NOT NULL DEFAULT 0
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
             search TEXT NOT NULL,
             event TEXT NOT NULL,
             origin TEXT NOT NULL DEFAULT 'local',
             session TEXT,
             clock_error_us INTEGER
         );
         CREATE INDEX IF NOT EXISTS entries_by_call ON entries (call_id);",
    )?;
    // A database written before runs reserved their sequence numbers: add the column.
    let has_reservations = connection
        .prepare("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'reserved_until'")?
        .exists([])?;
    if !has_reservations {
        connection.execute_batch(
            "ALTER TABLE runs ADD COLUMN reserved_until INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    // A database written before call traces: every entry in it is this client's own.
    let has_origins = connection
        .prepare("SELECT 1 FROM pragma_table_info('entries') WHERE name = 'origin'")?
        .exists([])?;
    if !has_origins {
        connection.execute_batch(
            "BEGIN;
             ALTER TABLE entries ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';
             ALTER TABLE entries ADD COLUMN session TEXT;
             COMMIT;",
        )?;
    }
    // A database written before other sides' entries were placed on our clock.
    let has_clock_errors = connection
        .prepare("SELECT 1 FROM pragma_table_info('entries') WHERE name = 'clock_error_us'")?
        .exists([])?;
    if !has_clock_errors {
        connection.execute_batch("ALTER TABLE entries ADD COLUMN clock_error_us INTEGER")?;
    }
    Ok(())
}

/// Sequence numbers a run reserves at a time, in the database, before it hands them out.
pub(super) const RESERVED_SEQS: u64 = 1_000_000;

/// A run's place in the database: its number and the sequence numbers it may hand out.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunStart {
    pub run_id: i64,
    /// The first sequence number of the run: after every number any earlier run stored or
    /// reserved, so a number handed out before a crash is never handed out again.
    pub first_seq: u64,
    /// The last sequence number reserved so far.
    pub reserved_until: u64,
}

/// Records this run, with its first reservation of sequence numbers.
pub(super) fn start_run(connection: &Connection) -> rusqlite::Result<RunStart> {
    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64);
    let used: u64 = connection.query_row(
        "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM entries),
                    (SELECT COALESCE(MAX(reserved_until), 0) FROM runs))",
        [],
        |row| row.get(0),
    )?;
    let first_seq = used + 1;
    let reserved_until = used + RESERVED_SEQS;
    connection.execute(
        "INSERT INTO runs (started_ms, pid, version, reserved_until) VALUES (?1, ?2, ?3, ?4)",
        params![
            started_ms,
            std::process::id(),
            env!("CARGO_PKG_VERSION"),
            reserved_until
        ],
    )?;
    Ok(RunStart {
        run_id: connection.last_insert_rowid(),
        first_seq,
        reserved_until,
    })
}

/// The encoder loop: takes entries in order, computes their searchable text and JSON, and hands
/// them to the SQLite writer; runs until every sender is gone and everything queued is handed on.
pub(super) fn encode(receiver: &Receiver<Queued>, shared: &Shared, rows: &Sender<Vec<Encoded>>) {
    loop {
        let (batch, disconnected) = next_batch(receiver, shared);
        let mut pending = batch;
        if disconnected {
            pending.extend(shared.take_overflow());
        }
        if !pending.is_empty() {
            let encoded = pending
                .into_iter()
                .map(|(entry, search)| {
                    search.get_or_init(|| searchable_lowercase(&entry));
                    // Plain data with string keys always serializes.
                    let json = serde_json::to_string(&entry.event).unwrap_or_default();
                    Encoded {
                        entry,
                        search,
                        json,
                    }
                })
                .collect();
            if rows.send(encoded).is_err() {
                return;
            }
        }
        if disconnected {
            return;
        }
    }
}

/// Entries committed between two trims of a store that keeps only its newest entries.
const TRIM_EVERY: usize = 4096;

/// The writer loop: commits encoded batches until the encoder is gone; with `retention`, only
/// that many of the newest entries are kept.
pub(super) fn write(
    mut connection: Connection,
    mut run: RunStart,
    rows: &Receiver<Vec<Encoded>>,
    shared: &Shared,
    retention: Option<u64>,
) {
    let mut since_trim = 0;
    for batch in rows {
        since_trim += batch.len();
        let trim_to = retention.filter(|_| since_trim >= TRIM_EVERY);
        if commit_with_retries(&mut connection, &mut run, &batch, trim_to, shared)
            && trim_to.is_some()
        {
            since_trim = 0;
        }
    }
}

/// Collects the next batch: the channel first, then the overflow once the channel is empty.
fn next_batch(receiver: &Receiver<Queued>, shared: &Shared) -> (Vec<Queued>, bool) {
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
    run: &mut RunStart,
    batch: &[Encoded],
    trim_to: Option<u64>,
    shared: &Shared,
) -> bool {
    for attempt in 1..=MAX_ATTEMPTS {
        match commit(connection, *run, batch, trim_to) {
            Ok(reserved_until) => {
                run.reserved_until = reserved_until;
                if let Some(last) = batch.last() {
                    shared.mark_committed(last.entry.seq);
                }
                return true;
            }
            Err(error) => {
                shared.record_failure(&error);
                std::thread::sleep(Duration::from_millis(20 * u64::from(attempt.min(10))));
            }
        }
    }
    false
}

/// Rows per multi-row INSERT: one statement step writes this many entries.
const ROWS_PER_INSERT: usize = 64;
const COLUMNS: usize = 15;

fn insert_sql(rows: usize) -> String {
    let row = format!("({})", ["?"; COLUMNS].join(", "));
    format!(
        "INSERT INTO entries (seq, run_id, at_ms, mono_us, call_id, user_id, source, kind, \
         delivery, handler_us, search, event, origin, session, clock_error_us) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// Commits `batch`, and (in the same transaction) reserves more sequence numbers when the run
/// gets near the end of its reservation and, with `trim_to`, deletes all but that many of the
/// newest entries; the reservation now.
fn commit(
    connection: &mut Connection,
    run: RunStart,
    batch: &[Encoded],
    trim_to: Option<u64>,
) -> rusqlite::Result<u64> {
    let run_id = run.run_id;
    let transaction = connection.transaction()?;
    let mut reserved_until = run.reserved_until;
    if let Some(last) = batch.last()
        && last.entry.seq + RESERVED_SEQS / 2 > reserved_until
    {
        reserved_until = last.entry.seq + RESERVED_SEQS;
        transaction.execute(
            "UPDATE runs SET reserved_until = ?1 WHERE run_id = ?2",
            params![reserved_until, run_id],
        )?;
    }
    {
        let mut many = transaction.prepare_cached(&insert_sql(ROWS_PER_INSERT))?;
        let mut one = transaction.prepare_cached(&insert_sql(1))?;
        let mut chunks = batch.chunks_exact(ROWS_PER_INSERT);
        for chunk in &mut chunks {
            bind_rows(&mut many, run_id, chunk)?;
            many.raw_execute()?;
        }
        for row in chunks.remainder() {
            bind_rows(&mut one, run_id, std::slice::from_ref(row))?;
            one.raw_execute()?;
        }
    }
    if let Some(keep) = trim_to {
        transaction.execute(
            "DELETE FROM entries WHERE seq < \
             (SELECT seq FROM entries ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
            params![keep.saturating_sub(1)],
        )?;
    }
    transaction.commit()?;
    Ok(reserved_until)
}

/// Binds `rows` to `statement`.
fn bind_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    run_id: i64,
    rows: &[Encoded],
) -> rusqlite::Result<()> {
    for (index, row) in rows.iter().enumerate() {
        let first = index * COLUMNS + 1;
        let entry = &row.entry;
        let search = row.search.get().map_or("", |search| &**search);
        statement.raw_bind_parameter(first, entry.seq)?;
        statement.raw_bind_parameter(first + 1, run_id)?;
        statement.raw_bind_parameter(first + 2, entry.at.wall_millis)?;
        statement.raw_bind_parameter(first + 3, entry.at.mono_micros)?;
        statement.raw_bind_parameter(first + 4, entry.call_id.as_deref())?;
        statement.raw_bind_parameter(first + 5, entry.user_id.as_str())?;
        statement.raw_bind_parameter(first + 6, entry.source.as_str())?;
        statement.raw_bind_parameter(first + 7, entry.kind().as_str())?;
        statement.raw_bind_parameter(first + 8, entry.delivery.as_str())?;
        statement.raw_bind_parameter(first + 9, entry.handler_micros)?;
        statement.raw_bind_parameter(first + 10, search)?;
        statement.raw_bind_parameter(first + 11, row.json.as_str())?;
        statement.raw_bind_parameter(first + 12, entry.origin.as_str())?;
        statement.raw_bind_parameter(first + 13, entry.session.as_deref())?;
        statement.raw_bind_parameter(first + 14, entry.clock_error_micros)?;
    }
    Ok(())
}
