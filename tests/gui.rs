//! GUI tests with `egui_kittest`: the real app with its real engine and embedded server, driven by
//! label, no display needed.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

use std::time::{Duration, Instant};

use callscope::call::MemberState;
use callscope::engine::{ConnectionState, ServerChoice};
use callscope::event::{CallbackKind, Event};
use callscope::model::{CallError, CallStatus, ErrorCode, Source, ViewMode};
use callscope::timeline::{CheckOptions, Delivery, Finding, Origin, Query, Rule, check};
use callscope::ui::{AppOptions, CallscopeApp, Pane, Settings};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};

/// How long a window test waits for the engine: the whole suite on two cores is slow at times
/// (a decline call has taken over 15 s there).
const WAIT: Duration = Duration::from_secs(30);

fn app(data_dir: &std::path::Path) -> Harness<'static, CallscopeApp> {
    app_sized(data_dir, [1300.0, 900.0], Vec::new())
}

/// The app in a window of `size`, calling `call_on_start` once logged in.
fn app_sized(
    data_dir: &std::path::Path,
    size: [f32; 2],
    call_on_start: Vec<String>,
) -> Harness<'static, CallscopeApp> {
    let options = AppOptions {
        user_id: "alice".into(),
        server: ServerChoice::Embedded,
        data_dir: data_dir.to_path_buf(),
        call_on_start,
        private_ringing: None,
        share_trace: None,
        media: callscope::media::MediaConfig {
            // The same on every machine: no camera, no sound card.
            devices: callscope::media::Devices::Absent,
            ..callscope::media::MediaConfig::default()
        },
        impairments: Vec::new(),
    };
    let mut harness = Harness::builder()
        .with_size(size)
        .build_eframe(move |cc| CallscopeApp::new(&cc.egui_ctx, options).unwrap());
    wait_until(&mut harness, "the log-in", |app| {
        app.model().connection == ConnectionState::Online
    });
    // Everything above the contacts is in place once the clock offset is measured: a click
    // lands where the button is drawn.
    wait_until(&mut harness, "the contacts and the clock offset", |app| {
        !app.model().contacts.is_empty() && app.model().clock_offset.is_some()
    });
    harness
}

