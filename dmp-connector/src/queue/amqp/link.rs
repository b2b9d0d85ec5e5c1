//! The connection supervisor: lapin does not recover a connection by itself, so every
//! operation asks the supervisor for a healthy [`Link`]; when the current one is closed
//! (broker restart, network cut) the supervisor connects again, re-declares the topology,
//! re-enables publisher confirms and prefetch, and restarts the consumer.
//!
//! Each link has an *epoch*. Deliveries are tagged with the epoch of the channel they came
//! on: a delivery tag of an older epoch is meaningless on the new channel, and the broker has
//! already put that message back in the queue, so such leases are reported lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use tokio::sync::Notify;

use super::topology::Topology;
use crate::queue::QueueError;

/// One live connection with its channels.
#[derive(Debug)]
pub(crate) struct Link {
    /// Increases with every reconnection.
    pub(crate) epoch: u64,
    pub(crate) connection: Connection,
    /// In confirm mode: every publish is confirmed by the broker.
    pub(crate) publisher: Channel,
    /// Carries the consumer of the work queue, with the prefetch limit.
    consumer_channel: Channel,
    /// Set by the consumer pump when the delivery stream ends or fails.
    broken: Arc<AtomicBool>,
}

impl Link {
    fn healthy(&self) -> bool {
        !self.broken.load(Ordering::Acquire)
            && self.connection.status().connected()
            && self.publisher.status().connected()
            && self.consumer_channel.status().connected()
    }

    /// Marks the link as broken so the next operation reconnects.
    pub(crate) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }
}

/// Deliveries received and not yet leased, each with the epoch of its channel.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    deliveries: Mutex<VecDeque<(u64, Delivery)>>,
    /// Woken when a delivery arrives.
    pub(crate) arrived: Notify,
}

impl Inbox {
    pub(crate) fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, Delivery)>> {
        // Only push and pop happen under this lock; a panic cannot leave it half-done.
        self.deliveries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Connection settings and the current link.
#[derive(Debug)]
pub(crate) struct Supervisor {
    uri: String,
    prefetch: u16,
    pub(crate) topology: Topology,
    current: tokio::sync::Mutex<Option<Arc<Link>>>,
    epochs: AtomicU64,
    pub(crate) inbox: Arc<Inbox>,
}

impl Supervisor {
    pub(crate) fn new(uri: String, prefetch: u16, topology: Topology) -> Supervisor {
        Supervisor {
            uri,
            prefetch,
            topology,
            current: tokio::sync::Mutex::new(None),
            epochs: AtomicU64::new(0),
            inbox: Arc::new(Inbox::default()),
        }
    }

    /// The current link if healthy, else a new one (one reconnection attempt).
    pub(crate) async fn link(&self) -> Result<Arc<Link>, QueueError> {
        let mut current = self.current.lock().await;
        if let Some(link) = current.as_ref()
            && link.healthy()
        {
            return Ok(Arc::clone(link));
        }
        if let Some(old) = current.take() {
            old.mark_broken();
            tracing::info!(epoch = old.epoch, "AMQP link lost; reconnecting");
            // Best effort: the connection is most likely gone already.
            let _ = old.connection.close(320, "reconnecting".into()).await;
        }
        let link = Arc::new(self.connect().await?);
        tracing::info!(epoch = link.epoch, "AMQP link up, topology declared");
        *current = Some(Arc::clone(&link));
        Ok(link)
    }

    /// The epoch of the current link, if any (without reconnecting).
    pub(crate) async fn current_epoch(&self) -> Option<u64> {
        self.current.lock().await.as_ref().map(|link| link.epoch)
    }

    /// Closes the current link, if any.
    pub(crate) async fn close(&self) {
        if let Some(link) = self.current.lock().await.take() {
            link.mark_broken();
            let _ = link.connection.close(200, "closing".into()).await;
        }
    }

    async fn connect(&self) -> Result<Link, QueueError> {
        let broker = |operation| move |source| QueueError::Broker { operation, source };
        let connection = Connection::connect(&self.uri, ConnectionProperties::default())
            .await
            .map_err(broker("connect"))?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(broker("open publishing channel"))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker("enable publisher confirms"))?;
        self.topology.declare(&publisher).await?;
        let consumer_channel = connection
            .create_channel()
            .await
            .map_err(broker("open consuming channel"))?;
        consumer_channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(broker("set prefetch"))?;
        let consumer = consumer_channel
            .basic_consume(
                self.topology.work_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker("start consumer"))?;
        let epoch = self.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        let broken = Arc::new(AtomicBool::new(false));
        tokio::spawn(pump(
            epoch,
            consumer,
            Arc::clone(&self.inbox),
            Arc::clone(&broken),
        ));
        Ok(Link {
            epoch,
            connection,
            publisher,
            consumer_channel,
            broken,
        })
    }
}

/// Moves deliveries from the consumer into the inbox until the stream ends.
async fn pump(epoch: u64, mut consumer: Consumer, inbox: Arc<Inbox>, broken: Arc<AtomicBool>) {
    while let Some(delivery) = consumer.next().await {
        match delivery {
            Ok(delivery) => {
                inbox.lock().push_back((epoch, delivery));
                inbox.arrived.notify_waiters();
            }
            Err(error) => {
                tracing::warn!(epoch, %error, "AMQP consumer failed");
                break;
            }
        }
    }
    broken.store(true, Ordering::Release);
    inbox.arrived.notify_waiters();
}
