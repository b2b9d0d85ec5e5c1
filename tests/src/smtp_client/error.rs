//! Errors of the load-test SMTP client, each naming the protocol step that failed.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reply::Reply;

/// The step of an SMTP session during which something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// TCP connect.
    Connect,
    /// The server's 220 greeting.
    Greeting,
    /// EHLO (before or after STARTTLS).
    Ehlo,
    /// The STARTTLS command.
    StartTls,
    /// The TLS handshake itself.
    TlsHandshake,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// The DATA command (waiting for 354).
    Data,
    /// Sending the message and waiting for the reply to the final ".".
    EndOfData,
    /// RSET after a refused transaction.
    Rset,
    /// QUIT.
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::StartTls => "STARTTLS",
            Self::TlsHandshake => "TLS handshake",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::EndOfData => "end of DATA",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
        })
    }
}

/// Why an SMTP client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpClientError {
    /// The TCP connection could not be opened.
    #[error("connecting to {address}: {source}")]
    Connect {
        /// Where we tried to connect.
        address: SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("I/O error during {stage}: {source}")]
    Io {
        /// The step in progress.
        stage: Stage,
        /// The underlying error (TLS alerts surface here too).
        source: io::Error,
    },
    /// The server closed the connection before answering.
    #[error("server closed the connection during {stage}")]
    Closed {
        /// The step in progress.
        stage: Stage,
    },
    /// The server's reply did not parse as SMTP.
    #[error("malformed reply during {stage}: {line:?}")]
    Malformed {
        /// The step in progress.
        stage: Stage,
        /// The offending line, lossily decoded.
        line: String,
    },
    /// The server answered with a code other than the one the step needs.
    #[error("{stage} refused: {reply}")]
    Rejected {
        /// The refused step.
        stage: Stage,
        /// The server's answer.
        reply: Reply,
    },
    /// The server took longer than the configured timeout.
    #[error("timed out after {timeout:?} during {stage}")]
    Timeout {
        /// The step in progress.
        stage: Stage,
        /// The limit that was exceeded.
        timeout: Duration,
    },
    /// The server did not advertise STARTTLS.
    #[error("server does not offer STARTTLS")]
    StartTlsNotOffered,
    /// Bytes followed the 220 to STARTTLS in the same read: a command-injection attempt (CVE-2011-0411
    /// class) or a broken server; the session must not continue.
    #[error("server sent data after its 220 to STARTTLS")]
    DataAfterStartTls,
    /// A certificate, key or CA file could not be read or used.
    #[error("TLS credentials from {path}: {reason}")]
    Credentials {
        /// The file involved.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The TLS client configuration could not be built.
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
}

impl SmtpClientError {
    /// The server's reply code, when the failure is a refusal.
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            Self::Rejected { reply, .. } => Some(reply.code),
            _ => None,
        }
    }

    /// A short bucket name for error counting: the reply code, or the kind of failure.
    pub fn bucket(&self) -> String {
        match self {
            Self::Rejected { reply, .. } => reply.code.to_string(),
            Self::Connect { .. } => "connect".to_owned(),
            Self::Io {
                stage: Stage::TlsHandshake,
                ..
            } => "tls".to_owned(),
            // With TLS 1.3 the server judges the client certificate after the client has finished its
            // side of the handshake, so a refusal arrives as an alert while reading the next reply.
            Self::Io { source, .. } if is_tls_error(source) => "tls".to_owned(),
            Self::Io { .. } => "io".to_owned(),
            Self::Closed { .. } => "closed".to_owned(),
            Self::Malformed { .. } => "malformed".to_owned(),
            Self::Timeout { .. } => "timeout".to_owned(),
            Self::StartTlsNotOffered | Self::DataAfterStartTls => "starttls".to_owned(),
            Self::Credentials { .. } | Self::TlsConfig(_) => "config".to_owned(),
        }
    }

    /// Whether the connection is still usable after this error (a refusal that did not close it).
    pub fn connection_usable(&self) -> bool {
        matches!(self, Self::Rejected { reply, .. } if reply.code != 421)
    }
}

/// Whether an I/O error carries a TLS failure (an alert received or a protocol error).
fn is_tls_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}