/// Steps the app (the engine runs on its own thread) until `done` holds.
fn wait_until(
    harness: &mut Harness<'_, CallscopeApp>,
    what: &str,
    done: impl Fn(&CallscopeApp) -> bool,
) {
    let started = Instant::now();
    while !done(harness.state()) {
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for {what}: status {:?}, {:?}",
            harness.state().model().status(),
            harness.state().model().connection
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.step();
}

/// Scrolls the node labelled `label` into view and lets the scrolling settle.
fn bring_into_view(harness: &mut Harness<'_, CallscopeApp>, label: &str) {
    harness.get_by_label(label).scroll_to_me();
    for _ in 0..20 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Steps until `shown` finds its node on screen.
fn step_until_shown(
    harness: &mut Harness<'_, CallscopeApp>,
    what: &str,
    shown: impl Fn(&Harness<'_, CallscopeApp>) -> bool,
) {
    let started = Instant::now();
    while !shown(harness) {
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for {what} on screen"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Steps until a node labelled `label` is on screen.
fn step_until_label(harness: &mut Harness<'_, CallscopeApp>, label: &str) {
    step_until_shown(harness, label, |harness| {
        harness.query_all_by_label(label).next().is_some()
    });
}

/// Steps until a node whose label contains `text` is on screen.
fn step_until_label_contains(harness: &mut Harness<'_, CallscopeApp>, text: &str) {
    step_until_shown(harness, text, |harness| {
        harness.query_all_by_label_contains(text).next().is_some()
    });
}

/// The app's timeline keeps the call contract, once every call in it has ended: the demo peers
/// record their side in the same timeline, a moment after they hear ours end.
fn assert_contract(harness: &mut Harness<'_, CallscopeApp>) {
    wait_until(harness, "every call in the timeline to end", |app| {
        findings(app)
            .iter()
            .all(|finding| finding.rule != Rule::MissingAfterCalling)
    });
    let findings = findings(harness.state());
    assert!(findings.is_empty(), "{findings:#?}");
}

/// What the contract checker finds in the app's timeline.
fn findings(app: &CallscopeApp) -> Vec<Finding> {
    let entries: Vec<_> = app
        .kit()
        .timeline()
        .query(&Query::all())
        .iter()
        .map(|entry| (**entry).clone())
        .collect();
    check(&entries, &CheckOptions::default())
}

fn kinds_of_call(app: &CallscopeApp) -> Vec<&'static str> {
    app.kit()
        .timeline()
        .query(&Query::all())
        .iter()
        .filter(|e| e.call_id.is_some() && e.origin == Origin::Local)
        .map(|e| e.kind().as_str())
        .collect()
}

#[test]
fn switching_a_callback_off_by_its_label_marks_the_next_entry_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("statusChanged").click();
    harness.step();
    assert!(
        !harness
            .state()
            .kit()
            .switches()
            .is_enabled(CallbackKind::StatusChanged)
    );
    harness.get_by_label("Call decline").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    let statuses = harness.state().kit().timeline().query(&Query {
        origin: Some(Origin::Local),
        ..Query::all().kind(CallbackKind::StatusChanged)
    });
    assert_eq!(statuses.len(), 2);
    assert!(statuses.iter().all(|e| e.delivery == Delivery::Suppressed));
    // The switch is remembered for the next start.
    assert!(
        !Settings::load(dir.path())
            .enabled
            .contains(CallbackKind::StatusChanged)
    );
    assert_contract(&mut harness);
}

#[test]
fn calling_echo_through_the_ui_shows_every_callback_in_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call echo").click();
    wait_until(&mut harness, "echo to answer", |app| {
        app.model().status() == CallStatus::CallingC2cVideo
    });
    harness.get_by_label("Hang up").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().status() == CallStatus::Idle
    });
    wait_until(&mut harness, "afterCalling", |app| {
        kinds_of_call(app).contains(&"afterCalling")
    });
    // The call's flow, in order; the media engine's events interleave with it.
    let media_kinds = [
        "onConnectionStateChanged",
        "onError",
        "onUserVoiceVolumeChanged",
        "onUserVideoAvailable",
        "onUserAudioAvailable",
        "onCallStats",
        "onUserNetworkQualityChanged",
    ];
    let kinds = kinds_of_call(harness.state());
    assert!(kinds.contains(&"onConnectionStateChanged"), "{kinds:?}");
    let flow: Vec<&str> = kinds
        .into_iter()
        .filter(|kind| !media_kinds.contains(kind))
        .collect();
    assert_eq!(
        flow,
        [
            "beforeCalling",
            "statusChanged",
            "onUserJoin",
            "statusChanged",
            "onCallBegin",
            "onCallEnd",
            "statusChanged",
            "afterCalling"
        ]
    );
    // The table shows the rows: the newest summary is on screen.
    assert!(
        harness
            .query_all_by_label_contains("hangup, placed by alice")
            .next()
            .is_some()
    );
    // The trace holds echo's side of the call too, as peer entries.
    let echo: Vec<&'static str> = harness
        .state()
        .kit()
        .timeline()
        .query(&Query {
            origin: Some(Origin::Peer),
            user_id: Some("echo".into()),
            ..Query::all()
        })
        .iter()
        .map(|entry| entry.kind().as_str())
        .collect();
    for kind in [
        "onCallReceived",
        "statusChanged",
        "onCallBegin",
        "afterCalling",
    ] {
        assert!(
            echo.contains(&kind),
            "echo's {kind} is in the trace: {echo:?}"
        );
    }
    // And the server's side: how it routed the call.
    let server_side = |app: &CallscopeApp| -> Vec<String> {
        app.kit()
            .timeline()
            .query(&Query {
                origin: Some(Origin::Server),
                ..Query::all()
            })
            .iter()
            .map(|entry| entry.event.to_string())
            .collect()
    };
    wait_until(&mut harness, "the server's record of the end", |app| {
        server_side(app).len() >= 4
    });
    assert_eq!(
        server_side(harness.state()),
        [
            "caller_start_call alice",
            "callee_receive_call echo",
            "callee_accept_call echo",
            "caller_call_end alice"
        ]
    );
    assert_contract(&mut harness);
}

