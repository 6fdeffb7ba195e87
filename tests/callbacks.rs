//! Callback tests: closures bound through the builder, switches on and off from any thread,
//! suppressed entries, and the JSON shape of every payload.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callscope::call::{CallMachine, Input, Signal};
use callscope::event::{CallbackKind, Event, KindSet};
use callscope::kit::{CallKit, Switches};
use callscope::model::{CallStatus, MediaType, MonoTime, Source};
use callscope::timeline::{Delivery, TimelineEntry};

/// The kit's timeline keeps the call contract.
fn assert_contract(kit: &CallKit) {
    let entries: Vec<TimelineEntry> = kit
        .timeline()
        .query(&callscope::timeline::Query::all())
        .iter()
        .map(|entry| (**entry).clone())
        .collect();
    let findings =
        callscope::timeline::check(&entries, &callscope::timeline::CheckOptions::default());
    assert!(findings.is_empty(), "{findings:#?}");
}

fn outgoing_call(machine: &mut CallMachine, kit: &CallKit, call_id: &str) {
    let mut now = machine.now();
    let mut step = |input: Input| {
        now = now + Duration::from_millis(100);
        machine.handle_input(now, input).expect("accepted");
        while let Some(emitted) = machine.poll_event() {
            kit.deliver(emitted);
        }
    };
    step(Input::Dial {
        call_id: call_id.into(),
        callees: vec!["bob".into()],
        media: MediaType::Video,
        group: false,
        timeout_secs: 30,
    });
    step(Input::Signal {
        call_id: call_id.into(),
        signal: Signal::InviteDelivered { offline: vec![] },
    });
    step(Input::Signal {
        call_id: call_id.into(),
        signal: Signal::Accepted {
            user_id: "bob".into(),
        },
    });
    step(Input::Minimize);
    step(Input::Hangup);
}

fn logged_in(user: &str) -> CallMachine {
    let mut machine = CallMachine::new(user);
    machine
        .handle_input(MonoTime::default(), Input::LoggedIn)
        .expect("log in");
    machine
}

#[test]
fn bound_closures_get_their_payloads() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = |seen: &Arc<Mutex<Vec<String>>>| {
        let seen = Arc::clone(seen);
        move |line: String| seen.lock().unwrap().push(line)
    };
    let (a, b, c, d) = (log(&seen), log(&seen), log(&seen), log(&seen));
    let kit = CallKit::builder()
        .user("alice")
        .before_calling(move |kind, error| {
            a(format!("before {} {}", kind.as_str(), error.is_some()));
        })
        .status_changed(move |change| {
            b(format!(
                "status {} {}",
                change.old_status, change.new_status
            ));
        })
        .on_minimized(move |old, new| c(format!("minimized {} {}", old.as_str(), new.as_str())))
        .after_calling(move |summary| d(format!("after {} {}", summary.call_id, summary.reason)))
        .build();
    let mut machine = logged_in("alice");
    outgoing_call(&mut machine, &kit, "c-1");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "before call false",
            "status idle dialing-c2c",
            "status dialing-c2c calling-c2c-video",
            "minimized full minimized",
            "status calling-c2c-video idle",
            "after c-1 hangup",
        ]
    );
    assert_contract(&kit);
}

#[test]
fn a_switched_off_callback_is_not_called_but_recorded_as_suppressed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let kit = CallKit::builder()
        .user("alice")
        .status_changed(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    kit.switches().set(CallbackKind::StatusChanged, false);
    let mut machine = logged_in("alice");
    outgoing_call(&mut machine, &kit, "c-1");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "closure must not run while off"
    );
    let entries = kit
        .timeline()
        .query(&callscope::timeline::Query::all().kind(CallbackKind::StatusChanged));
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e.delivery == Delivery::Suppressed && e.handler_micros == 0)
    );
    let others = kit
        .timeline()
        .query(&callscope::timeline::Query::all().kind(CallbackKind::BeforeCalling));
    assert!(others.iter().all(|e| e.delivery == Delivery::Delivered));

    kit.switches().set(CallbackKind::StatusChanged, true);
    outgoing_call(&mut machine, &kit, "c-2");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "closure runs again once back on"
    );
    let entries = kit.timeline().query(
        &callscope::timeline::Query::all()
            .call("c-2")
            .kind(CallbackKind::StatusChanged),
    );
    assert!(entries.iter().all(|e| e.delivery == Delivery::Delivered));
    assert_contract(&kit);
}

#[test]
fn switches_change_from_another_thread_and_are_shared_by_clones() {
    let switches = Switches::all_on();
    let kit = CallKit::builder().switches(switches.clone()).build();
    let remote = switches.clone();
    std::thread::Builder::new()
        .name("switcher".into())
        .spawn(move || remote.set(CallbackKind::AfterCalling, false))
        .unwrap()
        .join()
        .unwrap();
    assert!(!kit.switches().is_enabled(CallbackKind::AfterCalling));
    assert!(kit.switches().is_enabled(CallbackKind::BeforeCalling));
    kit.switches().set_all(false);
    assert!(switches.snapshot().is_empty());
    kit.switches().set_all(true);
    assert_eq!(switches.snapshot(), KindSet::all());
}

