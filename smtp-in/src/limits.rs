//! Resource limits of the SMTP listener: sizes, counts and times.
//!
//! Every limit is enforced in the session read loop before any parsing work, so that a hostile
//! or broken client cannot make the server hold more than these bounds.

use std::time::Duration;

/// Limits applied to every connection of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in octets after dot-unstuffing (advertised as `SIZE`).
    pub max_message_size: u64,
    /// Recipients per transaction; more get `452 4.5.3` (RFC 5321 §4.5.3.1.10 requires ≥ 100).
    pub max_recipients: usize,
    /// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4: 512).
    pub max_command_line: usize,
    /// Longest text line in DATA, CRLF included (RFC 5321 §4.5.3.1.6: 1000).
    pub max_text_line: usize,
    /// How long the server waits for the client's next bytes.
    pub idle_timeout: Duration,
    /// Total duration of one connection.
    pub session_timeout: Duration,
    /// Connections served at once by one listener.
    pub max_connections: usize,
    /// Connections served at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Bad commands tolerated; the next one gets `421 4.7.0` and the connection is closed.
    pub max_bad_commands: u32,
    /// Messages per connection; the next MAIL gets `421 4.7.0` so the client reconnects.
    pub max_messages_per_session: u32,
    /// After shutdown begins, how long sessions may finish their transaction.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 512,
            max_text_line: 1000,
            idle_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(30 * 60),
            max_connections: 1000,
            max_connections_per_ip: 20,
            max_bad_commands: 10,
            max_messages_per_session: 100,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
