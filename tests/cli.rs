//! The command line end to end: `callscope server`, `callscope answer` and `callscope call` as
//! separate processes on 127.0.0.1, what each printed through `callscope check`, and the checker
//! finding a broken timeline. A terminal shows callscope's own lines only.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callscope::event::{ConnectionState, Event};
use callscope::model::EndReason;
use callscope::timeline::TimelineEntry;

fn callscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callscope"))
}

/// A child that is killed when the test is done with it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every device synthetic: the same on any machine.
const SYNTHETIC: [&str; 6] = [
    "--camera",
    "synthetic",
    "--microphone",
    "synthetic",
    "--speaker",
    "synthetic",
];

fn entries(json_lines: &str) -> Vec<TimelineEntry> {
    json_lines
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn end_reasons(entries: &[TimelineEntry]) -> Vec<EndReason> {
    entries
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::AfterCalling(summary) => Some(summary.reason),
            _ => None,
        })
        .collect()
}

/// `callscope check` on `json_lines`: its exit status and what it printed.
fn check(dir: &Path, name: &str, json_lines: &str) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, json_lines).unwrap();
    let output = callscope().arg("check").arg(&path).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn answer_and_call_play_both_sides_of_a_call_through_a_standalone_server() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a secret for the command-line test").unwrap();
    let (_server, url) = standalone_server(dir.path(), &secret);
    let mut answer = callscope()
        .arg("--data-dir")
        .arg(dir.path().join("bob"))
        .args(["answer", "--user", "bob", "--server", &url, "--secret-file"])
        .arg(&secret)
        .args(["--accept-after", "0.5", "--json", "--wait", "60"])
        .args(SYNTHETIC)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The answerer says on stderr when it is logged in and waiting.
    let stderr = answer.stderr.take().unwrap();
    let mut waiting = String::new();
    let started = Instant::now();
    let mut lines = BufReader::new(stderr).lines();
    while !waiting.contains("is waiting for a call") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bob never logged in"
        );
        waiting = lines.next().unwrap().unwrap();
    }
    let call = callscope()
        .arg("--data-dir")
        .arg(dir.path().join("alice"))
        .args([
            "call",
            "bob",
            "--user",
            "alice",
            "--server",
            &url,
            "--secret-file",
        ])
        .arg(&secret)
        .args(["--hangup-after", "1", "--json"])
        // The default devices, so the sound library and the camera layer are asked.
        .output()
        .unwrap();
    let answered = answer.wait_with_output().unwrap();
    let alice = String::from_utf8_lossy(&call.stdout).into_owned();
    let bob = String::from_utf8_lossy(&answered.stdout).into_owned();
    assert!(call.status.success(), "alice: {alice}");
    assert!(answered.status.success(), "bob: {bob}");
    assert_eq!(end_reasons(&entries(&alice)), [EndReason::Hangup]);
    assert_eq!(end_reasons(&entries(&bob)), [EndReason::Hangup]);
    for (name, lines) in [("alice.jsonl", &alice), ("bob.jsonl", &bob)] {
        let (clean, findings) = check(dir.path(), name, lines);
        assert!(clean, "{name}: {findings}");
    }
    assert_import_merges_the_sides(dir.path(), &alice, &bob);
    // Nothing but callscope's own words on the terminal: no sound-library or codec chatter,
    // though alice asked for the default devices.
    let noise = String::from_utf8_lossy(&call.stderr);
    for line in noise.lines() {
        assert!(line.starts_with("callscope"), "stderr: {noise}");
    }
}

/// A standalone `callscope server` on a free port of 127.0.0.1, and its URL.
fn standalone_server(dir: &Path, secret: &Path) -> (Running, String) {
    let (server, port) = server_on(dir, secret, "127.0.0.1:0");
    (server, format!("ws://127.0.0.1:{port}"))
}

