//! The gateway's configuration file: reading, validation with every error at once, defaults.
//!
//! The file is TOML. It is read into raw structs (`raw.rs`, unknown keys refused), then turned
//! into the validated types of `types.rs`. Relative paths in the file are resolved against the
//! file's own directory, so the gateway can be started from anywhere.
//!
//! Adding a section: a raw struct in `raw.rs`, a validated type in `types.rs` (or the section's
//! own module), a validator called from `validate::validate`, and the documented keys in
//! `config/gateway.toml`.

mod error;
mod parse;
mod raw;
mod types;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::{ConfigErrors, ConfigProblem};
pub use types::{
    Config, ListenMode, ListenerSettings, LogFormat, LoggingSettings, ServerSettings, TlsFiles,
    WhitelistFiles,
};

/// A configured path resolved against the configuration file's directory (absolute paths stay
/// as they are). Every section that names files uses this one rule.
pub fn resolve_path(config_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        config_dir.join(path)
    }
}

/// The error and its sources on one line, each once (thiserror messages often already quote
/// their source), since the reader of a CLI message or a log line sees no backtrace.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Config {
    /// Reads and validates the configuration file at `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigErrors> {
        match std::fs::read_to_string(file) {
            Ok(text) => Config::from_toml(&text, file),
            Err(source) => Err(ConfigErrors::new(
                file.to_path_buf(),
                vec![ConfigProblem::Unreadable { source }],
            )),
        }
    }

    /// Validates `text` as if it had been read from `file` (paths resolve against its directory).
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        let base = base_directory(file);
        let parsed = parse::parse(text);
        let mut problems = parsed.problems;
        let config = parsed
            .raw
            .and_then(|raw| validate::validate(raw, file, &base, &parsed.removed, &mut problems));
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigErrors::new(file.to_path_buf(), problems)),
        }
    }

    /// One line describing the listeners, for `check-config` and the start-up log.
    pub fn listeners_summary(&self) -> String {
        let parts: Vec<String> = self
            .listeners
            .iter()
            .map(|listener| {
                let mut flags = vec![listener.mode.to_string()];
                flags.push(if listener.require_client_certificate {
                    "client certificate required".to_owned()
                } else {
                    "client certificate optional".to_owned()
                });
                if listener.whitelist {
                    flags.push("whitelist".to_owned());
                }
                format!("{} ({})", listener.address, flags.join(", "))
            })
            .collect();
        format!("{} listener(s): {}", parts.len(), parts.join("; "))
    }
}

/// The directory relative paths resolve against, made absolute so that logs and errors name
/// real locations whatever the current directory later becomes.
fn base_directory(file: &Path) -> PathBuf {
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // `absolute` only fails for an empty path, which `parent` above never is; fall back to the
    // relative form rather than refusing to start.
    std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
}
