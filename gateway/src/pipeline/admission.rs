//! Back-pressure for the end-of-DATA checks: a fixed number run at once, a bounded number wait
//! a bounded time, and the rest are told `451 4.3.2` to come back later (RFC 3463 X.3.2,
//! "system not accepting network messages") instead of queueing without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_in::reply::{EnhancedCode, Reply};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gate in front of the checks.
#[derive(Debug)]
pub struct Admission {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Held while a message is checked.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    /// `workers` checks at once; up to `max_waiting` more wait at most `max_wait`.
    pub fn new(workers: usize, max_waiting: usize, max_wait: Duration) -> Admission {
        Admission {
            running: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// Waits for a slot, or answers the busy reply.
    pub async fn enter(&self) -> Result<Admitted, Reply> {
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return Ok(Admitted { _permit: permit });
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let acquired =
            tokio::time::timeout(self.max_wait, Arc::clone(&self.running).acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Ok(Admitted { _permit: permit }),
            // Timed out, or the semaphore was closed (never done): either way, come back later.
            _ => Err(busy()),
        }
    }
}

/// `451 4.3.2`: every checking slot is taken.
pub fn busy() -> Reply {
    Reply::new(
        451,
        EnhancedCode::new(4, 3, 2),
        "System busy checking other messages, try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn beyond_the_workers_and_the_waiting_room_the_answer_is_451_4_3_2() {
        let admission = Arc::new(Admission::new(1, 1, Duration::from_secs(5)));
        let first = admission.enter().await.expect("a free slot");
        // The second waits in the waiting room.
        let waiting = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.enter().await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        // The third finds the room full and is refused at once.
        let refused = admission.enter().await.expect_err("room is full");
        assert!(refused.to_wire().starts_with("451 4.3.2 "));
        drop(first);
        assert!(
            waiting.await.expect("task").is_ok(),
            "the waiter gets the slot"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_after_the_maximum_wait() {
        let admission = Admission::new(1, 4, Duration::from_secs(2));
        let _held = admission.enter().await.expect("slot");
        let refused = admission.enter().await.expect_err("times out");
        assert_eq!(refused.code, 451);
        assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
    }
}
