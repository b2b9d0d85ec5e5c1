//! After `250`: the jobs of a message — one deposit per document, one relay per recipient
//! domain — enqueued durably, tracked until each is final.

use std::collections::BTreeMap;
use std::sync::Arc;

use dmp_connector::queue::{NewJob, Queue, QueueError};
use smtp_in::spool::CommittedMessage;

use super::inspect::Inspection;
use super::tracker::{Finished, JobKey, Settled};
use super::{Pipeline, domain_of, events, lock};
use crate::ledger::{Entry, EventKind, Lookup, Outcome};
use crate::relay::{RelayContent, RelayJob, RelayKind};

/// A job to put in a queue.
#[derive(Debug, Clone)]
pub struct PendingJob {
    /// Which job of the message.
    pub key: JobKey,
    /// The queue payload.
    pub job: NewJob,
}

/// The jobs of one message.
struct Plan {
    jobs: Vec<PendingJob>,
    /// Relays decided against at once (document masked from a patient recipient).
    withheld: Vec<(String, String)>,
}

impl Pipeline {
    /// Plans, enqueues and tracks the jobs of an accepted message. `resumed` is true at
    /// recovery: jobs the ledger already shows final are not queued again.
    pub(super) async fn start_jobs(
        self: &Pipeline,
        message: CommittedMessage,
        inspection: Inspection,
        resumed: bool,
    ) {
        let queue_id = message.queue_id.as_str().to_owned();
        // A shared queue may hand the relay to another node, which has not got our spool.
        let original = if self.shared_queue && inspection.relay_bytes.is_none() {
            match message.read_body().await {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    tracing::error!(%queue_id, %error, "cannot read the spooled message; left for the next start");
                    return;
                }
            }
        } else {
            None
        };
        let plan = match self.plan(&message, &inspection, original) {
            Ok(plan) => plan,
            Err(error) => {
                // Serialising our own types cannot fail in practice; keep the message in the
                // spool (it resumes at the next start) rather than drop it.
                tracing::error!(%queue_id, %error, "cannot build the jobs of the message");
                return;
            }
        };
        let history = if resumed {
            match self.ledger.find(&Lookup::QueueId(queue_id.clone())).await {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::error!(%queue_id, %error, "ledger unreadable; message left for the next start");
                    return;
                }
            }
        } else {
            Vec::new()
        };
        let already: Vec<(JobKey, Settled)> = history.iter().filter_map(final_state).collect();
        let mut settled = already.clone();
        for (domain, reason) in &plan.withheld {
            let key = JobKey::Relay(domain.clone());
            if already.iter().any(|(done, _)| done == &key) {
                continue;
            }
            let event = events::relay(
                EventKind::DeadLettered,
                &queue_id,
                domain,
                Outcome::PermanentFailure,
                reason,
            );
            if let Err(error) = self.ledger.append(event).await {
                tracing::error!(%queue_id, %error, "ledger unavailable; withheld relay not recorded");
                return;
            }
            settled.push((key, Settled::Failed(reason.clone())));
        }
        let open: Vec<PendingJob> = plan
            .jobs
            .iter()
            .filter(|job| !already.iter().any(|(key, _)| key == &job.key))
            .cloned()
            .collect();
        let mut keys: Vec<JobKey> = plan.jobs.iter().map(|job| job.key.clone()).collect();
        keys.extend(plan.withheld.iter().map(|(d, _)| JobKey::Relay(d.clone())));
        let message_id = inspection.message_id.clone();
        let queued_before = history.iter().any(|e| e.event.kind == EventKind::Queued);
        if !queued_before {
            let deposits: Vec<String> = plan
                .jobs
                .iter()
                .filter_map(|job| match &job.key {
                    JobKey::Deposit(id) => Some(id.clone()),
                    JobKey::Relay(_) => None,
                })
                .collect();
            let relays: Vec<String> = plan
                .jobs
                .iter()
                .filter_map(|job| match &job.key {
                    JobKey::Relay(domain) => Some(domain.clone()),
                    JobKey::Deposit(_) => None,
                })
                .collect();
            let event = events::queued(&queue_id, message_id.as_deref(), &deposits, &relays);
            if let Err(error) = self.ledger.append(event).await {
                tracing::warn!(%queue_id, %error, "queued entry not recorded");
            }
        }
        // Track before enqueueing: an outcome can come back before `enqueue` returns.
        let opened = Finished::open(message, message_id, inspection.asks_for_mdn, resumed);
        let finished = self.tracker.track(opened, keys, settled);
        if let Some(finished) = finished {
            self.finish(finished).await;
            return;
        }
        let failed = self.enqueue_all(open).await;
        if !failed.is_empty() {
            lock(&self.unqueued).insert(queue_id, failed);
        }
    }

    /// Enqueues jobs; returns those that could not be (retried by the sweeper).
    async fn enqueue_all(&self, jobs: Vec<PendingJob>) -> Vec<PendingJob> {
        let mut failed = Vec::new();
        for pending in jobs {
            let queue = match &pending.key {
                JobKey::Deposit(_) => match &self.deposits {
                    Some(queue) => Arc::clone(queue),
                    None => continue,
                },
                JobKey::Relay(_) => Arc::clone(&self.relays),
            };
            if let Err(error) = queue.enqueue(pending.job.clone()).await {
                tracing::warn!(key = ?pending.key, %error, "enqueue failed; will retry");
                failed.push(pending);
            }
        }
        failed
    }

    /// Retries the enqueues that failed.
    pub(super) async fn retry_unqueued(&self) {
        let waiting: Vec<(String, Vec<PendingJob>)> = lock(&self.unqueued).drain().collect();
        for (queue_id, jobs) in waiting {
            let failed = self.enqueue_all(jobs).await;
            if !failed.is_empty() {
                lock(&self.unqueued).insert(queue_id, failed);
            }
        }
    }

    /// Settles the jobs of `queue_id` that the ledger shows final (recorded by any node).
    pub(super) async fn settle_from_ledger(
        &self,
        queue_id: &str,
    ) -> Result<(), crate::ledger::LedgerError> {
        let entries = self
            .ledger
            .find(&Lookup::QueueId(queue_id.to_owned()))
            .await?;
        for (key, how) in entries.iter().filter_map(final_state) {
            if let Some(finished) = self.tracker.settle(queue_id, key, how) {
                self.finish(finished).await;
                break;
            }
        }
        Ok(())
    }

    fn plan(
        &self,
        message: &CommittedMessage,
        inspection: &Inspection,
        original: Option<Vec<u8>>,
    ) -> Result<Plan, QueueError> {
        let queue_id = message.queue_id.as_str();
        let mut jobs = Vec::new();
        if self.deposits.is_some() {
            for request in &inspection.extraction.requests {
                jobs.push(PendingJob {
                    key: JobKey::Deposit(request.entry.unique_id.clone()),
                    job: NewJob::from_request(request)?,
                });
            }
        }
        let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for recipient in &message.envelope.recipients {
            if let Some(domain) = domain_of(recipient) {
                by_domain.entry(domain).or_default().push(recipient.clone());
            }
        }
        let mut withheld = Vec::new();
        for (domain, recipients) in by_domain {
            if self.is_patient_domain(&domain) && !inspection.may_reach_patients() {
                withheld.push((
                    domain,
                    "withheld (5.7.1): a document is masked from the patient (INVISIBLE_PATIENT)"
                        .to_owned(),
                ));
                continue;
            }
            let content = match (&inspection.relay_bytes, &original) {
                (Some(bytes), _) | (None, Some(bytes)) => RelayContent::Inline(bytes.clone()),
                (None, None) => RelayContent::Spool,
            };
            let job = RelayJob {
                queue_id: queue_id.to_owned(),
                domain: domain.clone(),
                mail_from: message.envelope.mail_from.clone(),
                recipients,
                content,
                kind: RelayKind::Message,
            };
            jobs.push(PendingJob {
                key: JobKey::Relay(domain),
                job: relay_new_job(&job)?,
            });
        }
        Ok(Plan { jobs, withheld })
    }

    fn is_patient_domain(&self, domain: &str) -> bool {
        self.relay_config
            .patient_domains
            .iter()
            .any(|patient| patient.eq_ignore_ascii_case(domain))
    }
}

/// The queue job carrying a relay job.
pub fn relay_new_job(job: &RelayJob) -> Result<NewJob, QueueError> {
    job.to_new_job()
        .map_err(|source| QueueError::Payload { job: None, source })
}

/// The job an entry closes, and how, if it records a final state.
fn final_state(entry: &Entry) -> Option<(JobKey, Settled)> {
    let event = &entry.event;
    let reason = || event.reason.clone().unwrap_or_default();
    if let Some(domain) = events::relay_domain(entry) {
        let key = JobKey::Relay(domain.to_owned());
        return match (event.kind, event.outcome) {
            (EventKind::Relayed, Outcome::Success) => Some((key, Settled::Done)),
            (EventKind::DeadLettered, _) => Some((key, Settled::Failed(reason()))),
            _ => None,
        };
    }
    let unique_id = event.dmp_ids.first()?.clone();
    match event.kind {
        EventKind::Deposited => Some((JobKey::Deposit(unique_id), Settled::Done)),
        EventKind::DeadLettered => Some((JobKey::Deposit(unique_id), Settled::Failed(reason()))),
        _ => None,
    }
}
