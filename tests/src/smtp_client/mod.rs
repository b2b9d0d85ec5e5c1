//! A small SMTP client for load tests: mutual TLS (STARTTLS or implicit), one transaction at a time,
//! with the timings a benchmark needs. Not a general-purpose mail client.

pub mod error;
pub mod message;
pub mod reply;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use error::{SmtpClientError, Stage};
pub use message::MessageTemplate;
pub use reply::Reply;

/// How TLS starts on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain greeting and EHLO, then STARTTLS (RFC 3207).
    StartTls,
    /// TLS from the first byte (RFC 8314 style).
    Implicit,
}

/// Everything needed to open a session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The server's address.
    pub address: SocketAddr,
    /// STARTTLS or implicit TLS.
    pub mode: TlsMode,
    /// The name the server certificate must carry (also sent as SNI when it is a DNS name).
    pub server_name: ServerName<'static>,
    /// The TLS client configuration (trust anchors and client certificate).
    pub tls: Arc<rustls::ClientConfig>,
    /// The EHLO argument.
    pub helo: String,
    /// Set TCP_NODELAY on the socket.
    pub nodelay: bool,
    /// Limit for each single step (connect, handshake, each reply).
    pub timeout: Duration,
}

/// Timings of one accepted transaction.
#[derive(Debug, Clone, Copy)]
pub struct TransactionTiming {
    /// From the final "." having been written to the server's reply to it.
    pub accept: Duration,
    /// From MAIL FROM being written to the reply to the final ".".
    pub total: Duration,
}

/// An SMTP session over a stream, after the greeting.
#[derive(Debug)]
pub struct Session<S> {
    reader: BufReader<S>,
    timeout: Duration,
}

/// A session over TLS, as [`connect`] returns it.
pub type TlsSession = Session<TlsStream<TcpStream>>;

