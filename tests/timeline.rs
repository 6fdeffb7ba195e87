//! Timeline tests: persistence across reopen, no loss under bursts, a writer killed with SIGKILL, queries
//! in memory and in SQLite, the JSON Lines and Perfetto exports, and the contract checker's own
//! rules (`timeline/check_rules.rs`).

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

#[path = "timeline/check_rules.rs"]
mod check_rules;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callscope::event::{CallSummary, CallbackKind, Event};
use callscope::kit::CallKit;
use callscope::model::{CallStatus, CallType, EndReason, MediaType, MonoTime, Source};
use callscope::timeline::{
    CHANNEL_CAPACITY, CheckOptions, ExportFormat, Origin, Query, Rule, Store, Timeline,
    TimelineEntry, check, export,
};

const FLUSH: Duration = Duration::from_secs(30);

/// A varied, repeatable event for position `i`.
fn event(i: u64) -> (Option<String>, Event) {
    let call_id = Some(format!("c-{}", i / 10));
    let event = match i % 5 {
        0 => Event::UserJoin {
            user_id: format!("user-{i}"),
        },
        1 => Event::StatusChanged {
            old_status: CallStatus::DialingC2c,
            new_status: CallStatus::CallingC2cVideo,
        },
        2 => Event::UserVideoAvailable {
            user_id: "bob".into(),
            available: i.is_multiple_of(2),
        },
        3 => Event::KickedOut {
            by: format!("device-{i}"),
        },
        _ => Event::UserLeave {
            user_id: "dave".into(),
        },
    };
    (call_id, event)
}

fn record(kit: &CallKit, count: u64) -> Vec<Arc<TimelineEntry>> {
    (0..count)
        .map(|i| {
            let (call_id, event) = event(i);
            kit.dispatch(
                MonoTime::from_micros(i),
                call_id.as_deref(),
                Source::Engine,
                event,
            )
        })
        .collect()
}

fn persistent_kit(dir: &std::path::Path) -> (CallKit, Store) {
    let store = Store::open(dir).expect("open store");
    let kit = CallKit::builder()
        .user("alice")
        .timeline(Timeline::persistent(store.clone()))
        .build();
    (kit, store)
}

#[test]
fn entries_are_there_in_order_after_the_store_is_dropped_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (kit, store) = persistent_kit(dir.path());
    let written = record(&kit, 1000);
    store.flush(FLUSH).expect("flush");
    drop(kit);
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    let read = store.query(&Query::all()).expect("query");
    assert_eq!(read.len(), 1000);
    let written: Vec<TimelineEntry> = written.iter().map(|e| (**e).clone()).collect();
    assert_eq!(read, written, "same entries, same order, same payloads");

    // A second run numbers on after everything the first one reserved (so nothing it handed
    // out before a crash is ever handed out again), under its own run; both runs are there.
    let kit = CallKit::builder()
        .user("alice")
        .timeline(Timeline::persistent(store.clone()))
        .build();
    let next = kit.dispatch(
        MonoTime::default(),
        None,
        Source::Ui,
        Event::UserSigExpired {},
    );
    assert!(next.seq > 1000, "{}", next.seq);
    assert_ne!(next.run, written[0].run);
    assert!(
        written
            .iter()
            .all(|entry| entry.run == written[0].run && entry.run > 0)
    );
    store.flush(FLUSH).expect("flush");
    assert_eq!(store.count().unwrap(), 1001);
    let runs: std::collections::BTreeSet<u64> = store
        .query(&Query::all())
        .unwrap()
        .iter()
        .map(|entry| entry.run)
        .collect();
    assert_eq!(runs.len(), 2);
}