#[test]
fn the_timeline_filters_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call busy").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    let rows = |harness: &Harness<'_, CallscopeApp>, kind: &str| {
        harness
            .query_all_by_role_and_label(Role::Label, kind)
            .count()
    };
    // Unfiltered, the table holds every entry but the periodic ones (the line-busy row may be
    // scrolled out of view). Entries may still arrive for a moment after the call ended.
    let shows_all = |harness: &Harness<'_, CallscopeApp>| {
        let total = harness
            .state()
            .kit()
            .timeline()
            .query(&Query::all())
            .iter()
            .filter(|entry| !entry.kind().is_periodic())
            .count();
        total > 1 && harness.query_by_label(&format!("{total} shown")).is_some()
    };
    let mut steps = 0;
    while !shows_all(&harness) {
        assert!(steps < 200, "the table never showed every entry");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
        steps += 1;
    }
    harness.get_by_label("Search").focus();
    harness.step();
    harness.get_by_label("Search").type_text("afterCalling");
    // The filter goes to the worker and the table scrolls to its rows when it answers: ours,
    // and those of the demo peers' side of the call.
    let ends = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all().kind(CallbackKind::AfterCalling))
        .len();
    assert!(ends >= 1);
    step_until_label(&mut harness, &format!("{ends} shown"));
    step_until_shown(&mut harness, "the afterCalling rows", |harness| {
        rows(harness, "afterCalling") == ends
    });
    assert_eq!(rows(&harness, "onUserLineBusy"), 0, "filtered out");
    assert_contract(&mut harness);
}

#[test]
fn minimize_and_restore_fire_on_minimized_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call noanswer").click();
    wait_until(&mut harness, "dialing", |app| {
        app.model().status() == CallStatus::DialingC2c
    });
    harness.get_by_label("Minimize").click();
    wait_until(&mut harness, "the mini view", |app| {
        app.model().call.view == ViewMode::Minimized
    });
    assert!(
        harness.query_by_label("callscope mini view").is_some(),
        "the mini view is open"
    );
    harness.get_all_by_label("Restore").next().unwrap().click();
    wait_until(&mut harness, "the full view", |app| {
        app.model().call.view == ViewMode::Full
    });
    let minimized = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all().kind(CallbackKind::Minimized));
    let pairs: Vec<String> = minimized.iter().map(|e| e.event.to_string()).collect();
    assert_eq!(pairs, ["full -> minimized", "minimized -> full"]);
    harness.get_by_label("Cancel").click();
    wait_until(&mut harness, "idle", |app| {
        app.model().status() == CallStatus::Idle
    });
    assert_contract(&mut harness);
}

#[test]
fn clicking_an_entry_opens_the_inspector_with_its_json_and_the_calls_swimlane() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call decline").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    // The media engine's entries push the first rows out of view: narrow the table to them.
    harness.get_by_label("Search").focus();
    harness.step();
    harness.get_by_label("Search").type_text("dialing-c2c");
    // Into dialing and out of it.
    step_until_label(&mut harness, "2 shown");
    // The table scrolls to its new rows on the next frame.
    step_until_label(&mut harness, "idle -> dialing-c2c");
    harness.get_by_label("idle -> dialing-c2c").click();
    // The call's entries come from the worker.
    wait_until(&mut harness, "the call's entries", |app| {
        app.timeline_panel().call_entries().is_some()
    });
    let seq = harness.state().kit().timeline().query(&Query {
        origin: Some(Origin::Local),
        ..Query::all().kind(CallbackKind::StatusChanged)
    })[0]
        .seq;
    step_until_label(&mut harness, &format!("Entry #{seq}"));
    assert!(harness.query_by_label("Copy entry").is_some());
    // The swimlane tab shows the call of the entry.
    harness.get_by_label("Swimlane").click();
    harness.step();
    harness.step();
    let call_id = harness
        .state()
        .timeline_panel()
        .selected()
        .unwrap()
        .call_id
        .clone()
        .unwrap();
    assert!(
        harness
            .query_all_by_label_contains(&format!("Call {call_id}: "))
            .next()
            .is_some(),
        "the swimlane names its call"
    );
    harness.get_by_label("Inspector").click();
    harness.step();
    harness.step();
    // The JSON tree: the payload's fields, key and value, folded open.
    assert!(harness.query_by_label("new_status:").is_some());
    assert!(
        harness.query_by_label("\"dialing-c2c\"").is_some(),
        "the entry's JSON is shown as a tree"
    );
    assert!(
        harness
            .query_by_label_contains("Delivered: the handler ran for")
            .is_some()
    );
    // Its neighbours in the call: the entry after it is listed.
    assert!(
        harness
            .query_all_by_label_contains("beforeCalling")
            .next()
            .is_some()
    );
    assert_contract(&mut harness);
}

