//! Every demo flow at its real default timings (30 s ring timeout, 1 s and 1.5 s answers, the
//! connect deadline and the ICE give-up timers running), in virtual time: the real
//! switchboard, engine drivers, demo scripts, media mesh and negotiation machines, with no
//! socket and no sleep. Every timeline goes through the contract checker.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

mod common;

use std::time::Duration;

use callscope::engine::{ConnectionState as Link, EngineCommand};
use callscope::event::{ConnectionState, Event};
use callscope::media::negotiation::Phase;
use callscope::model::{CallStatus, EndReason, ErrorCode, MediaType};
use callscope::timeline::{CheckOptions, TimelineEntry};
use common::world::World;

/// A world with the demo peers, and alice logged in.
fn alice() -> World {
    let mut world = World::with_demo_peers();
    world.add("alice", None);
    assert!(world.run_until(Duration::from_secs(1), |w| {
        w.state("alice").connection == Link::Online
    }));
    world
}

fn dial(world: &mut World, callees: &[&str], media: MediaType) {
    world.command(
        "alice",
        EngineCommand::Dial {
            callees: callees.iter().map(|c| (*c).to_owned()).collect(),
            media,
            group: callees.len() > 1,
            timeout_secs: 30,
        },
    );
}

/// Alice calls echo (video) and waits until the call is connected.
fn connected_to_echo(world: &mut World) {
    dial(world, &["echo"], MediaType::Video);
    until_connected(world, "alice", Duration::from_secs(3));
}

/// Alice hangs up and waits until her call is over.
fn hang_up(world: &mut World) {
    world.command("alice", EngineCommand::Hangup);
    until_idle(world, "alice", Duration::from_secs(1));
}

fn status(world: &World, user: &str) -> CallStatus {
    world.state(user).call.status()
}

/// Runs until `user` is in a connected call.
fn until_connected(world: &mut World, user: &str, limit: Duration) {
    let user = user.to_owned();
    assert!(
        world.run_until(limit, |w| status(w, &user).is_calling()),
        "{user} did not connect: {:?}",
        world.kinds(&user)
    );
}

/// Runs until `user` has seen `count` calls end.
fn until_ended(world: &mut World, user: &str, count: usize, limit: Duration) {
    let user = user.to_owned();
    assert!(
        world.run_until(limit, |w| reasons(w, &user).len() >= count),
        "{user}'s call did not end: {:?}",
        world.kinds(&user)
    );
}

/// Runs until `user` is idle again.
fn until_idle(world: &mut World, user: &str, limit: Duration) {
    let user = user.to_owned();
    assert!(
        world.run_until(limit, |w| status(w, &user) == CallStatus::Idle),
        "{user} is still in a call: {:?}",
        world.kinds(&user)
    );
}

fn events(world: &World, user: &str) -> Vec<Event> {
    world.entries(user).into_iter().map(|e| e.event).collect()
}

/// Every `afterCalling` reason of `user`, in order.
fn reasons(world: &World, user: &str) -> Vec<EndReason> {
    events(world, user)
        .iter()
        .filter_map(|event| match event {
            Event::AfterCalling(summary) => Some(summary.reason),
            _ => None,
        })
        .collect()
}

fn first(entries: &[TimelineEntry], wanted: impl Fn(&Event) -> bool) -> Option<&TimelineEntry> {
    entries.iter().find(|entry| wanted(&entry.event))
}

/// Milliseconds between two entries.
fn millis_between(from: &TimelineEntry, to: &TimelineEntry) -> u64 {
    to.at.mono_micros.saturating_sub(from.at.mono_micros) / 1000
}

fn connected_to(user: &str) -> impl Fn(&Event) -> bool + '_ {
    move |event| matches!(event, Event::ConnectionStateChanged { user_id, state: ConnectionState::Connected } if user_id == user)
}

#[test]
fn echo_rings_a_second_answers_and_media_connects_both_ways() {
    let mut world = alice();
    dial(&mut world, &["echo"], MediaType::Video);
    until_connected(&mut world, "alice", Duration::from_secs(5));
    let entries = world.entries("alice");
    let dialing = first(&entries, |e| {
        matches!(
            e,
            Event::StatusChanged {
                new_status: CallStatus::DialingC2c,
                ..
            }
        )
    })
    .unwrap();
    let begin = first(&entries, |e| matches!(e, Event::CallBegin { .. })).unwrap();
    let rang = millis_between(dialing, begin);
    assert!((1000..1100).contains(&rang), "echo rang {rang} ms");
    world.run_for(Duration::from_millis(200));
    assert!(
        world
            .entries("alice")
            .iter()
            .any(|e| connected_to("echo")(&e.event))
    );
    assert!(
        world
            .entries("echo")
            .iter()
            .any(|e| connected_to("alice")(&e.event))
    );
    world.command_after(Duration::from_secs(3), "alice", EngineCommand::Hangup);
    until_idle(&mut world, "alice", Duration::from_secs(5));
    until_idle(&mut world, "echo", Duration::from_secs(1));
    assert_eq!(reasons(&world, "alice"), [EndReason::Hangup]);
    assert_eq!(reasons(&world, "echo"), [EndReason::Hangup]);
    assert!(!world.has_media("echo"), "echo keeps media after the call");
    world.assert_contract();
}

