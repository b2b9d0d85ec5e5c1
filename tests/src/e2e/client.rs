//! Sending as the hospital's MTA: mutual TLS with `certs/tls/hopital-a`, through the load
//! generator's SMTP client so the test sees the server's exact replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use rustls_pki_types::ServerName;

use super::message::Mail;
use super::paths::cert;
use crate::smtp_client::tls::{TlsFiles, TlsVersions, client_config};
use crate::smtp_client::{self, ConnectOptions, Reply, SmtpClientError, Stage, TlsMode};

/// What the gateway answered at the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `250 2.0.0 <queue-id> queued`.
    Queued {
        /// The queue id of the reply.
        queue_id: String,
    },
    /// Any other final reply.
    Refused(Reply),
}

impl Outcome {
    /// The queue id, or an error quoting the refusal.
    pub fn queue_id(&self) -> anyhow::Result<&str> {
        match self {
            Outcome::Queued { queue_id } => Ok(queue_id),
            Outcome::Refused(reply) => bail!("refused: {reply}"),
        }
    }
}

/// Parses the contract's acceptance reply, `250 2.0.0 <queue-id> queued`.
pub fn parse_queued(reply: &Reply) -> anyhow::Result<String> {
    let words: Vec<&str> = reply
        .lines
        .first()
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default();
    match (reply.code, reply.lines.len(), words.as_slice()) {
        (250, 1, ["2.0.0", id, "queued"]) if !id.is_empty() => Ok((*id).to_owned()),
        _ => bail!("not a `250 2.0.0 <id> queued` reply: {reply}"),
    }
}

/// An SMTP client of the gateway.
#[derive(Debug, Clone)]
pub struct Sender {
    options: ConnectOptions,
}

impl Sender {
    /// A client of the STARTTLS listener at `address`, as hopital-a.
    pub fn hopital_a(address: SocketAddr) -> anyhow::Result<Sender> {
        Self::with_tls(address, TlsMode::StartTls, "tls/hopital-a")
    }

    /// A client of `address` presenting `certs/<tls>.{pem,key}`.
    pub fn with_tls(address: SocketAddr, mode: TlsMode, tls: &str) -> anyhow::Result<Sender> {
        let ca = cert("ca/bundle.pem");
        let certificate = cert(&format!("{tls}.pem"));
        let key = cert(&format!("{tls}.key"));
        let config = client_config(
            &TlsFiles {
                ca: &ca,
                certificate: &certificate,
                key: &key,
            },
            TlsVersions::Any,
            false,
        )?;
        Ok(Sender {
            options: ConnectOptions {
                address,
                mode,
                server_name: ServerName::try_from("localhost")?.to_owned(),
                tls: Arc::clone(&config),
                helo: "mx.hopital-a.mssante.test".to_owned(),
                nodelay: true,
                timeout: Duration::from_secs(30),
            },
        })
    }

    /// Sends `mail` on a new connection and returns the end-of-DATA outcome. Refusals before
    /// DATA and transport failures are errors.
    pub async fn send(&self, mail: &Mail) -> anyhow::Result<Outcome> {
        let bytes = mail.render()?;
        self.send_raw(&mail.from, &mail.to, &bytes).await
    }

    /// Sends prebuilt bytes (CRLF line ends; dot-stuffed here).
    pub async fn send_raw(
        &self,
        from: &str,
        to: &[String],
        bytes: &[u8],
    ) -> Result<Outcome, anyhow::Error> {
        let stuffed = dot_stuff(bytes);
        let mut session = smtp_client::connect(&self.options).await?;
        let outcome = match session
            .send_mail_with_reply(from, to, &[stuffed.as_slice()])
            .await
        {
            Ok((_, reply)) => Outcome::Queued {
                queue_id: parse_queued(&reply)?,
            },
            Err(SmtpClientError::Rejected {
                stage: Stage::EndOfData,
                reply,
            }) => Outcome::Refused(reply),
            Err(error) => return Err(error.into()),
        };
        // The transaction is over; a failed QUIT changes nothing about it.
        let _ = session.quit().await;
        Ok(outcome)
    }
}

/// RFC 5321 §4.5.2 transparency, and a final CRLF.
pub fn dot_stuff(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut line_start = true;
    for &byte in bytes {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