#[test]
fn choosing_the_synthetic_camera_in_the_devices_menu_applies_to_the_next_call_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    wait_until(&mut harness, "the device list", |app| {
        app.model().devices.is_some()
    });
    // The menus sit at the bottom of the dialer: scroll them into view first.
    bring_into_view(&mut harness, "Devices");
    harness.get_by_label("Devices").click();
    for _ in 0..10 {
        harness.step();
    }
    harness
        .get_by_role_and_label(Role::ComboBox, "Camera")
        .scroll_to_me();
    for _ in 0..10 {
        harness.step();
    }
    harness
        .get_by_role_and_label(Role::ComboBox, "Camera")
        .click();
    // The menu opens over the next frames.
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label("synthetic").click();
    for _ in 0..3 {
        harness.step();
    }
    assert_eq!(
        harness.state().model().device_choices.camera,
        callscope::media::DeviceChoice::Synthetic
    );
    bring_into_view(&mut harness, "Call echo");
    harness.get_by_label("Call echo").click();
    wait_until(&mut harness, "echo to answer", |app| {
        app.model().status() == CallStatus::CallingC2cVideo
    });
    // The preview shows once the video source is open (and any fallback was recorded).
    wait_until(&mut harness, "the local preview", |app| {
        app.frames()
            .get(callscope::media::LOCAL_STREAM)
            .is_some_and(|slot| slot.generation() > 0)
    });
    harness.step();
    // The camera is the test pattern by choice, which is not an error.
    let warnings = &harness.state().model().media.device_warnings;
    assert!(
        warnings.iter().all(|warning| !warning.contains("camera")),
        "{warnings:?}"
    );
    harness.get_by_label("Hang up").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().status() == CallStatus::Idle
    });
    // The choice is remembered: a restart in the same data directory starts with it.
    drop(harness);
    let mut restarted = app(dir.path());
    assert_eq!(
        restarted.state().model().device_choices.camera,
        callscope::media::DeviceChoice::Synthetic
    );
    assert_contract(&mut restarted);
}

#[test]
fn after_a_log_in_elsewhere_calls_are_off_until_log_in_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Simulate log-in elsewhere").click();
    wait_until(&mut harness, "the kick-out", |app| {
        matches!(app.model().connection, ConnectionState::LoggedOut { .. })
    });
    // Logged out: the call buttons are off, so no call can fail with 6014.
    harness.get_by_label("Call echo").click();
    for _ in 0..5 {
        harness.step();
    }
    assert_eq!(harness.state().model().status(), CallStatus::Idle);
    assert!(!kinds_of_call(harness.state()).contains(&"beforeCalling"));
    harness
        .get_all_by_label("Log in again")
        .next()
        .unwrap()
        .click();
    wait_until(&mut harness, "the log-in", |app| {
        app.model().connection == ConnectionState::Online
    });
    harness.get_by_label("Call decline").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    // The end-of-call card: how it ended and who ended it.
    step_until_label(&mut harness, "Ended: reject");
    let outcome = harness.state().model().last_outcome.clone().unwrap();
    assert_eq!(outcome.user_id, "decline");
    assert!(harness.query_all_by_label("decline").next().is_some());
    assert_contract(&mut harness);
}

/// Records `count` entries outside any call, numbered from `from`, so the table overflows.
fn fill(harness: &Harness<'_, CallscopeApp>, from: usize, count: usize) {
    let kit = harness.state().kit().clone();
    for number in from..from + count {
        kit.dispatch(
            kit.clock().now(),
            None,
            Source::Engine,
            Event::Error(CallError::new(
                ErrorCode::RequestRefused,
                format!("filler {number}"),
            )),
        );
    }
}

