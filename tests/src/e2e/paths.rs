//! Where the repository's files and this build's binaries are.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of the `tests` package).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A file of the committed test PKI, e.g. `cert("tls/gateway.pem")`.
pub fn cert(relative: &str) -> PathBuf {
    repo_root().join("certs").join(relative)
}

/// Why a binary of this build cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The test executable's own path is unknown.
    #[error("cannot locate the test executable: {0}")]
    CurrentExe(std::io::Error),
    /// The binary was not built.
    #[error("{} is missing: run cargo build --workspace (the e2e tests run the real binaries)", path.display())]
    Missing {
        /// Where it was expected.
        path: PathBuf,
    },
}

/// A binary of this build: tests run from `target/<profile>/deps/`, binaries live in
/// `target/<profile>/`.
pub fn binary(name: &str) -> Result<PathBuf, BinaryError> {
    let exe = std::env::current_exe().map_err(BinaryError::CurrentExe)?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BinaryError::Missing { path })
    }
}