/// Starts `callscope server` listening on `listen`, whose port 0 lets the system pick a free
/// one (a port picked beforehand can be taken by another process first), and returns it with
/// its port once it says it listens.
fn server_on(dir: &Path, secret: &Path, listen: &str) -> (Running, u16) {
    let mut child = callscope()
        .arg("--data-dir")
        .arg(dir.join("server"))
        .args(["server", "--listen", listen, "--secret-file"])
        .arg(secret)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let port = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("the server ended before it listened: {said:?}");
        };
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.rsplit(':').next().and_then(|port| port.parse().ok());
        }
        said.push(line);
    };
    let port = port.unwrap_or_else(|| panic!("no port in what the server said: {said:?}"));
    // The rest of what it says is not read: it must not block on a full pipe.
    std::thread::Builder::new()
        .name("server stderr".into())
        .spawn(move || lines.for_each(drop))
        .unwrap();
    (Running(child), port)
}

/// Starts `callscope answer` for `user` on `url` with `extra` options; returns it once it says
/// it is logged in and waiting.
fn answerer(dir: &Path, secret: &Path, url: &str, user: &str, extra: &[&str]) -> Child {
    answerer_by(callscope(), dir, secret, url, user, extra)
}

/// [`answerer`] run by `command` (callscope itself, or callscope in a network namespace).
fn answerer_by(
    mut command: Command,
    dir: &Path,
    secret: &Path,
    url: &str,
    user: &str,
    extra: &[&str],
) -> Child {
    let mut answer = command
        .arg("--data-dir")
        .arg(dir.join(user))
        .args(["answer", "--user", user, "--server", url, "--secret-file"])
        .arg(secret)
        .args(extra)
        .args(SYNTHETIC)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = answer.stderr.take().unwrap();
    let started = Instant::now();
    let mut lines = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{user} never logged in: {said:?}"
        );
        let Some(Ok(line)) = lines.next() else {
            panic!("{user}'s `answer` ended before logging in: {said:?}");
        };
        if line.contains("is waiting for a call") {
            break;
        }
        said.push(line);
    }
    // The rest of what it says is not read: it must not block on a full pipe.
    std::thread::Builder::new()
        .name(format!("{user} stderr"))
        .spawn(move || lines.for_each(drop))
        .unwrap();
    answer
}

/// The call's entries in `user`'s store, as `callscope timeline --call` prints them.
fn stored_trace(dir: &Path, user: &str, call_id: &str) -> String {
    let trace = callscope()
        .arg("--data-dir")
        .arg(dir.join(user))
        .args(["timeline", "--call", call_id, "--json"])
        .output()
        .unwrap();
    assert!(trace.status.success());
    String::from_utf8_lossy(&trace.stdout).into_owned()
}

/// The µs wall time of the first entry recorded by `user` that `wanted` picks.
fn first_at(entries: &[TimelineEntry], user: &str, wanted: impl Fn(&TimelineEntry) -> bool) -> u64 {
    entries
        .iter()
        .find(|entry| entry.user_id == user && wanted(entry))
        .map_or_else(
            || {
                let all: Vec<String> = entries.iter().map(TimelineEntry::readable).collect();
                panic!("no such entry of {user} in:\n{}", all.join("\n"))
            },
            TimelineEntry::wall_micros,
        )
}