/// Connects, negotiates TLS and sends EHLO: the returned session is ready for a transaction.
pub async fn connect(options: &ConnectOptions) -> Result<TlsSession, SmtpClientError> {
    let timeout = options.timeout;
    let tcp = within(timeout, Stage::Connect, async {
        TcpStream::connect(options.address)
            .await
            .map_err(|source| SmtpClientError::Connect {
                address: options.address,
                source,
            })
    })
    .await?;
    tcp.set_nodelay(options.nodelay)
        .map_err(|source| SmtpClientError::Io {
            stage: Stage::Connect,
            source,
        })?;

    let tcp = match options.mode {
        TlsMode::Implicit => tcp,
        TlsMode::StartTls => {
            let mut plain = Session {
                reader: BufReader::new(tcp),
                timeout,
            };
            plain.expect(Stage::Greeting, 220).await?;
            let ehlo = plain.ehlo(&options.helo).await?;
            if !ehlo.has_extension("STARTTLS") {
                return Err(SmtpClientError::StartTlsNotOffered);
            }
            plain.command("STARTTLS", Stage::StartTls, 220).await?;
            if !plain.reader.buffer().is_empty() {
                return Err(SmtpClientError::DataAfterStartTls);
            }
            plain.reader.into_inner()
        }
    };

    let connector = TlsConnector::from(Arc::clone(&options.tls));
    let stream = within(timeout, Stage::TlsHandshake, async {
        connector
            .connect(options.server_name.clone(), tcp)
            .await
            .map_err(|source| SmtpClientError::Io {
                stage: Stage::TlsHandshake,
                source,
            })
    })
    .await?;
    let mut session = Session {
        reader: BufReader::new(stream),
        timeout,
    };
    if options.mode == TlsMode::Implicit {
        session.expect(Stage::Greeting, 220).await?;
    }
    session.ehlo(&options.helo).await?;
    Ok(session)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Sends EHLO and returns the server's (250) answer.
    pub async fn ehlo(&mut self, helo: &str) -> Result<Reply, SmtpClientError> {
        self.command(&format!("EHLO {helo}"), Stage::Ehlo, 250)
            .await
    }

    /// Runs one transaction: MAIL FROM, RCPT TO for each recipient, DATA, then `parts` (which together
    /// must be the dot-stuffed, CRLF-terminated message) and the final ".".
    pub async fn send_mail(
        &mut self,
        from: &str,
        recipients: &[String],
        parts: &[&[u8]],
    ) -> Result<TransactionTiming, SmtpClientError> {
        self.send_mail_with_reply(from, recipients, parts)
            .await
            .map(|(timing, _)| timing)
    }

    /// Like [`Session::send_mail`], also returning the server's reply to the final "." (it
    /// carries the queue id a test or a benchmark needs to follow the message).
    pub async fn send_mail_with_reply(
        &mut self,
        from: &str,
        recipients: &[String],
        parts: &[&[u8]],
    ) -> Result<(TransactionTiming, Reply), SmtpClientError> {
        let start = Instant::now();
        self.command(&format!("MAIL FROM:<{from}>"), Stage::MailFrom, 250)
            .await?;
        for recipient in recipients {
            let reply = self
                .command_any(&format!("RCPT TO:<{recipient}>"), Stage::RcptTo)
                .await?;
            if reply.code != 250 && reply.code != 251 {
                return Err(SmtpClientError::Rejected {
                    stage: Stage::RcptTo,
                    reply,
                });
            }
        }
        self.command("DATA", Stage::Data, 354).await?;
        for part in parts {
            self.write(part, Stage::EndOfData).await?;
        }
        self.write(b".\r\n", Stage::EndOfData).await?;
        self.flush(Stage::EndOfData).await?;
        let end_of_data = Instant::now();
        let reply = self.expect(Stage::EndOfData, 250).await?;
        let done = Instant::now();
        let timing = TransactionTiming {
            accept: done - end_of_data,
            total: done - start,
        };
        Ok((timing, reply))
    }

    /// Sends RSET, to continue after a refused transaction.
    pub async fn reset(&mut self) -> Result<(), SmtpClientError> {
        self.command("RSET", Stage::Rset, 250).await.map(drop)
    }

    /// Sends QUIT, waits for the 221 and closes the stream.
    pub async fn quit(mut self) -> Result<(), SmtpClientError> {
        self.command("QUIT", Stage::Quit, 221).await?;
        let timeout = self.timeout;
        let stream = self.reader.get_mut();
        within(timeout, Stage::Quit, async {
            stream
                .shutdown()
                .await
                .map_err(|source| SmtpClientError::Io {
                    stage: Stage::Quit,
                    source,
                })
        })
        .await
    }

    /// Sends `line` and requires reply code `expected`.
    async fn command(
        &mut self,
        line: &str,
        stage: Stage,
        expected: u16,
    ) -> Result<Reply, SmtpClientError> {
        let reply = self.command_any(line, stage).await?;
        if reply.code == expected {
            Ok(reply)
        } else {
            Err(SmtpClientError::Rejected { stage, reply })
        }
    }

    async fn command_any(&mut self, line: &str, stage: Stage) -> Result<Reply, SmtpClientError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, stage).await?;
        self.flush(stage).await?;
        self.read(stage).await
    }

    async fn expect(&mut self, stage: Stage, expected: u16) -> Result<Reply, SmtpClientError> {
        let reply = self.read(stage).await?;
        if reply.code == expected {
            Ok(reply)
        } else {
            Err(SmtpClientError::Rejected { stage, reply })
        }
    }

    async fn read(&mut self, stage: Stage) -> Result<Reply, SmtpClientError> {
        let timeout = self.timeout;
        within(timeout, stage, reply::read_reply(&mut self.reader, stage)).await
    }

    async fn write(&mut self, bytes: &[u8], stage: Stage) -> Result<(), SmtpClientError> {
        let timeout = self.timeout;
        let stream = self.reader.get_mut();
        within(timeout, stage, async {
            stream
                .write_all(bytes)
                .await
                .map_err(|source| SmtpClientError::Io { stage, source })
        })
        .await
    }

    async fn flush(&mut self, stage: Stage) -> Result<(), SmtpClientError> {
        let timeout = self.timeout;
        let stream = self.reader.get_mut();
        within(timeout, stage, async {
            stream
                .flush()
                .await
                .map_err(|source| SmtpClientError::Io { stage, source })
        })
        .await
    }
}

/// Runs `future` with a deadline, turning expiry into [`SmtpClientError::Timeout`].
async fn within<T>(
    timeout: Duration,
    stage: Stage,
    future: impl Future<Output = Result<T, SmtpClientError>>,
) -> Result<T, SmtpClientError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or_else(|_| Err(SmtpClientError::Timeout { stage, timeout }))
}
