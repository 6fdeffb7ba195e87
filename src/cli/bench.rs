//! `callscope bench signaling`: a load test of the signaling server on 127.0.0.1. It starts
//! `callscope server` as a child process, holds N logged-in WebSocket sessions against it, runs
//! call set-ups between pairs of them, and reports sessions held, set-ups per second and the
//! server's memory per idle session; then the abuse phases (`bench_abuse`). With `--nodes N
//! --redis URL` it starts N nodes sharing that Redis, spreads the sessions over them, and
//! measures set-ups between callers and callees on the same node and on different nodes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    /// Signaling nodes to start, sharing `--redis` (1: one server alone).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: u16,
    /// The Redis the nodes share (`redis://HOST:PORT`); needed with more than one node.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One process's share of the sessions of `bench signaling`: it logs them in, says `ready`,
/// runs its pairs' set-ups when told `go` on stdin, prints its figures as JSON, and holds its
/// sessions until stdin closes.
#[derive(Debug, clap::Args)]
pub struct SignalingPartArgs {
    /// The nodes' URLs, comma-separated.
    #[arg(long)]
    pub urls: String,
    /// The first session (`u{first}`), even.
    #[arg(long)]
    pub first: usize,
    /// Sessions, even.
    #[arg(long)]
    pub count: usize,
    /// Set-ups to run.
    #[arg(long)]
    pub calls: usize,
    /// Pairs placing calls at once.
    #[arg(long)]
    pub concurrent_pairs: usize,
}

/// Sessions each helper process holds, when one process may not open them all.
const SESSIONS_PER_PROCESS: usize = 15_000;
/// Descriptors a process keeps beyond its sessions (the runtime's, the servers' pipes, …).
const FILE_RESERVE: u64 = 256;

/// How many of `clients` sessions one process holds, after lifting its open-file limit (each
/// session is a descriptor here and one in the server). Sessions beyond what this process may
/// open are held by processes of their own, which cost more: their threads take turns with this
/// one's.
fn sessions_per_process(clients: usize) -> anyhow::Result<usize> {
    let limit = open_file_limit_for(clients).context("raising the open-file limit")?;
    let per_process = if clients as u64 + FILE_RESERVE <= limit {
        clients
    } else {
        SESSIONS_PER_PROCESS
    };
    if per_process as u64 + FILE_RESERVE > limit {
        bail!("{clients} sessions need more open files than the limit of {limit}");
    }
    Ok(per_process)
}

