//! The window's worker: filtering the timeline, SQLite queries, recent calls and exports run on
//! its own thread, behind a bounded channel of requests that each carry an id, so the UI thread
//! never waits on a scan, the disk or SQLite.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::event::{CallbackKind, Event};
use crate::model::EndReason;
use crate::timeline::{ExportFormat, Origin, Query, Store, Timeline, TimelineEntry, export};

/// Requests waiting for the worker at most; beyond that the UI is told the worker is busy.
pub const REQUEST_CAPACITY: usize = 16;

/// The newest stored entries loaded when earlier runs are shown; the CLI reads any number.
pub const EARLIER_RUNS_LIMIT: usize = 100_000;

/// Recent calls listed in the dialer.
pub const RECENT_CALLS: usize = 12;

/// What the UI asks of the worker.
#[derive(Debug)]
pub enum Request {
    /// The rows a filter lets through: from memory, or from SQLite and then memory when
    /// `earlier_runs` is set.
    Filter {
        /// The query.
        query: Query,
        /// Include stored entries of earlier runs.
        earlier_runs: bool,
    },
    /// Every entry of one call (the inspector's neighbours and the swimlane).
    Call {
        /// The call.
        call_id: String,
        /// Look in SQLite too (an entry of an earlier run).
        stored: bool,
    },
    /// The newest calls, from the stored timeline (or memory without a store).
    RecentCalls,
    /// Import an export (JSON Lines) from another machine as the other side of its calls.
    Import {
        /// The file.
        path: PathBuf,
    },
    /// Write `rows` to a file in `dir`.
    Export {
        /// The rows, oldest first.
        rows: Vec<Arc<TimelineEntry>>,
        /// JSON Lines or Perfetto.
        format: ExportFormat,
        /// The directory to write into.
        dir: PathBuf,
    },
}

/// The rows of a filter.
#[derive(Debug, Default)]
pub struct Filtered {
    /// The rows, oldest first.
    pub rows: Vec<Arc<TimelineEntry>>,
    /// The newest sequence number looked at in memory: new entries continue from here.
    pub cursor: u64,
    /// When each run started (ms since the Unix epoch), for the run separators.
    pub runs: HashMap<u64, u64>,
    /// When each call of the rows started, where earlier runs know it.
    pub call_starts: HashMap<String, u64>,
    /// What went wrong reading SQLite, if anything (the rows from memory are still there).
    pub error: Option<String>,
}

/// One call of the recent-calls list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentCall {
    /// The call.
    pub call_id: String,
    /// Everyone else in it.
    pub peers: Vec<String>,
    /// We placed it.
    pub outgoing: bool,
    /// When it ended (ms since the Unix epoch).
    pub ended_millis: u64,
    /// Connected time in milliseconds.
    pub duration_millis: u64,
    /// Why it ended.
    pub reason: EndReason,
    /// Somebody called us and we never answered.
    pub missed: bool,
}

/// What the worker answers.
#[derive(Debug)]
pub enum Reply {
    /// The rows of a [`Request::Filter`].
    Filtered(Filtered),
    /// The entries of a [`Request::Call`], oldest first.
    Call(String, Vec<Arc<TimelineEntry>>),
    /// The calls of a [`Request::RecentCalls`], newest first.
    RecentCalls(Vec<RecentCall>),
    /// How an export went: the rows written and the file, or the error.
    Exported(Result<(usize, PathBuf), String>),
    /// How an import went: the entries added from the file, or the error.
    Imported(Result<(usize, PathBuf), String>),
}

