//! `callscope server` and `callscope usersig`: the standalone signaling server and its tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use callscope::engine::{demo_contacts, spawn_demo_peers};
use callscope::kit::CallKit;
use callscope::media::Resolution;
use callscope::signaling::usersig::{self, DEFAULT_APP_ID, DEFAULT_EXPIRE_SECS, UserSigClaims};
use callscope::signaling::{Server, ServerConfig};
use callscope::timeline::Timeline;

/// Options of `callscope server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The file holding the secret UserSigs are signed with.
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// Also host the demo peers (echo, decline, busy, noanswer, group-a, group-b).
    #[arg(long)]
    pub demo_peers: bool,
}

/// Options of `callscope usersig`.
#[derive(Debug, clap::Args)]
pub struct UserSigArgs {
    /// Who the UserSig is for.
    #[arg(long = "user", value_name = "USER")]
    pub user_id: String,
    /// The file holding the server's secret.
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// How long it lasts, in seconds.
    #[arg(long, default_value_t = DEFAULT_EXPIRE_SECS, value_name = "N")]
    pub expire_secs: u64,
}

/// Prints a UserSig.
pub fn usersig(args: &UserSigArgs) -> anyhow::Result<()> {
    let secret = super::read_secret(&args.secret_file)?;
    let claims = UserSigClaims {
        user_id: args.user_id.clone(),
        app_id: DEFAULT_APP_ID,
        issued_at: usersig::unix_now_secs(),
        expire_secs: args.expire_secs,
    };
    println!("{}", usersig::sign(&secret, &claims));
    Ok(())
}

/// Runs the server until Ctrl-C; refused requests go to the server's own timeline.
pub fn server(args: &ServerArgs, timeline: Timeline) -> anyhow::Result<()> {
    let secret = super::read_secret(&args.secret_file)?;
    let kit = CallKit::builder().user("server").timeline(timeline).build();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("server-io")
        .build()
        .context("starting the server runtime")?;
    runtime.block_on(async {
        let server = Server::start(ServerConfig {
            listen: args.listen,
            secret: secret.clone(),
            app_id: DEFAULT_APP_ID,
            demo_contacts: if args.demo_peers {
                demo_contacts()
            } else {
                Vec::new()
            },
            kit: Some(kit),
        })
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
        // Held until shutdown: dropping a peer's sender stops it.
        let _peers = if args.demo_peers {
            spawn_demo_peers(&server.url(), &secret, Resolution::default())
        } else {
            Vec::new()
        };
        eprintln!("callscope: signaling server listening on {}", server.url());
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        eprintln!("callscope: shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })
}