/// `me`'s store holds both sides of the call and the server's routing, every receipt after
/// its send, and passes the contract's checks on each side and across them.
fn assert_both_sides(dir: &Path, me: &str, them: &str, call_id: &str) {
    use callscope::model::{CallStatus, Source};
    use callscope::timeline::Origin;
    let accepted = |entry: &TimelineEntry| {
        entry.source == Source::Local
            && matches!(entry.event, Event::StatusChanged { new_status, .. } if new_status.is_calling())
    };
    let joined = |entry: &TimelineEntry| matches!(&entry.event, Event::UserJoin { user_id } if user_id == "bob");
    let ended_by = |source: Source| {
        move |entry: &TimelineEntry| {
            entry.source == source
                && matches!(entry.event, Event::StatusChanged { old_status, new_status: CallStatus::Idle } if old_status.is_calling())
        }
    };
    let trace = stored_trace(dir, me, call_id);
    let sides = entries(&trace);
    // Ours, theirs and the server's: each kit's callbacks and the routing.
    let of = |user: &str, origin: Origin| {
        sides
            .iter()
            .filter(|entry| entry.user_id == user && entry.origin == origin)
            .map(|entry| entry.kind().as_str())
            .collect::<Vec<_>>()
    };
    for kind in ["statusChanged", "afterCalling"] {
        assert!(of(me, Origin::Local).contains(&kind), "{me}: {trace}");
        assert!(
            of(them, Origin::Peer).contains(&kind),
            "{me} has {them}'s {kind}: {trace}"
        );
    }
    let server: Vec<String> = sides
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::ServerEvent { name, .. } if entry.origin == Origin::Server => Some(name.clone()),
            _ => None,
        })
        .collect();
    // The callee hears the routing from its invitation on.
    let routed = [
        "caller_start_call",
        "callee_receive_call",
        "callee_accept_call",
        "caller_call_end",
    ];
    let from = usize::from(me == "bob");
    for name in &routed[from..] {
        assert!(
            server.iter().any(|seen| seen == *name),
            "{me} lacks {name}: {server:?}"
        );
    }
    // The other side's entries came through the server's clock, with their error bound.
    let errors: Vec<u64> = sides
        .iter()
        .filter(|entry| entry.origin != Origin::Local)
        .filter_map(|entry| entry.clock_error_micros)
        .collect();
    assert!(
        !errors.is_empty(),
        "{me}: no entry placed through the server's clock"
    );
    eprintln!(
        "{me}: {} entries of {them}, clock error bounds {}..{} µs",
        of(them, Origin::Peer).len(),
        errors.iter().min().unwrap(),
        errors.iter().max().unwrap()
    );
    // Every receipt after its send, on this side's one axis.
    let pairs = [
        (
            first_at(&sides, "bob", accepted),
            first_at(&sides, "alice", joined),
            "bob's accept, alice's join",
        ),
        (
            first_at(&sides, "alice", ended_by(Source::Local)),
            first_at(&sides, "bob", ended_by(Source::Remote)),
            "alice's hang-up, bob's end",
        ),
    ];
    for (send, receipt, what) in pairs {
        assert!(
            send <= receipt,
            "{me}: {what}: sent at {send}, received at {receipt} µs"
        );
    }
    // Each side and the cross-side rules of the contract.
    let (clean, findings) = check(dir, &format!("{me}-trace.jsonl"), &trace);
    assert!(clean, "{me}'s two-sided trace: {findings}");
}

#[test]
fn two_clients_that_share_traces_each_hold_both_sides_in_causal_order_and_a_third_user_nothing() {
    use callscope::timeline::Origin;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a secret for the trace-sharing test").unwrap();
    let (_server, url) = standalone_server(dir.path(), &secret);
    let share = ["--share-trace", "--json"];
    let bob = answerer(
        dir.path(),
        &secret,
        &url,
        "bob",
        &[&share[..], &["--accept-after", "0.5", "--wait", "60"]].concat(),
    );
    // Carol asks for traces too, and shares hers, but is in no call: she must hear nothing.
    let carol = answerer(
        dir.path(),
        &secret,
        &url,
        "carol",
        &[&share[..], &["--wait", "60"]].concat(),
    );
    let call = callscope()
        .arg("--data-dir")
        .arg(dir.path().join("alice"))
        .args([
            "call",
            "bob",
            "--user",
            "alice",
            "--server",
            &url,
            "--secret-file",
        ])
        .arg(&secret)
        .args(["--hangup-after", "1"])
        .args(share)
        .args(SYNTHETIC)
        .output()
        .unwrap();
    let answered = bob.wait_with_output().unwrap();
    // Carol was online all through the call; what she printed and stored is all there is.
    let mut carol = carol;
    carol.kill().unwrap();
    let carol = carol.wait_with_output().unwrap();
    let alice_out = String::from_utf8_lossy(&call.stdout).into_owned();
    assert!(call.status.success(), "alice: {alice_out}");
    assert!(answered.status.success());
    let call_id = entries(&alice_out)
        .iter()
        .find_map(|entry| entry.call_id.clone())
        .unwrap();
    for (me, them) in [("alice", "bob"), ("bob", "alice")] {
        assert_both_sides(dir.path(), me, them, &call_id);
    }
    // Carol shared nothing and received nothing: no entry of another side, none of the call.
    let carol_out = String::from_utf8_lossy(&carol.stdout).into_owned();
    let carols = entries(&carol_out);
    assert!(
        carols.iter().all(|entry| entry.origin == Origin::Local
            && entry.call_id.as_deref() != Some(call_id.as_str())),
        "carol: {carol_out}"
    );
    assert!(
        stored_trace(dir.path(), "carol", &call_id)
            .trim()
            .is_empty(),
        "carol's store holds the call"
    );
}

