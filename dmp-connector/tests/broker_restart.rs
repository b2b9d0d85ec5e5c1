//! RabbitMQ restarted mid-run (`rabbitmqctl stop_app` / `start_app`): every job enqueued
//! (confirmed) is delivered after recovery, nothing is lost. Its own test binary, so the
//! restart does not disturb the parallel tests of the queue suite.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use dmp_connector::queue::Queue;
use dmp_connector::queue::amqp::{AmqpConfig, AmqpQueue};

use support::{AMQP_URI, sample_job, unique_prefix};

fn rabbitmqctl(arguments: &[&str]) -> Result<(), String> {
    let output = Command::new("rabbitmqctl")
        .args(arguments)
        .output()
        .map_err(|error| format!("rabbitmqctl not runnable: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rabbitmqctl {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Enqueues until the broker confirms (the caller keeps the job until then, as the gateway
/// keeps the message in its spool).
async fn enqueue_confirmed(queue: &AmqpQueue, key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Err(error) = queue.enqueue(sample_job(key)).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never confirmed: {error}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_broker_restart() {
    let queue = AmqpQueue::connect(AmqpConfig::new(AMQP_URI, unique_prefix("restart")))
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let lease_for = Duration::from_secs(60);
    let mut keys: Vec<String> = (0..40).map(|n| format!("1.2.40.{n}")).collect();
    for key in &keys {
        enqueue_confirmed(&queue, key).await;
    }
    let mut delivered: HashMap<String, u32> = HashMap::new();
    for _ in 0..10 {
        let lease = queue
            .lease(lease_for, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        *delivered
            .entry(
                lease
                    .job
                    .request()
                    .expect("deposit request")
                    .entry
                    .unique_id,
            )
            .or_default() += 1;
        queue.ack(lease).await.unwrap();
    }
    // Five leases in progress when the broker goes away: never acked.
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(
            queue
                .lease(lease_for, Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap(),
        );
    }

    if let Err(reason) = rabbitmqctl(&["stop_app"]) {
        println!("SKIPPED broker restart: {reason}");
        queue.delete_topology().await.expect("delete topology");
        return;
    }
    // Enqueue during the outage: confirmed only once the broker is back.
    let during: Vec<String> = (0..10).map(|n| format!("1.2.41.{n}")).collect();
    let publisher = {
        let queue = queue.clone();
        let during = during.clone();
        tokio::spawn(async move {
            for key in &during {
                enqueue_confirmed(&queue, key).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = rabbitmqctl(&["start_app"]).and_then(|()| rabbitmqctl(&["await_startup"]));
    restarted.expect("broker must come back");
    publisher.await.expect("publisher task");
    keys.extend(during);

    for lease in held {
        // Their channel died with the connection: the broker requeued them.
        assert!(
            queue.ack(lease).await.is_err(),
            "a pre-restart lease cannot be acked"
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while keys.iter().any(|key| !delivered.contains_key(key)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs missing after restart"
        );
        let Ok(Some(lease)) = queue.lease(lease_for, Duration::from_secs(1)).await else {
            continue;
        };
        *delivered
            .entry(
                lease
                    .job
                    .request()
                    .expect("deposit request")
                    .entry
                    .unique_id,
            )
            .or_default() += 1;
        queue.ack(lease).await.expect("ack after recovery");
    }
    let duplicates: u32 = delivered.values().map(|count| count - 1).sum();
    println!(
        "broker restart: {} jobs delivered, {duplicates} duplicate deliveries",
        keys.len()
    );
    assert_eq!(delivered.len(), keys.len(), "every job delivered");
    queue.delete_topology().await.expect("delete topology");
}