#[test]
fn decline_rejects_after_a_second() {
    let mut world = alice();
    dial(&mut world, &["decline"], MediaType::Video);
    until_ended(&mut world, "alice", 1, Duration::from_secs(5));
    let entries = world.entries("alice");
    assert!(
        first(
            &entries,
            |e| matches!(e, Event::UserReject { user_id } if user_id == "decline")
        )
        .is_some()
    );
    assert_eq!(reasons(&world, "alice"), [EndReason::Reject]);
    assert_eq!(reasons(&world, "decline"), [EndReason::Reject]);
    world.assert_contract();
}

#[test]
fn busy_answers_line_busy_at_once() {
    let mut world = alice();
    dial(&mut world, &["busy"], MediaType::Audio);
    until_ended(&mut world, "alice", 1, Duration::from_millis(100));
    let kinds = world.kinds("alice");
    assert!(kinds.contains(&"onUserLineBusy"), "{kinds:?}");
    assert_eq!(reasons(&world, "alice"), [EndReason::LineBusy]);
    world.assert_contract();
}

#[test]
fn noanswer_rings_until_the_default_timeout_and_no_media_timer_ends_it() {
    let mut world = alice();
    dial(&mut world, &["noanswer"], MediaType::Audio);
    until_ended(&mut world, "alice", 1, Duration::from_secs(40));
    let entries = world.entries("alice");
    let dialing = first(&entries, |e| {
        matches!(
            e,
            Event::StatusChanged {
                new_status: CallStatus::DialingC2c,
                ..
            }
        )
    })
    .unwrap();
    let over = first(&entries, |e| matches!(e, Event::AfterCalling(_))).unwrap();
    let rang = millis_between(dialing, over);
    assert!((30_000..30_100).contains(&rang), "rang {rang} ms");
    assert!(
        first(
            &entries,
            |e| matches!(e, Event::UserNoResponse { user_id } if user_id == "noanswer")
        )
        .is_some()
    );
    assert_eq!(reasons(&world, "alice"), [EndReason::NoResponse]);
    assert!(!world.kinds("alice").contains(&"onUserReject"));
    // While it rang, noanswer's side made no answer and ran no connectivity checks.
    let callee = world.kinds("noanswer");
    assert!(!callee.contains(&"onError"), "{callee:?}");
    assert!(!events(&world, "noanswer").iter().any(|e| matches!(
        e,
        Event::ConnectionStateChanged {
            state: ConnectionState::Connecting | ConnectionState::Failed,
            ..
        }
    )));
    let noanswer = reasons(&world, "noanswer");
    assert!(
        noanswer == [EndReason::NoResponse] || noanswer == [EndReason::Canceled],
        "{noanswer:?}"
    );
    world.assert_contract();
}

#[test]
fn a_ringing_callee_has_only_the_offer_until_it_accepts() {
    let mut world = alice();
    dial(&mut world, &["noanswer"], MediaType::Video);
    world.run_for(Duration::from_secs(20));
    assert_eq!(
        world.media_phase("noanswer", "alice"),
        Some(Phase::OfferReceived)
    );
    assert_eq!(
        world.media_phase("alice", "noanswer"),
        Some(Phase::AwaitingAnswer)
    );
    world.command("alice", EngineCommand::Hangup);
    until_idle(&mut world, "noanswer", Duration::from_secs(1));
    assert_eq!(reasons(&world, "noanswer"), [EndReason::Canceled]);
    world.assert_contract();
}

#[test]
fn an_offline_callee_yields_8021_in_before_calling_and_no_after_calling() {
    let mut world = alice();
    dial(&mut world, &["nobody"], MediaType::Video);
    world.run_for(Duration::from_millis(100));
    let failed = events(&world, "alice").into_iter().find_map(|e| match e {
        Event::BeforeCalling {
            error: Some(error), ..
        } => Some(error.code),
        _ => None,
    });
    assert_eq!(failed, Some(ErrorCode::CalleeOffline));
    assert!(reasons(&world, "alice").is_empty());
    world.assert_contract();
}

