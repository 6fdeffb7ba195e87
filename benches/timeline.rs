//! Benchmarks of the callback dispatch and the timeline store: dispatch + in-memory append per
//! event, persisted appends per second, and a kind + text filter over a million entries.
//!
//! Run with `cargo bench --bench timeline`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use callscope::event::{CallbackKind, Event};
use callscope::kit::CallKit;
use callscope::model::{CallStatus, MonoTime, Source};
use callscope::timeline::{Query, Store, Timeline};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn event(i: u64) -> Event {
    match i % 4 {
        0 => Event::UserJoin {
            user_id: format!("user-{}", i % 1000),
        },
        1 => Event::StatusChanged {
            old_status: CallStatus::DialingC2c,
            new_status: CallStatus::CallingC2cVideo,
        },
        2 => Event::UserAudioAvailable {
            user_id: "bob".into(),
            available: true,
        },
        _ => Event::KickedOut {
            by: format!("device-{i}"),
        },
    }
}

fn dispatch_in_memory(c: &mut Criterion) {
    let kit = CallKit::builder()
        .user("alice")
        .status_changed(|change| {
            black_box(change);
        })
        .build();
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(1));
    let mut i = 0_u64;
    // The event exists before it is dispatched (the call core built it): make it outside the
    // timed part.
    group.bench_function("dispatch_and_append_in_memory", |b| {
        b.iter_batched(
            || {
                i += 1;
                (i, event(i))
            },
            |(i, event)| {
                black_box(kit.dispatch(
                    MonoTime::from_micros(i),
                    Some("c-1"),
                    Source::Engine,
                    event,
                ))
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn persisted_appends(c: &mut Criterion) {
    const BATCH: u64 = 100_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let kit = CallKit::builder()
        .user("alice")
        .timeline(Timeline::persistent(store.clone()).with_memory_capacity(1024))
        .build();
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("persisted_appends_committed", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for iteration in 0..iterations {
                // The events exist before they are dispatched: build them outside the timing.
                let events: Vec<(u64, Event)> = (0..BATCH)
                    .map(|i| iteration * BATCH + i)
                    .map(|n| (n, event(n)))
                    .collect();
                let started = Instant::now();
                for (n, event) in events {
                    kit.dispatch(MonoTime::from_micros(n), Some("c-1"), Source::Engine, event);
                }
                store.flush(Duration::from_mins(2)).expect("flush");
                elapsed += started.elapsed();
            }
            elapsed
        });
    });
    group.finish();
}

fn filter_million(c: &mut Criterion) {
    let kit = CallKit::builder().user("alice").build();
    for i in 0..1_000_000_u64 {
        let call_id = format!("c-{}", i / 50);
        kit.dispatch(
            MonoTime::from_micros(i),
            Some(&call_id),
            Source::Engine,
            event(i),
        );
    }
    let query = Query::all().kind(CallbackKind::KickedOut).text("DEVICE-77");
    let mut group = c.benchmark_group("filter");
    group.sample_size(20);
    group.bench_function("kind_and_text_over_1m_entries", |b| {
        b.iter(|| black_box(kit.timeline().count(&query)));
    });
    group.bench_function("text_only_over_1m_entries", |b| {
        let query = Query::all().text("device-77");
        b.iter(|| black_box(kit.timeline().count(&query)));
    });
    group.finish();
}

criterion_group!(
    benches,
    dispatch_in_memory,
    persisted_appends,
    filter_million
);
criterion_main!(benches);
