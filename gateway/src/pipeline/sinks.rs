//! Where the deposit and relay workers report: the ledger first, then the tracker. A report
//! that cannot be written to the ledger is an error, so the worker leaves the job leased and
//! it is tried again: a final state is never acted on before it is recorded.

use std::sync::Arc;

use dmp_connector::worker::{FinalState, OutcomeSink, RecordError, WorkerEvent};

use super::metrics::Count;
use super::tracker::{JobKey, Settled};
use super::{Pipeline, events};
use crate::ledger::{Event, EventKind, Outcome};
use crate::relay::{MessageSource, RelayEvent, RelayJob, RelayKind, RelaySink};

/// The deposit worker's sink.
pub struct DepositOutcomes(pub Arc<Pipeline>);

impl OutcomeSink for DepositOutcomes {
    async fn record(&self, event: &WorkerEvent) -> Result<(), RecordError> {
        let pipeline = &self.0;
        match event {
            WorkerEvent::Attempt(attempt) => {
                let Err(failure) = &attempt.result else {
                    // A success is recorded once, as the final state.
                    return Ok(());
                };
                let source = attempt.source.as_ref();
                let entry = events::deposit(
                    EventKind::DepositAttempted,
                    source.map(|s| s.queue_id.as_str()),
                    source.and_then(|s| s.message_id.as_deref()),
                    &attempt.unique_id,
                    Outcome::TransientFailure,
                    format!(
                        "attempt {} failed: {failure}; then {:?}",
                        attempt.attempt, attempt.decision
                    ),
                );
                append(pipeline, entry).await?;
                pipeline.metrics.count(Count::DepositRetry);
                Ok(())
            }
            WorkerEvent::Final(record) => {
                let source = record.source.as_ref();
                let (kind, outcome, reason, settled) = match &record.state {
                    FinalState::Deposited(receipt) => (
                        EventKind::Deposited,
                        Outcome::Success,
                        format!(
                            "deposited in the DMP after {} attempt(s){}",
                            record.attempts,
                            if receipt.warnings.is_empty() {
                                String::new()
                            } else {
                                format!("; warnings: {}", receipt.warnings.join(", "))
                            }
                        ),
                        Settled::Done,
                    ),
                    FinalState::AlreadyDeposited => (
                        EventKind::Deposited,
                        Outcome::Success,
                        "already deposited (duplicate delivery of the job)".to_owned(),
                        Settled::Done,
                    ),
                    FinalState::DeadLettered { give_up, reason } => (
                        EventKind::DeadLettered,
                        Outcome::PermanentFailure,
                        format!(
                            "deposit abandoned ({give_up:?}) after {} attempt(s): {reason}",
                            record.attempts
                        ),
                        Settled::Failed(reason.clone()),
                    ),
                    _ => (
                        EventKind::DeadLettered,
                        Outcome::PermanentFailure,
                        "unknown final state".to_owned(),
                        Settled::Failed("unknown final state".to_owned()),
                    ),
                };
                let entry = events::deposit(
                    kind,
                    source.map(|s| s.queue_id.as_str()),
                    source.and_then(|s| s.message_id.as_deref()),
                    &record.unique_id,
                    outcome,
                    reason,
                );
                append(pipeline, entry).await?;
                pipeline.metrics.count(match kind {
                    EventKind::Deposited => Count::Deposited,
                    _ => Count::DepositDead,
                });
                if let Some(source) = source {
                    settle(
                        pipeline,
                        &source.queue_id,
                        JobKey::Deposit(record.unique_id.clone()),
                        settled,
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The relay worker's sink.
pub struct RelayOutcomes(pub Arc<Pipeline>);

impl RelaySink for RelayOutcomes {
    async fn record(&self, event: &RelayEvent) -> Result<(), String> {
        self.record_in_ledger(event).await?;
        let notification = |job: &RelayJob| job.kind == RelayKind::Notification;
        let count = match event {
            RelayEvent::Attempt { job, .. } if !notification(job) => Some(Count::RelayRetry),
            RelayEvent::Delivered { job, .. } if notification(job) => Some(Count::Notification),
            RelayEvent::Delivered { .. } => Some(Count::Relayed),
            RelayEvent::Failed { job, .. } if !notification(job) => Some(Count::RelayDead),
            _ => None,
        };
        if let Some(count) = count {
            self.0.metrics.count(count);
        }
        Ok(())
    }
}

impl RelayOutcomes {
    async fn record_in_ledger(&self, event: &RelayEvent) -> Result<(), String> {
        let pipeline = &self.0;
        match event {
            RelayEvent::Attempt {
                job,
                attempt,
                error,
                retry_at,
            } => {
                let wait = retry_at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                let detail = format!(
                    "attempt {attempt} failed: {error}; retry in {} s",
                    wait.as_secs()
                );
                let entry = match job.kind {
                    RelayKind::Notification => {
                        let mut e = events::notice(
                            EventKind::NotificationSent,
                            &job.queue_id,
                            "delivery",
                            &detail,
                        );
                        e.outcome = Outcome::TransientFailure;
                        e
                    }
                    _ => events::relay(
                        EventKind::Relayed,
                        &job.queue_id,
                        &job.domain,
                        Outcome::TransientFailure,
                        &detail,
                    ),
                };
                append(pipeline, entry).await.map_err(|e| e.detail)
            }
            RelayEvent::Delivered {
                job,
                delivery,
                attempts,
            } => {
                let detail = format!(
                    "delivered to {} via {} after {attempts} attempt(s): {}{}",
                    job.recipients.join(", "),
                    delivery.route,
                    delivery.detail,
                    delivery
                        .peer_subject
                        .as_deref()
                        .map(|s| format!("; next hop {s}"))
                        .unwrap_or_default()
                );
                match job.kind {
                    RelayKind::Notification => {
                        let entry = events::notice(
                            EventKind::NotificationSent,
                            &job.queue_id,
                            "delivery",
                            &detail,
                        );
                        append(pipeline, entry).await.map_err(|e| e.detail)
                    }
                    _ => {
                        let entry = events::relay(
                            EventKind::Relayed,
                            &job.queue_id,
                            &job.domain,
                            Outcome::Success,
                            &detail,
                        );
                        append(pipeline, entry).await.map_err(|e| e.detail)?;
                        settle(
                            pipeline,
                            &job.queue_id,
                            JobKey::Relay(job.domain.clone()),
                            Settled::Done,
                        );
                        Ok(())
                    }
                }
            }
            RelayEvent::Failed {
                job,
                reason,
                attempts,
            } => {
                let detail = format!("undeliverable after {attempts} attempt(s): {reason}");
                match job.kind {
                    RelayKind::Notification => {
                        // Never a notification about a notification: recorded, nothing sent.
                        let mut entry = events::notice(
                            EventKind::DeadLettered,
                            &job.queue_id,
                            "delivery",
                            &detail,
                        );
                        entry.outcome = Outcome::PermanentFailure;
                        append(pipeline, entry).await.map_err(|e| e.detail)
                    }
                    _ => {
                        let entry = events::relay(
                            EventKind::DeadLettered,
                            &job.queue_id,
                            &job.domain,
                            Outcome::PermanentFailure,
                            &detail,
                        );
                        append(pipeline, entry).await.map_err(|e| e.detail)?;
                        settle(
                            pipeline,
                            &job.queue_id,
                            JobKey::Relay(job.domain.clone()),
                            Settled::Failed(reason.clone()),
                        );
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Where the relay worker reads the original message: the spool of this node.
pub struct SpoolSource(pub Arc<Pipeline>);

impl MessageSource for SpoolSource {
    async fn original(&self, queue_id: &str) -> Result<Vec<u8>, String> {
        let pipeline = &self.0;
        let message = match pipeline.tracker.message(queue_id) {
            Some(message) => message,
            None => pipeline
                .spool
                .pending()
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|m| m.queue_id.as_str() == queue_id)
                .ok_or_else(|| format!("message {queue_id} is not in this node's spool"))?,
        };
        message.read_body().await.map_err(|e| e.to_string())
    }
}

async fn append(pipeline: &Pipeline, event: Event) -> Result<(), RecordError> {
    pipeline
        .ledger
        .append(event)
        .await
        .map(|_| ())
        .map_err(|error| RecordError::new(error.to_string()))
}

/// Settles a job; when it was the message's last, finishes the message in the background.
fn settle(pipeline: &Arc<Pipeline>, queue_id: &str, key: JobKey, how: Settled) {
    if let Some(finished) = pipeline.tracker.settle(queue_id, key, how) {
        let pipeline = Arc::clone(pipeline);
        tokio::spawn(async move { pipeline.finish(finished).await });
    }
}