#[test]
fn a_group_call_twice_in_a_row_and_the_group_peers_leave_each_time() {
    let mut world = alice();
    for round in 0..2 {
        dial(&mut world, &["group-a", "group-b"], MediaType::Video);
        assert!(
            world.run_until(Duration::from_secs(5), |w| {
                w.state("alice")
                    .call
                    .participants
                    .iter()
                    .filter(|(_, state)| *state == callscope::call::MemberState::Joined)
                    .count()
                    == 2
            }),
            "round {round}: {:?}",
            world.kinds("alice")
        );
        world.command_after(Duration::from_secs(2), "alice", EngineCommand::Hangup);
        until_idle(&mut world, "alice", Duration::from_secs(5));
        // The group peers hang up on each other once nobody else is left.
        until_idle(&mut world, "group-a", Duration::from_millis(100));
        until_idle(&mut world, "group-b", Duration::from_millis(100));
        assert!(!world.has_media("group-a") && !world.has_media("group-b"));
    }
    assert_eq!(
        reasons(&world, "alice"),
        [EndReason::Hangup, EndReason::Hangup]
    );
    assert!(!world.kinds("alice").contains(&"onUserLineBusy"));
    assert_eq!(reasons(&world, "group-a").len(), 2);
    world.assert_contract();
}

#[test]
fn someone_is_invited_into_a_running_group_call() {
    let mut world = alice();
    world.command(
        "alice",
        EngineCommand::Dial {
            callees: vec!["group-a".into()],
            media: MediaType::Video,
            group: true,
            timeout_secs: 30,
        },
    );
    until_connected(&mut world, "alice", Duration::from_secs(3));
    world.command("alice", EngineCommand::InviteMore(vec!["group-b".into()]));
    assert!(world.run_until(Duration::from_secs(3), |w| {
        w.kinds("alice").contains(&"onUserJoin") && status(w, "group-b").is_calling()
    }));
    world.run_for(Duration::from_millis(100));
    // group-b joined a call in progress: it connects to both others.
    assert!(
        world
            .entries("group-b")
            .iter()
            .any(|e| connected_to("alice")(&e.event))
    );
    assert!(
        world
            .entries("group-b")
            .iter()
            .any(|e| connected_to("group-a")(&e.event))
    );
    world.command("alice", EngineCommand::Hangup);
    for user in ["alice", "group-a", "group-b"] {
        until_idle(&mut world, user, Duration::from_secs(1));
    }
    world.assert_contract();
}

#[test]
fn ringback_rejects_and_calls_back_two_seconds_later() {
    let mut world = alice();
    dial(&mut world, &["ringback"], MediaType::Audio);
    until_ended(&mut world, "alice", 1, Duration::from_secs(3));
    assert_eq!(reasons(&world, "alice"), [EndReason::Reject]);
    assert!(
        world.run_until(Duration::from_secs(3), |w| status(w, "alice")
            == CallStatus::BeInvited)
    );
    let entries = world.entries("alice");
    let rejected = first(&entries, |e| matches!(e, Event::AfterCalling(_))).unwrap();
    let received = first(&entries, |e| {
        matches!(e, Event::CallReceived { caller_id, media_type: MediaType::Video, .. } if caller_id == "ringback")
    })
    .unwrap();
    let gap = millis_between(rejected, received);
    assert!((2000..2100).contains(&gap), "called back after {gap} ms");
    world.command("alice", EngineCommand::Accept);
    until_connected(&mut world, "ringback", Duration::from_secs(1));
    world.command_after(Duration::from_secs(1), "alice", EngineCommand::Hangup);
    until_idle(&mut world, "ringback", Duration::from_secs(3));
    assert_eq!(
        reasons(&world, "alice"),
        [EndReason::Reject, EndReason::Hangup]
    );
    world.assert_contract();
}

#[test]
fn hangup_answers_and_hangs_up_three_seconds_later() {
    let mut world = alice();
    dial(&mut world, &["hangup"], MediaType::Video);
    until_connected(&mut world, "alice", Duration::from_secs(3));
    until_idle(&mut world, "alice", Duration::from_secs(5));
    let entries = world.entries("alice");
    let begin = first(&entries, |e| matches!(e, Event::CallBegin { .. })).unwrap();
    let left = first(
        &entries,
        |e| matches!(e, Event::UserLeave { user_id } if user_id == "hangup"),
    )
    .unwrap();
    let talked = millis_between(begin, left);
    assert!((3000..3100).contains(&talked), "talked {talked} ms");
    let ended_by = events(&world, "alice").into_iter().find_map(|e| match e {
        Event::CallEnd {
            user_id, reason, ..
        } => Some((user_id, reason)),
        _ => None,
    });
    assert_eq!(ended_by, Some(("hangup".to_owned(), EndReason::Hangup)));
    let outcome = world.state("alice").last_outcome.clone().unwrap();
    assert_eq!(outcome.user_id, "hangup");
    world.assert_contract();
}