/// The handle the UI keeps: send requests, take answers, each tagged with its request's id.
#[derive(Debug)]
pub struct Worker {
    /// Dropped first on drop: the thread then ends after the request it is on.
    requests: Option<Sender<(u64, Request)>>,
    replies: Receiver<(u64, Reply)>,
    next_id: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker thread; `wake` is called after each answer (to repaint the window).
    pub fn start(
        timeline: Timeline,
        store: Option<Store>,
        user_id: String,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let (requests, inbox) = crossbeam_channel::bounded::<(u64, Request)>(REQUEST_CAPACITY);
        // Every request has at most one answer, and at most `REQUEST_CAPACITY` wait, so the
        // answers waiting are bounded too; one more place for the one being answered.
        let (outbox, replies) = crossbeam_channel::bounded(REQUEST_CAPACITY + 1);
        let thread = std::thread::Builder::new()
            .name("ui-worker".into())
            .spawn(move || {
                let context = Context {
                    timeline,
                    store,
                    user_id,
                };
                for (id, request) in inbox {
                    let reply = context.answer(request);
                    if outbox.send((id, reply)).is_err() {
                        break;
                    }
                    wake();
                }
            })?;
        Ok(Self {
            requests: Some(requests),
            replies,
            next_id: 1,
            thread: Some(thread),
        })
    }

    /// Queues a request; its id, or `None` when the worker is busy or gone.
    pub fn send(&mut self, request: Request) -> Option<u64> {
        let id = self.next_id;
        // Unanswered answers count too: the UI takes them every frame, so this only refuses
        // when the worker is far behind.
        if self.replies.len() + self.requests.as_ref()?.len() >= REQUEST_CAPACITY {
            return None;
        }
        match self.requests.as_ref()?.try_send((id, request)) {
            Ok(()) => {
                self.next_id += 1;
                Some(id)
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        }
    }

    /// The next answer, if one is ready.
    pub fn try_recv(&self) -> Option<(u64, Reply)> {
        self.replies.try_recv().ok()
    }
}

impl Drop for Worker {
    /// Ends the thread and waits for it, so the store it holds is closed when the window is.
    fn drop(&mut self) {
        drop(self.requests.take());
        // Answers not taken would keep the thread waiting to send: drop them as they come.
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                while self.replies.try_recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // A worker that panicked has nothing left to close.
            let _ = thread.join();
        }
    }
}

struct Context {
    timeline: Timeline,
    store: Option<Store>,
    user_id: String,
}

impl Context {
    fn answer(&self, request: Request) -> Reply {
        match request {
            Request::Filter {
                query,
                earlier_runs,
            } => Reply::Filtered(self.filter(&query, earlier_runs)),
            Request::Call { call_id, stored } => {
                let entries = self.call(&call_id, stored);
                Reply::Call(call_id, entries)
            }
            Request::RecentCalls => Reply::RecentCalls(self.recent_calls()),
            Request::Export { rows, format, dir } => {
                Reply::Exported(write_export(&rows, format, &dir))
            }
            Request::Import { path } => Reply::Imported(self.import(&path)),
        }
    }

    fn filter(&self, query: &Query, earlier_runs: bool) -> Filtered {
        let mut filtered = Filtered::default();
        let mut after = 0;
        if earlier_runs && let Some(store) = &self.store {
            let stored = Query {
                limit: Some(EARLIER_RUNS_LIMIT),
                ..query.clone()
            };
            match store.query(&stored) {
                Ok(entries) => {
                    // Entries not yet committed come from memory below, by sequence number.
                    after = entries.last().map_or(0, |entry| entry.seq);
                    filtered.rows.extend(entries.into_iter().map(Arc::new));
                }
                Err(error) => filtered.error = Some(error.to_string()),
            }
            match store.runs() {
                Ok(runs) => filtered.runs = runs.into_iter().collect(),
                Err(error) => filtered.error = Some(error.to_string()),
            }
            let mut calls: Vec<String> = filtered
                .rows
                .iter()
                .filter_map(|entry| entry.call_id.clone())
                .collect();
            calls.sort_unstable();
            calls.dedup();
            match store.call_starts(&calls) {
                Ok(starts) => filtered.call_starts = starts,
                Err(error) => filtered.error = Some(error.to_string()),
            }
        }
        let (fresh, cursor) = self.timeline.query_since_with_cursor(after, query);
        filtered.rows.extend(fresh);
        filtered.cursor = cursor;
        filtered
    }

