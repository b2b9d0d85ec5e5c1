//! The broker objects of one queue, their names and their (re-)declaration.
//!
//! For a prefix `P`:
//! - exchange `P.work` (direct) → quorum queue `P.work` (routing key `work`), whose rejected
//!   messages go to the dead-letter exchange;
//! - exchange `P.dead` (fanout) → quorum queue `P.dead`: dead-lettered jobs, kept for
//!   inspection;
//! - one classic durable queue `P.delay.<ms>` per delay bucket, with `x-message-ttl` = the
//!   bucket and `P.work` as dead-letter exchange: a message published there comes back to the
//!   work queue when its TTL runs out. One TTL per queue keeps each queue FIFO, so expiry at
//!   the head is exact.
//!
//! Declaring is idempotent with the same arguments, so the supervisor re-runs it after every
//! reconnection (a broker restart keeps durable objects, but a new broker may not have them).

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::queue::QueueError;

/// The routing key of the work queue binding.
pub(crate) const WORK_ROUTING_KEY: &str = "work";

/// The default retry delay buckets: a delay is rounded *up* to the next bucket.
pub const DEFAULT_DELAY_BUCKETS: [Duration; 16] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(300),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
];

/// The names of one queue's broker objects.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    pub(crate) work_exchange: String,
    pub(crate) work_queue: String,
    pub(crate) dead_exchange: String,
    pub(crate) dead_queue: String,
    /// Sorted ascending, never empty.
    pub(crate) buckets: Vec<Duration>,
    prefix: String,
}

impl Topology {
    /// The objects of prefix `prefix` with the given delay buckets (sorted, deduplicated; the
    /// default set when empty).
    pub(crate) fn new(prefix: &str, buckets: &[Duration]) -> Topology {
        let mut buckets: Vec<Duration> = if buckets.is_empty() {
            DEFAULT_DELAY_BUCKETS.to_vec()
        } else {
            buckets.to_vec()
        };
        buckets.sort();
        buckets.dedup();
        Topology {
            work_exchange: format!("{prefix}.work"),
            work_queue: format!("{prefix}.work"),
            dead_exchange: format!("{prefix}.dead"),
            dead_queue: format!("{prefix}.dead"),
            buckets,
            prefix: prefix.to_owned(),
        }
    }

    /// The delay queue of `bucket`.
    pub(crate) fn delay_queue(&self, bucket: Duration) -> String {
        format!("{}.delay.{}", self.prefix, bucket.as_millis())
    }

    /// The smallest bucket not shorter than `delay`, or the longest one (the job then hops
    /// through it again until its not-before time).
    pub(crate) fn bucket_for(&self, delay: Duration) -> Duration {
        self.buckets
            .iter()
            .copied()
            .find(|bucket| *bucket >= delay)
            .or_else(|| self.buckets.last().copied())
            .unwrap_or(Duration::from_secs(1))
    }

    /// Every queue name, work and dead first.
    pub(crate) fn queues(&self) -> Vec<String> {
        let mut names = vec![self.work_queue.clone(), self.dead_queue.clone()];
        names.extend(self.buckets.iter().map(|bucket| self.delay_queue(*bucket)));
        names
    }

    /// Declares everything on `channel`.
    pub(crate) async fn declare(&self, channel: &Channel) -> Result<(), QueueError> {
        let broker = |operation| move |source| QueueError::Broker { operation, source };
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.work_exchange.as_str().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(broker("declare work exchange"))?;
        channel
            .exchange_declare(
                self.dead_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(broker("declare dead-letter exchange"))?;

        let mut work_arguments = quorum();
        work_arguments.insert(
            "x-dead-letter-exchange".into(),
            long_string(&self.dead_exchange),
        );
        channel
            .queue_declare(
                self.work_queue.as_str().into(),
                QueueDeclareOptions::durable(),
                work_arguments,
            )
            .await
            .map_err(broker("declare work queue"))?;
        channel
            .queue_bind(
                self.work_queue.as_str().into(),
                self.work_exchange.as_str().into(),
                WORK_ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker("bind work queue"))?;
        channel
            .queue_declare(
                self.dead_queue.as_str().into(),
                QueueDeclareOptions::durable(),
                quorum(),
            )
            .await
            .map_err(broker("declare dead-letter queue"))?;
        channel
            .queue_bind(
                self.dead_queue.as_str().into(),
                self.dead_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker("bind dead-letter queue"))?;

        for bucket in &self.buckets {
            let mut arguments = FieldTable::default();
            let ttl = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX);
            arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            arguments.insert(
                "x-dead-letter-exchange".into(),
                long_string(&self.work_exchange),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                long_string(WORK_ROUTING_KEY),
            );
            channel
                .queue_declare(
                    self.delay_queue(*bucket).as_str().into(),
                    QueueDeclareOptions::durable(),
                    arguments,
                )
                .await
                .map_err(broker("declare delay queue"))?;
        }
        Ok(())
    }

    /// Deletes every queue and exchange (tests and decommissioning).
    pub(crate) async fn delete(&self, channel: &Channel) -> Result<(), QueueError> {
        let broker = |operation| move |source| QueueError::Broker { operation, source };
        for queue in self.queues() {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(broker("delete queue"))?;
        }
        for exchange in [&self.work_exchange, &self.dead_exchange] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(broker("delete exchange"))?;
        }
        Ok(())
    }
}

/// Arguments of a quorum queue (replicated, durable, at-least-once by design).
fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), long_string("quorum"));
    arguments
}

pub(crate) fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_a_bucket() {
        let topology = Topology::new("t", &[]);
        assert_eq!(
            topology.bucket_for(Duration::from_millis(1)),
            Duration::from_millis(100)
        );
        assert_eq!(
            topology.bucket_for(Duration::from_millis(1001)),
            Duration::from_secs(2)
        );
        assert_eq!(
            topology.bucket_for(Duration::from_secs(86_400)),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(topology.delay_queue(Duration::from_secs(2)), "t.delay.2000");
    }
}
