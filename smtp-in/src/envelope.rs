//! The SMTP envelope of one message: what the session learnt before and around DATA.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::peer::PeerIdentity;

/// Body type announced with `MAIL FROM:<...> BODY=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BodyType {
    /// `BODY=7BIT` or no parameter.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
}

impl BodyType {
    /// The ESMTP keyword for this body type, as written in `MAIL FROM` and in the spool.
    pub fn keyword(self) -> &'static str {
        match self {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
        }
    }

    /// Parses the ESMTP keyword (case-insensitive); `None` for anything else (e.g. BINARYMIME,
    /// which we do not announce).
    pub fn from_keyword(keyword: &str) -> Option<BodyType> {
        if keyword.eq_ignore_ascii_case("7BIT") {
            Some(BodyType::SevenBit)
        } else if keyword.eq_ignore_ascii_case("8BITMIME") {
            Some(BodyType::EightBitMime)
        } else {
            None
        }
    }
}

/// Everything about a message except its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Argument of the last HELO/EHLO.
    pub helo: String,
    /// Remote address of the TCP connection.
    pub client_addr: SocketAddr,
    /// Client certificate identity, when the client authenticated with TLS.
    pub peer: Option<PeerIdentity>,
    /// Reverse path without angle brackets; `None` for the null sender `<>`.
    pub mail_from: Option<String>,
    /// Forward paths without angle brackets, in the order accepted.
    pub recipients: Vec<String>,
    /// Body type from `MAIL FROM ... BODY=`.
    pub body: BodyType,
    /// `SIZE=` announced in `MAIL FROM`, if any.
    pub declared_size: Option<u64>,
    /// When the transaction started (MAIL FROM accepted).
    pub received_at: SystemTime,
}
