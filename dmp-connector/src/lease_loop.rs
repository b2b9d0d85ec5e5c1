//! The loop every queue consumer runs: lease a job when a slot is free, hand it to a task,
//! and on shutdown stop leasing and wait for the jobs in flight. Shared by the deposit worker
//! and the gateway's relay worker.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::queue::{Lease, Queue};

/// How a consumer leases.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// Jobs in flight at once.
    pub concurrency: usize,
    /// Lease length.
    pub lease_for: Duration,
    /// How long one lease call waits for a job (and the back-off after a failed lease).
    pub poll: Duration,
    /// Names the consumer in logs.
    pub consumer: &'static str,
}

/// Leases jobs from `queue` and runs `process` on each, at most `concurrency` at once, until
/// `shutdown` turns true; then waits for every job in flight.
pub async fn run<Q, F, Fut>(
    queue: &Q,
    settings: LeaseSettings,
    mut shutdown: watch::Receiver<bool>,
    process: F,
) where
    Q: Queue,
    F: Fn(Lease) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let concurrency = settings.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit,
            _ = shutdown.changed() => continue,
        };
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(permit) = permit else { break };
        let leased = tokio::select! {
            leased = queue.lease(settings.lease_for, settings.poll) => leased,
            _ = shutdown.changed() => continue,
        };
        match leased {
            Ok(Some(lease)) => {
                let job = process(lease);
                tokio::spawn(async move {
                    job.await;
                    drop(permit);
                });
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(consumer = settings.consumer, %error, "lease failed; backing off");
                tokio::time::sleep(settings.poll).await;
            }
        }
    }
    // Each job in flight holds a permit until it settled.
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}