#[test]
fn a_burst_larger_than_the_channel_loses_nothing_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let (kit, store) = persistent_kit(dir.path());
    let count = (CHANNEL_CAPACITY * 3) as u64;
    let started = Instant::now();
    record(&kit, count);
    let appending = started.elapsed();
    store.flush(FLUSH).expect("flush");
    let read = store.query(&Query::all()).expect("query");
    assert_eq!(read.len() as u64, count);
    assert!(
        read.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "no gap, no reordering"
    );
    assert_eq!(store.write_failures().0, 0);
    eprintln!("appended {count} entries in {appending:?} without waiting on disk");
}

#[test]
fn queries_agree_in_memory_and_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (kit, store) = persistent_kit(dir.path());
    record(&kit, 500);
    store.flush(FLUSH).expect("flush");
    let queries = [
        Query::all().kind(CallbackKind::KickedOut),
        Query::all()
            .kind(CallbackKind::UserJoin)
            .kind(CallbackKind::UserLeave),
        Query::all().call("c-7"),
        Query::all().text("DEVICE-13"),
        Query::all().text("calling-c2c-video").call("c-3"),
        Query::all().text("100%_no_such"),
        Query {
            limit: Some(7),
            ..Query::all().kind(CallbackKind::UserLeave)
        },
        Query {
            user_id: Some("alice".into()),
            ..Query::all()
        },
        Query {
            user_id: Some("nobody".into()),
            ..Query::all()
        },
    ];
    for query in queries {
        let memory: Vec<u64> = kit.timeline().query(&query).iter().map(|e| e.seq).collect();
        let stored: Vec<u64> = store.query(&query).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(memory, stored, "{query:?}");
        assert_eq!(kit.timeline().count(&query), memory.len());
    }
    let found: Vec<u64> = kit
        .timeline()
        .query(&Query::all().text("device-13"))
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        found,
        [14, 134, 139],
        "device-13, device-133 and device-138"
    );
    assert_eq!(
        kit.timeline()
            .query(&Query::all().kind(CallbackKind::KickedOut))
            .len(),
        100
    );
    let last = kit.timeline().query(&Query {
        limit: Some(3),
        ..Query::all()
    });
    assert_eq!(
        last.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [498, 499, 500]
    );
}

#[test]
fn time_range_filters_by_wall_clock() {
    let kit = CallKit::builder().user("alice").build();
    let entries = record(&kit, 10);
    let first = entries[0].at.wall_millis;
    let query = Query {
        since_millis: Some(first + 1_000_000),
        ..Query::all()
    };
    assert!(kit.timeline().query(&query).is_empty());
    let query = Query {
        since_millis: Some(first),
        until_millis: Some(first),
        ..Query::all()
    };
    assert_eq!(kit.timeline().query(&query).len(), 10);
}

