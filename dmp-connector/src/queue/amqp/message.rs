//! How a job travels as an AMQP message: payload as the body, the rest in properties.
//!
//! `message_id` is the job id; headers carry the idempotency key, the attempts, the enqueue
//! time, the last reason and, for a retry, the not-before time (ms since the epoch).

use std::time::SystemTime;

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};

use super::topology::long_string;
use crate::queue::{Job, JobId, QueueError, from_unix_millis, unix_millis};

const KEY: &str = "x-idempotency-key";
const ATTEMPTS: &str = "x-attempts";
const ENQUEUED_AT: &str = "x-enqueued-at";
const REASON: &str = "x-reason";
const NOT_BEFORE: &str = "x-not-before";

/// Persistent (`delivery_mode` 2) properties for `job`, hidden until `not_before` if set.
pub(crate) fn properties(job: &Job, not_before: Option<SystemTime>) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(KEY.into(), long_string(&job.idempotency_key));
    headers.insert(
        ATTEMPTS.into(),
        AMQPValue::LongLongInt(i64::from(job.attempts)),
    );
    headers.insert(
        ENQUEUED_AT.into(),
        AMQPValue::LongLongInt(unix_millis(job.enqueued_at) as i64),
    );
    if let Some(reason) = &job.last_reason {
        headers.insert(REASON.into(), long_string(reason));
    }
    if let Some(not_before) = not_before {
        headers.insert(
            NOT_BEFORE.into(),
            AMQPValue::LongLongInt(unix_millis(not_before) as i64),
        );
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(job.id.as_str().into())
        .with_headers(headers)
}

/// The job a delivery carries, and its not-before time if any.
pub(crate) fn decode(delivery: &Delivery) -> Result<(Job, Option<SystemTime>), QueueError> {
    let properties = &delivery.properties;
    let id = properties
        .message_id()
        .as_ref()
        .ok_or(QueueError::Malformed { what: "message_id" })?;
    let empty = FieldTable::default();
    let headers = properties.headers().as_ref().unwrap_or(&empty).inner();
    let text = |name: &str| match headers.get(name) {
        Some(AMQPValue::LongString(value)) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        _ => None,
    };
    let number = |name: &str| match headers.get(name) {
        Some(AMQPValue::LongLongInt(value)) => u64::try_from(*value).ok(),
        _ => None,
    };
    let job = Job {
        id: JobId::from_stored(id.as_str().to_owned()),
        idempotency_key: text(KEY).ok_or(QueueError::Malformed { what: KEY })?,
        payload: delivery.data.clone(),
        attempts: number(ATTEMPTS)
            .and_then(|attempts| u32::try_from(attempts).ok())
            .unwrap_or(0),
        enqueued_at: from_unix_millis(number(ENQUEUED_AT).unwrap_or(0)),
        last_reason: text(REASON),
    };
    Ok((job, number(NOT_BEFORE).map(from_unix_millis)))
}
