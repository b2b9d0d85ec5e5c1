//! `gateway audit …` run through the binary, as a compliance officer would.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

use super::paths::binary;

/// What an audit command printed and how it exited.
#[derive(Debug, Clone)]
pub struct AuditOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `gateway audit --config <config> <args…>`.
pub fn run(config: &Path, args: &[&str]) -> anyhow::Result<AuditOutput> {
    let output = Command::new(binary("gateway")?)
        .arg("audit")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .context("cannot run gateway audit")?;
    Ok(AuditOutput {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The event kinds `gateway audit trace <id>` lists, in order (third column of each line).
pub fn trace_kinds(config: &Path, id: &str) -> anyhow::Result<Vec<String>> {
    let output = run(config, &["trace", id])?;
    if output.code != 0 {
        bail!(
            "audit trace {id} exited {}: {}{}",
            output.code,
            output.stdout,
            output.stderr
        );
    }
    Ok(output
        .stdout
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2).map(str::to_owned))
        .collect())
}

/// Every ledger entry, from `gateway audit export --format json`.
pub fn export(config: &Path) -> anyhow::Result<Vec<Value>> {
    let output = run(config, &["export", "--format", "json"])?;
    if output.code != 0 {
        bail!("audit export exited {}: {}", output.code, output.stderr);
    }
    let value: Value = serde_json::from_str(&output.stdout).context("audit export output")?;
    match value {
        Value::Array(entries) => Ok(entries),
        other => bail!("audit export printed {other}, not an array"),
    }
}