#[test]
fn the_perfetto_export_parses_and_has_one_event_per_entry() {
    let kit = CallKit::builder().user("alice").build();
    let entries = record(&kit, 60);
    let mut out = Vec::new();
    export(
        entries.iter().map(|e| &**e),
        ExportFormat::Perfetto,
        &mut out,
    )
    .unwrap();
    let trace: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let per_entry: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] != "M").collect();
    assert_eq!(per_entry.len(), entries.len());
    let mut seqs: Vec<u64> = per_entry
        .iter()
        .map(|e| e["args"]["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, entries.iter().map(|e| e.seq).collect::<Vec<_>>());
    // One track per call: 6 calls, each named by a metadata event.
    let tracks: std::collections::BTreeSet<u64> = per_entry
        .iter()
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(tracks.len(), 6);
    let names = events.iter().filter(|e| e["name"] == "thread_name").count();
    assert_eq!(names, 6);
    // Status changes are slices lasting until the call's next status; the rest are instants.
    let slices: Vec<_> = per_entry.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(slices.len(), 12);
    assert!(
        slices
            .iter()
            .all(|e| e["name"] == "calling-c2c-video" && e["dur"].is_u64())
    );
    assert!(
        per_entry
            .iter()
            .filter(|e| e["ph"] == "i")
            .all(|e| e["s"] == "t")
    );
}

#[test]
fn the_json_lines_export_reads_back_entry_for_entry() {
    let kit = CallKit::builder().user("alice").build();
    let entries = record(&kit, 25);
    let mut out = Vec::new();
    export(
        entries.iter().map(|e| &**e),
        ExportFormat::JsonLines,
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let read: Vec<TimelineEntry> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one entry per line"))
        .collect();
    assert_eq!(read.len(), 25);
    assert_eq!(
        read,
        entries.iter().map(|e| (**e).clone()).collect::<Vec<_>>()
    );
}

/// Not a test on its own: the child process of the crash test. It appends until killed and
/// prints the committed sequence number as it grows.
#[test]
#[ignore = "run by killed_writer_keeps_every_committed_entry"]
fn crash_child_appends_until_killed() {
    let Ok(dir) = std::env::var("CALLSCOPE_CRASH_DIR") else {
        return;
    };
    let (kit, store) = persistent_kit(std::path::Path::new(&dir));
    let mut reported = 0;
    for i in 0.. {
        let (call_id, event) = event(i);
        kit.dispatch(
            MonoTime::from_micros(i),
            call_id.as_deref(),
            Source::Engine,
            event,
        );
        let committed = store.committed_seq();
        if committed > reported {
            println!("committed {committed}");
            reported = committed;
        }
        if i % 1000 == 0 {
            std::thread::yield_now();
        }
    }
}

#[test]
fn killed_writer_keeps_every_committed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_appends_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CALLSCOPE_CRASH_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let mut last_reported = 0_u64;
    let mut reports = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("committed ") {
            last_reported = seq.parse().unwrap();
            reports += 1;
            if reports >= 5 && last_reported > 5_000 {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(
        last_reported > 0,
        "the child committed something before it was killed"
    );

    let connection = rusqlite::Connection::open(dir.path().join("timeline.sqlite3")).unwrap();
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let store = Store::open(dir.path()).expect("reopen after crash");
    let stored = store.query(&Query::all()).unwrap();
    let committed: Vec<&TimelineEntry> = stored.iter().filter(|e| e.seq <= last_reported).collect();
    assert_eq!(
        committed.len() as u64,
        last_reported,
        "every reported entry is there"
    );
    assert!(
        committed
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1)
    );
    let (_, expected) = event(last_reported - 1);
    assert_eq!(committed.last().unwrap().event, expected);
}

#[test]
fn a_second_writer_of_the_same_data_dir_is_refused_and_readers_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let (kit, store) = persistent_kit(dir.path());
    record(&kit, 10);
    store.flush(FLUSH).expect("flush");
    let second = Store::open(dir.path());
    assert!(
        matches!(second, Err(callscope::timeline::StoreError::InUse(_))),
        "two writers would number entries alike"
    );
    let read = callscope::timeline::read_stored(dir.path(), &Query::all()).unwrap();
    assert_eq!(read.len(), 10, "reading needs no lock");
    drop(kit);
    drop(store);
    assert!(
        Store::open(dir.path()).is_ok(),
        "the lock goes with the store"
    );
}

#[test]
fn readers_keep_their_place_by_sequence_number_when_memory_is_full() {
    let kit = CallKit::builder()
        .user("alice")
        .timeline(Timeline::in_memory().with_memory_capacity(100))
        .build();
    record(&kit, 100);
    let cursor = kit.timeline().last_seq();
    assert_eq!(cursor, 100);
    // Memory is full: every new entry pushes the oldest out, positions shift, seqs do not.
    record(&kit, 50);
    assert_eq!(kit.timeline().len(), 100);
    assert_eq!(kit.timeline().evicted(), 50);
    let fresh = kit.timeline().since(cursor, usize::MAX);
    let seqs: Vec<u64> = fresh.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, (101..=150).collect::<Vec<_>>());
    // A cursor older than memory gets everything memory still has, from its oldest.
    let all = kit.timeline().since(0, usize::MAX);
    assert_eq!(all.len(), 100);
    assert_eq!(all[0].seq, 51);
    // In batches, the cursor moves on.
    let first = kit.timeline().since(cursor, 20);
    assert_eq!(first.last().map(|entry| entry.seq), Some(120));
    // Filtered reads from a cursor see only what is new and matches.
    let joins = kit
        .timeline()
        .query_since(cursor, &Query::all().kind(CallbackKind::UserJoin));
    assert_eq!(joins.len(), 10);
    assert!(joins.iter().all(|entry| entry.seq > cursor));
    assert!(kit.timeline().since(150, usize::MAX).is_empty());
}

