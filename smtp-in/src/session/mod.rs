//! The ESMTP session state machine, generic over its byte stream so that tests drive it in memory.
//!
//! One file per verb or step. A session on a STARTTLS listener starts as `Session<S>` in clear
//! text; STARTTLS consumes it and a `Session<TlsStream<S>>` comes out, with a fresh SMTP state
//! (RFC 3207 §4.2) and nothing of what the client pipelined in clear.

mod data;
mod ehlo;
mod handshake;
mod io;
mod mail;
mod rcpt;
mod received;
mod starttls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::command::{self, Command};
use crate::envelope::BodyType;
use crate::handler::MessageHandler;
use crate::reply::{Reply, replies};
use crate::server::{ListenerConfig, ListenerMode, Phase, Shutdown, ShutdownWatch};
use crate::spool::Spool;

pub use handshake::TlsInfo;
use io::{Connection, Interrupt, Line};

/// What every session of a listener shares.
pub struct SessionContext<H> {
    /// Listener configuration (mode, hostname, TLS, limits, whitelist).
    pub config: Arc<ListenerConfig>,
    /// Where messages are written.
    pub spool: Spool,
    /// Checks run at the end of DATA.
    pub handler: Arc<H>,
    /// Shutdown signal.
    pub shutdown: Shutdown,
}

/// Serves one accepted connection from greeting to close.
///
/// On an implicit-TLS listener the TLS handshake comes first; on a STARTTLS listener the session
/// starts in clear and refuses mail until STARTTLS succeeded.
pub async fn serve_connection<S, H>(
    stream: S,
    client_addr: SocketAddr,
    context: Arc<SessionContext<H>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    let limits = &context.config.limits;
    let carry = Carry {
        deadline: Instant::now() + limits.session_timeout,
        bad_commands: 0,
        messages: 0,
    };
    match context.config.mode {
        ListenerMode::Implicit => {
            let Some((stream, tls)) = handshake::accept(stream, &context, &carry).await else {
                return;
            };
            let mut session = Session::new(stream, Some(tls), client_addr, context, carry);
            session.greet();
            session.run().await;
        }
        ListenerMode::StartTls => {
            let mut session = Session::new(stream, None, client_addr, context.clone(), carry);
            session.greet();
            let Some((stream, carry)) = session.run().await else {
                return;
            };
            let Some((stream, tls)) = handshake::accept(stream, &context, &carry).await else {
                return;
            };
            let session = Session::new(stream, Some(tls), client_addr, context, carry);
            // After STARTTLS no second greeting: the client starts again with EHLO.
            if session.run().await.is_some() {
                debug!("STARTTLS inside TLS was refused; nothing to do");
            }
        }
    }
}

/// Counters and deadline that survive the STARTTLS change of session type.
struct Carry {
    deadline: Instant,
    bad_commands: u32,
    messages: u32,
}

/// An open mail transaction: MAIL accepted, recipients being collected.
struct Transaction {
    sender: Option<String>,
    size: Option<u64>,
    body: BodyType,
    recipients: Vec<String>,
    started: SystemTime,
}

/// What the session does after a command.
enum Flow {
    Continue,
    Close,
    StartTls,
}

