//! The command-line commands of the `callscope` binary.

pub mod answer;
pub mod bench;
pub mod bench_call;
pub mod call;
pub mod check;
pub mod media_args;
pub mod server;
pub mod session;
pub mod timeline;

use std::path::Path;

use anyhow::{Context as _, bail};

/// The UserSig to log in to a standalone server with: given, or signed here with its secret.
pub fn user_sig(
    user_id: &str,
    given: Option<&str>,
    secret_file: Option<&Path>,
) -> anyhow::Result<String> {
    if let Some(sig) = given {
        return Ok(sig.to_owned());
    }
    let Some(path) = secret_file else {
        bail!("--server needs --user-sig or --secret-file to log in");
    };
    let secret = read_secret(path)?;
    Ok(callscope::engine::sign_user_sig(&secret, user_id))
}

/// Reads a secret file (surrounding whitespace ignored); it must not be empty.
pub fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let secret = text.trim_ascii().to_vec();
    if secret.is_empty() {
        bail!("the secret file {} is empty", path.display());
    }
    Ok(secret)
}