#[test]
fn a_database_written_before_runs_reserved_their_numbers_opens_and_numbers_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The schema of the stores written before: no reservations.
        let old = rusqlite::Connection::open(dir.path().join(callscope::timeline::DATABASE_FILE))
            .unwrap();
        old.execute_batch(
            "CREATE TABLE runs (run_id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL,
                 pid INTEGER NOT NULL, version TEXT NOT NULL);
             CREATE TABLE entries (seq INTEGER PRIMARY KEY, run_id INTEGER NOT NULL,
                 at_ms INTEGER NOT NULL, mono_us INTEGER NOT NULL, call_id TEXT,
                 user_id TEXT NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL,
                 delivery TEXT NOT NULL, handler_us INTEGER NOT NULL, search TEXT NOT NULL,
                 event TEXT NOT NULL);
             INSERT INTO runs VALUES (1, 0, 1, '0.1.0');
             INSERT INTO entries VALUES (41, 1, 1000, 5, NULL, 'alice', 'ui', 'onUserSigExpired',
                 'delivered', 0, 'onusersigexpired', '{\"kind\":\"onUserSigExpired\",\"payload\":{}}');",
        )
        .unwrap();
    }
    let (kit, store) = persistent_kit(dir.path());
    let old = store.query(&Query::all()).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!((old[0].seq, old[0].run), (41, 1));
    let next = kit.dispatch(
        MonoTime::default(),
        None,
        Source::Ui,
        Event::UserSigExpired {},
    );
    assert_eq!(next.seq, 42);
    store.flush(FLUSH).unwrap();
    assert_eq!(store.count().unwrap(), 2);
}

#[test]
fn a_store_with_retention_keeps_about_its_newest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_keeping(dir.path(), Some(1000)).unwrap();
    let kit = CallKit::builder()
        .user("server")
        .timeline(Timeline::persistent(store.clone()))
        .build();
    let written = record(&kit, 20_000);
    store.flush(FLUSH).unwrap();
    let count = store.count().unwrap();
    // Trimmed every few thousand commits: never far above the retention.
    assert!((1000..1000 + 4096).contains(&count), "{count} entries kept");
    let kept = store.query(&Query::all()).unwrap();
    assert_eq!(
        kept.last().map(|entry| entry.seq),
        written.last().map(|entry| entry.seq)
    );
}