/// One SMTP session over the stream `S`.
struct Session<S, H> {
    conn: Connection<S>,
    context: Arc<SessionContext<H>>,
    shutdown: ShutdownWatch,
    client_addr: SocketAddr,
    tls: Option<TlsInfo>,
    helo: Option<String>,
    esmtp: bool,
    transaction: Option<Transaction>,
    /// The last MAIL was refused: the RCPT and DATA the client pipelined behind it get `503`
    /// but do not count as bad commands (the client did nothing wrong by pipelining).
    mail_refused: bool,
    carry: Carry,
}

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    fn new(
        stream: S,
        tls: Option<TlsInfo>,
        client_addr: SocketAddr,
        context: Arc<SessionContext<H>>,
        carry: Carry,
    ) -> Session<S, H> {
        Session {
            conn: Connection::new(stream),
            shutdown: context.shutdown.watch(),
            context,
            client_addr,
            tls,
            helo: None,
            esmtp: false,
            transaction: None,
            mail_refused: false,
            carry,
        }
    }

    fn greet(&mut self) {
        let hostname = &self.context.config.hostname;
        self.conn
            .queue(&Reply::bare(220, format!("{hostname} ESMTP ready")));
    }

    /// Runs the command loop. Returns the stream when STARTTLS was accepted.
    async fn run(mut self) -> Option<(S, Carry)> {
        loop {
            let flow = match self
                .conn
                .next_line(self.context.config.limits.max_command_line)
            {
                Line::Complete(line) => self.dispatch(&line).await,
                Line::TooLong => self.bad_command(replies::line_too_long()),
                Line::Incomplete => match self.read_more().await {
                    Ok(()) => Flow::Continue,
                    Err(interrupt) => {
                        self.interrupted(interrupt).await;
                        return None;
                    }
                },
            };
            match flow {
                Flow::Continue => {}
                Flow::Close => {
                    self.conn.goodbye(None).await;
                    return None;
                }
                Flow::StartTls => {
                    let deadline = self.carry.deadline;
                    if let Err(interrupt) = self.conn.flush(deadline).await {
                        self.interrupted(interrupt).await;
                        return None;
                    }
                    return Some((self.conn.into_stream(), self.carry));
                }
            }
        }
    }

    async fn dispatch(&mut self, line: &[u8]) -> Flow {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(error) => return self.bad_command(error.reply()),
        };
        match command {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::StartTls => self.starttls(),
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(recipient) => self.rcpt(recipient),
            Command::Data => self.data().await,
            Command::Rset => {
                self.reset();
                self.reply(replies::ok())
            }
            Command::Noop => self.reply(replies::ok()),
            Command::Vrfy => self.reply(replies::cannot_verify()),
            Command::Expn => self.reply(replies::expn_disabled()),
            Command::Help => self.reply(replies::help()),
            Command::Quit => {
                self.conn.queue(&replies::bye());
                Flow::Close
            }
        }
    }

    /// Queues a reply and continues.
    fn reply(&mut self, reply: Reply) -> Flow {
        self.conn.queue(&reply);
        Flow::Continue
    }

    /// Counts a bad command; past the limit the client is disconnected with `421 4.7.0`.
    fn bad_command(&mut self, reply: Reply) -> Flow {
        self.carry.bad_commands += 1;
        if self.carry.bad_commands > self.context.config.limits.max_bad_commands {
            info!(client = %self.client_addr, "too many bad commands");
            self.conn.queue(&replies::too_many_errors());
            return Flow::Close;
        }
        self.reply(reply)
    }

    /// A `503` for a command out of sequence, not counted when it follows a refused MAIL.
    fn out_of_sequence(&mut self, text: &str) -> Flow {
        let reply = replies::bad_sequence(text);
        if self.mail_refused {
            self.reply(reply)
        } else {
            self.bad_command(reply)
        }
    }

    /// Abandons the current transaction (RSET, EHLO, end of DATA).
    fn reset(&mut self) {
        self.transaction = None;
        self.mail_refused = false;
    }

    /// Waits for more input; shutdown interrupts an idle session at once, a transaction only
    /// when the grace period is over.
    async fn read_more(&mut self) -> Result<(), Interrupt> {
        let give_up_at = if self.transaction.is_some() {
            Phase::Forced
        } else {
            Phase::Draining
        };
        let idle = self.context.config.limits.idle_timeout;
        self.conn
            .read_more(idle, self.carry.deadline, &mut self.shutdown, give_up_at)
            .await
    }

    async fn interrupted(&mut self, interrupt: Interrupt) {
        match &interrupt {
            Interrupt::Io(error) => debug!(client = %self.client_addr, %error, "connection failed"),
            other => debug!(client = %self.client_addr, interrupt = ?other, "session interrupted"),
        }
        let reply = interrupt.reply();
        self.conn.goodbye(reply.as_ref()).await;
    }
}
