//! The command-line commands of the `callscope` binary.

pub mod answer;
pub mod bench;
pub mod bench_abuse;
pub mod bench_attack;
pub mod bench_call;
mod bench_chromium;
mod bench_client;
pub mod bench_network;
pub mod call;
pub mod check;
pub mod diff;
pub mod media_args;
pub mod replay;
pub mod server;
pub mod session;
pub mod timeline;

use std::path::Path;

use anyhow::{Context as _, bail};
use callscope::signaling::usersig::Keyring;

/// The UserSig to log in to a standalone server with: given, or signed here with its secret.
pub fn user_sig(
    user_id: &str,
    given: Option<&str>,
    secret_file: Option<&Path>,
) -> anyhow::Result<String> {
    callscope::model::ids::check_user_id(user_id)
        .map_err(|reason| anyhow::anyhow!("--user: {reason}"))?;
    if let Some(sig) = given {
        return Ok(sig.to_owned());
    }
    let Some(path) = secret_file else {
        bail!("--server needs --user-sig or --secret-file to log in");
    };
    let keys = read_keys(path)?;
    Ok(callscope::engine::sign_user_sig_with(&keys, user_id))
}

/// Reads a secret file: one key per line, `SECRET` or `KEY_ID SECRET`; the first signs.
pub fn read_keys(path: &Path) -> anyhow::Result<Keyring> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Keyring::parse(&text).map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))
}
