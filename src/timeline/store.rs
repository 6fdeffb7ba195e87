//! `Store`: the timeline in SQLite (bundled, WAL), written in batches by its own thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use rusqlite::{Connection, OpenFlags};

use super::writer::{self, ENCODED_BATCHES, Queued, Search, Shared};
use super::{Query, TimelineEntry};

/// How many entries wait in the writer's channel before appends spill to the overflow list.
pub const CHANNEL_CAPACITY: usize = 65_536;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "timeline.sqlite3";

/// The lock file that lets one process at a time write a data directory's timeline.
pub const LOCK_FILE: &str = "timeline.lock";

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("timeline database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be made.
    #[error("timeline data directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A stored row could not be read back.
    #[error("timeline entry {seq} is damaged: {message}")]
    Damaged {
        /// The entry's sequence number.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
    /// Another running process writes this timeline; sequence numbers would collide.
    #[error(
        "the timeline in {0} is in use by another running callscope; give this one its own --data-dir"
    )]
    InUse(PathBuf),
    /// The writer did not catch up in time.
    #[error("the timeline writer did not commit entry {target} within {waited:?}")]
    FlushTimeout {
        /// The entry waited for.
        target: u64,
        /// How long we waited.
        waited: Duration,
    },
}

/// The persistent timeline. Cloning shares the same database and writer thread.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    run_id: i64,
    first_seq: u64,
    sender: Mutex<Option<Sender<Queued>>>,
    shared: Arc<Shared>,
    appended: AtomicU64,
    reader: Mutex<Connection>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Holds the exclusive lock on [`LOCK_FILE`] for as long as the store is open; the OS
    /// releases it if the process dies.
    _lock: Mutex<Connection>,
}

/// Takes the data directory's write lock, or says who holds it.
fn lock(data_dir: &Path) -> Result<Connection, StoreError> {
    let lock = Connection::open(data_dir.join(LOCK_FILE))?;
    // Fail at once when another process holds it (SQLite would wait 5 s by default).
    lock.busy_timeout(Duration::ZERO)?;
    lock.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    match lock.execute_batch("BEGIN EXCLUSIVE") {
        Ok(()) => Ok(lock),
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Err(StoreError::InUse(data_dir.to_path_buf()))
        }
        Err(error) => Err(error.into()),
    }
}

/// Reads stored entries without opening the store for writing, so it works while another
/// process records into the same data directory.
pub fn read_stored(data_dir: &Path, query: &Query) -> Result<Vec<TimelineEntry>, StoreError> {
    let path = data_dir.join(DATABASE_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    super::sql::query(&reader, query)
}

/// The data directory callscope uses when `--data-dir` is not given.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "callscope").map_or_else(
        || PathBuf::from(".callscope"),
        |dirs| dirs.data_dir().to_path_buf(),
    )
}