#[test]
fn pausing_the_timeline_stops_following_and_jump_to_latest_follows_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    fill(&harness, 0, 300);
    // Following: the newest row is on screen.
    step_until_label_contains(&mut harness, "filler 299");
    assert!(harness.state().timeline_panel().following());
    harness.get_by_label("Pause").click();
    harness.step();
    assert!(!harness.state().timeline_panel().following());
    fill(&harness, 300, 40);
    step_until_label(&mut harness, "Jump to latest (40 new)");
    // Paused: the rows under the reader stayed; the new ones are below, out of view.
    assert!(harness.query_by_label_contains("filler 339").is_none());
    assert!(harness.query_by_label_contains("filler 299").is_some());
    harness.get_by_label("Jump to latest (40 new)").click();
    step_until_label_contains(&mut harness, "filler 339");
    assert!(harness.state().timeline_panel().following());
    // Following, rows that arrive do not scroll the table while the pointer is on it...
    harness
        .get_all_by_label_contains("filler 339")
        .next()
        .unwrap()
        .hover();
    harness.step();
    fill(&harness, 340, 40);
    for _ in 0..10 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        harness
            .query_all_by_label_contains("filler 339")
            .next()
            .is_some()
    );
    assert!(
        harness
            .query_all_by_label_contains("filler 379")
            .next()
            .is_none()
    );
    // ...and catch up once it leaves.
    harness.get_by_label("Pause").hover();
    step_until_label_contains(&mut harness, "filler 379");
    assert_contract(&mut harness);
}

#[test]
fn hide_periodic_hides_stats_rows_while_their_count_still_rises() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call echo").click();
    wait_until(&mut harness, "two onCallStats", |app| {
        app.model().counts[CallbackKind::CallStats.index()] >= 2
    });
    let counted = harness.state().model().counts[CallbackKind::CallStats.index()];
    let stats_rows = |harness: &Harness<'_, CallscopeApp>| {
        harness
            .state()
            .timeline_panel()
            .rows()
            .iter()
            .filter(|entry| entry.kind() == CallbackKind::CallStats)
            .count()
    };
    assert_eq!(stats_rows(&harness), 0, "hidden by default");
    // Only the callbacks panel names the kind: no table row does.
    assert_eq!(harness.query_all_by_label("onCallStats").count(), 1);
    // The count still rises while hidden.
    wait_until(&mut harness, "another onCallStats", |app| {
        app.model().counts[CallbackKind::CallStats.index()] > counted
    });
    harness.get_by_label("Hide periodic").click();
    wait_until(&mut harness, "the stats rows", |app| {
        app.timeline_panel()
            .rows()
            .iter()
            .any(|entry| entry.kind() == CallbackKind::CallStats)
    });
    assert!(stats_rows(&harness) >= 2);
    harness.get_by_label("Hang up").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().status() == CallStatus::Idle
    });
    assert_contract(&mut harness);
}

#[test]
fn clicking_a_call_id_in_a_row_filters_the_table_by_that_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    for callee in ["decline", "busy"] {
        harness.get_by_label(&format!("Call {callee}")).click();
        let ended = harness.state().model().counts[CallbackKind::AfterCalling.index()] + 1;
        wait_until(&mut harness, "the call to end", |app| {
            app.model().counts[CallbackKind::AfterCalling.index()] == ended
        });
    }
    // The end card names the last call too: put it away, so only the table's cells do.
    harness.get_by_label("Dismiss").click();
    harness.step();
    // The last call's rows are at the end of the table, where it follows.
    let first_call = harness
        .state()
        .model()
        .last_outcome
        .clone()
        .unwrap()
        .call_id;
    let calls: std::collections::BTreeSet<String> = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all())
        .iter()
        .filter_map(|entry| entry.call_id.clone())
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    step_until_label(&mut harness, &first_call);
    // Let the table settle at its end before clicking in it.
    for _ in 0..20 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness
        .get_all_by_label(&first_call)
        .next()
        .unwrap()
        .click();
    step_until_shown(&mut harness, "the call's rows", |harness| {
        let panel = harness.state().timeline_panel();
        panel.filters.call_id == first_call && !panel.loading()
    });
    // Every entry of that call but the periodic ones: ours and the demo peer's.
    let in_first = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all().call(first_call.as_str()))
        .iter()
        .filter(|entry| !entry.kind().is_periodic())
        .count();
    step_until_label(&mut harness, &format!("{in_first} shown"));
    let panel = harness.state().timeline_panel();
    assert_eq!(panel.filters.call_id, first_call);
    assert!(
        panel
            .rows()
            .iter()
            .all(|entry| entry.call_id.as_deref() == Some(first_call.as_str()))
    );
    // A click on a kind keeps only that kind (once the table stopped scrolling to its end).
    for _ in 0..10 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness
        .get_all_by_role_and_label(Role::Label, "afterCalling")
        .next()
        .unwrap()
        .click();
    // The call's afterCallings: ours and, in the trace, the demo peer's.
    let ends = harness
        .state()
        .kit()
        .timeline()
        .query(
            &Query::all()
                .call(first_call.as_str())
                .kind(CallbackKind::AfterCalling),
        )
        .len();
    step_until_label(&mut harness, &format!("{ends} shown"));
    let only: Vec<CallbackKind> = harness
        .state()
        .timeline_panel()
        .filters
        .kinds
        .iter()
        .collect();
    assert_eq!(only, [CallbackKind::AfterCalling]);
    assert_contract(&mut harness);
}