/// Lifts this process's open-file limit so it may hold `sessions`: both limits to what they
/// need where it may raise the hard one (as root), else the soft one to the hard; the limit
/// it got.
fn open_file_limit_for(sessions: usize) -> std::io::Result<u64> {
    let wanted = sessions as u64 + FILE_RESERVE;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if hard < wanted && rlimit::setrlimit(rlimit::Resource::NOFILE, wanted, wanted).is_ok() {
        return Ok(wanted);
    }
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The secret every benchmark server and client shares.
pub(super) const SECRET: &str = "callscope-bench-secret";

/// The server's resident memory in KiB, from `/proc`.
pub(super) fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// The `field` (`VmRSS:`, `RssAnon:`, …) of process `pid`'s `/proc` status, in KiB.
pub(super) fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc status"))
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
    // Small frames, sent at once (as the app's client does): no 40 ms Nagle waits measured.
    let config = callscope::signaling::client_websocket_config();
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
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

/// A pair of sessions: the caller `u{2p}` and its callee `u{2p+1}`.
struct Pair {
    index: usize,
    caller: Socket,
    answerer: Socket,
}

/// How long one step of a set-up may take before the run is called stuck.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// Waits for a frame of type `wanted` on `socket`, at most [`STEP_DEADLINE`].
async fn expect_in_time(socket: &mut Socket, wanted: &str, pair: usize) -> anyhow::Result<()> {
    tokio::time::timeout(STEP_DEADLINE, expect_type(socket, wanted))
        .await
        .with_context(|| {
            format!("pair {pair}: no `{wanted}` within {STEP_DEADLINE:?} (a frame refused or lost)")
        })?
}

/// Runs `calls` set-ups, one at a time, taking `pairs` in turn (so each connection stays within
/// its message rate); the invite → accepted time of each, in ms, with its pair's index.
async fn call_pairs(pairs: &mut [Pair], calls: usize) -> anyhow::Result<Vec<(usize, f64)>> {
    let mut latencies = Vec::with_capacity(calls);
    let turns = pairs.len().max(1);
    for round in 0..calls {
        let Some(Pair {
            index,
            caller,
            answerer,
        }) = pairs.get_mut(round % turns)
        else {
            break;
        };
        let pair = *index;
        let placed = Instant::now();
        let call_id = format!("b-{pair}-{round}");
        let invite = ClientMessage::Call(Action::Invite {
            call_id: call_id.clone(),
            callees: vec![format!("u{}", pair * 2 + 1)],
            media: MediaType::Audio,
            group: false,
            timeout_secs: 30,
        });
        send(caller, &invite).await?;
        expect_in_time(answerer, "invited", pair).await?;
        let accept = ClientMessage::Call(Action::Accept {
            call_id: call_id.clone(),
        });
        send(answerer, &accept).await?;
        expect_in_time(caller, "accepted", pair).await?;
        latencies.push((pair, placed.elapsed().as_secs_f64() * 1000.0));
        send(caller, &ClientMessage::Call(Action::Hangup { call_id })).await?;
        expect_in_time(answerer, "hung_up", pair).await?;
    }
    Ok(latencies)
}

/// The node of session `index` (`u{index}`): pair `p`'s caller is on node `p % nodes`; its
/// callee on the same node for even pairs, on the next node for odd ones.
fn node_of(index: usize, nodes: usize) -> usize {
    let pair = index / 2;
    let home = pair % nodes;
    if index % 2 == 1 && pair % 2 == 1 {
        (home + 1) % nodes
    } else {
        home
    }
}

/// The CPU seconds (user and system) Redis at `url` has used, from its `INFO cpu`.
fn redis_cpu_secs(url: &str) -> anyhow::Result<f64> {
    let client = redis::Client::open(url).context("the Redis URL")?;
    let mut connection = client.get_connection().context("connecting to Redis")?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(&mut connection)
        .context("Redis INFO cpu")?;
    Ok(info
        .lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(':')?;
            matches!(key, "used_cpu_user" | "used_cpu_sys")
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum())
}

/// Starts `nodes` servers (sharing `redis` when more than one), each with its own data.
fn start_nodes(
    dir: &Path,
    nodes: usize,
    redis: Option<&str>,
) -> anyhow::Result<Vec<ServerProcess>> {
    let mut servers = Vec::with_capacity(nodes);
    // The nodes share this machine's cores, a share each, as they would be deployed on one
    // machine: more threads than cores only add context switches.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = (cores / nodes).max(1);
    for node in 0..nodes {
        // Every client of the load test comes from this one address.
        let mut flags = vec![
            "--max-connections-per-ip".to_owned(),
            "1000000".to_owned(),
            "--max-handshakes-per-ip".to_owned(),
            "1000000".to_owned(),
        ];
        if let Some(redis) = redis
            && nodes > 1
        {
            flags.extend([
                "--redis".to_owned(),
                redis.to_owned(),
                "--node-id".to_owned(),
                format!("n{}", node + 1),
                "--threads".to_owned(),
                threads.to_string(),
            ]);
        }
        let node_dir = dir.join(format!("n{}", node + 1));
        std::fs::create_dir_all(&node_dir)?;
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        servers.push(start_server(&node_dir, &flags)?);
    }
    Ok(servers)
}

/// Runs the load test and prints its figures.
pub fn signaling(args: &SignalingBenchArgs) -> anyhow::Result<()> {
    let clients = args.clients.max(2) & !1;
    let per_process = sessions_per_process(clients)?;
    let nodes = usize::from(args.nodes);
    if nodes > 1 && args.redis.is_none() {
        bail!("--nodes {nodes} needs --redis URL (a Redis the nodes share)");
    }
    let dir = tempfile_dir()?;
    let servers = start_nodes(&dir, nodes, args.redis.as_deref())?;
    let pids: Vec<u32> = servers.iter().map(|server| server.child.id()).collect();
    let urls: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();
    let resident =
        |pids: &[u32]| -> anyhow::Result<u64> { pids.iter().map(|pid| resident_kib(*pid)).sum() };
    let cpu = |pids: &[u32]| -> f64 { pids.iter().map(|pid| cpu_secs(&pid.to_string())).sum() };
    // One thread of clients: cross-thread wake-ups would cost more than they spread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::sleep(Duration::from_millis(300));
    let baseline_kib = resident(&pids)?;
    let started = Instant::now();
    let mut parts = Parts::default();
    let sockets = if clients <= per_process {
        runtime.block_on(connect_all(&urls, 0, clients))?
    } else {
        parts = Parts::start(
            &urls,
            clients,
            per_process,
            args.calls,
            args.concurrent_pairs,
        )?;
        Vec::new()
    };
    let login_secs = started.elapsed().as_secs_f64();
    // Every node hears of every log-in before the calls start.
    std::thread::sleep(Duration::from_millis(if nodes > 1 { 2000 } else { 500 }));
    let held_kib = resident(&pids)?;
    let per_session_bytes = (held_kib.saturating_sub(baseline_kib) * 1024) as f64 / clients as f64;
    let server_cpu_before = cpu(&pids);
    let clients_cpu_before = cpu_secs("self");
    let redis = args.redis.as_deref().filter(|_| nodes > 1);
    let redis_cpu_before = redis.map(redis_cpu_secs).transpose()?;
    let (setup_secs, mut same_node, mut cross_node) = if parts.is_empty() {
        runtime.block_on(run_calls(
            sockets,
            0,
            args.calls,
            args.concurrent_pairs,
            nodes,
        ))?
    } else {
        parts.run()?
    };
    let clients_cpu_parts = parts.cpu_secs();
    drop(parts);
    let server_cpu = cpu(&pids) - server_cpu_before;
    let clients_cpu = cpu_secs("self") - clients_cpu_before + clients_cpu_parts;
    let redis_cpu = (redis.zip(redis_cpu_before))
        .map(|(url, before)| redis_cpu_secs(url).map(|now| now - before))
        .transpose()?;
    drop(servers);
    let setups = same_node.len() + cross_node.len();
    let same = super::bench_abuse::percentiles(&mut same_node);
    let cross = super::bench_abuse::percentiles(&mut cross_node);
    let (stalled, flood) = abuse_phases(&runtime, args)?;
    let figures = serde_json::json!({
        "nodes": nodes,
        "setup_ms_p50_p95_same_node": same,
        "setup_ms_p50_p95_cross_node": cross,
        "setups_same_node": same_node.len(),
        "setups_cross_node": cross_node.len(),
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
        "redis_cpu_seconds_during_setups": redis_cpu,
    });
    if args.json {
        println!("{figures}");
    } else {
        print_text(&figures);
        print_abuse(&stalled, &flood);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The abuse phases asked for, each against a server of its own: stalled handshakes, then a
/// flood (`null` for one skipped).
fn abuse_phases(
    runtime: &tokio::runtime::Runtime,
    args: &SignalingBenchArgs,
) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
    let stalled = if args.stalled > 0 {
        super::bench_abuse::stalled_handshakes(runtime, args.stalled)?
    } else {
        serde_json::Value::Null
    };
    let flood = if args.abusers > 0 {
        super::bench_abuse::flood(runtime, args.abusers, args.rounds)?
    } else {
        serde_json::Value::Null
    };
    Ok((stalled, flood))
}

/// Prints the load test's `figures` (its JSON object) as text.
fn print_text(figures: &serde_json::Value) {
    let number = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    let count = |key: &str| figures[key].as_u64().unwrap_or(0);
    let pair = |key: &str| (figures[key][0].as_f64(), figures[key][1].as_f64());
    println!(
        "sessions held:            {} on {} node(s) (logged in in {:.2} s = {:.0} per second)",
        count("sessions_held"),
        count("nodes"),
        number("login_seconds"),
        number("logins_per_sec"),
    );
    println!(
        "server memory per session: {:.0} bytes ({} KiB idle, {} KiB with sessions)",
        number("bytes_per_idle_session"),
        count("server_rss_baseline_kib"),
        count("server_rss_with_sessions_kib"),
    );
    println!(
        "call set-ups:             {} in {:.2} s = {:.0} per second (CPU: server {:.2} s = {:.0} µs per set-up, clients {:.2} s{}, on the same machine)",
        count("call_setups"),
        number("call_setup_seconds"),
        number("call_setups_per_sec"),
        number("server_cpu_seconds_during_setups"),
        number("server_cpu_micros_per_setup"),
        number("clients_cpu_seconds_during_setups"),
        figures["redis_cpu_seconds_during_setups"]
            .as_f64()
            .map_or_else(String::new, |seconds| format!(", Redis {seconds:.2} s")),
    );
    let latency = |key: &str, setups: &str| match pair(key) {
        (Some(p50), Some(p95)) => format!("{p50:.2} / {p95:.2} ms ({} set-ups)", count(setups)),
        _ => format!("none ({} set-ups)", count(setups)),
    };
    let across = if count("setups_cross_node") == 0 {
        String::new()
    } else {
        format!(
            ", across nodes {}",
            latency("setup_ms_p50_p95_cross_node", "setups_cross_node")
        )
    };
    println!(
        "set-up latency (invite → accepted) p50 / p95: same node {}{across}",
        latency("setup_ms_p50_p95_same_node", "setups_same_node")
    );
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

/// Processes that each hold a share of the sessions.
#[derive(Default)]
struct Parts {
    children: Vec<(Child, std::io::BufReader<std::process::ChildStdout>)>,
    cpu_before: f64,
}

impl Parts {
    /// Starts them and waits until every one has logged its sessions in.
    fn start(
        urls: &[String],
        clients: usize,
        per_process: usize,
        calls: usize,
        concurrent_pairs: usize,
    ) -> anyhow::Result<Self> {
        use std::io::BufRead as _;
        let count = clients.div_ceil(per_process);
        let per_part = (clients / count).div_ceil(2) * 2;
        let mut parts = Self::default();
        let mut first = 0;
        while first < clients {
            let share = per_part.min(clients - first);
            let mut child = Command::new(std::env::current_exe()?)
                .args(["bench", "signaling-part", "--urls", &urls.join(",")])
                .args(["--first", &first.to_string(), "--count", &share.to_string()])
                .args(["--calls", &(calls * share / clients).to_string()])
                .args([
                    "--concurrent-pairs",
                    &(concurrent_pairs * share / clients).max(1).to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a share of the sessions")?;
            let stdout = child.stdout.take().context("a part's output")?;
            parts
                .children
                .push((child, std::io::BufReader::new(stdout)));
            first += share;
        }
        for (_, output) in &mut parts.children {
            let mut line = String::new();
            output.read_line(&mut line)?;
            if !line.starts_with("ready") {
                bail!("a share of the sessions did not log in: {line}");
            }
        }
        parts.cpu_before = parts.cpu_now();
        Ok(parts)
    }

    fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    fn cpu_now(&self) -> f64 {
        self.children
            .iter()
            .map(|(child, _)| cpu_secs(&child.id().to_string()))
            .sum()
    }

    fn cpu_secs(&self) -> f64 {
        self.cpu_now() - self.cpu_before
    }

    /// Tells every part to go, and adds up what they measured.
    fn run(&mut self) -> anyhow::Result<(f64, Vec<f64>, Vec<f64>)> {
        use std::io::{BufRead as _, Write as _};
        let started = Instant::now();
        for (child, _) in &mut self.children {
            let stdin = child.stdin.as_mut().context("a part's input")?;
            writeln!(stdin, "go")?;
            stdin.flush()?;
        }
        let (mut same, mut cross) = (Vec::new(), Vec::new());
        for (_, output) in &mut self.children {
            let mut line = String::new();
            output.read_line(&mut line)?;
            let part: PartFigures =
                serde_json::from_str(&line).with_context(|| format!("a part said {line:?}"))?;
            same.extend(part.same_node);
            cross.extend(part.cross_node);
        }
        Ok((started.elapsed().as_secs_f64(), same, cross))
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// What one part measured.
#[derive(serde::Serialize, serde::Deserialize)]
struct PartFigures {
    same_node: Vec<f64>,
    cross_node: Vec<f64>,
}

/// Runs one share of the sessions (see [`SignalingPartArgs`]).
pub fn signaling_part(args: &SignalingPartArgs) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    let urls: Vec<String> = args.urls.split(',').map(str::to_owned).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sockets = runtime.block_on(connect_all(&urls, args.first, args.count))?;
    println!("ready");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let (_, same_node, cross_node) = runtime.block_on(run_calls(
        sockets,
        args.first / 2,
        args.calls,
        args.concurrent_pairs,
        urls.len(),
    ))?;
    let figures = PartFigures {
        same_node,
        cross_node,
    };
    println!("{}", serde_json::to_string(&figures)?);
    // Its sessions stay open until the coordinator is done with every part.
    line.clear();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(())
}

/// A fresh directory for a benchmark server's data.
pub(super) fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("callscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn connect_all(urls: &[String], first: usize, clients: usize) -> anyhow::Result<Vec<Socket>> {
    // Log in in waves, so the listen backlog is never the bottleneck being measured.
    let mut sockets = Vec::with_capacity(clients);
    let end = first + clients;
    for wave_start in (first..end).step_by(500) {
        let tasks: Vec<_> = (wave_start..(wave_start + 500).min(end))
            .map(|index| {
                let url = urls[node_of(index, urls.len())].clone();
                tokio::spawn(async move { log_in(&url, &format!("u{index}")).await })
            })
            .collect();
        for task in tasks {
            sockets.push(task.await??);
        }
    }
    Ok(sockets)
}

/// Runs the set-ups: in how long, and the latencies (ms) of pairs on the same node and on
/// different nodes.
async fn run_calls(
    sockets: Vec<Socket>,
    first_pair: usize,
    calls: usize,
    concurrent: usize,
    nodes: usize,
) -> anyhow::Result<(f64, Vec<f64>, Vec<f64>)> {
    // `concurrent` slots place calls at once; each takes its pairs in turn.
    let all_pairs = sockets.len() / 2;
    let slots = all_pairs.min(concurrent.max(1)).min(calls.max(1));
    let mut slot_pairs: Vec<Vec<Pair>> = (0..slots).map(|_| Vec::new()).collect();
    let mut iter = sockets.into_iter();
    for offset in 0..all_pairs {
        let (Some(caller), Some(answerer)) = (iter.next(), iter.next()) else {
            break;
        };
        slot_pairs[offset % slots].push(Pair {
            index: first_pair + offset,
            caller,
            answerer,
        });
    }
    let started = Instant::now();
    let tasks: Vec<_> = slot_pairs
        .into_iter()
        .enumerate()
        .map(|(slot, pairs)| {
            // The calls, spread as evenly as they go over the slots.
            let share = calls / slots + usize::from(slot < calls % slots);
            // The sessions stay open until every slot is done, so none leaves mid-run.
            tokio::spawn(async move {
                let mut pairs = pairs;
                let latencies = call_pairs(&mut pairs, share).await;
                (latencies, pairs)
            })
        })
        .collect();
    let (mut same, mut cross, mut finished) = (Vec::new(), Vec::new(), Vec::new());
    for task in tasks {
        let (latencies, pairs) = task.await?;
        finished.push(pairs);
        for (pair, latency) in latencies? {
            if node_of(pair * 2, nodes) == node_of(pair * 2 + 1, nodes) {
                same.push(latency);
            } else {
                cross.push(latency);
            }
        }
    }
    Ok((started.elapsed().as_secs_f64(), same, cross))
}