#[test]
fn a_log_in_elsewhere_kicks_alice_out_of_her_call_and_she_logs_in_again() {
    kicked_out_and_back(alice());
}

#[test]
fn a_log_in_on_another_node_kicks_alice_out_of_her_call_and_she_logs_in_again() {
    // The other device reaches the next node; echo is on the first.
    kicked_out_and_back(alice_on_three_nodes());
}

fn kicked_out_and_back(mut world: World) {
    connected_to_echo(&mut world);
    world.command("alice", EngineCommand::SimulateLoginElsewhere);
    until_idle(&mut world, "alice", Duration::from_secs(1));
    assert!(matches!(
        world.state("alice").connection,
        Link::LoggedOut { .. }
    ));
    let kinds = world.kinds("alice");
    assert!(
        kinds.contains(&"kickedOut") && kinds.contains(&"onKickedOffline"),
        "{kinds:?}"
    );
    assert_eq!(reasons(&world, "alice"), [EndReason::KickedOut]);
    until_idle(&mut world, "echo", Duration::from_secs(1));
    // Logged out, a call is refused with 6014 and no call starts.
    dial(&mut world, &["echo"], MediaType::Video);
    let refused = events(&world, "alice").into_iter().any(|e| {
        matches!(
            e,
            Event::BeforeCalling { error: Some(error), .. } if error.code == ErrorCode::NotLoggedIn
        )
    });
    assert!(refused);
    world.command("alice", EngineCommand::LogIn);
    assert!(world.run_until(Duration::from_secs(1), |w| {
        w.state("alice").connection == Link::Online
    }));
    connected_to_echo(&mut world);
    hang_up(&mut world);
    assert_eq!(
        reasons(&world, "alice"),
        [EndReason::KickedOut, EndReason::Hangup]
    );
    world.assert_contract();
}

#[test]
fn mute_and_camera_off_do_not_carry_into_the_next_call() {
    let mut world = alice();
    connected_to_echo(&mut world);
    world.command("alice", EngineCommand::SetMicrophone(false));
    world.command("alice", EngineCommand::SetCamera(false));
    assert!(!world.state("alice").microphone_on && !world.state("alice").camera_on);
    hang_up(&mut world);
    connected_to_echo(&mut world);
    assert!(world.state("alice").microphone_on && world.state("alice").camera_on);
    hang_up(&mut world);
    world.assert_contract();
}

#[test]
fn a_peer_whose_media_vanishes_ends_its_call_with_media_failed_on_the_stack_timers() {
    let mut world = alice();
    connected_to_echo(&mut world);
    world.run_for(Duration::from_millis(100));
    world.command("alice", EngineCommand::SimulateMediaLoss);
    let lost_at = world.elapsed();
    until_idle(&mut world, "echo", Duration::from_secs(15));
    let after = world.elapsed().saturating_sub(lost_at);
    assert!(
        after >= Duration::from_secs(7) && after < Duration::from_millis(7100),
        "ended {after:?} after the loss"
    );
    assert_eq!(reasons(&world, "echo"), [EndReason::MediaFailed]);
    let echo = events(&world, "echo");
    assert!(echo.iter().any(|e| matches!(
        e,
        Event::ConnectionStateChanged {
            state: ConnectionState::Reconnecting,
            ..
        }
    )));
    // alice hears of it through the server, as echo leaving.
    until_idle(&mut world, "alice", Duration::from_secs(1));
    assert_eq!(reasons(&world, "alice"), [EndReason::Hangup]);
    world.assert_contract();
}

#[test]
fn a_server_gone_mid_ring_ends_the_call_by_server_and_the_client_reconnects() {
    let mut world = alice();
    dial(&mut world, &["noanswer"], MediaType::Audio);
    world.run_for(Duration::from_secs(2));
    world.stop_server();
    until_idle(&mut world, "alice", Duration::from_millis(100));
    assert_eq!(reasons(&world, "alice"), [EndReason::EndByServer]);
    assert!(matches!(
        world.state("alice").connection,
        Link::Offline { .. }
    ));
    world.run_for(Duration::from_secs(3));
    world.restart_server();
    assert!(world.run_until(Duration::from_secs(10), |w| {
        w.state("alice").connection == Link::Online
    }));
    world.assert_contract();
}

#[test]
fn a_server_restart_mid_call_ends_the_call_by_server_once_back() {
    let mut world = alice();
    connected_to_echo(&mut world);
    world.stop_server();
    world.run_for(Duration::from_millis(500));
    // A connected call survives the first moments of an outage.
    assert!(status(&world, "alice").is_calling());
    world.restart_server();
    until_idle(&mut world, "alice", Duration::from_secs(10));
    assert_eq!(reasons(&world, "alice"), [EndReason::EndByServer]);
    world.assert_contract();
}