#[test]
fn the_layout_persists_across_a_restart_and_reset_layout_brings_every_panel_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    assert!(
        harness
            .state()
            .layout()
            .tiles
            .find_pane(&Pane::Stats)
            .is_some()
    );
    harness.get_by_label("View").click();
    for _ in 0..3 {
        harness.step();
    }
    harness
        .get_by_role_and_label(Role::CheckBox, "Stats")
        .click();
    harness.step();
    // Saved once the layout settles.
    let started = Instant::now();
    while Settings::load(dir.path()).layout.is_none() {
        assert!(started.elapsed() < WAIT, "the layout was never saved");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let saved = Settings::load(dir.path()).layout.unwrap();
    assert!(saved.tiles.find_pane(&Pane::Stats).is_none());
    drop(harness);
    let mut restarted = app(dir.path());
    assert!(
        restarted
            .state()
            .layout()
            .tiles
            .find_pane(&Pane::Stats)
            .is_none()
    );
    assert!(
        restarted
            .state()
            .layout()
            .tiles
            .find_pane(&Pane::Timeline)
            .is_some()
    );
    restarted.get_by_label("View").click();
    for _ in 0..3 {
        restarted.step();
    }
    restarted.get_by_label("Reset layout").click();
    restarted.step();
    restarted.step();
    for pane in Pane::ALL {
        assert!(
            restarted.state().layout().tiles.find_pane(&pane).is_some(),
            "{pane:?} is back"
        );
    }
    assert_contract(&mut restarted);
}

#[test]
fn the_switch_tooltips_say_when_a_callback_fires_and_what_it_gets() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("afterCalling").hover();
    for _ in 0..40 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
        if harness
            .query_by_label_contains("Fires: exactly once")
            .is_some()
        {
            break;
        }
    }
    assert!(
        harness
            .query_by_label_contains("Fires: exactly once after every call")
            .is_some()
    );
    assert!(
        harness
            .query_by_label_contains("Payload: {call_id, reason")
            .is_some()
    );
    // F1 opens the help with the shortcuts.
    harness.key_press(egui::Key::F1);
    harness.step();
    harness.step();
    assert!(harness.query_by_label("Shortcuts").is_some());
    assert!(
        harness
            .query_by_label("pause or follow the timeline")
            .is_some()
    );
}

#[test]
fn recent_calls_list_the_stored_calls_with_call_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call decline").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    drop(harness);
    // After a restart the call is read back from the stored timeline.
    let mut restarted = app(dir.path());
    wait_until(&mut restarted, "the recent calls", |app| {
        !app.recent_calls().is_empty()
    });
    let call = restarted.state().recent_calls()[0].clone();
    assert_eq!(call.peers, ["decline"]);
    assert!(call.outgoing && !call.missed);
    assert_eq!(call.reason.to_string(), "reject");
    bring_into_view(&mut restarted, "Call back");
    restarted.get_by_label("Call back").click();
    wait_until(&mut restarted, "the second call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    assert_contract(&mut restarted);
}

