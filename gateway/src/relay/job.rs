//! The relay queue's payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One delivery to do: the recipients of one domain for one message. Serialized as JSON, it is
/// the payload of a `dmp_connector::queue::NewJob`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayJob {
    /// Spool queue id of the original message.
    pub queue_id: String,
    /// Recipient domain, lower case.
    pub domain: String,
    /// Reverse path (`None` = `<>`).
    pub mail_from: Option<String>,
    /// Recipients, all in `domain`.
    pub recipients: Vec<String>,
    /// What to send.
    pub content: RelayContent,
    /// A message or a notification about one.
    pub kind: RelayKind,
}

/// Where the bytes to send come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayContent {
    /// The original bytes, read from the spool by `queue_id`.
    Spool,
    /// Bytes carried in the job (notifications); base64 in the JSON.
    Inline(#[serde(serialize_with = "to_base64", deserialize_with = "from_base64")] Vec<u8>),
}

/// What the job carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RelayKind {
    /// A relayed message: its failure produces a DSN.
    Message,
    /// A DSN or MDN: its failure produces nothing (no notification loops).
    Notification,
}

impl RelayKind {
    /// Name used in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayKind::Message => "message",
            RelayKind::Notification => "notification",
        }
    }
}

impl RelayJob {
    /// `<queue_id>/<domain>/<kind>`: one live job per message, domain and kind.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.queue_id, self.domain, self.kind.as_str())
    }

    /// The JSON payload.
    pub fn to_payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a JSON payload back.
    pub fn from_payload(payload: &[u8]) -> Result<RelayJob, serde_json::Error> {
        serde_json::from_slice(payload)
    }

    /// The job as a queue entry.
    pub fn to_new_job(&self) -> Result<dmp_connector::queue::NewJob, serde_json::Error> {
        Ok(dmp_connector::queue::NewJob {
            idempotency_key: self.idempotency_key(),
            payload: self.to_payload()?,
        })
    }
}

fn to_base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_with_inline_content_as_base64() {
        let job = RelayJob {
            queue_id: "Q1".into(),
            domain: "cabinet-c.mssante.test".into(),
            mail_from: None,
            recipients: vec!["dr@cabinet-c.mssante.test".into()],
            content: RelayContent::Inline(b"Subject: x\r\n\r\n\xff".to_vec()),
            kind: RelayKind::Notification,
        };
        let payload = job.to_payload().unwrap();
        let text = String::from_utf8(payload.clone()).unwrap();
        assert!(
            text.contains(r#""Inline":"U3ViamVjdDogeA0KDQr/""#),
            "{text}"
        );
        assert_eq!(RelayJob::from_payload(&payload).unwrap(), job);
        assert_eq!(
            job.idempotency_key(),
            "Q1/cabinet-c.mssante.test/notification"
        );
        let spool = RelayJob {
            content: RelayContent::Spool,
            kind: RelayKind::Message,
            ..job
        };
        let payload = spool.to_payload().unwrap();
        assert_eq!(RelayJob::from_payload(&payload).unwrap(), spool);
    }
}