#[test]
fn a_database_written_before_call_traces_opens_with_its_entries_local_and_takes_peer_entries() {
    // Written by callscope before entries had an origin: `callscope call decline --audio`.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/timeline-before-traces.sqlite3");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        &fixture,
        dir.path().join(callscope::timeline::DATABASE_FILE),
    )
    .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old = store.query(&Query::all()).unwrap();
    assert_eq!(old.len(), 9, "every entry of the earlier run reads back");
    assert!(
        old.iter()
            .all(|entry| entry.origin == Origin::Local && entry.session.is_none())
    );
    assert!(
        old.iter()
            .any(|entry| entry.kind() == CallbackKind::AfterCalling)
    );
    // A demo peer's kit records its side of a call into the same store.
    let timeline = callscope::timeline::Timeline::persistent(store.clone());
    let peer = CallKit::builder()
        .user("decline")
        .origin(Origin::Peer)
        .timeline(timeline)
        .build();
    peer.dispatch(
        peer.clock().now(),
        Some("c-1"),
        Source::Remote,
        Event::StatusChanged {
            old_status: CallStatus::Idle,
            new_status: CallStatus::BeInvited,
        },
    );
    store.flush(Duration::from_secs(5)).unwrap();
    let peers = store
        .query(&Query {
            origin: Some(Origin::Peer),
            ..Query::all()
        })
        .unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].user_id, "decline");
    // Its JSON names the origin; a local entry's keeps the contract's shape.
    let json = serde_json::to_value(&peers[0]).unwrap();
    assert_eq!(json["origin"], "peer");
    assert!(
        serde_json::to_value(&old[0])
            .unwrap()
            .get("origin")
            .is_none()
    );
    let back: callscope::timeline::TimelineEntry = serde_json::from_value(json).unwrap();
    assert_eq!(back, peers[0]);
    drop(peer);
    store.close();
    drop(store);
    // Reopened, the migrated database holds both.
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(reopened.count().unwrap(), 10);
    let locals = reopened
        .query(&Query {
            origin: Some(Origin::Local),
            ..Query::all()
        })
        .unwrap();
    assert_eq!(locals.len(), 9);
    // The Perfetto export shows one process per participant: ours and the peer's.
    let all = reopened.query(&Query::all()).unwrap();
    let mut out = Vec::new();
    export(all.iter(), ExportFormat::Perfetto, &mut out).unwrap();
    let trace: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let processes: Vec<(u64, String)> = events
        .iter()
        .filter(|event| event["name"] == "process_name")
        .map(|event| {
            let name = event["args"]["name"].as_str().unwrap().to_owned();
            (event["pid"].as_u64().unwrap(), name)
        })
        .collect();
    assert_eq!(
        processes,
        [
            (1, "alice (callscope)".to_owned()),
            (2, "decline (peer)".to_owned())
        ]
    );
    let peer_pids: Vec<u64> = events
        .iter()
        .filter(|event| event["ph"] != "M" && event["args"]["origin"] == "peer")
        .map(|event| event["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(peer_pids, [2]);
}

/// A 1:1 call recorded by both sides into one timeline: alice placed it, bob's side is a peer
/// trace. `bob_calls` says whether bob reached a calling status, `bob_received` whether he got
/// the invitation, `bob_reason` why his side says it ended.
fn two_sided_trace(
    bob_received: bool,
    bob_calls: bool,
    bob_reason: EndReason,
) -> Vec<TimelineEntry> {
    let timeline = Timeline::in_memory();
    let alice = CallKit::builder()
        .user("alice")
        .timeline(timeline.clone())
        .build();
    let bob = CallKit::builder()
        .user("bob")
        .origin(Origin::Peer)
        .timeline(timeline.clone())
        .build();
    let call = Some("c-1");
    let status = |kit: &CallKit, old_status, new_status| {
        kit.dispatch(
            kit.clock().now(),
            call,
            Source::Remote,
            Event::StatusChanged {
                old_status,
                new_status,
            },
        );
    };
    let summary = |reason| {
        Event::AfterCalling(CallSummary {
            call_id: "c-1".into(),
            reason,
            initiator: "alice".into(),
            duration_millis: 1000,
            media: MediaType::Video,
        })
    };
    let now = || alice.clock().now();
    alice.dispatch(
        now(),
        call,
        Source::Local,
        Event::BeforeCalling {
            call_type: CallType::Call,
            error: None,
        },
    );
    status(&alice, CallStatus::Idle, CallStatus::DialingC2c);
    if bob_received {
        bob.dispatch(
            now(),
            call,
            Source::Remote,
            Event::CallReceived {
                call_id: "c-1".into(),
                caller_id: "alice".into(),
                callee_ids: vec!["bob".into()],
                media_type: MediaType::Video,
            },
        );
    }
    bob.dispatch(
        now(),
        call,
        Source::Remote,
        Event::BeforeCalling {
            call_type: CallType::Invited,
            error: None,
        },
    );
    status(&bob, CallStatus::Idle, CallStatus::BeInvited);
    if bob_calls {
        status(&bob, CallStatus::BeInvited, CallStatus::CallingC2cVideo);
    }
    alice.dispatch(
        now(),
        call,
        Source::Remote,
        Event::UserJoin {
            user_id: "bob".into(),
        },
    );
    status(&alice, CallStatus::DialingC2c, CallStatus::CallingC2cVideo);
    status(&alice, CallStatus::CallingC2cVideo, CallStatus::Idle);
    alice.dispatch(now(), call, Source::Local, summary(EndReason::Hangup));
    if bob_calls {
        status(&bob, CallStatus::CallingC2cVideo, CallStatus::Idle);
    } else {
        status(&bob, CallStatus::BeInvited, CallStatus::Idle);
    }
    bob.dispatch(now(), call, Source::Remote, summary(bob_reason));
    timeline
        .query(&Query::all())
        .iter()
        .map(|entry| (**entry).clone())
        .collect()
}

#[test]
fn the_checker_holds_the_sides_of_a_call_trace_to_each_other() {
    let trace_findings = |entries: &[TimelineEntry]| -> Vec<String> {
        check(entries, &CheckOptions::default())
            .into_iter()
            .filter(|finding| finding.rule == Rule::Trace)
            .map(|finding| finding.to_string())
            .collect()
    };
    assert!(trace_findings(&two_sided_trace(true, true, EndReason::Hangup)).is_empty());
    let missing = trace_findings(&two_sided_trace(false, true, EndReason::Hangup));
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("without receiving its invitation"));
    let never_calling = trace_findings(&two_sided_trace(true, false, EndReason::Hangup));
    assert!(
        never_calling
            .iter()
            .any(|finding| finding.contains("never reached a calling status")),
        "{never_calling:?}"
    );
    let disagree = trace_findings(&two_sided_trace(true, true, EndReason::Canceled));
    assert_eq!(disagree.len(), 1, "{disagree:?}");
    assert!(disagree[0].contains("says canceled"), "{disagree:?}");
}

