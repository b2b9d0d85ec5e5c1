//! Buffered, deadline-aware I/O of one SMTP connection.
//!
//! Replies are queued and flushed only when the session is about to wait for the client (its
//! read buffer is drained): pipelined commands get their replies in one segment (RFC 2920), and a
//! client that waits for an answer always gets it at once, whatever its TCP_NODELAY setting.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Duration, Instant, timeout_at};

use crate::reply::{Reply, replies};
use crate::server::{Phase, ShutdownWatch};

/// Bytes asked from the stream per read.
const READ_SIZE: usize = 16 * 1024;
/// Upper bound for a goodbye reply to a client that may not be reading.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the session cannot go on reading.
#[derive(Debug)]
pub(crate) enum Interrupt {
    /// The client closed the connection.
    Closed,
    /// No bytes for `idle_timeout`.
    Idle,
    /// The whole session lasted `session_timeout`.
    SessionOver,
    /// The server is shutting down.
    Shutdown,
    /// The stream failed.
    Io(io::Error),
}

impl Interrupt {
    /// The `421` to send before closing, when the peer is still there to read it.
    pub(crate) fn reply(&self) -> Option<Reply> {
        match self {
            Interrupt::Closed | Interrupt::Io(_) => None,
            Interrupt::Idle => Some(replies::idle_timeout()),
            Interrupt::SessionOver => Some(replies::session_timeout()),
            Interrupt::Shutdown => Some(replies::shutting_down()),
        }
    }
}

/// One command line taken from the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, CRLF (or LF) removed.
    Complete(Vec<u8>),
    /// The line exceeded the limit; its bytes are being discarded up to the next LF.
    TooLong,
    /// More bytes are needed.
    Incomplete,
}

/// The stream plus its input and output buffers.
pub(crate) struct Connection<S> {
    stream: S,
    input: Vec<u8>,
    start: usize,
    output: Vec<u8>,
    skipping_long_line: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream.
    pub(crate) fn new(stream: S) -> Connection<S> {
        Connection {
            stream,
            input: Vec::with_capacity(READ_SIZE),
            start: 0,
            output: Vec::with_capacity(1024),
            skipping_long_line: false,
        }
    }

    /// Gives the stream back, dropping any buffered input. Used by STARTTLS: bytes the client
    /// pipelined after the command were sent in clear and must not be executed inside TLS
    /// (CVE-2011-0411 command injection).
    pub(crate) fn into_stream(self) -> S {
        self.stream
    }

    /// Bytes received and not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.input[self.start..]
    }

    /// Marks `count` buffered bytes as consumed.
    pub(crate) fn consume(&mut self, count: usize) {
        self.start = (self.start + count).min(self.input.len());
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        }
    }

    /// Takes the next command line, enforcing `max_line` (CRLF included).
    pub(crate) fn next_line(&mut self, max_line: usize) -> Line {
        let buffered = self.buffered();
        let newline = buffered.iter().position(|&b| b == b'\n');
        if self.skipping_long_line {
            match newline {
                Some(at) => {
                    self.skipping_long_line = false;
                    self.consume(at + 1);
                    // Re-enter to parse what follows the discarded line.
                    return self.next_line(max_line);
                }
                None => {
                    let all = buffered.len();
                    self.consume(all);
                    return Line::Incomplete;
                }
            }
        }
        match newline {
            Some(at) if at + 1 > max_line => {
                self.consume(at + 1);
                Line::TooLong
            }
            Some(at) => {
                let mut line = buffered[..at].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(at + 1);
                Line::Complete(line)
            }
            None if buffered.len() >= max_line => {
                let all = buffered.len();
                self.consume(all);
                self.skipping_long_line = true;
                Line::TooLong
            }
            None => Line::Incomplete,
        }
    }

    /// Queues a reply; it is sent by the next [`Connection::flush`].
    pub(crate) fn queue(&mut self, reply: &Reply) {
        reply.write_to(&mut self.output);
    }

    /// Sends the queued replies, waiting at most until `deadline`.
    pub(crate) async fn flush(&mut self, deadline: Instant) -> Result<(), Interrupt> {
        if self.output.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await
        };
        match timeout_at(deadline, write).await {
            Ok(Ok(())) => {
                self.output.clear();
                Ok(())
            }
            Ok(Err(error)) => Err(Interrupt::Io(error)),
            Err(_) => Err(Interrupt::Idle),
        }
    }

    /// Best-effort final reply (421, 221) and shutdown of the write side.
    pub(crate) async fn goodbye(&mut self, reply: Option<&Reply>) {
        if let Some(reply) = reply {
            self.queue(reply);
        }
        let deadline = Instant::now() + GOODBYE_TIMEOUT;
        if self.flush(deadline).await.is_ok() {
            let _ = timeout_at(deadline, self.stream.shutdown()).await;
        }
    }

    /// Flushes pending replies, then waits for more input until the earlier of the idle and
    /// session deadlines. `watch` tells when to give up because of a shutdown: at the first
    /// phase for an idle session, only at the forced phase during a transaction.
    pub(crate) async fn read_more(
        &mut self,
        idle_timeout: Duration,
        session_deadline: Instant,
        shutdown: &mut ShutdownWatch,
        give_up_at: Phase,
    ) -> Result<(), Interrupt> {
        let idle_deadline = Instant::now() + idle_timeout;
        let (deadline, expiry) = if session_deadline <= idle_deadline {
            (session_deadline, Interrupt::SessionOver)
        } else {
            (idle_deadline, Interrupt::Idle)
        };
        self.flush(deadline).await?;
        if self.start > 0 {
            // Keep unread bytes at the front so the buffer does not grow without bound.
            self.input.drain(..self.start);
            self.start = 0;
        }
        let filled = self.input.len();
        self.input.resize(filled + READ_SIZE, 0);
        let outcome = tokio::select! {
            read = self.stream.read(&mut self.input[filled..]) => Ok(read),
            () = tokio::time::sleep_until(deadline) => Err(expiry),
            () = shutdown.reached(give_up_at) => Err(Interrupt::Shutdown),
        };
        let count = match outcome {
            Ok(Ok(count)) => count,
            Ok(Err(error)) => {
                self.input.truncate(filled);
                return Err(Interrupt::Io(error));
            }
            Err(interrupt) => {
                self.input.truncate(filled);
                return Err(interrupt);
            }
        };
        self.input.truncate(filled + count);
        if count == 0 {
            return Err(Interrupt::Closed);
        }
        Ok(())
    }
}
