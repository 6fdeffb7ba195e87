//! GUI tests with `egui_kittest`: the real app with its real engine and embedded server, driven by
//! label, no display needed.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

use std::time::{Duration, Instant};

use callscope::engine::{ConnectionState, ServerChoice};
use callscope::event::CallbackKind;
use callscope::model::{CallStatus, ViewMode};
use callscope::timeline::{CheckOptions, Delivery, Query, check};
use callscope::ui::{AppOptions, CallscopeApp, Settings};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

const WAIT: Duration = Duration::from_secs(15);

fn app(data_dir: &std::path::Path) -> Harness<'static, CallscopeApp> {
    let options = AppOptions {
        user_id: "alice".into(),
        server: ServerChoice::Embedded,
        data_dir: data_dir.to_path_buf(),
        call_on_start: Vec::new(),
        private_ringing: None,
        media: callscope::media::MediaConfig {
            // The same on every machine: no camera, no sound card.
            devices: callscope::media::Devices::Absent,
            ..callscope::media::MediaConfig::default()
        },
    };
    let mut harness = Harness::builder()
        .with_size([1300.0, 900.0])
        .build_eframe(move |cc| CallscopeApp::new(&cc.egui_ctx, options).unwrap());
    wait_until(&mut harness, "the log-in", |app| {
        app.model().connection == ConnectionState::Online
    });
    wait_until(&mut harness, "the contacts", |app| {
        !app.model().contacts.is_empty()
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
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.step();
}

/// The app's timeline keeps the call contract.
fn assert_contract(harness: &Harness<'_, CallscopeApp>) {
    let entries: Vec<_> = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all())
        .iter()
        .map(|entry| (**entry).clone())
        .collect();
    let findings = check(&entries, &CheckOptions::default());
    assert!(findings.is_empty(), "{findings:#?}");
}

fn kinds_of_call(app: &CallscopeApp) -> Vec<&'static str> {
    app.kit()
        .timeline()
        .query(&Query::all())
        .iter()
        .filter(|e| e.call_id.is_some())
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
    let statuses = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all().kind(CallbackKind::StatusChanged));
    assert_eq!(statuses.len(), 2);
    assert!(statuses.iter().all(|e| e.delivery == Delivery::Suppressed));
    // The switch is remembered for the next start.
    assert!(
        !Settings::load(dir.path())
            .enabled
            .contains(CallbackKind::StatusChanged)
    );
    assert_contract(&harness);
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
            .query_by_label_contains("hangup, placed by alice")
            .is_some()
    );
    assert_contract(&harness);
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
    // Unfiltered, the table holds every entry (the media engine's too, so the line-busy row may
    // be scrolled out of view). Entries may still arrive for a moment after the call ended.
    let shows_all = |harness: &Harness<'_, CallscopeApp>| {
        let total = harness.state().kit().timeline().len();
        total > 1
            && harness
                .query_by_label(&format!("{total} entries"))
                .is_some()
    };
    let mut steps = 0;
    while !shows_all(&harness) {
        assert!(steps < 100, "the table never showed every entry");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
        steps += 1;
    }
    harness.get_by_label("Search").focus();
    harness.step();
    harness.get_by_label("Search").type_text("afterCalling");
    // The filter applies on the next frame and the table scrolls to its rows on the one after.
    for _ in 0..5 {
        harness.step();
    }
    assert_eq!(rows(&harness, "onUserLineBusy"), 0, "filtered out");
    assert_eq!(rows(&harness, "afterCalling"), 1);
    assert!(harness.query_by_label("1 entries").is_some());
    assert_contract(&harness);
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
    assert_contract(&harness);
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
    for _ in 0..5 {
        harness.step();
    }
    harness.get_by_label("idle -> dialing-c2c").click();
    harness.step();
    harness.step();
    let seq = harness
        .state()
        .kit()
        .timeline()
        .query(&Query::all().kind(CallbackKind::StatusChanged))[0]
        .seq;
    assert!(harness.query_by_label(&format!("Entry #{seq}")).is_some());
    assert!(harness.query_by_label("Copy").is_some());
    assert!(
        harness
            .query_by_label_contains("\"new_status\": \"dialing-c2c\"")
            .is_some(),
        "the pretty JSON of the entry is shown"
    );
    assert_contract(&harness);
}

#[test]
fn choosing_the_synthetic_camera_in_the_devices_menu_applies_to_the_next_call_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = app(dir.path());
    wait_until(&mut harness, "the device list", |app| {
        app.model().devices.is_some()
    });
    harness.get_by_label("Devices").click();
    harness.step();
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
    let restarted = app(dir.path());
    assert_eq!(
        restarted.state().model().device_choices.camera,
        callscope::media::DeviceChoice::Synthetic
    );
    assert_contract(&restarted);
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
    harness.get_by_label("Log in again").click();
    wait_until(&mut harness, "the log-in", |app| {
        app.model().connection == ConnectionState::Online
    });
    harness.get_by_label("Call decline").click();
    wait_until(&mut harness, "the call to end", |app| {
        app.model().counts[CallbackKind::AfterCalling.index()] == 1
    });
    assert!(
        harness
            .query_by_label_contains("The last call ended: reject (decline)")
            .is_some()
    );
    assert_contract(&harness);
}
