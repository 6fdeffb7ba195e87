//! `callscope server` and `callscope usersig`: the standalone signaling server, its tokens, and
//! their revocation.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use callscope::engine::{demo_contacts, spawn_demo_peers};
use callscope::kit::CallKit;
use callscope::media::Resolution;
use callscope::signaling::usersig::{
    self, DEFAULT_APP_ID, DEFAULT_EXPIRE_SECS, Revocations, SigPolicy, UserSigClaims,
};
use callscope::signaling::{
    BusConfig, Server, ServerConfig, ServerStats, TransportLimits, WebhookConfig,
};
use callscope::timeline::Timeline;

/// Entries a server's timeline keeps on disk (the newest).
pub const KEEP_ENTRIES: u64 = 1_000_000;

/// Options of `callscope server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The file holding the secret UserSigs are signed with: one key per line, `SECRET` or
    /// `KEY_ID SECRET`; the first signs, all are accepted (rotate by adding a line on top).
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// Also host the demo peers (echo, decline, busy, noanswer, hangup, ringback, flaky,
    /// group-a to group-d).
    #[arg(long)]
    pub demo_peers: bool,
    /// List the demo peers in contact lists without hosting them (another node of the same
    /// Redis hosts them with `--demo-peers`).
    #[arg(long, conflicts_with = "demo_peers")]
    pub list_demo_peers: bool,
    /// Show who else is online in contact lists (off: only the demo peers are listed).
    #[arg(long)]
    pub list_online_users: bool,
    /// A revocation list (`callscope usersig --revoke` writes it); read again when it changes.
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
    /// Connections at once, in all (default: the file-descriptor limit less a reserve).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections at once from one address.
    #[arg(long, default_value_t = TransportLimits::default().max_connections_per_ip, value_name = "N")]
    pub max_connections_per_ip: usize,
    /// Connections from one address still in their WebSocket handshake.
    #[arg(long, default_value_t = TransportLimits::default().max_handshakes_per_ip, value_name = "N")]
    pub max_handshakes_per_ip: usize,
    /// POST every call's events (`caller_start_call`, `callee_accept_call`, …) and its
    /// end-of-call record (`call_end_status` with `CallResult`) to this `http://` URL, signed,
    /// in order, retried with backoff.
    #[arg(long, value_name = "URL", requires = "webhook_secret")]
    pub webhook: Option<String>,
    /// The file whose first line is the secret webhook bodies are signed with (HMAC-SHA256
    /// of `TIMESTAMP.BODY`, in `X-Callscope-Signature: sha256=HEX`).
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub webhook_secret: Option<PathBuf>,
    /// Share users and calls with the other nodes on this Redis (`redis://HOST:PORT`): presence,
    /// routing over pub/sub, each call homed on its caller's node.
    #[arg(long, value_name = "URL", requires = "node_id")]
    pub redis: Option<String>,
    /// This node's id among the nodes on `--redis` (unique: letters, digits, `-`, `_`).
    #[arg(long, value_name = "N", requires = "redis")]
    pub node_id: Option<String>,
    /// Threads serving connections (default: one per core); several nodes on one machine
    /// share its cores, a few threads each.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Print the server's counters as one JSON line on stdout every N seconds: connections
    /// (pending among them), admitted and evicted, the bytes held for clients, and more.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub stats_every: Option<u64>,
}

/// Options of `callscope usersig`.
#[derive(Debug, clap::Args)]
pub struct UserSigArgs {
    /// Who the UserSig is for.
    #[arg(long = "user", value_name = "USER")]
    pub user_id: String,
    /// The file holding the server's secret (its first key signs).
    #[arg(long, value_name = "FILE", required_unless_present = "revoke")]
    pub secret_file: Option<PathBuf>,
    /// How long it lasts, in seconds (at most 180 days).
    #[arg(long, default_value_t = DEFAULT_EXPIRE_SECS, value_name = "N")]
    pub expire_secs: u64,
    /// Instead of signing, revoke every UserSig of the user issued until now: appends to
    /// `--revocations`, and a server reading that list closes the user's sessions.
    #[arg(long, requires = "revocations")]
    pub revoke: bool,
    /// The revocation list to append to.
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
}

