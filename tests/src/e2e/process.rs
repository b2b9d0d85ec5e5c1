//! A child process whose standard output and error go to a log file, and waiting for a line in
//! that log.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running child process. Dropping it kills it (SIGKILL), so a failed test leaves nothing
/// behind.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    /// Length of the log when this instance started: its own lines come after.
    log_start: u64,
}

impl Process {
    /// Starts `program` with `args`, appending stdout and stderr to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[OsString],
        log: &Path,
    ) -> anyhow::Result<Process> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log {}", log.display()))?;
        let log_start = file.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            // Plain text without colour codes, whatever the caller's environment says.
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            log_start,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This instance's log lines so far.
    pub fn log_text(&self) -> String {
        read_from(&self.log, self.log_start).unwrap_or_default()
    }

    /// The last `lines` lines of this instance's log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until a line of this instance's log contains `needle` and returns that line; fails
    /// if the process exits first or `timeout` passes.
    pub async fn wait_for_line(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_text().lines().find(|line| line.contains(needle)) {
                return Ok(line.to_owned());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before logging {needle:?}; log:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not log {needle:?} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then reap: the crash the gateway must survive.
    pub fn kill9(&mut self) -> anyhow::Result<ExitStatus> {
        // kill() fails only if the process was already reaped; wait() then reports it.
        let _ = self.child.kill();
        Ok(self.child.wait()?)
    }

    /// SIGTERM, then wait up to `grace` before SIGKILL. Returns the exit status.
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return self.kill9();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_from(path: &Path, offset: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