    fn import(&self, path: &std::path::Path) -> Result<(usize, PathBuf), String> {
        let file =
            std::fs::File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let entries = crate::timeline::read_json_lines(std::io::BufReader::new(file))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let count =
            crate::timeline::import(&self.timeline, entries, &format!("import:{name}")).entries;
        Ok((count, path.to_path_buf()))
    }

    fn call(&self, call_id: &str, stored: bool) -> Vec<Arc<TimelineEntry>> {
        let query = Query::all().call(call_id);
        let mut entries = Vec::new();
        let mut after = 0;
        if stored
            && let Some(store) = &self.store
            && let Ok(found) = store.query(&query)
        {
            after = found.last().map_or(0, |entry| entry.seq);
            entries.extend(found.into_iter().map(Arc::new));
        }
        entries.extend(self.timeline.query_since(after, &query));
        entries
    }

    fn recent_calls(&self) -> Vec<RecentCall> {
        let ends = Query {
            limit: Some(RECENT_CALLS),
            origin: Some(Origin::Local),
            ..Query::all().kind(CallbackKind::AfterCalling)
        };
        let ended: Vec<Arc<TimelineEntry>> = match &self.store {
            Some(store) => store
                .query(&ends)
                .map(|found| found.into_iter().map(Arc::new).collect())
                .unwrap_or_default(),
            None => self.timeline.query(&ends),
        };
        let mut calls: Vec<RecentCall> = ended
            .iter()
            .filter_map(|end| {
                let Event::AfterCalling(summary) = &end.event else {
                    return None;
                };
                let entries = self.call(&summary.call_id, self.store.is_some());
                let peers = peers_of(&entries, &self.user_id);
                let outgoing = summary.initiator == self.user_id;
                let missed = !outgoing
                    && summary.duration_millis == 0
                    && matches!(summary.reason, EndReason::NoResponse | EndReason::Canceled);
                Some(RecentCall {
                    call_id: summary.call_id.clone(),
                    peers,
                    outgoing,
                    ended_millis: end.at.wall_millis,
                    duration_millis: summary.duration_millis,
                    reason: summary.reason,
                    missed,
                })
            })
            .collect();
        calls.reverse();
        calls
    }
}

/// Everyone but `me` that a call's entries name.
fn peers_of(entries: &[Arc<TimelineEntry>], me: &str) -> Vec<String> {
    let mut peers: Vec<String> = Vec::new();
    let mut add = |user: &str| {
        if user != me && !user.is_empty() && !peers.iter().any(|known| known == user) {
            peers.push(user.to_owned());
        }
    };
    for entry in entries {
        match &entry.event {
            Event::CallReceived {
                caller_id,
                callee_ids,
                ..
            } => {
                add(caller_id);
                for callee in callee_ids {
                    add(callee);
                }
            }
            Event::UserJoin { user_id }
            | Event::UserLeave { user_id }
            | Event::UserReject { user_id }
            | Event::UserNoResponse { user_id }
            | Event::UserLineBusy { user_id } => add(user_id),
            Event::CallEnd { user_id, .. } | Event::CallNotConnected { user_id, .. } => {
                add(user_id);
            }
            _ => {}
        }
    }
    peers
}

fn write_export(
    rows: &[Arc<TimelineEntry>],
    format: ExportFormat,
    dir: &std::path::Path,
) -> Result<(usize, PathBuf), String> {
    let extension = match format {
        ExportFormat::JsonLines => "jsonl",
        ExportFormat::Perfetto => "perfetto.json",
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let path = dir.join(format!("timeline-{stamp}.{extension}"));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::File::create(&path))
        .and_then(|file| {
            let mut writer = std::io::BufWriter::new(file);
            export(rows.iter().map(|entry| &**entry), format, &mut writer)?;
            std::io::Write::flush(&mut writer)
        })
        .map(|()| (rows.len(), path.clone()))
        .map_err(|error| format!("{}: {error}", path.display()))
}