/// Prints a UserSig, or revokes a user's.
pub fn usersig(args: &UserSigArgs) -> anyhow::Result<()> {
    callscope::model::ids::check_user_id(&args.user_id)
        .map_err(|reason| anyhow::anyhow!("--user: {reason}"))?;
    if args.revoke {
        let path = args
            .revocations
            .as_ref()
            .context("--revoke needs --revocations")?;
        // Issued before the next second: tokens signed this very second are revoked too.
        let before = usersig::unix_now_secs() + 1;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.write_all(Revocations::line(&args.user_id, before).as_bytes())?;
        eprintln!(
            "callscope: UserSigs of {} issued before {before} are revoked in {}",
            args.user_id,
            path.display()
        );
        return Ok(());
    }
    let Some(secret_file) = &args.secret_file else {
        bail!("--secret-file is needed to sign");
    };
    let keys = super::read_keys(secret_file)?;
    let claims = UserSigClaims {
        user_id: args.user_id.clone(),
        app_id: DEFAULT_APP_ID,
        issued_at: usersig::unix_now_secs(),
        expire_secs: args.expire_secs,
    };
    usersig::check_claims(&claims, SigPolicy::default()).map_err(anyhow::Error::msg)?;
    println!("{}", keys.sign(&claims));
    Ok(())
}

/// Runs the server until Ctrl-C; refused requests go to the server's own timeline.
pub fn server(args: &ServerArgs, timeline: Timeline) -> anyhow::Result<()> {
    let keys = super::read_keys(&args.secret_file)?;
    let kit = CallKit::builder().user("server").timeline(timeline).build();
    // One thread: everything runs on it, with no hand-over between threads at all. Demo peers
    // open their (synthetic) devices off the runtime's workers, which takes a runtime with
    // workers.
    let mut runtime = if args.threads == Some(1) && !args.demo_peers {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if let Some(threads) = args.threads {
        runtime.worker_threads(usize::from(threads));
    }
    let runtime = runtime
        .enable_all()
        .on_thread_park(crate::allocator::give_back_when_idle)
        .thread_name("server-io")
        .build()
        .context("starting the server runtime")?;
    runtime.block_on(async {
        let mut config = ServerConfig::new(args.listen, keys.clone());
        if args.demo_peers || args.list_demo_peers {
            config.demo_contacts = demo_contacts();
        }
        if let (Some(url), Some(node)) = (&args.redis, &args.node_id) {
            anyhow::ensure!(
                !node.is_empty()
                    && node.len() <= 64
                    && node
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "a node id is 1 to 64 letters, digits, '-' or '_' (got {node:?})"
            );
            config.bus = Some(BusConfig {
                url: url.clone(),
                node: node.clone(),
            });
        }
        config.list_online_users = args.list_online_users;
        config.revocations.clone_from(&args.revocations);
        config.transport.max_connections = args.max_connections.unwrap_or(0);
        config.transport.max_connections_per_ip = args.max_connections_per_ip;
        config.transport.max_handshakes_per_ip = args.max_handshakes_per_ip;
        config.kit = Some(kit);
        if let (Some(url), Some(secret)) = (&args.webhook, &args.webhook_secret) {
            let text = std::fs::read_to_string(secret)
                .with_context(|| format!("reading the webhook secret {}", secret.display()))?;
            let secret = text.lines().next().unwrap_or_default().trim();
            anyhow::ensure!(!secret.is_empty(), "the webhook secret file is empty");
            config.webhook = Some(WebhookConfig::new(url, secret.as_bytes()));
        }
        let server = Server::start(config)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        if let Some(secs) = args.stats_every {
            tokio::spawn(print_stats(
                Arc::clone(server.stats()),
                Duration::from_secs(secs),
            ));
        }
        // Held until shutdown: dropping a peer's sender stops it.
        let _peers = if args.demo_peers {
            spawn_demo_peers(&server.url(), &keys, Resolution::default(), None)
        } else {
            Vec::new()
        };
        match &args.node_id {
            Some(node) => eprintln!(
                "callscope: signaling node {node} listening on {}, sharing through {}",
                server.url(),
                args.redis.as_deref().unwrap_or_default()
            ),
            None => eprintln!("callscope: signaling server listening on {}", server.url()),
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        eprintln!("callscope: shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })
}

/// Prints `stats` as a JSON line every `every`, until the runtime ends.
async fn print_stats(stats: Arc<ServerStats>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let load = |value: &AtomicUsize| value.load(Ordering::Relaxed);
        let count = |value: &AtomicU64| value.load(Ordering::Relaxed);
        let line = serde_json::json!({
            "connections": load(&stats.connections),
            "pending": load(&stats.pending),
            "sessions": load(&stats.sessions),
            "online": load(&stats.online),
            "calls": load(&stats.calls),
            "admitted": count(&stats.admitted),
            "turned_away": count(&stats.turned_away),
            "evicted": count(&stats.evicted),
            "expired": count(&stats.expired),
            "dropped": count(&stats.dropped),
            "frames": count(&stats.frames),
            "held_bytes": stats.held_bytes(),
            "pending_bytes": load(&stats.pending_bytes),
            "queued_bytes": load(&stats.queued_bytes),
            "outbox_bytes": load(&stats.outbox_bytes),
        });
        println!("{line}");
    }
}