/// `callscope call decline --audio --json` in a data directory of its own: what it printed.
fn declined_call(dir: &Path, name: &str) -> String {
    let output = callscope()
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(["call", "decline", "--audio", "--json"])
        .args(SYNTHETIC)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `callscope diff` of two files: whether it passed, and what it printed.
fn diff_files(dir: &Path, a: &str, b: &str, extra: &[&str]) -> (bool, String) {
    let output = callscope()
        .arg("diff")
        .arg(dir.join(a))
        .arg(dir.join(b))
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn diff_passes_two_runs_of_a_flow_and_finds_a_removed_callback_and_a_changed_reason() {
    let dir = tempfile::tempdir().unwrap();
    let first = declined_call(dir.path(), "first");
    let second = declined_call(dir.path(), "second");
    std::fs::write(dir.path().join("a.jsonl"), &first).unwrap();
    std::fs::write(dir.path().join("b.jsonl"), &second).unwrap();
    // Two runs of one flow: other call ids and times, the same callbacks.
    let (same, printed) = diff_files(dir.path(), "a.jsonl", "b.jsonl", &["--tolerance-ms", "500"]);
    assert!(same, "two runs differ: {printed}");
    // Without the rejection callback.
    let removed: Vec<&str> = second
        .lines()
        .filter(|line| !line.contains("\"onUserReject\""))
        .collect();
    assert!(
        removed.len() < second.lines().count(),
        "no onUserReject in {second}"
    );
    std::fs::write(dir.path().join("removed.jsonl"), removed.join("\n")).unwrap();
    let (same, printed) = diff_files(
        dir.path(),
        "a.jsonl",
        "removed.jsonl",
        &["--tolerance-ms", "500"],
    );
    assert!(!same);
    assert!(
        printed
            .lines()
            .any(|line| line.starts_with("missing:") && line.contains("onUserReject")),
        "{printed}"
    );
    // afterCalling with another reason.
    let changed: Vec<String> = second
        .lines()
        .map(|line| {
            let mut entry: serde_json::Value = serde_json::from_str(line).unwrap();
            if entry["kind"] == "afterCalling" {
                entry["payload"]["reason"] = "line-busy".into();
            }
            entry.to_string()
        })
        .collect();
    std::fs::write(dir.path().join("changed.jsonl"), changed.join("\n")).unwrap();
    let (same, printed) = diff_files(
        dir.path(),
        "a.jsonl",
        "changed.jsonl",
        &["--tolerance-ms", "500"],
    );
    assert!(!same);
    assert!(
        printed
            .lines()
            .any(|line| line.starts_with("changed: afterCalling")
                && line.contains("reason: \"reject\" -> \"line-busy\"")),
        "{printed}"
    );
    // Replayed, the recording fires the same callbacks in its order; a switched-off one not.
    let replayed = callscope()
        .args(["replay", "--fast", "--json", "--disable", "onUserReject"])
        .arg(dir.path().join("a.jsonl"))
        .output()
        .unwrap();
    assert!(replayed.status.success());
    let fired: Vec<String> = String::from_utf8_lossy(&replayed.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let recorded: Vec<String> = entries(&first)
        .iter()
        .filter(|entry| entry.kind().as_str() != "onUserReject")
        .map(|entry| entry.kind().as_str().to_owned())
        .collect();
    assert_eq!(fired, recorded);
}

#[test]
fn a_real_call_survives_a_three_second_signaling_cut_and_ends_by_its_hang_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = callscope()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["call", "echo", "--json", "--hangup-after", "6"])
        .args(["--cut-signaling-after", "1", "--for", "3"])
        .args(SYNTHETIC)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{printed}\n{said}");
    assert!(said.contains("signaling cut for 3 s"), "{said}");
    // Through the cut and back: the call ended by our hang-up, once.
    assert_eq!(
        end_reasons(&entries(&printed)),
        [EndReason::Hangup],
        "{printed}"
    );
    let (clean, findings) = check(dir.path(), "cut.jsonl", &printed);
    assert!(clean, "{findings}");
}

/// Bob's export, imported on alice's side, joins the call as its other side; the merged trace
/// keeps the contract on each side and across them.
fn assert_import_merges_the_sides(dir: &Path, alice: &str, bob: &str) {
    // Bob's export, imported on alice's side, joins the call as its other side.
    let imported = callscope()
        .arg("--data-dir")
        .arg(dir.join("alice"))
        .arg("timeline")
        .arg("--import")
        .arg(dir.join("bob.jsonl"))
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let call_id = entries(alice)
        .iter()
        .find_map(|entry| entry.call_id.clone())
        .unwrap();
    let trace = callscope()
        .arg("--data-dir")
        .arg(dir.join("alice"))
        .args(["timeline", "--call", &call_id, "--json"])
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&trace.stdout).into_owned();
    let sides = entries(&trace);
    let bobs: Vec<&TimelineEntry> = sides
        .iter()
        .filter(|entry| entry.user_id == "bob")
        .collect();
    let bob_in_call = entries(bob)
        .iter()
        .filter(|entry| entry.call_id.as_deref() == Some(call_id.as_str()))
        .count();
    assert_eq!(
        bobs.len(),
        bob_in_call,
        "every entry bob recorded about the call"
    );
    assert!(
        bobs.iter()
            .all(|entry| entry.origin == callscope::timeline::Origin::Peer
                && entry.session.as_deref() == Some("import:bob.jsonl"))
    );
    assert!(sides.iter().any(
        |entry| entry.user_id == "alice" && entry.origin == callscope::timeline::Origin::Local
    ));
    // The merged trace keeps the contract on each side and across them.
    let (clean, findings) = check(dir, "trace.jsonl", &trace);
    assert!(clean, "the two-sided trace: {findings}");
}