#[test]
fn a_connected_call_outlives_a_short_outage_only_by_the_grace() {
    let mut world = alice();
    connected_to_echo(&mut world);
    let stopped = world.elapsed();
    world.stop_server();
    until_idle(&mut world, "alice", Duration::from_secs(15));
    let lasted = world.elapsed().saturating_sub(stopped);
    assert!(
        lasted >= callscope::engine::OUTAGE_GRACE
            && lasted < callscope::engine::OUTAGE_GRACE + Duration::from_millis(100),
        "the call lasted {lasted:?} into the outage"
    );
    assert_eq!(reasons(&world, "alice"), [EndReason::EndByServer]);
    world.assert_contract();
}

#[test]
fn the_checker_catches_a_no_response_before_the_timeout() {
    // The same flow judged as if the calls had rung 60 s: their no-response came too soon.
    let mut world = alice();
    dial(&mut world, &["noanswer"], MediaType::Audio);
    until_ended(&mut world, "alice", 1, Duration::from_secs(40));
    let strict = CheckOptions {
        ring_timeout: Duration::from_mins(1),
        ..CheckOptions::default()
    };
    let findings = world.findings(&strict);
    assert!(
        findings
            .iter()
            .any(|f| f.user_id == "alice" && f.message.contains("before the 60 s timeout")),
        "{findings:?}"
    );
}

/// Bob (a second person) calls alice; alice rings privately or prepared, as set.
fn bob_calls_alice(private_ringing: bool) -> World {
    let mut world = alice();
    world.add("bob", None);
    assert!(world.run_until(Duration::from_secs(1), |w| {
        w.state("bob").connection == Link::Online
    }));
    world.command("alice", EngineCommand::SetPrivateRinging(private_ringing));
    world.command(
        "bob",
        EngineCommand::Dial {
            callees: vec!["alice".to_owned()],
            media: MediaType::Video,
            group: false,
            timeout_secs: 30,
        },
    );
    assert!(world.run_until(Duration::from_secs(1), |w| {
        status(w, "alice") == CallStatus::BeInvited
    }));
    world
}

/// When `user`'s media to `remote` was first reported connected.
fn connected_at(world: &World, user: &str, remote: &str) -> Option<u64> {
    world
        .entries(user)
        .iter()
        .find(|entry| connected_to(remote)(&entry.event))
        .map(|entry| entry.at.mono_micros)
}

/// No connection state of `user`'s call media was reported (the call has no media yet).
fn no_connection_states(world: &World, user: &str) -> bool {
    !events(world, user)
        .iter()
        .any(|e| matches!(e, Event::ConnectionStateChanged { state, .. } if *state != ConnectionState::New))
}

#[test]
fn a_private_ringing_callee_tells_the_caller_nothing_until_it_accepts() {
    let mut world = bob_calls_alice(true);
    world.run_for(Duration::from_secs(20));
    // Alice holds bob's offer; bob has heard nothing from alice's media, not an address.
    assert!(!world.negotiation_received("alice", "bob").is_empty());
    assert!(world.negotiation_received("bob", "alice").is_empty());
    assert_eq!(
        world.media_phase("alice", "bob"),
        Some(Phase::OfferReceived)
    );
    let accepted = world.now().as_micros();
    world.command("alice", EngineCommand::Accept);
    until_connected(&mut world, "bob", Duration::from_secs(1));
    world.run_for(Duration::from_millis(100));
    let answer = world.negotiation_received("bob", "alice");
    assert!(answer.iter().all(|at| at.as_micros() > accepted));
    let connected = connected_at(&world, "bob", "alice").unwrap();
    // The answer is made, gathered and carried only after the accept.
    assert!(connected - accepted >= 2_000, "{} µs", connected - accepted);
    world.command("bob", EngineCommand::Hangup);
    until_idle(&mut world, "alice", Duration::from_secs(1));
    world.assert_contract();
}

