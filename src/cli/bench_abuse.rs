//! The abuse phases of `callscope bench signaling`, each against a fresh `callscope server`
//! with its default limits: connections that never finish their WebSocket handshake (the
//! server's memory and descriptors while they are held, and after its handshake deadline),
//! and a legitimate pair's log-in → accepted latency before and while abusive clients flood.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callscope::call::{Action, CallSignal, Signal};
use callscope::engine::sign_user_sig;
use callscope::model::MediaType;
use callscope::signaling::{ClientMessage, PROTOCOL_VERSION, ServerMessage, encode};
use futures_util::SinkExt as _;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::bench::{
    SECRET, ServerProcess, receive, resident_kib, send, start_server, tempfile_dir, welcomed,
};

/// A WebSocket to the server.
pub(super) type Socket = WebSocketStream<TcpStream>;

/// The server's default handshakes in progress per address.
const HANDSHAKES_PER_ADDRESS: usize = 32;
/// How long a legitimate round may take before it counts as failed.
const ROUND_LIMIT: Duration = Duration::from_secs(10);

/// Open descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The `index`-th loopback source address from `127.0.<block>.1` on (250 per block).
fn source(block: u8, index: usize) -> IpAddr {
    let third = u8::try_from(usize::from(block) + index / 250).unwrap_or(u8::MAX);
    let fourth = u8::try_from(1 + index % 250).unwrap_or(250);
    IpAddr::V4(Ipv4Addr::new(127, 0, third, fourth))
}

pub(super) async fn tcp_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// A fresh server with the default limits, settled: its directory, process, pid and address.
fn fresh_server() -> anyhow::Result<(std::path::PathBuf, ServerProcess, u32, SocketAddr)> {
    let dir = tempfile_dir()?;
    let server = start_server(&dir, &[])?;
    let pid = server.child.id();
    let address = server
        .url
        .trim_start_matches("ws://")
        .parse()
        .context("the server's address")?;
    std::thread::sleep(Duration::from_millis(300));
    Ok((dir, server, pid, address))
}

/// p50 and p95 of `values` (milliseconds), `NaN` when empty.
pub(super) fn percentiles(values: &mut [f64]) -> [f64; 2] {
    [
        super::bench_call::percentile(values, 0.5),
        super::bench_call::percentile(values, 0.95),
    ]
}

pub(super) async fn connect(server: SocketAddr, from: IpAddr) -> anyhow::Result<Socket> {
    let stream = tcp_from(from, server).await?;
    stream.set_nodelay(true)?;
    let (socket, _) = tokio_tungstenite::client_async(format!("ws://{server}"), stream).await?;
    Ok(socket)
}

pub(super) async fn log_in(server: SocketAddr, user: &str) -> anyhow::Result<Socket> {
    welcomed(
        connect(server, IpAddr::V4(Ipv4Addr::LOCALHOST)).await?,
        user,
    )
    .await
}

fn is_signal(message: &ServerMessage, wanted: impl Fn(&Signal) -> bool) -> bool {
    matches!(message, ServerMessage::Call(CallSignal { signal, .. }) if wanted(signal))
}

/// A fresh legitimate pair logs in, one invites the other, who accepts; the time from the
/// start of the log-ins to the caller hearing the accept. Both hang up and leave after.
async fn legitimate_round(server: SocketAddr, round: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let dialer_id = format!("legit-a{round}");
    let answerer_id = format!("legit-b{round}");
    let (mut dialing, mut answering) =
        tokio::try_join!(log_in(server, &dialer_id), log_in(server, &answerer_id))?;
    let call_id = format!("legit-{round}");
    let invite = ClientMessage::Call(Action::Invite {
        call_id: call_id.clone(),
        callees: vec![answerer_id],
        media: MediaType::Audio,
        group: false,
        timeout_secs: 30,
    });
    send(&mut dialing, &invite).await?;
    while !is_signal(&receive(&mut answering).await?, |s| {
        matches!(s, Signal::Invited { .. })
    }) {}
    let accept = ClientMessage::Call(Action::Accept {
        call_id: call_id.clone(),
    });
    send(&mut answering, &accept).await?;
    while !is_signal(&receive(&mut dialing).await?, |s| {
        matches!(s, Signal::Accepted { .. })
    }) {}
    let took = started.elapsed();
    send(
        &mut dialing,
        &ClientMessage::Call(Action::Hangup { call_id }),
    )
    .await?;
    let _ = dialing.close(None).await;
    let _ = answering.close(None).await;
    Ok(took)
}