#[test]
fn check_reports_each_violation_with_its_seq_and_fails_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let demo = callscope()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--json"])
        .output()
        .unwrap();
    assert!(demo.status.success());
    let clean = String::from_utf8_lossy(&demo.stdout).into_owned();
    let (passed, findings) = check(dir.path(), "demo.jsonl", &clean);
    assert!(passed, "the scripted demo breaks the contract: {findings}");
    // Break it: drop the first call's afterCalling, and make its reason a lie elsewhere.
    let mut lines: Vec<String> = clean.lines().map(str::to_owned).collect();
    let after = lines
        .iter()
        .position(|line| line.contains("\"kind\":\"afterCalling\""))
        .unwrap();
    let dropped: TimelineEntry = serde_json::from_str(&lines.remove(after)).unwrap();
    let second = lines
        .iter()
        .position(|line| line.contains("\"kind\":\"afterCalling\""))
        .unwrap();
    lines[second] = lines[second].replace("\"reason\":\"kicked-out\"", "\"reason\":\"reject\"");
    let broken = lines.join("\n") + "\n";
    let (passed, findings) = check(dir.path(), "broken.jsonl", &broken);
    assert!(!passed);
    assert!(
        findings.contains(&format!("#{} ", dropped.seq + 1)) && findings.contains("[sequence]"),
        "{findings}"
    );
    assert!(findings.contains("[missing-afterCalling]"), "{findings}");
    assert!(findings.contains("[reason]"), "{findings}");
    // One line per finding.
    assert!(
        findings.lines().all(|line| line.starts_with('#')),
        "{findings}"
    );
    let mut stdin_check = callscope()
        .args(["check", "/no/such/file.jsonl"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = stdin_check.stdin.take().unwrap().write_all(b"");
    assert!(!stdin_check.wait().unwrap().success());
}

/// Starts `callscope call echo` on `data_dir`, printing JSON Lines.
fn call_echo(data_dir: &Path) -> Child {
    callscope()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["call", "echo", "--json", "--hangup-after", "5"])
        .args(SYNTHETIC)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn every_entry_printed_before_a_kill_9_is_in_the_store_and_no_number_is_handed_out_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut printed_everywhere: Vec<TimelineEntry> = Vec::new();
    for round in 0..4 {
        let mut child = call_echo(dir.path());
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Kill at a different moment each round: after 2, 6, 10, 14 printed entries.
        let mut printed = Vec::new();
        while printed.len() < 2 + round * 4 {
            let Some(Ok(line)) = lines.next() else { break };
            printed.push(serde_json::from_str::<TimelineEntry>(&line).unwrap());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!printed.is_empty(), "round {round} printed nothing");
        let stored =
            callscope::timeline::read_stored(dir.path(), &callscope::timeline::Query::all())
                .unwrap();
        for entry in &printed {
            assert!(
                stored.contains(entry),
                "round {round}: printed #{} is not in the store",
                entry.seq
            );
        }
        printed_everywhere.extend(printed);
    }
    let mut seqs: Vec<u64> = printed_everywhere.iter().map(|entry| entry.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        printed_everywhere.len(),
        "a sequence number was printed twice"
    );
}