#[test]
fn a_callee_that_prepares_while_it_rings_connects_at_the_accept_and_reports_nothing_before() {
    let mut world = bob_calls_alice(false);
    world.run_for(Duration::from_secs(20));
    // The answer went to bob while alice rang, and the path is up on both sides, unreported.
    let answered = world.negotiation_received("bob", "alice");
    assert!(!answered.is_empty());
    assert_eq!(world.media_phase("alice", "bob"), Some(Phase::Prepared));
    assert_eq!(world.media_phase("bob", "alice"), Some(Phase::Prepared));
    assert!(no_connection_states(&world, "alice") && no_connection_states(&world, "bob"));
    let accepted = world.now().as_micros();
    world.command("alice", EngineCommand::Accept);
    until_connected(&mut world, "bob", Duration::from_secs(1));
    world.run_for(Duration::from_millis(100));
    // Alice's media flows at her accept; bob's as soon as he hears of it (one hop each way).
    assert_eq!(connected_at(&world, "alice", "bob"), Some(accepted));
    let connected = connected_at(&world, "bob", "alice").unwrap();
    assert!(connected - accepted <= 2_000, "{} µs", connected - accepted);
    world.command("bob", EngineCommand::Hangup);
    until_idle(&mut world, "alice", Duration::from_secs(1));
    world.assert_contract();
}

#[test]
fn a_prepared_callee_that_never_answers_rings_out_the_full_timeout_without_a_media_error() {
    let mut world = bob_calls_alice(false);
    until_ended(&mut world, "bob", 1, Duration::from_secs(40));
    assert_eq!(reasons(&world, "bob"), [EndReason::NoResponse]);
    for user in ["alice", "bob"] {
        assert!(
            !world.kinds(user).contains(&"onError"),
            "{:?}",
            world.kinds(user)
        );
        assert!(no_connection_states(&world, user));
    }
    until_idle(&mut world, "alice", Duration::from_secs(5));
    assert!(!world.has_media("alice") && !world.has_media("bob"));
    world.assert_contract();
}

/// Both sides' media connected: what is negotiated through the server is done.
fn until_media_connected(world: &mut World) {
    let connected = |world: &World, user: &str| {
        events(world, user).iter().any(|event| {
            matches!(
                event,
                Event::ConnectionStateChanged {
                    state: ConnectionState::Connected,
                    ..
                }
            )
        })
    };
    assert!(world.run_until(Duration::from_secs(5), |w| {
        connected(w, "alice") && connected(w, "echo")
    }));
}

#[test]
fn a_signaling_cut_shorter_than_the_grace_shows_reconnecting_and_the_call_goes_on() {
    let mut world = alice();
    connected_to_echo(&mut world);
    until_media_connected(&mut world);
    world.command("alice", EngineCommand::CutSignaling { for_millis: 3000 });
    world.run_for(Duration::from_secs(1));
    // Off the server, still in the call: media does not need signaling.
    assert!(matches!(
        world.state("alice").connection,
        Link::Offline { .. }
    ));
    assert!(status(&world, "alice").is_calling());
    assert!(world.run_until(Duration::from_secs(5), |w| {
        w.state("alice").connection == Link::Online
    }));
    // The server held the call: both sides are in it, and it ends as calls do.
    world.run_for(Duration::from_secs(1));
    assert!(status(&world, "alice").is_calling());
    assert!(status(&world, "echo").is_calling());
    hang_up(&mut world);
    until_idle(&mut world, "echo", Duration::from_secs(1));
    assert_eq!(reasons(&world, "alice"), [EndReason::Hangup]);
    assert_eq!(reasons(&world, "echo"), [EndReason::Hangup]);
    world.assert_contract();
}

#[test]
fn a_signaling_cut_longer_than_the_grace_ends_the_call_by_server_on_both_sides_once() {
    let mut world = alice();
    connected_to_echo(&mut world);
    until_media_connected(&mut world);
    let cut = world.elapsed();
    world.command("alice", EngineCommand::CutSignaling { for_millis: 15_000 });
    until_idle(&mut world, "alice", Duration::from_secs(11));
    until_idle(&mut world, "echo", Duration::from_secs(2));
    let lasted = world.elapsed().saturating_sub(cut);
    assert!(
        lasted >= callscope::engine::OUTAGE_GRACE,
        "ended {lasted:?} into the cut"
    );
    assert_eq!(reasons(&world, "alice"), [EndReason::EndByServer]);
    assert_eq!(reasons(&world, "echo"), [EndReason::EndByServer]);
    // The backend hears of it as an interrupted call, after it had connected.
    let record = world.call_records.last().expect("an end-of-call record");
    assert_eq!(
        record.call_result,
        callscope::signaling::webhook::CallResult::Interrupt
    );
    assert!(record.accept_ts > 0);
    assert!(
        world
            .call_events
            .iter()
            .any(|event| event.call_id == record.call_id
                && event.event_type == "caller_call_interrupted")
    );
    // Back once the cut is over, with nothing left of the call.
    assert!(world.run_until(Duration::from_secs(10), |w| {
        w.state("alice").connection == Link::Online
    }));
    assert_eq!(reasons(&world, "alice"), [EndReason::EndByServer]);
    world.assert_contract();
}

