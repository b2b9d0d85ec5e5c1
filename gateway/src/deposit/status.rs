//! `gateway queue status | dead-letters`: what waits in the deposit and relay queues, for the
//! operator, read beside a running gateway.

use std::io::Write;
use std::path::Path;

use dmp_connector::queue::{JobState, Queue};

use super::{Opener, QueueConfig, open_queue};

/// What to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueView {
    /// Jobs per state in each queue.
    Status,
    /// The dead-lettered jobs with their reasons (at most `limit` per queue).
    DeadLetters {
        /// Jobs listed per queue.
        limit: usize,
    },
}

/// The queues shown, in order.
const QUEUES: [&str; 2] = ["deposits", "relay"];

/// Prints `view` of both queues to `out`.
pub async fn show(
    view: QueueView,
    config: &QueueConfig,
    config_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for name in QUEUES {
        let queue = open_queue(config, name, config_dir, Opener::Observer).await?;
        match view {
            QueueView::Status => {
                let counts = queue.counts().await?;
                writeln!(
                    out,
                    "{name:<9} ready={} delayed={} leased={} dead={}",
                    counts.ready, counts.delayed, counts.leased, counts.dead
                )?;
            }
            QueueView::DeadLetters { limit } => {
                let jobs = queue.list(JobState::Dead, limit).await?;
                writeln!(out, "{name}: {} dead-lettered job(s)", jobs.len())?;
                for job in jobs {
                    writeln!(
                        out,
                        "  {}  key={}  attempts={}  reason={}",
                        job.id,
                        job.idempotency_key,
                        job.attempts,
                        job.reason.as_deref().unwrap_or("-")
                    )?;
                }
            }
        }
    }
    Ok(())
}
