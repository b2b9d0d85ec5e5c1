//! Which jobs of each accepted message are not final yet. The spool file of a message is
//! removed only when this says every job is final (and the final states are in the ledger,
//! because the sinks record them before telling the tracker).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smtp_in::spool::CommittedMessage;

/// One job of a message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobKey {
    /// The deposit of the document with this `uniqueId`.
    Deposit(String),
    /// The relay to this recipient domain.
    Relay(String),
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Deposited / relayed.
    Done,
    /// Dead-lettered or withheld, with the reason.
    Failed(String),
}

/// A message whose jobs have all ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The spooled message.
    pub message: CommittedMessage,
    /// Its Message-ID.
    pub message_id: Option<String>,
    /// Documents deposited (uniqueIds).
    pub deposited: Vec<String>,
    /// Deposits that failed for good: (uniqueId, reason).
    pub deposit_failures: Vec<(String, String)>,
    /// Relays that failed for good: (domain, reason).
    pub relay_failures: Vec<(String, String)>,
    /// The original carries `Disposition-Notification-To` (an MDN may be due).
    pub asks_for_mdn: bool,
    /// Tracked again after a restart: its notifications may already be queued.
    pub resumed: bool,
}

impl Finished {
    /// A message about to be tracked, none of its jobs ended yet.
    pub fn open(
        message: CommittedMessage,
        message_id: Option<String>,
        asks_for_mdn: bool,
        resumed: bool,
    ) -> Finished {
        Finished {
            message,
            message_id,
            deposited: Vec::new(),
            deposit_failures: Vec::new(),
            relay_failures: Vec::new(),
            asks_for_mdn,
            resumed,
        }
    }
}

#[derive(Debug)]
struct Tracked {
    finished: Finished,
    outstanding: BTreeSet<JobKey>,
    since: Instant,
}

/// Outstanding jobs per queue id.
#[derive(Debug, Default)]
pub struct Tracker {
    messages: Mutex<HashMap<String, Tracked>>,
}

impl Tracker {
    /// Starts tracking a message (see [`Finished::open`]) with `jobs` outstanding; jobs already
    /// final are given in `settled` (recovery). Returns the message at once if nothing is
    /// outstanding.
    pub fn track(
        &self,
        message: Finished,
        jobs: impl IntoIterator<Item = JobKey>,
        settled: impl IntoIterator<Item = (JobKey, Settled)>,
    ) -> Option<Finished> {
        let queue_id = message.message.queue_id.as_str().to_owned();
        let mut tracked = Tracked {
            finished: message,
            outstanding: jobs.into_iter().collect(),
            since: Instant::now(),
        };
        for (key, how) in settled {
            apply(&mut tracked, key, how);
        }
        if tracked.outstanding.is_empty() {
            return Some(tracked.finished);
        }
        self.lock().insert(queue_id, tracked);
        None
    }

    /// Records the end of one job; returns the message when it was the last one.
    pub fn settle(&self, queue_id: &str, key: JobKey, how: Settled) -> Option<Finished> {
        let mut messages = self.lock();
        let tracked = messages.get_mut(queue_id)?;
        apply(tracked, key, how);
        if tracked.outstanding.is_empty() {
            return messages.remove(queue_id).map(|tracked| tracked.finished);
        }
        None
    }

    /// Queue ids tracked for longer than `age` (for the ledger sweep).
    pub fn older_than(&self, age: Duration) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, tracked)| tracked.since.elapsed() >= age)
            .map(|(queue_id, _)| queue_id.clone())
            .collect()
    }

    /// The spooled message `queue_id`, while it is tracked.
    pub fn message(&self, queue_id: &str) -> Option<CommittedMessage> {
        self.lock()
            .get(queue_id)
            .map(|tracked| tracked.finished.message.clone())
    }

    /// True when `queue_id` is tracked.
    pub fn contains(&self, queue_id: &str) -> bool {
        self.lock().contains_key(queue_id)
    }

    /// Number of messages with outstanding jobs.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no message has outstanding jobs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Tracked>> {
        // Each update is a few map operations without await: a panic cannot leave it torn.
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn apply(tracked: &mut Tracked, key: JobKey, how: Settled) {
    // A job settles once: a replayed outcome (at-least-once delivery) changes nothing.
    if !tracked.outstanding.remove(&key) {
        return;
    }
    let finished = &mut tracked.finished;
    match (key, how) {
        (JobKey::Deposit(id), Settled::Done) => finished.deposited.push(id),
        (JobKey::Deposit(id), Settled::Failed(reason)) => {
            finished.deposit_failures.push((id, reason))
        }
        (JobKey::Relay(_), Settled::Done) => {}
        (JobKey::Relay(domain), Settled::Failed(reason)) => {
            finished.relay_failures.push((domain, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::SystemTime;

    use smtp_in::envelope::{BodyType, Envelope};
    use smtp_in::spool::QueueId;

    use super::*;

    fn message(id: &str) -> CommittedMessage {
        CommittedMessage {
            queue_id: QueueId::parse(id).expect("queue id"),
            envelope: Envelope {
                helo: "h".into(),
                client_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
                peer: None,
                mail_from: Some("a@b.test".into()),
                recipients: vec!["c@d.test".into()],
                body: BodyType::SevenBit,
                declared_size: None,
                received_at: SystemTime::now(),
            },
            size: 1,
            sha256: [0; 32],
            path: PathBuf::from("x"),
            body_offset: 0,
        }
    }

    const ID: &str = "0123456789abcdef0123";

    #[test]
    fn the_message_is_finished_when_its_last_job_settles_and_only_once() {
        let tracker = Tracker::default();
        let jobs = [
            JobKey::Deposit("1.2.3".into()),
            JobKey::Relay("d.test".into()),
        ];
        assert!(
            tracker
                .track(Finished::open(message(ID), None, false, false), jobs, [])
                .is_none()
        );
        assert!(
            tracker
                .settle(ID, JobKey::Relay("d.test".into()), Settled::Done)
                .is_none()
        );
        // A replayed outcome of a settled job does not finish the message.
        assert!(
            tracker
                .settle(ID, JobKey::Relay("d.test".into()), Settled::Done)
                .is_none()
        );
        let finished = tracker
            .settle(
                ID,
                JobKey::Deposit("1.2.3".into()),
                Settled::Failed("XDSUnknownPatientId".into()),
            )
            .expect("finished");
        assert_eq!(
            finished.deposit_failures,
            vec![("1.2.3".to_owned(), "XDSUnknownPatientId".to_owned())]
        );
        assert!(tracker.is_empty());
        assert!(
            tracker
                .settle(ID, JobKey::Deposit("1.2.3".into()), Settled::Done)
                .is_none()
        );
    }

    #[test]
    fn jobs_already_final_at_recovery_are_not_outstanding() {
        let tracker = Tracker::default();
        let jobs = [JobKey::Relay("d.test".into())];
        let settled = [(JobKey::Relay("d.test".into()), Settled::Done)];
        let finished = tracker.track(
            Finished::open(message(ID), None, false, true),
            jobs,
            settled,
        );
        assert!(finished.is_some());
        assert!(!tracker.contains(ID));
    }
}
