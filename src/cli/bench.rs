//! `callscope bench signaling`: a load test of the signaling server on 127.0.0.1. It starts
//! `callscope server` as a child process, holds N logged-in WebSocket sessions against it, runs
//! call set-ups between pairs of them, and reports sessions held, set-ups per second and the
//! server's memory per idle session; then the abuse phases (`bench_abuse`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use callscope::call::Action;
use callscope::engine::sign_user_sig;
use callscope::model::MediaType;
use callscope::signaling::{ClientMessage, PROTOCOL_VERSION, ServerMessage, decode_server, encode};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Options of `callscope bench signaling`.
#[derive(Debug, clap::Args)]
pub struct SignalingBenchArgs {
    /// Concurrent logged-in sessions to hold.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Call set-ups to run (invite → accept → hang up), spread over the session pairs.
    #[arg(long, default_value_t = 20_000)]
    pub calls: usize,
    /// Pairs placing calls at once (the other sessions stay idle, logged in).
    #[arg(long, default_value_t = 5_000)]
    pub concurrent_pairs: usize,
    /// Connections that never finish their WebSocket handshake, held against a second
    /// server with the default limits (0: skip that phase).
    #[arg(long, default_value_t = 5_000)]
    pub stalled: usize,
    /// Abusive clients flooding a third server (default limits) while a legitimate pair
    /// measures its log-in → accepted latency (0: skip that phase).
    #[arg(long, default_value_t = 20)]
    pub abusers: usize,
    /// Legitimate rounds measured before, and again during, the flood.
    #[arg(long, default_value_t = 100)]
    pub rounds: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The secret every benchmark server and client shares.
pub(super) const SECRET: &str = "callscope-bench-secret";

/// The server's resident memory in KiB, from `/proc`.
pub(super) fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// CPU seconds (user + system) process `pid` (or `self`) has used, from `/proc`.
pub(super) fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; /proc
    // counts in USER_HZ, which is 100 on Linux.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// A `callscope server` child process.
pub(super) struct ServerProcess {
    pub(super) child: Child,
    pub(super) url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `callscope server` on a free port of 127.0.0.1 with `limits` (extra flags).
pub(super) fn start_server(dir: &Path, limits: &[&str]) -> anyhow::Result<ServerProcess> {
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET)?;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let child = Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(dir)
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .args(limits)
        .arg("--secret-file")
        .arg(&secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting callscope server")?;
    let url = format!("ws://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the server did not start listening");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(ServerProcess { child, url })
}

/// The next protocol message on `socket` (other frames are skipped).
pub(super) async fn receive<S>(socket: &mut WebSocketStream<S>) -> anyhow::Result<ServerMessage>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(decode_server(text.as_str())?),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("the server closed the connection"),
        }
    }
}

/// Sends `message` on `socket`.
pub(super) async fn send<S>(
    socket: &mut WebSocketStream<S>,
    message: &ClientMessage,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    socket.send(Message::text(encode(message))).await?;
    Ok(())
}

/// Logs `user` in on `socket`, which is returned once welcomed.
pub(super) async fn welcomed<S>(
    mut socket: WebSocketStream<S>,
    user: &str,
) -> anyhow::Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let login = ClientMessage::Login {
        version: PROTOCOL_VERSION,
        user_id: user.to_owned(),
        user_sig: sign_user_sig(SECRET.as_bytes(), user),
    };
    send(&mut socket, &login).await?;
    match receive(&mut socket).await? {
        ServerMessage::Welcome { .. } => Ok(socket),
        other => bail!("log-in of {user} answered {other:?}"),
    }
}

async fn log_in(url: &str, user: &str) -> anyhow::Result<Socket> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    welcomed(socket, user).await
}

/// Reads frames until one of type `wanted` (only the `type` is read: the load generator
/// stays light, so the machine's cores go to the server); an `error` fails the run.
async fn expect_type(socket: &mut Socket, wanted: &str) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let typed: Typed<'_> = serde_json::from_str(text.as_str())?;
                if typed.kind == wanted {
                    return Ok(());
                }
                if typed.kind == "error" {
                    bail!("the server refused a set-up: {}", text.as_str());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("the server closed the connection"),
        }
    }
}