#[test]
fn every_kind_round_trips_its_name_and_the_five_callbacks_come_first() {
    // The five callbacks, the engine events (TUICallKit's and ours), the server's records,
    // the quality warnings, the impairments set on purpose, our video's ladder steps.
    assert_eq!(CallbackKind::COUNT, 28);
    let names: Vec<&str> = CallbackKind::ALL
        .iter()
        .take(5)
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "beforeCalling",
            "afterCalling",
            "onMinimized",
            "kickedOut",
            "statusChanged"
        ]
    );
    for kind in CallbackKind::ALL {
        assert_eq!(kind.as_str().parse::<CallbackKind>(), Ok(*kind));
        assert_eq!(kind.is_component(), CallbackKind::COMPONENT.contains(kind));
    }
    assert!("onNothing".parse::<CallbackKind>().is_err());
}

fn entry_json(event: Event) -> serde_json::Value {
    let entry = TimelineEntry {
        seq: 12,
        run: 0,
        at: callscope::timeline::Timestamp {
            wall_millis: 1_764_130_000_123,
            mono_micros: 5_012_345,
        },
        call_id: Some("c-7f3a".into()),
        user_id: "alice".into(),
        source: Source::Local,
        event,
        delivery: Delivery::Delivered,
        handler_micros: 3,
        origin: callscope::timeline::Origin::Local,
        session: None,
        clock_error_micros: None,
    };
    let json = serde_json::to_value(&entry).unwrap();
    let back: TimelineEntry = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, entry, "the JSON reads back as the same entry");
    json
}

#[test]
fn entries_serialize_in_the_contract_shape() {
    let json = entry_json(Event::StatusChanged {
        old_status: CallStatus::DialingC2c,
        new_status: CallStatus::CallingC2cVideo,
    });
    assert_eq!(
        json,
        serde_json::json!({"seq":12,"run":0,"at_ms":1_764_130_000_123_u64,"mono_us":5_012_345,"call_id":"c-7f3a",
            "user_id":"alice","source":"local","kind":"statusChanged","delivery":"delivered","handler_us":3,
            "payload":{"old_status":"dialing-c2c","new_status":"calling-c2c-video"}})
    );
    let json = entry_json(Event::BeforeCalling {
        call_type: callscope::model::CallType::Call,
        error: Some(callscope::model::CallError::new(
            callscope::model::ErrorCode::CalleeOffline,
            "bob is offline",
        )),
    });
    assert_eq!(
        json["payload"],
        serde_json::json!({"type":"call","error":{"code":8021,"message":"bob is offline"}})
    );
    let json = entry_json(Event::Minimized {
        old: callscope::model::ViewMode::Full,
        new: callscope::model::ViewMode::Minimized,
    });
    assert_eq!(
        json["payload"],
        serde_json::json!({"old":"full","new":"minimized"})
    );
    let json = entry_json(Event::KickedOut {
        by: "alice on another device".into(),
    });
    assert_eq!(
        json["payload"],
        serde_json::json!({"by":"alice on another device"})
    );
    let json = entry_json(Event::KickedOffline {});
    assert_eq!(json["kind"], "onKickedOffline");
    assert_eq!(json["payload"], serde_json::json!({}));
    let json = entry_json(Event::AfterCalling(callscope::event::CallSummary {
        call_id: "c-7f3a".into(),
        reason: callscope::model::EndReason::NoResponse,
        initiator: "alice".into(),
        duration_millis: 5012,
        media: MediaType::Video,
    }));
    assert_eq!(json["payload"]["reason"], "no-response");
    assert_eq!(json["payload"]["duration_ms"], 5012);
    let json = entry_json(Event::CallStats(callscope::event::CallStats {
        user_id: "bob".into(),
        rtt_millis: 1.5,
        jitter_millis: 0.5,
        loss_pct: 0.0,
        fps: 30.0,
        bitrate_kbps: 1200.0,
        resolution: "1280x720".into(),
        frames_decoded: 300,
        repaired: 4,
        nacks: 2,
        key_frame_requests: 1,
        local_candidate: String::new(),
        sending: callscope::event::SendingStats {
            estimate_kbps: 1500.0,
            sent_resolution: "640x360".into(),
            quality_limitation: callscope::model::QualityLimitation::Bandwidth,
            ..Default::default()
        },
        playout: callscope::event::PlayoutStats {
            freeze_count: 2,
            concealed_pct: 1.5,
            ..Default::default()
        },
    }));
    assert_eq!(json["payload"]["rtt_ms"], 1.5);
    // The sending and playout figures sit at the top level, by their own names.
    assert_eq!(json["payload"]["estimate_kbps"], 1500.0);
    assert_eq!(json["payload"]["sent_resolution"], "640x360");
    assert_eq!(json["payload"]["quality_limitation"], "bandwidth");
    assert_eq!(json["payload"]["freeze_count"], 2);
    assert_eq!(json["payload"]["concealed_pct"], 1.5);
    assert_eq!(json["payload"]["resolution"], "1280x720");
    assert_eq!(json["payload"]["repaired"], 4);
    assert_eq!(json["payload"]["key_frame_requests"], 1);
}

#[test]
fn a_panicking_closure_does_not_take_the_dispatcher_down() {
    let kit = CallKit::builder()
        .user("alice")
        .before_calling(|_, _| panic!("a bug in the user's closure"))
        .build();
    let mut machine = logged_in("alice");
    outgoing_call(&mut machine, &kit, "c-1");
    assert_eq!(machine.status(), CallStatus::Idle);
    assert_eq!(kit.timeline().len(), 9, "every event is still recorded");
    assert_contract(&kit);
}