/// A 5-person video call (alice and four group peers) in a window of `size`: every remote
/// tile and the preview are drawn inside the call panel, and no control of the call panel is
/// clipped by it or by the window.
fn group_call_fits(size: [f32; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let peers: Vec<String> = ["group-a", "group-b", "group-c", "group-d"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut harness = app_sized(dir.path(), size, peers.clone());
    wait_until(&mut harness, "everyone to join", |app| {
        app.model().status() == CallStatus::CallingGroupVideo
            && app.model().call.participants.len() == peers.len()
            && app
                .model()
                .call
                .participants
                .iter()
                .all(|(_, state)| *state == MemberState::Joined)
    });
    wait_until(&mut harness, "every picture", |app| {
        peers
            .iter()
            .map(String::as_str)
            .chain([callscope::media::LOCAL_STREAM])
            .all(|stream| {
                app.frames()
                    .get(stream)
                    .is_some_and(|slot| slot.generation() > 0)
            })
    });
    harness.step();
    harness.step();
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size.into());
    let call = harness
        .state()
        .pane_rects()
        .into_iter()
        .find_map(|(pane, rect)| (pane == Pane::Call).then_some(rect))
        .unwrap();
    assert!(window.contains_rect(call), "{call:?} in {window:?}");
    let inside = |rect: egui::Rect| call.expand(0.5).contains_rect(rect);
    for stream in peers.iter().map(String::as_str).chain(["local"]) {
        let label = format!("video of {stream}");
        let tile = harness.get_by_label(&label).rect();
        assert!(
            inside(tile),
            "{label} at {tile:?} is outside the call panel {call:?}"
        );
        assert!(tile.width() >= 60.0, "{label} is {tile:?}");
    }
    for control in [
        "Hang up",
        "Mute",
        "Camera off",
        "Switch to audio",
        "Minimize",
    ] {
        let rect = harness.get_by_label(control).rect();
        assert!(
            inside(rect),
            "{control} at {rect:?} is clipped by the call panel {call:?}"
        );
    }
    // Every button of the window lies inside it.
    for button in harness.query_all_by_role(Role::Button) {
        let rect = button.rect();
        assert!(
            window.expand(0.5).contains_rect(rect) || rect.area() == 0.0,
            "{button:?} at {rect:?} is outside the window"
        );
    }
    harness.get_by_label("Hang up").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().status() == CallStatus::Idle
    });
    // The peers record their side in the same timeline: their calls end as they hear ours.
    wait_until(&mut harness, "every peer's call to end", |app| {
        let ended = app
            .kit()
            .timeline()
            .query(&Query::all().kind(CallbackKind::AfterCalling));
        peers
            .iter()
            .all(|peer| ended.iter().any(|entry| entry.user_id == *peer))
    });
    assert_contract(&mut harness);
}

#[test]
fn a_five_person_call_fits_a_1024x700_window() {
    group_call_fits([1024.0, 700.0]);
}

#[test]
fn a_five_person_call_fits_a_1600x1000_window() {
    group_call_fits([1600.0, 1000.0]);
}

#[test]
fn earlier_runs_are_separated_by_run_and_exports_are_written_off_the_ui_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call decline").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    drop(harness);
    let mut restarted = app(dir.path());
    restarted.get_by_label("Earlier runs").click();
    // The earlier run's rows come from SQLite on the worker, under their run's separator.
    step_until_label_contains(&mut restarted, "started ");
    assert!(restarted.query_all_by_label("run 1").next().is_some());
    let stored = restarted
        .state()
        .timeline_panel()
        .rows()
        .iter()
        .filter(|entry| entry.run == 1)
        .count();
    assert!(stored > 5, "{stored} rows of the earlier run");
    // Clear view empties the table, not the store.
    restarted.get_by_label("Clear view").click();
    step_until_label(&mut restarted, "0 shown");
    assert!(restarted.state().kit().timeline().store().is_some());
    restarted.get_by_label("Earlier runs").click();
    restarted.get_by_label("Earlier runs").click();
    step_until_label(&mut restarted, "0 shown");
    // Export: the worker writes the file and the toolbar says where.
    restarted.get_by_label("Reset").click();
    restarted.get_by_label("Export JSONL").click();
    step_until_label_contains(&mut restarted, "exported ");
    let exports: Vec<_> = std::fs::read_dir(dir.path().join("exports"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert_contract(&mut restarted);
}

/// A file dropped on the window, as the window system hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|error| error.to_string())
    }
}

fn dropped(path: &std::path::Path) -> egui::DroppedFileHandle {
    std::sync::Arc::new(Dropped(path.to_path_buf()))
}

