//! The seam between the SMTP protocol and the gateway: what to do with a spooled message.

use std::future::Future;

use crate::reply::Reply;
use crate::spool::{CommittedMessage, SpooledMessage};

/// Decision on a message that reached the spool, taken before the end-of-DATA reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Commit the message to the queue and answer `250`.
    Accept,
    /// Discard the message and send this reply (4xx or 5xx).
    Reject(Reply),
}

/// Checks run on every message at the end of DATA; implemented by the gateway.
pub trait MessageHandler: Send + Sync + 'static {
    /// Inspects the spooled (fsynced, not yet queued) message and decides its fate.
    fn check(&self, message: &SpooledMessage) -> impl Future<Output = Verdict> + Send;

    /// Called when `check` accepted the message but it could not be queued (the client gets
    /// `reply`, a 4xx, and will send it again): whatever `check` recorded must say so.
    fn not_queued(&self, queue_id: &str, reply: &Reply) -> impl Future<Output = ()> + Send {
        let _ = (queue_id, reply);
        async {}
    }

    /// Called once the message is durable in the queue, after the decision to answer `250`.
    fn accepted(&self, message: &CommittedMessage) -> impl Future<Output = ()> + Send {
        let _ = message;
        async {}
    }
}

/// Accepts every message that reached the spool (used until the gateway's checks exist).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl MessageHandler for AcceptAll {
    async fn check(&self, _message: &SpooledMessage) -> Verdict {
        Verdict::Accept
    }
}
