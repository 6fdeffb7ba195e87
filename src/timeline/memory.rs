//! `Timeline`: the running app's entries in memory, numbered in order and handed to the store.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::event::CallbackKind;

use super::query::{Matcher, searchable_lowercase};
use super::writer::Search;
use super::{Query, Store, TimelineEntry};

/// How many entries the running app keeps in memory by default; older ones stay in SQLite.
pub const DEFAULT_MEMORY_CAPACITY: usize = 1_000_000;

/// The shared, ordered list of entries. Cloning it shares the same list.
///
/// Appends take a short write lock that assigns the sequence number and hands the entry to the
/// store's writer thread without blocking; readers (the UI, queries) take a read lock.
#[derive(Debug, Clone)]
pub struct Timeline {
    inner: Arc<RwLock<Inner>>,
    store: Option<Store>,
}

/// An entry and its lowercased searchable text, so the text filter formats nothing.
#[derive(Debug)]
struct Slot {
    /// Kept beside the pointer so the kind filter reads no entry.
    kind: CallbackKind,
    entry: Arc<TimelineEntry>,
    haystack: Search,
}

impl Slot {
    fn matches(&self, matcher: &Matcher<'_>) -> bool {
        if !matcher.admits(self.kind) {
            return false;
        }
        let haystack = if matcher.searches_text() {
            self.haystack
                .get_or_init(|| searchable_lowercase(&self.entry))
        } else {
            ""
        };
        matcher.matches_indexed(&self.entry, haystack)
    }
}

#[derive(Debug)]
struct Inner {
    entries: VecDeque<Slot>,
    /// The store's run, stamped on every entry (0 in memory only).
    run: u64,
    next_seq: u64,
    capacity: usize,
    evicted: u64,
}

impl Inner {
    /// The position of the first entry newer than sequence number `after` (sequence numbers
    /// in memory are consecutive).
    fn position_after(&self, after: u64) -> usize {
        let Some(first) = self.entries.front() else {
            return 0;
        };
        let skip = after.saturating_add(1).saturating_sub(first.entry.seq);
        usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(self.entries.len())
    }
}

impl Timeline {
    /// A timeline kept in memory only, numbered from 1.
    pub fn in_memory() -> Self {
        Self::build(None, 1, DEFAULT_MEMORY_CAPACITY)
    }

    /// A timeline that also persists every entry to `store`, numbered on from its last entry.
    pub fn persistent(store: Store) -> Self {
        let next_seq = store.next_seq();
        Self::build(Some(store), next_seq, DEFAULT_MEMORY_CAPACITY)
    }

    /// The run entries are stamped with (0 when kept in memory only).
    pub fn run(&self) -> u64 {
        read(&self.inner).run
    }

    /// Keeps at most `capacity` entries in memory (the oldest leave memory, not the store).
    #[must_use]
    pub fn with_memory_capacity(self, capacity: usize) -> Self {
        if let Ok(mut inner) = self.inner.write() {
            inner.capacity = capacity.max(1);
        }
        self
    }

    fn build(store: Option<Store>, next_seq: u64, capacity: usize) -> Self {
        let inner = Inner {
            entries: VecDeque::new(),
            run: store
                .as_ref()
                .map_or(0, |store| u64::try_from(store.run_id()).unwrap_or(0)),
            next_seq,
            capacity,
            evicted: 0,
        };
        Self {
            inner: Arc::new(RwLock::new(inner)),
            store,
        }
    }

    /// The persistent store, if this timeline has one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Appends an entry, giving it the next sequence number, and returns it as stored.
    pub fn append(&self, mut entry: TimelineEntry) -> Arc<TimelineEntry> {
        // Computed later, off this thread: by the store's encoder, or by the first query.
        let haystack: Search = Arc::default();
        let mut inner = write(&self.inner);
        entry.seq = inner.next_seq;
        entry.run = inner.run;
        inner.next_seq += 1;
        let entry = Arc::new(entry);
        if let Some(store) = &self.store {
            // Under the lock, so the writer thread sees entries in sequence order.
            store.append(Arc::clone(&entry), Arc::clone(&haystack));
        }
        if inner.entries.len() >= inner.capacity {
            inner.entries.pop_front();
            inner.evicted += 1;
        }
        inner.entries.push_back(Slot {
            kind: entry.kind(),
            entry: Arc::clone(&entry),
            haystack,
        });
        entry
    }

    /// How many entries are in memory.
    pub fn len(&self) -> usize {
        read(&self.inner).entries.len()
    }

    /// Whether memory holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries left memory because it was full.
    pub fn evicted(&self) -> u64 {
        read(&self.inner).evicted
    }

