//! Waiting for a condition with a deadline, instead of sleeping a guessed amount of time.

use std::time::{Duration, Instant};

use anyhow::bail;

/// Pause between two checks.
const INTERVAL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Some`, an error, or `timeout` passes (then fails naming
/// `what` and the last state `check` described through `Err`-free polling).
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}