#[test]
fn a_second_writer_of_one_data_directory_fails_at_once_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = callscope()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["call", "noanswer", "--audio", "--json"])
        .args(SYNTHETIC)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once it printed, it holds the directory.
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let _ = lines.next();
    let second = callscope()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["call", "echo", "--json"])
        .args(SYNTHETIC)
        .output()
        .unwrap();
    // It failed while the first still held the directory: it did not wait for it.
    let first_still_running = first.try_wait().unwrap().is_none();
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        first_still_running,
        "the second waited for the first to end"
    );
    assert!(!second.status.success());
    assert!(second.stdout.is_empty(), "it printed entries");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("in use by another running callscope"),
        "{said}"
    );
}

#[test]
fn usersig_refuses_an_id_that_breaks_the_rule_and_a_lifetime_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s").unwrap();
    for (user, expire) in [("", "60"), ("a b", "60"), ("bob", "999999999")] {
        let output = callscope()
            .args([
                "usersig",
                "--user",
                user,
                "--expire-secs",
                expire,
                "--secret-file",
            ])
            .arg(&secret)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{user:?} {expire}");
        assert!(output.stdout.is_empty());
    }
    let good = callscope()
        .args(["usersig", "--user", "bob", "--secret-file"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(good.status.success());
    // A revocation is a line appended to the list.
    let list = dir.path().join("revoked");
    let revoked = callscope()
        .args(["usersig", "--user", "bob", "--revoke", "--revocations"])
        .arg(&list)
        .output()
        .unwrap();
    assert!(revoked.status.success());
    let revocations =
        callscope::signaling::usersig::Revocations::parse(&std::fs::read_to_string(&list).unwrap());
    assert!(revocations.revoked_before("bob").is_some());
}

/// callscope run inside network namespace `name`.
fn callscope_in(name: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", name, env!("CARGO_BIN_EXE_callscope")]);
    command
}

/// The `onCallStats` entries in `entries` about `other`.
fn call_stats<'a>(
    entries: &'a [TimelineEntry],
    other: &'a str,
) -> impl Iterator<Item = &'a callscope::event::CallStats> {
    entries.iter().filter_map(move |entry| match &entry.event {
        Event::CallStats(stats) if stats.user_id == other => Some(stats),
        _ => None,
    })
}