/// Between two legitimate rounds, so that they span seconds of the flood.
const ROUND_PAUSE: Duration = Duration::from_millis(50);

/// `rounds` legitimate rounds one after another: their latencies (ms) and how many failed.
pub(super) async fn legitimate_rounds(
    server: SocketAddr,
    first: usize,
    rounds: usize,
) -> (Vec<f64>, usize) {
    let mut millis = Vec::with_capacity(rounds);
    let mut failed = 0;
    for round in first..first + rounds {
        tokio::time::sleep(ROUND_PAUSE).await;
        match tokio::time::timeout(ROUND_LIMIT, legitimate_round(server, round)).await {
            Ok(Ok(took)) => millis.push(took.as_secs_f64() * 1000.0),
            Ok(Err(_)) | Err(_) => failed += 1,
        }
    }
    (millis, failed)
}

/// Connections that never start their WebSocket handshake, `count` of them spread over
/// enough loopback addresses that the per-address allowance holds them all.
pub(super) fn stalled_handshakes(
    runtime: &tokio::runtime::Runtime,
    count: usize,
) -> anyhow::Result<serde_json::Value> {
    let (dir, server, pid, address) = fresh_server()?;
    let (baseline_kib, baseline_fds) = (resident_kib(pid)?, open_fds(pid));
    let started = Instant::now();
    let mut streams = runtime.block_on(async {
        let mut streams = Vec::with_capacity(count);
        for index in 0..count {
            let from = source(1, index / HANDSHAKES_PER_ADDRESS);
            if let Ok(stream) = tcp_from(from, address).await {
                streams.push(stream);
            }
        }
        streams
    });
    let opened_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let (held_kib, held_fds) = (resident_kib(pid)?, open_fds(pid));
    // Legitimate log-ins meanwhile.
    let (mut login_ms, login_failed) = runtime.block_on(async {
        let mut millis = Vec::new();
        let mut failed = 0;
        for index in 0..20 {
            let started = Instant::now();
            match tokio::time::timeout(ROUND_LIMIT, log_in(address, &format!("held-{index}"))).await
            {
                Ok(Ok(_)) => millis.push(started.elapsed().as_secs_f64() * 1000.0),
                _ => failed += 1,
            }
        }
        (millis, failed)
    });
    let login = percentiles(&mut login_ms);
    // Past the handshake deadline every stalled connection is closed by the server.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(started.elapsed()));
    let after_fds = open_fds(pid);
    let after_kib = resident_kib(pid)?;
    let closed = runtime.block_on(async {
        let mut closed = 0;
        for stream in &mut streams {
            let mut byte = [0_u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(5), stream.read(&mut byte)).await;
            if matches!(read, Ok(Ok(0) | Err(_))) {
                closed += 1;
            }
        }
        closed
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let held_bytes = (held_kib.saturating_sub(baseline_kib) * 1024) as f64;
    Ok(serde_json::json!({
        "stalled_connections": streams.len(),
        "source_addresses": count.div_ceil(HANDSHAKES_PER_ADDRESS),
        "opened_seconds": opened_secs,
        "server_rss_baseline_kib": baseline_kib,
        "server_rss_held_kib": held_kib,
        "bytes_per_stalled_connection": held_bytes / streams.len().max(1) as f64,
        "server_fds_baseline": baseline_fds,
        "server_fds_held": held_fds,
        "login_ms_p50_p95_meanwhile": login,
        "logins_failed_meanwhile": login_failed,
        "server_fds_after_deadline": after_fds,
        "server_rss_after_deadline_kib": after_kib,
        "closed_by_server_after_deadline": closed,
    }))
}

/// What the abusers did.
#[derive(Default)]
struct AbuseCounts {
    messages: AtomicU64,
    connections: AtomicU64,
}

/// One abusive client until `stop`: logged in (`authenticated`) it sends oversized and
/// unauthorized negotiation, invitations to strangers and frames over the size limit, never
/// reading; anonymous, it sends garbage and forged log-ins. Whenever the server closes it, it
/// connects again.
async fn abuse(
    server: SocketAddr,
    from: IpAddr,
    index: usize,
    authenticated: bool,
    stop: Arc<AtomicBool>,
    counts: Arc<AbuseCounts>,
) {
    let big = "v".repeat(60 * 1024);
    let oversized = "x".repeat(200 * 1024);
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut socket) = connect(server, from).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        counts.connections.fetch_add(1, Ordering::Relaxed);
        let user = format!("abuser{index}");
        if authenticated {
            let login = ClientMessage::Login {
                version: PROTOCOL_VERSION,
                user_id: user.clone(),
                user_sig: sign_user_sig(SECRET.as_bytes(), &user),
            };
            if send(&mut socket, &login).await.is_err() {
                continue;
            }
        }
        for round in 0_u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let frame = match (authenticated, round % 4) {
                (true, 0) => encode(&ClientMessage::Sdp {
                    call_id: format!("c-{round}"),
                    to: format!("legit-b{round}"),
                    description: big.clone(),
                }),
                (true, 1) => encode(&ClientMessage::Call(Action::Invite {
                    call_id: format!("flood-{index}-{round}"),
                    callees: vec![format!("stranger{round}")],
                    media: MediaType::Video,
                    group: false,
                    timeout_secs: 30,
                })),
                (true, 2) => oversized.clone(),
                (false, 0 | 2) => encode(&ClientMessage::Login {
                    version: PROTOCOL_VERSION,
                    user_id: format!("legit-a{round}"),
                    user_sig: "v1.forged.forged".to_owned(),
                }),
                (_, _) => format!("{{\"type\":\"nonsense-{round}\",\"junk\":\"{big}\"}}"),
            };
            if socket.send(Message::text(frame)).await.is_err() {
                break;
            }
            counts.messages.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A legitimate pair's log-in → accepted latency over `rounds` rounds, first alone, then
/// while `abusers` abusive clients (half logged in, half not, each from its own address)
/// flood the server.
pub(super) fn flood(
    runtime: &tokio::runtime::Runtime,
    abusers: usize,
    rounds: usize,
) -> anyhow::Result<serde_json::Value> {
    let (dir, server, pid, address) = fresh_server()?;
    let (mut quiet, quiet_failed) = runtime.block_on(legitimate_rounds(address, 0, rounds));
    let quiet = percentiles(&mut quiet);
    let baseline_kib = resident_kib(pid)?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AbuseCounts::default());
    // The abusers run on threads of their own: the legitimate pair never waits behind them in
    // a scheduler queue (only for the machine's cores, as a real client would).
    let abusers_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("abuser")
        .enable_all()
        .build()?;
    let tasks: Vec<_> = (0..abusers)
        .map(|index| {
            abusers_runtime.spawn(abuse(
                address,
                source(2, index),
                index,
                index % 2 == 0,
                Arc::clone(&stop),
                Arc::clone(&counts),
            ))
        })
        .collect();
    // Let the flood get going.
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let (mut flooded, flooded_failed) =
        runtime.block_on(legitimate_rounds(address, rounds, rounds));
    let flood_secs = started.elapsed().as_secs_f64();
    let flooded = percentiles(&mut flooded);
    let during_kib = resident_kib(pid)?;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    abusers_runtime.shutdown_timeout(Duration::from_secs(1));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(serde_json::json!({
        "rounds": rounds,
        "abusers": abusers,
        "login_to_accepted_ms_p50_p95_quiet": quiet,
        "failed_quiet": quiet_failed,
        "login_to_accepted_ms_p50_p95_flooded": flooded,
        "failed_flooded": flooded_failed,
        "flood_seconds": flood_secs,
        "abusive_frames_sent": counts.messages.load(Ordering::Relaxed),
        "abusive_connections": counts.connections.load(Ordering::Relaxed),
        "server_rss_before_flood_kib": baseline_kib,
        "server_rss_during_flood_kib": during_kib,
    }))
}