async fn call_pair(
    caller: &mut Socket,
    answerer: &mut Socket,
    pair: usize,
    calls: usize,
    done: &AtomicU64,
) -> anyhow::Result<()> {
    for round in 0..calls {
        let call_id = format!("b-{pair}-{round}");
        let invite = ClientMessage::Call(Action::Invite {
            call_id: call_id.clone(),
            callees: vec![format!("u{}", pair * 2 + 1)],
            media: MediaType::Audio,
            group: false,
            timeout_secs: 30,
        });
        send(caller, &invite).await?;
        expect_type(answerer, "invited").await?;
        let accept = ClientMessage::Call(Action::Accept {
            call_id: call_id.clone(),
        });
        send(answerer, &accept).await?;
        expect_type(caller, "accepted").await?;
        done.fetch_add(1, Ordering::Relaxed);
        send(caller, &ClientMessage::Call(Action::Hangup { call_id })).await?;
        expect_type(answerer, "hung_up").await?;
    }
    Ok(())
}

/// Runs the load test and prints its figures.
pub fn signaling(args: &SignalingBenchArgs) -> anyhow::Result<()> {
    // Each session is a descriptor here and one in the server: lift the soft limit to the hard.
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    let clients = args.clients.max(2) & !1;
    if (clients as u64) + 256 > limit {
        bail!("{clients} sessions need more open files than the limit of {limit}");
    }
    let dir = tempfile_dir()?;
    // Every client of the load test comes from this one address.
    let server = start_server(
        &dir,
        &[
            "--max-connections-per-ip",
            "1000000",
            "--max-handshakes-per-ip",
            "1000000",
        ],
    )?;
    let pid = server.child.id();
    // One thread of clients: cross-thread wake-ups would cost more than they spread.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::thread::sleep(Duration::from_millis(300));
    let baseline_kib = resident_kib(pid)?;
    let started = Instant::now();
    let sockets = runtime.block_on(connect_all(&server.url, clients))?;
    let login_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let held_kib = resident_kib(pid)?;
    let per_session_bytes = (held_kib.saturating_sub(baseline_kib) * 1024) as f64 / clients as f64;
    let server_cpu_before = cpu_secs(&pid.to_string());
    let clients_cpu_before = cpu_secs("self");
    let (setups, setup_secs) =
        runtime.block_on(run_calls(sockets, args.calls, args.concurrent_pairs))?;
    let server_cpu = cpu_secs(&pid.to_string()) - server_cpu_before;
    let clients_cpu = cpu_secs("self") - clients_cpu_before;
    drop(server);
    let stalled = if args.stalled > 0 {
        super::bench_abuse::stalled_handshakes(&runtime, args.stalled)?
    } else {
        serde_json::Value::Null
    };
    let flood = if args.abusers > 0 {
        super::bench_abuse::flood(&runtime, args.abusers, args.rounds)?
    } else {
        serde_json::Value::Null
    };
    let figures = serde_json::json!({
        "stalled_handshakes": stalled,
        "flood": flood,
        "sessions_held": clients,
        "login_seconds": login_secs,
        "logins_per_sec": clients as f64 / login_secs,
        "server_rss_baseline_kib": baseline_kib,
        "server_rss_with_sessions_kib": held_kib,
        "bytes_per_idle_session": per_session_bytes,
        "call_setups": setups,
        "call_setup_seconds": setup_secs,
        "call_setups_per_sec": setups as f64 / setup_secs,
        "server_cpu_seconds_during_setups": server_cpu,
        "server_cpu_micros_per_setup": server_cpu * 1e6 / setups as f64,
        "clients_cpu_seconds_during_setups": clients_cpu,
    });
    if args.json {
        println!("{figures}");
    } else {
        println!("sessions held:            {clients} (logged in in {login_secs:.2} s)");
        println!(
            "server memory per session: {per_session_bytes:.0} bytes ({baseline_kib} KiB idle, {held_kib} KiB with sessions)"
        );
        println!(
            "call set-ups:             {setups} in {setup_secs:.2} s = {:.0} per second (CPU: server {server_cpu:.2} s = {:.0} µs per set-up, clients {clients_cpu:.2} s, on the same machine)",
            setups as f64 / setup_secs,
            server_cpu * 1e6 / setups as f64
        );
        print_abuse(&stalled, &flood);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn print_abuse(stalled: &serde_json::Value, flood: &serde_json::Value) {
    let pair = |value: &serde_json::Value| {
        format!(
            "{:.1} / {:.1} ms",
            value[0].as_f64().unwrap_or(f64::NAN),
            value[1].as_f64().unwrap_or(f64::NAN)
        )
    };
    if !stalled.is_null() {
        println!(
            "stalled handshakes:       {} held from {} addresses: server {} -> {} KiB ({:.0} bytes each), {} -> {} descriptors",
            stalled["stalled_connections"],
            stalled["source_addresses"],
            stalled["server_rss_baseline_kib"],
            stalled["server_rss_held_kib"],
            stalled["bytes_per_stalled_connection"]
                .as_f64()
                .unwrap_or(f64::NAN),
            stalled["server_fds_baseline"],
            stalled["server_fds_held"],
        );
        println!(
            "  meanwhile:              log-in p50 / p95 {}, {} failed; after the 5 s deadline {} closed, {} descriptors, {} KiB",
            pair(&stalled["login_ms_p50_p95_meanwhile"]),
            stalled["logins_failed_meanwhile"],
            stalled["closed_by_server_after_deadline"],
            stalled["server_fds_after_deadline"],
            stalled["server_rss_after_deadline_kib"],
        );
    }
    if !flood.is_null() {
        println!(
            "legitimate log-in→accepted: {} quiet, {} while {} abusers flood ({} rounds each; {} + {} failed)",
            pair(&flood["login_to_accepted_ms_p50_p95_quiet"]),
            pair(&flood["login_to_accepted_ms_p50_p95_flooded"]),
            flood["abusers"],
            flood["rounds"],
            flood["failed_quiet"],
            flood["failed_flooded"],
        );
        println!(
            "  the flood:              {} frames over {} connections in {:.1} s; server {} -> {} KiB",
            flood["abusive_frames_sent"],
            flood["abusive_connections"],
            flood["flood_seconds"].as_f64().unwrap_or(f64::NAN),
            flood["server_rss_before_flood_kib"],
            flood["server_rss_during_flood_kib"],
        );
    }
}

/// A fresh directory for a benchmark server's data.
pub(super) fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("callscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn connect_all(url: &str, clients: usize) -> anyhow::Result<Vec<Socket>> {
    // Log in in waves, so the listen backlog is never the bottleneck being measured.
    let mut sockets = Vec::with_capacity(clients);
    for wave_start in (0..clients).step_by(500) {
        let tasks: Vec<_> = (wave_start..(wave_start + 500).min(clients))
            .map(|index| {
                let url = url.to_owned();
                tokio::spawn(async move { log_in(&url, &format!("u{index}")).await })
            })
            .collect();
        for task in tasks {
            sockets.push(task.await??);
        }
    }
    Ok(sockets)
}

async fn run_calls(
    sockets: Vec<Socket>,
    calls: usize,
    concurrent: usize,
) -> anyhow::Result<(u64, f64)> {
    let pairs = (sockets.len() / 2).min(concurrent.max(1));
    let per_pair = calls.div_ceil(pairs).max(1);
    let active_pairs = calls.div_ceil(per_pair).min(pairs);
    let done = Arc::new(AtomicU64::new(0));
    let mut iter = sockets.into_iter();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for pair in 0..active_pairs {
        let (Some(mut caller), Some(mut answerer)) = (iter.next(), iter.next()) else {
            break;
        };
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            call_pair(&mut caller, &mut answerer, pair, per_pair, &done).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    ))
}