/// Bob accepts alice's call and alice hangs up; bob's clock reads `skew_micros` ahead.
fn skewed_call(skew_micros: i64) -> (Timeline, Vec<TimelineEntry>) {
    let ours = Timeline::in_memory();
    let alice = CallKit::builder()
        .user("alice")
        .timeline(ours.clone())
        .build();
    let bob = CallKit::builder()
        .user("bob")
        .clock(callscope::timeline::Clock::start_shifted(skew_micros))
        .build();
    let call = Some("c-1");
    let status = |kit: &CallKit, source, old_status, new_status| {
        kit.dispatch(
            kit.clock().now(),
            call,
            source,
            Event::StatusChanged {
                old_status,
                new_status,
            },
        );
    };
    let pause = || std::thread::sleep(std::time::Duration::from_millis(3));
    status(
        &alice,
        Source::Local,
        CallStatus::Idle,
        CallStatus::DialingC2c,
    );
    status(
        &bob,
        Source::Remote,
        CallStatus::Idle,
        CallStatus::BeInvited,
    );
    pause();
    status(
        &bob,
        Source::Local,
        CallStatus::BeInvited,
        CallStatus::CallingC2cVideo,
    );
    pause();
    alice.dispatch(
        alice.clock().now(),
        call,
        Source::Remote,
        Event::UserJoin {
            user_id: "bob".into(),
        },
    );
    status(
        &alice,
        Source::Remote,
        CallStatus::DialingC2c,
        CallStatus::CallingC2cVideo,
    );
    pause();
    status(
        &alice,
        Source::Local,
        CallStatus::CallingC2cVideo,
        CallStatus::Idle,
    );
    pause();
    status(
        &bob,
        Source::Remote,
        CallStatus::CallingC2cVideo,
        CallStatus::Idle,
    );
    let theirs = bob
        .timeline()
        .query(&Query::all())
        .iter()
        .map(|entry| (**entry).clone())
        .collect();
    (ours, theirs)
}