#[test]
fn flaky_answers_then_its_link_turns_bad_and_good_in_twelve_second_spells_until_the_call_ends() {
    use callscope::engine::FLAKY_LINK;
    let mut world = alice();
    dial(&mut world, &["flaky"], MediaType::Video);
    until_connected(&mut world, "alice", Duration::from_secs(3));
    let link = |world: &World| world.state("flaky").link.every_peer;
    let connected = world.elapsed();
    // Clean for its first 3 s, then bad for 12 s, good for 12 s, and bad again.
    world.run_for(Duration::from_millis(2900));
    assert!(link(&world).is_none(), "bad too soon");
    for (spell, bad) in [(3_000_u64, true), (15_000, false), (27_000, true)] {
        assert!(
            world.run_until(Duration::from_secs(13), |w| {
                (link(w).send == FLAKY_LINK && link(w).receive == FLAKY_LINK) == bad
            }),
            "the spell at {spell} ms never came"
        );
        let at = world.elapsed().saturating_sub(connected).as_millis() as u64;
        assert!(
            (spell - 100..spell + 100).contains(&at),
            "the spell due at {spell} ms came at {at} ms"
        );
    }
    hang_up(&mut world);
    assert!(world.run_until(Duration::from_secs(1), |w| link(w).is_none()));
    let settings: Vec<(String, u64)> = world
        .entries("flaky")
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::ImpairmentChanged { send, cut_ms, .. } => Some((send.clone(), *cut_ms)),
            _ => None,
        })
        .collect();
    let bad = FLAKY_LINK.to_string();
    assert_eq!(
        settings,
        [
            (bad.clone(), 0),
            ("none".to_owned(), 0),
            (bad, 0),
            ("none".to_owned(), 0)
        ]
    );
    world.assert_contract();
}

#[test]
fn every_demo_flow_gets_its_end_of_call_record_and_its_events_at_the_real_timings() {
    use callscope::signaling::webhook::CallResult;
    let mut world = alice();
    let cases: [(&str, CallResult, Duration); 5] = [
        ("echo", CallResult::NormalEnd, Duration::from_secs(3)),
        ("decline", CallResult::Reject, Duration::from_secs(3)),
        ("busy", CallResult::CallBusy, Duration::from_secs(3)),
        // The 30 s ringing timeout, as a user gets it.
        ("noanswer", CallResult::NotAnswer, Duration::from_secs(33)),
        ("hangup", CallResult::NormalEnd, Duration::from_secs(6)),
    ];
    for (peer, expected, limit) in cases {
        let before = world.call_records.len();
        dial(&mut world, &[peer], MediaType::Video);
        if peer == "echo" {
            until_connected(&mut world, "alice", Duration::from_secs(3));
            world.run_for(Duration::from_secs(1));
            hang_up(&mut world);
        }
        assert!(
            world.run_until(limit, |w| w.call_records.len() > before),
            "no end-of-call record for {peer}"
        );
        let record = world.call_records.last().unwrap().clone();
        assert_eq!(record.call_result, expected, "{peer}: {record:?}");
        assert_eq!(record.caller, "alice");
        assert_eq!(record.total_num, 2);
        let accepted = expected == CallResult::NormalEnd;
        assert_eq!(record.accept_ts > 0, accepted, "{peer}: {record:?}");
        assert!(record.end_ts >= record.start_call_ts);
        if peer == "noanswer" {
            let rang = record.end_ts - record.start_call_ts;
            assert!((30_000..32_000).contains(&rang), "rang {rang} ms");
        }
        let names: Vec<&str> = world
            .call_events
            .iter()
            .filter(|event| event.call_id == record.call_id)
            .map(|event| event.event_type.as_str())
            .collect();
        assert_eq!(
            names.first(),
            Some(&"caller_start_call"),
            "{peer}: {names:?}"
        );
        until_idle(&mut world, "alice", Duration::from_secs(2));
        world.run_for(Duration::from_secs(3));
    }
    // Alice cancels a ringing call.
    let before = world.call_records.len();
    dial(&mut world, &["noanswer"], MediaType::Audio);
    world.run_for(Duration::from_secs(2));
    hang_up(&mut world);
    assert!(world.run_until(Duration::from_secs(1), |w| w.call_records.len() > before));
    assert_eq!(
        world.call_records.last().unwrap().call_result,
        CallResult::Cancel
    );
    world.assert_contract();
}

/// Alice on the second of three nodes, the demo peers spread over all three.
fn alice_on_three_nodes() -> World {
    let mut world = World::nodes(3);
    world.add_demo_peers(|index| index % 3);
    world.place("alice", 1);
    world.add("alice", None);
    assert!(world.run_until(Duration::from_secs(1), |w| {
        w.state("alice").connection == Link::Online
    }));
    world
}

