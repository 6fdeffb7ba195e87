//! `callscope bench attack`: strangers on 253 loopback addresses (127.0.0.2–254) attack a fresh
//! `callscope server` while a legitimate pair on 127.0.0.1 logs in and calls, round after round.
//! For each attack: the server's memory (from `/proc`) at its start (after the pair's first
//! calls), at its peak and 10 s after the attack, the bytes it says it holds for clients (its
//! `--stats-every` counters), the pair's log-in → accepted latency and failures during the
//! attack, and the connections it admitted, evicted, expired and turned away.

use std::io::BufRead as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callscope::call::{Action, CallSignal, Signal};
use callscope::model::MediaType;
use callscope::signaling::{ClientMessage, ServerMessage};
use futures_util::SinkExt as _;
use tokio::io::AsyncReadExt as _;
use tokio_tungstenite::tungstenite::Message;

use super::bench::{SECRET, receive, resident_kib, send, status_kib, tempfile_dir};
use super::bench_abuse::{connect, legitimate_rounds, log_in, percentiles, tcp_from};

/// Options of `callscope bench attack`.
#[derive(Debug, clap::Args)]
pub struct AttackBenchArgs {
    /// How long each attack lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The `index`-th attacking address, 127.0.0.2 to 127.0.0.254 in turn.
fn stranger(index: usize) -> IpAddr {
    let last = u8::try_from(2 + index % 253).unwrap_or(254);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A `callscope server` printing its counters every second, its file limit set by `prlimit`.
struct Target {
    child: Child,
    address: SocketAddr,
    counters: Arc<Mutex<Vec<serde_json::Value>>>,
    dir: std::path::PathBuf,
}

impl Target {
    fn start(name: &str, files: u64) -> anyhow::Result<Self> {
        let dir = tempfile_dir()?.join(name);
        std::fs::create_dir_all(&dir)?;
        let secret = dir.join("secret");
        std::fs::write(&secret, SECRET)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={files}:{files}"))
            .arg(std::env::current_exe()?)
            .arg("--data-dir")
            .arg(&dir)
            .args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--secret-file")
            .arg(&secret)
            .args(["--stats-every", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting callscope server under prlimit")?;
        let counters = Arc::new(Mutex::new(Vec::new()));
        let lines = std::io::BufReader::new(child.stdout.take().context("its stdout")?).lines();
        let kept = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("server counters".into())
            .spawn(move || {
                for line in lines.map_while(Result::ok) {
                    if let Ok(value) = serde_json::from_str(&line) {
                        kept.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(value);
                    }
                }
            })?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            counters,
            dir,
        })
    }

    /// Its resident memory and, of that, the anonymous part (its heap: the rest is its own
    /// code and libraries as they are paged in), in KiB.
    fn resident_kib(&self) -> [u64; 2] {
        let pid = self.child.id();
        [
            resident_kib(pid).unwrap_or(0),
            status_kib(pid, "RssAnon:").unwrap_or(0),
        ]
    }

    /// The counters printed so far.
    fn counters(&self) -> Vec<serde_json::Value> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one attack does, from one stranger's address, until `stop`.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// Opens a WebSocket, never logs in, sends 70 frames of 60 KB; again when closed.
    BytesBeforeLogIn,
    /// Opens a TCP connection and never sends a byte; again when closed.
    IdleSockets,
    /// Opens a WebSocket and never logs in; again when closed.
    SilentWebSockets,
}

impl Attack {
    async fn run(
        self,
        server: SocketAddr,
        from: IpAddr,
        stop: Arc<AtomicBool>,
        opened: Arc<AtomicU64>,
    ) {
        let frame = "x".repeat(60_000);
        while !stop.load(Ordering::Relaxed) {
            match self {
                Self::BytesBeforeLogIn => {
                    if let Ok(mut socket) = connect(server, from).await {
                        opened.fetch_add(1, Ordering::Relaxed);
                        for _ in 0..70 {
                            if socket.send(Message::text(frame.clone())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                Self::IdleSockets => {
                    if let Ok(mut stream) = tcp_from(from, server).await {
                        opened.fetch_add(1, Ordering::Relaxed);
                        let mut byte = [0_u8; 1];
                        let _ =
                            tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte))
                                .await;
                    }
                }
                Self::SilentWebSockets => {
                    if let Ok(mut socket) = connect(server, from).await {
                        opened.fetch_add(1, Ordering::Relaxed);
                        // Whatever the server says (the reason it closes), until it closes.
                        while let Ok(Ok(_)) =
                            tokio::time::timeout(Duration::from_secs(30), receive(&mut socket))
                                .await
                        {}
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The largest of `key` over `counters`.
fn peak(counters: &[serde_json::Value], key: &str) -> u64 {
    counters
        .iter()
        .filter_map(|line| line[key].as_u64())
        .max()
        .unwrap_or(0)
}

/// `attack` from `connections` strangers for `seconds` against a fresh server with `files`
/// open files at most, while the legitimate pair calls round after round.
fn flood(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    attack: Attack,
    connections: usize,
    files: u64,
    seconds: u64,
) -> anyhow::Result<serde_json::Value> {
    let target = Target::start(name, files)?;
    // The start is a server in service: the pair's first calls page in the code they use.
    let (_, failed_before) = runtime.block_on(legitimate_rounds(target.address, 1_000, 3));
    anyhow::ensure!(
        failed_before == 0,
        "a legitimate call failed before the attack"
    );
    std::thread::sleep(Duration::from_secs(1));
    let start_kib = target.resident_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let attackers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("attacker")
        .enable_all()
        .build()?;
    let tasks: Vec<_> = (0..connections)
        .map(|index| {
            attackers.spawn(attack.run(
                target.address,
                stranger(index),
                Arc::clone(&stop),
                Arc::clone(&opened),
            ))
        })
        .collect();
    // The server's memory, sampled through the attack.
    let sampling = Arc::new(AtomicBool::new(false));
    let peak_kib = {
        let (sampling, pid) = (Arc::clone(&sampling), target.child.id());
        std::thread::Builder::new()
            .name("rss".into())
            .spawn(move || {
                let mut peak = 0;
                while !sampling.load(Ordering::Relaxed) {
                    peak = peak.max(resident_kib(pid).unwrap_or(0));
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak
            })?
    };
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds.saturating_sub(1).max(1));
    let (mut millis, mut failed) = (Vec::new(), 0);
    for round in 0.. {
        if Instant::now() >= deadline {
            break;
        }
        let (mut took, lost) = runtime.block_on(legitimate_rounds(target.address, round, 1));
        millis.append(&mut took);
        failed += lost;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    attackers.shutdown_timeout(Duration::from_secs(1));
    sampling.store(true, Ordering::Relaxed);
    let peak_kib = peak_kib.join().unwrap_or(0);
    let during = target.counters();
    std::thread::sleep(Duration::from_secs(10));
    let after_kib = target.resident_kib();
    let after = target.counters();
    let last = after.last().cloned().unwrap_or_default();
    let rounds = millis.len() + failed;
    Ok(serde_json::json!({
        "attack": name,
        "strangers": connections,
        "connections_opened": opened.load(Ordering::Relaxed),
        "server_files": files,
        "rss_kib_start_peak_after": [start_kib[0], peak_kib.max(start_kib[0]), after_kib[0]],
        "anon_rss_kib_start_after": [start_kib[1], after_kib[1]],
        "held_bytes_peak": peak(&during, "held_bytes"),
        "held_bytes_after": last["held_bytes"],
        "pending_peak": peak(&during, "pending"),
        "legit_rounds": rounds,
        "legit_failed": failed,
        "legit_login_to_accepted_ms_p50_p95": percentiles(&mut millis),
        "admitted_evicted_expired_turned_away": [
            last["admitted"], last["evicted"], last["expired"], last["turned_away"],
        ],
    }))
}

/// Strangers, each logged in from an address of its own, invite an accomplice by the id of a
/// legitimate pair's live call, of its ended one and by an unknown id; how many distinct
/// answers they got (1: the answer tells nothing) and whether the live call went on.
fn probe(runtime: &tokio::runtime::Runtime, strangers: usize) -> anyhow::Result<serde_json::Value> {
    let target = Target::start("call-id probe", 4096)?;
    runtime.block_on(async {
        let server = target.address;
        let (mut alice, mut bob) =
            tokio::try_join!(log_in(server, "alice"), log_in(server, "bob"))?;
        for call_id in ["pair-ended", "pair-live"] {
            send(&mut alice, &invite(call_id, "bob")).await?;
            until(&mut bob, |s| matches!(s, Signal::Invited { .. })).await?;
            send(
                &mut bob,
                &ClientMessage::Call(Action::Accept {
                    call_id: call_id.into(),
                }),
            )
            .await?;
            until(&mut alice, |s| matches!(s, Signal::Accepted { .. })).await?;
        }
        send(
            &mut alice,
            &ClientMessage::Call(Action::Hangup {
                call_id: "pair-ended".into(),
            }),
        )
        .await?;
        until(&mut bob, |s| matches!(s, Signal::HungUp { .. })).await?;
        let mut eve = log_in(server, "eve").await?;
        let mut answers = std::collections::BTreeSet::new();
        for index in 0..strangers {
            let user = format!("mallory{index}");
            let mut mallory =
                super::bench::welcomed(connect(server, stranger(index)).await?, &user).await?;
            for call_id in ["pair-live", "pair-ended", "never-used"] {
                send(&mut mallory, &invite(call_id, "eve")).await?;
                let answer = receive(&mut mallory).await?;
                answers.insert(format!("{answer:?}").replace(call_id, "ID"));
                until(&mut eve, |s| matches!(s, Signal::Invited { .. })).await?;
                send(
                    &mut eve,
                    &ClientMessage::Call(Action::Reject {
                        call_id: call_id.into(),
                    }),
                )
                .await?;
                until(&mut mallory, |s| matches!(s, Signal::Rejected { .. })).await?;
            }
        }
        // The pair's call goes on: a hang-up reaches the other side.
        send(
            &mut alice,
            &ClientMessage::Call(Action::Hangup {
                call_id: "pair-live".into(),
            }),
        )
        .await?;
        let live_call_went_on = until(&mut bob, |s| matches!(s, Signal::HungUp { .. }))
            .await
            .is_ok();
        anyhow::Ok(serde_json::json!({
            "attack": "call-id probe",
            "strangers": strangers,
            "probes": strangers * 3,
            "distinct_answers": answers.len(),
            "live_call_went_on": live_call_went_on,
        }))
    })
}

fn invite(call_id: &str, callee: &str) -> ClientMessage {
    ClientMessage::Call(Action::Invite {
        call_id: call_id.into(),
        callees: vec![callee.into()],
        media: MediaType::Audio,
        group: false,
        timeout_secs: 30,
    })
}

/// Reads `socket` until a call signal `wanted` takes, up to 10 s.
async fn until(
    socket: &mut super::bench_abuse::Socket,
    wanted: impl Fn(&Signal) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let ServerMessage::Call(CallSignal { signal, .. }) = receive(socket).await?
                && wanted(&signal)
            {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .context("no such signal in time")?
}

/// Runs the attacks and prints their figures.
pub fn attack(args: &AttackBenchArgs) -> anyhow::Result<()> {
    // This process holds the strangers' side of every connection.
    rlimit::increase_nofile_limit(16_384)?;
    // The first server may open as many files as this process may (prlimit cannot raise more).
    let files =
        rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(4_096, |(_, hard)| hard.min(16_384));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let seconds = args.seconds;
    let floods = [
        flood(
            &runtime,
            "bytes before log-in",
            Attack::BytesBeforeLogIn,
            1_000,
            files,
            seconds,
        )?,
        flood(
            &runtime,
            "idle sockets",
            Attack::IdleSockets,
            1_265,
            1_024,
            seconds,
        )?,
        flood(
            &runtime,
            "silent WebSockets",
            Attack::SilentWebSockets,
            1_100,
            1_024,
            seconds,
        )?,
    ];
    let probe = probe(&runtime, 50)?;
    let figures = serde_json::json!({ "floods": floods, "probe": probe });
    if args.json {
        println!("{figures}");
        return Ok(());
    }
    for flood in &floods {
        print_flood(flood);
    }
    println!(
        "call-id probe: {} strangers, {} probes (live, ended, unknown id): {} distinct answer(s); the pair's call went on: {}",
        probe["strangers"], probe["probes"], probe["distinct_answers"], probe["live_call_went_on"],
    );
    Ok(())
}

fn print_flood(flood: &serde_json::Value) {
    let list = |key: &str| {
        flood[key]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_default()
    };
    let latency = &flood["legit_login_to_accepted_ms_p50_p95"];
    println!(
        "{}: {} strangers from 253 addresses ({} connections opened), server limited to {} files",
        flood["attack"], flood["strangers"], flood["connections_opened"], flood["server_files"],
    );
    println!(
        "  server RSS start / peak / 10 s after: {} KiB (of it anonymous, start / after: {} KiB); held for clients: peak {} bytes, after {}; pending peak {}",
        list("rss_kib_start_peak_after"),
        list("anon_rss_kib_start_after"),
        flood["held_bytes_peak"],
        flood["held_bytes_after"],
        flood["pending_peak"],
    );
    println!(
        "  legitimate log-in→accepted p50 / p95: {:.1} / {:.1} ms over {} rounds, {} failed; admitted / evicted / expired / turned away: {}",
        latency[0].as_f64().unwrap_or(f64::NAN),
        latency[1].as_f64().unwrap_or(f64::NAN),
        flood["legit_rounds"],
        flood["legit_failed"],
        list("admitted_evicted_expired_turned_away"),
    );
}