impl Store {
    /// Opens (or creates) the timeline database in `data_dir` and starts its writer thread.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_keeping(data_dir, None)
    }

    /// Like [`Store::open`]; with `retention`, only about that many of the newest entries are
    /// kept (a server's timeline must not grow without end).
    pub fn open_keeping(data_dir: &Path, retention: Option<u64>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Directory {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let lock = lock(data_dir)?;
        let path = data_dir.join(DATABASE_FILE);
        let connection = Connection::open(&path)?;
        writer::prepare_schema(&connection)?;
        let run = writer::start_run(&connection)?;
        let last_seq = run.first_seq - 1;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let shared = Arc::new(Shared::new(last_seq));
        let (sender, receiver) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        let (rows_sender, rows_receiver) = crossbeam_channel::bounded(ENCODED_BATCHES);
        let thread_error = |source| StoreError::Directory {
            path: path.clone(),
            source,
        };
        let encoder_shared = Arc::clone(&shared);
        let encoder = std::thread::Builder::new()
            .name("timeline-encoder".into())
            .spawn(move || writer::encode(&receiver, &encoder_shared, &rows_sender))
            .map_err(thread_error)?;
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("timeline-writer".into())
            .spawn(move || {
                writer::write(connection, run, &rows_receiver, &writer_shared, retention);
            })
            .map_err(thread_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                run_id: run.run_id,
                first_seq: run.first_seq,
                sender: Mutex::new(Some(sender)),
                shared,
                appended: AtomicU64::new(last_seq),
                reader: Mutex::new(reader),
                threads: Mutex::new(vec![encoder, writer]),
                _lock: Mutex::new(lock),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This run's number in the `runs` table.
    pub fn run_id(&self) -> i64 {
        self.inner.run_id
    }

    /// The sequence number the next new entry of this run gets.
    pub fn next_seq(&self) -> u64 {
        self.inner.first_seq
    }

    /// Queues an entry for writing; never blocks and never drops it.
    ///
    /// Entries must arrive in sequence order ([`super::Timeline::append`] sees to that). When the
    /// bounded channel is full they wait in an overflow list that the writer takes next.
    /// `search` holds (or will hold) the entry's lowercased searchable text
    /// ([`super::searchable_lowercase`]), kept for text queries.
    pub(super) fn append(&self, entry: Arc<TimelineEntry>, search: Search) {
        let seq = entry.seq;
        let entry = (entry, search);
        let mut overflow = self
            .inner
            .shared
            .overflow
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if overflow.active {
            overflow.entries.push(entry);
        } else if let Some(sender) = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            match sender.try_send(entry) {
                Ok(()) => {}
                Err(TrySendError::Full(entry) | TrySendError::Disconnected(entry)) => {
                    overflow.active = true;
                    overflow.entries.push(entry);
                }
            }
        } else {
            overflow.active = true;
            overflow.entries.push(entry);
        }
        self.inner.appended.fetch_max(seq, Ordering::Release);
    }

    /// The highest sequence number that is committed to disk (every lower one is too).
    pub fn committed_seq(&self) -> u64 {
        self.inner.shared.committed()
    }

    /// How many write attempts failed so far, and the last error, for the UI to show.
    pub fn write_failures(&self) -> (u64, Option<String>) {
        self.inner.shared.failures()
    }

    /// Waits until every entry appended so far is committed, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), StoreError> {
        let target = self.inner.appended.load(Ordering::Acquire);
        let started = Instant::now();
        if self.inner.shared.wait_committed(target, timeout) {
            Ok(())
        } else {
            Err(StoreError::FlushTimeout {
                target,
                waited: started.elapsed(),
            })
        }
    }

    /// The stored entries that match `query`, oldest first (the newest `limit` if set).
    pub fn query(&self, query: &Query) -> Result<Vec<TimelineEntry>, StoreError> {
        let reader = self.reader();
        super::sql::query(&reader, query)
    }

    /// The read connection, for one query at a time.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every run of this database with when it started (ms since the Unix epoch), oldest first.
    pub fn runs(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let reader = self.reader();
        let mut statement =
            reader.prepare("SELECT run_id, started_ms FROM runs ORDER BY run_id")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The time of the first stored entry of each of `call_ids` (ms since the Unix epoch).
    pub fn call_starts(
        &self,
        call_ids: &[String],
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let reader = self.reader();
        let mut statement =
            reader.prepare_cached("SELECT MIN(at_ms) FROM entries WHERE call_id = ?1")?;
        let mut starts = std::collections::HashMap::new();
        for call_id in call_ids {
            let start: Option<u64> = statement.query_row([call_id], |row| row.get(0))?;
            if let Some(start) = start {
                starts.insert(call_id.clone(), start);
            }
        }
        Ok(starts)
    }

    /// How many entries are stored.
    pub fn count(&self) -> Result<u64, StoreError> {
        let reader = self.reader();
        Ok(reader.query_row("SELECT COUNT(*) FROM entries", [], |row| row.get(0))?)
    }

    /// Stops the writer after it committed everything queued; later appends are kept in memory
    /// only. Dropping the last clone of the store does the same.
    pub fn close(&self) {
        self.inner.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        // Dropping the sender lets the writer drain the channel and the overflow, then stop.
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        // The encoder ends first (its channel closed), then the writer (the encoder's closed).
        for thread in threads {
            // A panicking thread has already recorded its failure; nothing more to do here.
            let _ = thread.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