/// Runs one demo flow of alice's: dial `callees`, hang up a connected call after a second,
/// wait for the end; alice's callbacks in order.
fn demo_flow(world: &mut World, callees: &[&str]) -> Vec<&'static str> {
    let before = world.kinds("alice").len();
    let ends = count_ends(world);
    dial(world, callees, MediaType::Video);
    assert!(
        world.run_until(Duration::from_secs(35), |w| {
            status(w, "alice").is_calling() || count_ends(w) > ends
        }),
        "{callees:?}: {:?}",
        world.kinds("alice")
    );
    if status(world, "alice").is_calling() {
        world.run_for(Duration::from_secs(1));
        if status(world, "alice").is_calling() {
            world.command("alice", EngineCommand::Hangup);
        }
    }
    until_idle(world, "alice", Duration::from_secs(5));
    world.run_for(Duration::from_secs(3));
    world.kinds("alice")[before..].to_vec()
}

fn count_ends(world: &World) -> usize {
    reasons(world, "alice").len()
}

#[test]
fn every_demo_flow_across_three_nodes_gives_the_callbacks_of_one_node() {
    let flows: [&[&str]; 7] = [
        &["echo"],
        &["decline"],
        &["busy"],
        &["noanswer"],
        &["hangup"],
        &["group-a", "group-b", "group-c"],
        // Last: it calls back, and that call rings out at alice's end.
        &["ringback"],
    ];
    let mut alone = alice();
    let mut spread = alice_on_three_nodes();
    for callees in flows {
        let mut one = demo_flow(&mut alone, callees);
        let mut three = demo_flow(&mut spread, callees);
        if callees == ["ringback"] {
            let (before_one, before_three) =
                (alone.kinds("alice").len(), spread.kinds("alice").len());
            alone.run_for(Duration::from_secs(35));
            spread.run_for(Duration::from_secs(35));
            one.extend_from_slice(&alone.kinds("alice")[before_one..]);
            three.extend_from_slice(&spread.kinds("alice")[before_three..]);
            assert!(one.contains(&"onCallReceived"), "{one:?}");
        }
        assert_eq!(
            one, three,
            "{callees:?}: one node {one:?}, three nodes {three:?}"
        );
        assert!(one.contains(&"afterCalling"), "{callees:?}: {one:?}");
    }
    assert_eq!(reasons(&alone, "alice"), reasons(&spread, "alice"));
    // The peers really were elsewhere: alice's calls crossed nodes.
    assert_eq!(spread.node_of_user("alice"), Some(1));
    assert_eq!(spread.node_of_user("echo"), Some(0));
    assert_eq!(spread.node_of_user("decline"), Some(1));
    assert_eq!(spread.node_of_user("busy"), Some(2));
    alone.assert_contract();
    spread.assert_contract();
}

#[test]
fn a_node_killed_mid_call_ends_its_calls_once_and_its_users_reconnect_to_another() {
    let mut world = alice_on_three_nodes();
    // Alice (second node) calls echo (first node): the call is homed on alice's node.
    connected_to_echo(&mut world);
    world.kill_node(0);
    // Echo's client comes back through the next node; alice's call ends by the server, once,
    // when her node finds echo's lost.
    until_ended(
        &mut world,
        "alice",
        1,
        callscope::signaling::NODE_LOST_AFTER + Duration::from_secs(2),
    );
    assert_eq!(reasons(&world, "alice"), [EndReason::EndByServer]);
    until_idle(&mut world, "echo", Duration::from_secs(15));
    assert_eq!(reasons(&world, "echo"), [EndReason::EndByServer]);
    assert!(world.run_until(Duration::from_secs(5), |w| {
        w.state("echo").connection == Link::Online
    }));
    assert_eq!(world.node_of_user("echo"), Some(1));
    // Now kill alice's node, the home of her next call to echo.
    world.run_for(Duration::from_secs(2));
    connected_to_echo(&mut world);
    world.kill_node(1);
    until_idle(&mut world, "alice", Duration::from_secs(15));
    until_idle(
        &mut world,
        "echo",
        callscope::signaling::NODE_LOST_AFTER + Duration::from_secs(15),
    );
    assert_eq!(
        reasons(&world, "alice"),
        [EndReason::EndByServer, EndReason::EndByServer]
    );
    assert_eq!(
        reasons(&world, "echo"),
        [EndReason::EndByServer, EndReason::EndByServer]
    );
    assert!(world.run_until(Duration::from_secs(5), |w| {
        w.state("alice").connection == Link::Online && w.state("echo").connection == Link::Online
    }));
    assert_eq!(world.node_of_user("alice"), Some(2));
    // And the two reach each other again on the last node.
    connected_to_echo(&mut world);
    hang_up(&mut world);
    world.assert_contract();
}