    /// The sequence number of the newest entry (0 before the first).
    pub fn last_seq(&self) -> u64 {
        read(&self.inner).next_seq.saturating_sub(1)
    }

    /// The entries newer than sequence number `after`, oldest first, at most `limit` of them.
    ///
    /// Readers keep the last sequence number they saw as their cursor: positions move when
    /// memory is full and the oldest entries leave, sequence numbers do not.
    pub fn since(&self, after: u64, limit: usize) -> Vec<Arc<TimelineEntry>> {
        let inner = read(&self.inner);
        let start = inner.position_after(after);
        let end = start.saturating_add(limit).min(inner.entries.len());
        inner
            .entries
            .range(start..end)
            .map(|slot| Arc::clone(&slot.entry))
            .collect()
    }

    /// The entries newer than sequence number `after` that match `query` (its `limit`
    /// ignored), oldest first, using each entry's cached search text.
    pub fn query_since(&self, after: u64, query: &Query) -> Vec<Arc<TimelineEntry>> {
        self.query_since_with_cursor(after, query).0
    }

    /// Like [`Timeline::query_since`], with the newest sequence number looked at (the cursor
    /// to continue from), read under the same lock so no entry falls between the two.
    pub fn query_since_with_cursor(
        &self,
        after: u64,
        query: &Query,
    ) -> (Vec<Arc<TimelineEntry>>, u64) {
        let inner = read(&self.inner);
        let start = inner.position_after(after);
        let matcher = query.matcher();
        let found = inner
            .entries
            .range(start..)
            .filter(|slot| slot.matches(&matcher))
            .map(|slot| Arc::clone(&slot.entry))
            .collect();
        (found, inner.next_seq.saturating_sub(1).max(after))
    }

    /// The entries in memory at positions `range` (for a virtualized table).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Vec<Arc<TimelineEntry>> {
        let inner = read(&self.inner);
        let end = range.end.min(inner.entries.len());
        let start = range.start.min(end);
        inner
            .entries
            .range(start..end)
            .map(|slot| Arc::clone(&slot.entry))
            .collect()
    }

    /// The entries in memory that match `query`, oldest first (the newest `limit` if set).
    pub fn query(&self, query: &Query) -> Vec<Arc<TimelineEntry>> {
        let mut found = self.query_range(0..usize::MAX, query);
        if let Some(limit) = query.limit {
            let excess = found.len().saturating_sub(limit);
            found.drain(..excess);
        }
        found
    }

    /// The entries at positions `range` that match `query` (its `limit` ignored), using each
    /// entry's cached search text.
    pub fn query_range(
        &self,
        range: std::ops::Range<usize>,
        query: &Query,
    ) -> Vec<Arc<TimelineEntry>> {
        let inner = read(&self.inner);
        let end = range.end.min(inner.entries.len());
        let start = range.start.min(end);
        let matcher = query.matcher();
        inner
            .entries
            .range(start..end)
            .filter(|slot| slot.matches(&matcher))
            .map(|slot| Arc::clone(&slot.entry))
            .collect()
    }

    /// How many entries in memory match `query` (at most its `limit`).
    pub fn count(&self, query: &Query) -> usize {
        let inner = read(&self.inner);
        let matcher = query.matcher();
        let (front, back) = inner.entries.as_slices();
        // Two halves on two threads: the scan is memory-bound and the machine has two cores.
        let matching = std::thread::scope(|scope| {
            let counts: Vec<_> = [front, back]
                .into_iter()
                .flat_map(|half| half.chunks(half.len().div_ceil(2).max(1)))
                .map(|chunk| {
                    let matcher = &matcher;
                    std::thread::Builder::new()
                        .name("timeline-filter".into())
                        .spawn_scoped(scope, move || {
                            chunk.iter().filter(|slot| slot.matches(matcher)).count()
                        })
                        // Without a thread, count here instead.
                        .map_err(|_| chunk.iter().filter(|slot| slot.matches(matcher)).count())
                })
                .collect();
            counts
                .into_iter()
                .map(|counted| match counted {
                    Ok(handle) => handle.join().unwrap_or(0),
                    Err(count) => count,
                })
                .sum::<usize>()
        });
        matching.min(query.limit.unwrap_or(usize::MAX))
    }
}

// A poisoned lock only means a reader or writer panicked mid-way; the list itself is still
// consistent (every mutation is a single push or pop), so keep going with it.
fn read(lock: &RwLock<Inner>) -> RwLockReadGuard<'_, Inner> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(lock: &RwLock<Inner>) -> std::sync::RwLockWriteGuard<'_, Inner> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
