//! ESMTP server library for the MSSanté gateway: protocol (RFC 5321 with STARTTLS, SIZE,
//! PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES), mutual TLS with client-certificate capture, the
//! liste blanche, limits and timeouts, and a durable spool the DATA is streamed into.
//!
//! Start with [`server::Listener`]; the gateway plugs its checks in through
//! [`handler::MessageHandler`].
//!
//! Reply choices where the RFCs leave room (all built in [`reply::replies`]):
//! - bare CR or bare LF anywhere in DATA: the message is drained to `CRLF.CRLF`, then
//!   `550 5.6.0` (SMTP smuggling defence; only `CRLF.CRLF` ends DATA);
//! - a DATA text line over `max_text_line`: drained, then `500 5.5.6` (same code as an over-long
//!   command line);
//! - message over `max_message_size`: `552 5.3.4`, early on `SIZE=`, else after draining;
//! - more than `max_messages_per_session` messages: `421 4.7.0` at the next MAIL and the
//!   connection is closed, so big batches are spread over connections;
//! - more than `max_bad_commands` bad commands: `421 4.7.0` and close; the `503`s of RCPT/DATA
//!   pipelined behind a refused MAIL are not counted;
//! - EXPN: `502 5.5.1`; VRFY: `252 2.5.0` (neither confirms an address).

pub mod command;
pub mod data;
pub mod envelope;
pub mod handler;
pub mod limits;
pub mod peer;
pub mod quickack;
pub mod reply;
pub mod server;
pub mod session;
pub mod spool;
pub mod tls;
pub mod whitelist;