#[test]
fn a_call_between_two_networks_that_reach_only_coturn_connects_through_relays_with_media_both_ways()
{
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a secret for the TURN test").unwrap();
    // alice and bob each in a network of their own: one link to this machine, nothing else.
    let isolated = common::turn::Isolated::new(2);
    let (alice_net, bob_net) = (&isolated.namespaces[0], &isolated.namespaces[1]);
    assert!(
        !alice_net.routes_to(&bob_net.address) && !bob_net.routes_to(&alice_net.address),
        "the two networks must not reach each other"
    );
    let coturn = common::turn::Coturn::start(
        dir.path(),
        &[&alice_net.host, &bob_net.host],
        &alice_net.host,
        &[
            ("alice", "alice-turn-password"),
            ("bob", "bob-turn-password"),
        ],
    );
    // The signaling server on every address of this machine: each side reaches it on its link.
    let (_server, port) = server_on(dir.path(), &secret, "0.0.0.0:0");
    let turn = |net: &common::turn::Namespace| format!("turn:{}:{}", net.host, coturn.port);
    let (alice_turn, bob_turn) = (turn(alice_net), turn(bob_net));
    let answer = answerer_by(
        callscope_in(&bob_net.name),
        dir.path(),
        &secret,
        &format!("ws://{}:{port}", bob_net.host),
        "bob",
        &[
            "--accept-after",
            "0.3",
            "--json",
            "--wait",
            "60",
            "--ice-server",
            &bob_turn,
            "--ice-username",
            "bob",
            "--ice-credential",
            "bob-turn-password",
            "--ice-relay-only",
        ],
    );
    let call = callscope_in(&alice_net.name)
        .arg("--data-dir")
        .arg(dir.path().join("alice"))
        .args(["call", "bob", "--user", "alice", "--secret-file"])
        .arg(&secret)
        .args(["--server", &format!("ws://{}:{port}", alice_net.host)])
        .args(["--hangup-after", "4", "--json"])
        .args(SYNTHETIC)
        .args(["--ice-server", &alice_turn, "--ice-username", "alice"])
        .args([
            "--ice-credential",
            "alice-turn-password",
            "--ice-relay-only",
        ])
        .output()
        .unwrap();
    let answered = answer.wait_with_output().unwrap();
    let alice = String::from_utf8_lossy(&call.stdout).into_owned();
    let bob = String::from_utf8_lossy(&answered.stdout).into_owned();
    let log = coturn.log();
    assert!(call.status.success(), "alice: {alice}\ncoturn: {log}");
    assert!(answered.status.success(), "bob: {bob}\ncoturn: {log}");
    for (name, lines) in [("alice.jsonl", &alice), ("bob.jsonl", &bob)] {
        let (clean, findings) = check(dir.path(), name, lines);
        assert!(clean, "{name}: {findings}");
    }
    let (alice, bob) = (entries(&alice), entries(&bob));
    assert_eq!(end_reasons(&alice), [EndReason::Hangup]);
    assert_eq!(end_reasons(&bob), [EndReason::Hangup]);
    assert_relayed_both_ways(&alice, &bob, &log);
    // coturn allocated a relay for each, with its own credentials, and relayed between them.
    for user in ["alice", "bob"] {
        assert!(
            log.lines()
                .any(|line| line.contains(&format!("user <{user}>"))
                    && line.contains("ALLOCATE processed, success")),
            "no allocation for {user} in coturn's log:\n{log}"
        );
    }
    assert!(log.contains("CHANNEL_BIND processed, success"), "{log}");
    assert!(log.contains(&format!("realm=<{}>", coturn.realm)), "{log}");
}

/// Each side connected to the other, only ever over a relayed path, and decoded what came
/// through it.
fn assert_relayed_both_ways(alice: &[TimelineEntry], bob: &[TimelineEntry], log: &str) {
    for (who, timeline, other) in [("alice", alice, "bob"), ("bob", bob, "alice")] {
        let at = |wanted: ConnectionState| {
            timeline.iter().find_map(|entry| match &entry.event {
                Event::ConnectionStateChanged { user_id, state }
                    if user_id == other && *state == wanted =>
                {
                    Some(entry.at.mono_micros)
                }
                _ => None,
            })
        };
        let connected = at(ConnectionState::Connected);
        assert!(
            connected.is_some(),
            "{who} never connected to {other}\ncoturn: {log}"
        );
        // A figure for the reader, not a limit: a path through a relay takes longer to set up.
        if let (Some(connecting), Some(connected)) = (at(ConnectionState::Connecting), connected) {
            eprintln!(
                "{who}: connecting → connected to {other} through the relay in {} ms",
                connected.saturating_sub(connecting) / 1000
            );
        }
        let stats: Vec<_> = call_stats(timeline, other).collect();
        // Every path reported is relayed, and what came from the other side through it was
        // decoded: media both ways.
        assert!(!stats.is_empty(), "{who} has no stats of {other}");
        for stats in &stats {
            assert!(
                stats.local_candidate.is_empty() || stats.local_candidate == "relay",
                "{who}'s path to {other}: {stats:?}"
            );
        }
        let last = stats.last().unwrap();
        assert_eq!(last.local_candidate, "relay", "{who}: {last:?}");
        // Media flowed (how much is the benches' to say: a loaded machine sends less).
        assert!(
            last.frames_decoded >= 5 && last.bitrate_kbps > 0.0,
            "{who} received too little from {other}: {last:?}"
        );
    }
}