#[test]
fn a_file_dropped_on_the_window_is_imported_as_the_other_side_of_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("bob.jsonl");
    let line = r#"{"seq":7,"run":3,"at_ms":1764130000123,"mono_us":5012345,"call_id":"c-far","user_id":"bob","source":"remote","kind":"onCallReceived","delivery":"delivered","handler_us":3,"payload":{"call_id":"c-far","caller_id":"carol","callee_ids":["bob"],"media_type":"audio"}}"#;
    std::fs::write(&export, format!("{line}\n")).unwrap();
    let mut harness = app(&dir.path().join("data"));
    harness.input_mut().dropped_files.push(dropped(&export));
    step_until_label_contains(&mut harness, "imported 1 entries from");
    let imported = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all().call("c-far"));
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].origin, Origin::Peer);
    assert_eq!(imported[0].user_id, "bob");
    assert_eq!(imported[0].session.as_deref(), Some("import:bob.jsonl"));
    // A damaged file imports nothing and says why.
    std::fs::write(&export, "{not json\n").unwrap();
    harness.input_mut().dropped_files.push(dropped(&export));
    step_until_label_contains(&mut harness, "import failed:");
    assert_eq!(
        harness
            .state()
            .kit()
            .timeline()
            .query(&Query::all().call("c-far"))
            .len(),
        1
    );
}

#[test]
fn a_raised_quality_warning_is_a_badge_on_the_participants_tile_until_it_is_cleared() {
    use callscope::event::{QualityWarningName, WarningState};
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Call echo").click();
    wait_until(&mut harness, "echo to answer", |app| {
        app.model().status() == CallStatus::CallingC2cVideo
    });
    let kit = harness.state().kit().clone();
    let call_id = harness.state().model().call.call_id.clone();
    let warn = |state| {
        kit.dispatch(
            kit.clock().now(),
            call_id.as_deref(),
            Source::Engine,
            Event::QualityWarning {
                user_id: "echo".into(),
                name: QualityWarningName::HighRtt,
                state,
                value: 450.0,
            },
        );
    };
    warn(WarningState::Raised);
    step_until_label(&mut harness, "! high-rtt");
    warn(WarningState::Cleared);
    let started = Instant::now();
    while harness.query_by_label("! high-rtt").is_some() {
        assert!(
            started.elapsed() < WAIT,
            "the badge stayed after the warning cleared"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.get_by_label("Hang up").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().status() == CallStatus::Idle
    });
}

#[test]
fn the_network_section_impairs_the_links_live_and_cuts_the_media_of_a_call() {
    use callscope::media::impair::Impairment;
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    harness.get_by_label("Network").click();
    step_until_label(&mut harness, "Flaky Wi-Fi");
    harness.get_by_label("Flaky Wi-Fi").click();
    let flaky: Impairment = "loss=5%,burst=3,delay=60ms,jitter=40ms".parse().unwrap();
    wait_until(&mut harness, "the preset to apply", |app| {
        let link = app.model().link.every_peer;
        link.send == flaky && link.receive == flaky
    });
    let impairments = |app: &CallscopeApp| -> Vec<(String, String, u64)> {
        app.kit()
            .timeline()
            .query(&Query::all())
            .iter()
            .filter_map(|entry| match &entry.event {
                Event::ImpairmentChanged {
                    send,
                    receive,
                    cut_ms,
                    ..
                } => Some((send.clone(), receive.clone(), *cut_ms)),
                _ => None,
            })
            .collect()
    };
    let setting = flaky.to_string();
    assert_eq!(
        impairments(harness.state()),
        [(setting.clone(), setting, 0)]
    );
    // The header says the network is impaired, and a cut needs a call.
    step_until_label(&mut harness, "Network: impaired on purpose");
    assert!(
        harness
            .get_by_label("Cut media 1 s")
            .accesskit_node()
            .is_disabled()
    );
    harness.get_by_label("Clear").click();
    wait_until(&mut harness, "the link to clear", |app| {
        app.model().link.every_peer.is_none()
    });
    harness.get_by_label("Call echo").click();
    wait_until(&mut harness, "echo to answer", |app| {
        app.model().status() == CallStatus::CallingC2cVideo
    });
    step_until_shown(&mut harness, "an enabled cut", |harness| {
        !harness
            .get_by_label("Cut media 1 s")
            .accesskit_node()
            .is_disabled()
    });
    harness.get_by_label("Cut media 1 s").click();
    wait_until(&mut harness, "the cut entry", |app| {
        impairments(app).iter().any(|(_, _, cut)| *cut == 1000)
    });
    harness.get_by_label("Hang up").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().status() == CallStatus::Idle
    });
    assert_contract(&mut harness);
}
