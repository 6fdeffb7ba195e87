//! The command-line commands of the `callscope` binary.

pub mod bench;
pub mod call;
pub mod server;
pub mod timeline;

use std::path::Path;

use anyhow::{Context as _, bail};

/// Reads a secret file (surrounding whitespace ignored); it must not be empty.
pub fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let secret = text.trim_ascii().to_vec();
    if secret.is_empty() {
        bail!("the secret file {} is empty", path.display());
    }
    Ok(secret)
}