/// A damaged copy of the export `good` (its lines), named for what is wrong, and the line the
/// damage is on.
fn damaged(good: &[String]) -> Vec<(&'static str, Vec<u8>, usize)> {
    let lines = |count: usize| -> Vec<u8> {
        good.iter()
            .take(count)
            .flat_map(|line| format!("{line}\n").into_bytes())
            .collect()
    };
    let mut truncated = lines(3);
    truncated.extend_from_slice(&good[3].as_bytes()[..good[3].len() / 2]);
    let mut wrong_kind = lines(2);
    wrong_kind.extend_from_slice(good[2].replace("\"kind\":\"", "\"kind\":\"x").as_bytes());
    let mut binary = lines(1);
    binary.extend((0..4096_u32).map(|byte| u8::try_from(byte % 251).unwrap() | 0x80));
    let mut huge_line = lines(1);
    huge_line.extend_from_slice(format!("{{\"pad\":\"{}\"}}\n", "x".repeat(10 << 20)).as_bytes());
    vec![
        ("truncated", truncated, 4),
        ("wrong kind", wrong_kind, 3),
        ("binary", binary, 2),
        ("10 MB line", huge_line, 2),
    ]
}

#[test]
fn damaged_timeline_files_get_a_clear_error_naming_their_line_and_import_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = callscope()
        .arg("--data-dir")
        .arg(dir.path().join("recorded"))
        .args(["call", "echo", "--audio", "--hangup-after", "1"])
        .args(SYNTHETIC)
        .output()
        .unwrap();
    assert!(recorded.status.success());
    let export = dir.path().join("good.jsonl");
    let exported = callscope()
        .arg("--data-dir")
        .arg(dir.path().join("recorded"))
        .args(["timeline", "--export"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(exported.status.success());
    let good: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(good.len() >= 5, "{good:?}");
    for (what, bytes, line) in damaged(&good) {
        let file = dir.path().join("damaged.jsonl");
        std::fs::write(&file, bytes).unwrap();
        let store = dir
            .path()
            .join(format!("import-{}", what.replace(' ', "-")));
        let commands: [Vec<&std::ffi::OsStr>; 4] = [
            vec!["check".as_ref(), file.as_os_str()],
            vec!["diff".as_ref(), export.as_os_str(), file.as_os_str()],
            vec!["replay".as_ref(), file.as_os_str()],
            vec!["timeline".as_ref(), "--import".as_ref(), file.as_os_str()],
        ];
        for args in commands {
            let ran = callscope()
                .arg("--data-dir")
                .arg(&store)
                .args(&args)
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&ran.stderr);
            assert!(!ran.status.success(), "{what}, {args:?}: it succeeded");
            assert!(
                said.contains(&format!("line {line}")),
                "{what}, {args:?}: the error names no line {line}: {said}"
            );
            assert!(
                said.len() < 2_000,
                "{what}, {args:?}: {} bytes of error",
                said.len()
            );
            assert!(
                ran.stdout.is_empty(),
                "{what}, {args:?}: it printed entries"
            );
        }
        // The import took nothing, not even the good lines before the damage.
        let listed = callscope()
            .arg("--data-dir")
            .arg(&store)
            .args(["timeline", "--json"])
            .output()
            .unwrap();
        assert!(listed.status.success());
        assert!(
            listed.stdout.is_empty(),
            "{what}: the import took some entries"
        );
    }
}

#[test]
fn a_demo_peer_shares_its_side_with_a_caller_who_asks_from_the_command_line_as_in_the_window() {
    use callscope::timeline::{CheckOptions, Origin, check};
    let dir = tempfile::tempdir().unwrap();
    let call = callscope()
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "call",
            "echo",
            "--audio",
            "--hangup-after",
            "1",
            "--share-trace",
            "--json",
        ])
        .args(SYNTHETIC)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&call.stdout).into_owned();
    assert!(call.status.success(), "{out}");
    let printed = entries(&out);
    let echo: Vec<&TimelineEntry> = printed
        .iter()
        .filter(|entry| entry.user_id == "echo" && entry.origin == Origin::Peer)
        .collect();
    assert!(
        echo.iter()
            .any(|entry| matches!(entry.event, Event::CallReceived { .. })),
        "echo's side: {echo:?}"
    );
    assert!(
        echo.iter()
            .any(|entry| matches!(entry.event, Event::AfterCalling(_))),
        "echo's side never ended: {echo:?}"
    );
    // Both sides together keep the contract.
    let findings = check(&printed, &CheckOptions::default());
    assert!(findings.is_empty(), "{findings:#?}");
}