#[test]
fn an_imported_side_whose_clock_is_ahead_is_moved_until_every_send_precedes_its_receipt() {
    let (ours, theirs) = skewed_call(5_000_000);
    let report = callscope::timeline::import(&ours, theirs, "import:bob.jsonl");
    assert_eq!(report.entries, 3);
    let [(call_id, shift)] = report.shifted.as_slice() else {
        unreachable!("one call shifted: {report:?}")
    };
    assert_eq!(call_id, "c-1");
    // Within the window the signaling leaves: from the skew to the skew less the accept-to-join gap.
    assert!(
        (-5_001_000..=-4_500_000).contains(shift),
        "shift {shift} µs"
    );
    let entries = ours.query(&Query::all());
    let at = |user: &str, wanted: &dyn Fn(&Event) -> bool| {
        entries
            .iter()
            .find(|entry| entry.user_id == user && wanted(&entry.event))
            .map(|entry| entry.at.wall_millis)
            .unwrap_or_default()
    };
    let accept = at(
        "bob",
        &|event| matches!(event, Event::StatusChanged { new_status, .. } if new_status.is_calling()),
    );
    let join = at("alice", &|event| matches!(event, Event::UserJoin { .. }));
    assert!(
        accept <= join,
        "bob's accept {accept} after alice's join {join}"
    );
    assert!(
        entries
            .iter()
            .filter(|entry| entry.user_id == "bob")
            .all(|entry| entry.origin == Origin::Peer)
    );
}

#[test]
fn clocks_of_an_import_that_agree_are_left_alone() {
    let (ours, theirs) = skewed_call(0);
    let report = callscope::timeline::import(&ours, theirs, "import:bob.jsonl");
    assert_eq!(report.shifted, []);
    assert_eq!(report.entries, 3);
}

/// A kit's recording of `events` (each about call `call_id`), as the export reads back.
fn recording(call_id: &str, events: Vec<Event>) -> Vec<TimelineEntry> {
    let kit = CallKit::builder().user("alice").build();
    for event in events {
        kit.dispatch(kit.clock().now(), Some(call_id), Source::Local, event);
    }
    kit.timeline()
        .query(&Query::all())
        .iter()
        .map(|entry| (**entry).clone())
        .collect()
}

#[test]
fn diff_lines_recordings_up_by_their_callbacks_and_names_a_move_and_a_field() {
    use callscope::timeline::{DiffOptions, Difference, diff};
    let dial = Event::StatusChanged {
        old_status: CallStatus::Idle,
        new_status: CallStatus::DialingC2c,
    };
    let join = Event::UserJoin {
        user_id: "bob".into(),
    };
    let before = |error| Event::BeforeCalling {
        call_type: CallType::Call,
        error,
    };
    let a = recording("c-1", vec![before(None), dial.clone(), join.clone()]);
    // Another run: its call id differs, which is no difference.
    let same = recording("c-2", vec![before(None), dial.clone(), join.clone()]);
    assert_eq!(diff(&a, &same, &DiffOptions::default()), Ok(Vec::new()));
    let error =
        callscope::model::CallError::new(callscope::model::ErrorCode::InvalidParameter, "bad");
    let b = recording("c-3", vec![join, before(Some(error)), dial]);
    let differences = diff(&a, &b, &DiffOptions::default()).unwrap();
    assert!(
        differences.iter().any(|difference| matches!(
            difference,
            Difference::Moved { what, .. } if what == "onUserJoin"
        )),
        "{differences:?}"
    );
    assert!(
        differences.iter().any(|difference| matches!(
            difference,
            Difference::Changed { kind: CallbackKind::BeforeCalling, field, .. } if field.starts_with("error")
        )),
        "{differences:?}"
    );
    assert!(!differences.iter().any(|difference| matches!(
        difference,
        Difference::Missing { .. } | Difference::Extra { .. }
    )));
}
