//! Graceful shutdown signalling shared by listeners and sessions.
//!
//! Two phases: `Draining` (stop accepting; idle sessions are told `421 4.3.2` at once, sessions in a
//! transaction may finish it) and `Forced` (the grace period is over: every session that is still
//! there gets `421 4.3.2` and is closed).

use std::sync::Arc;

use tokio::sync::watch;

/// How far the shutdown has progressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving normally.
    Running,
    /// No new connections; sessions finish their current transaction.
    Draining,
    /// Grace period over: sessions are closed.
    Forced,
}

/// Handle to begin a graceful shutdown; clones share the same state.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<Phase>>,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A shutdown handle in the running phase.
    pub fn new() -> Shutdown {
        Shutdown {
            sender: Arc::new(watch::Sender::new(Phase::Running)),
        }
    }

    /// Stops accepting connections; sessions get `limits.shutdown_grace` to finish.
    pub fn begin(&self) {
        self.advance(Phase::Draining);
    }

    /// Ends the grace period: every remaining session is closed with `421 4.3.2`.
    pub fn force(&self) {
        self.advance(Phase::Forced);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.sender.borrow()
    }

    /// A receiver that sessions and accept loops wait on.
    pub fn watch(&self) -> ShutdownWatch {
        ShutdownWatch {
            receiver: self.sender.subscribe(),
        }
    }

    fn advance(&self, phase: Phase) {
        // Phases only move forward.
        self.sender.send_if_modified(|current| {
            if *current < phase {
                *current = phase;
                true
            } else {
                false
            }
        });
    }
}

/// Receiving side of [`Shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownWatch {
    receiver: watch::Receiver<Phase>,
}

impl ShutdownWatch {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.receiver.borrow()
    }

    /// Completes once the phase is at least `phase`; never completes if the [`Shutdown`] handles
    /// are all gone without reaching it.
    pub async fn reached(&mut self, phase: Phase) {
        if self
            .receiver
            .wait_for(|current| *current >= phase)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}
