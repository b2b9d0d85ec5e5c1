//! The one error type of S/MIME verification and its mapping to SMTP replies, ledger reasons and the
//! transient/permanent class — all decided in [`SmimeError::smtp_reply`] and [`SmimeError::ledger_reason`].

use smtp_in::reply::{EnhancedCode, Reply};

use crate::trust::TrustError;

/// Longest detail put in an SMTP reply line.
const MAX_DETAIL: usize = 400;

/// Why a message was not accepted by S/MIME verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmimeError {
    /// The MIME or CMS structure cannot be read (554 5.6.0).
    #[error("malformed S/MIME message: {reason}")]
    Malformed {
        /// What could not be read.
        reason: String,
    },
    /// The message is not signed and the sender's policy does not allow transport-only trust (550 5.7.1).
    #[error("unsigned message refused by policy (From domain {})", from_domain.as_deref().unwrap_or("unknown"))]
    Unsigned {
        /// Domain of the RFC 5322 From, if any.
        from_domain: Option<String>,
    },
    /// A CMS signature does not verify over the signed content (554 5.7.5).
    #[error("bad S/MIME signature{}: {reason}", signer.as_deref().map(|s| format!(" by {s}")).unwrap_or_default())]
    BadSignature {
        /// Subject of the signer certificate, when it could be identified.
        signer: Option<String>,
        /// OpenSSL's explanation.
        reason: String,
    },
    /// The EnvelopedData could not be decrypted with the gateway's key (554 5.7.5).
    #[error("cannot decrypt: {reason}")]
    Decryption {
        /// Why.
        reason: String,
    },
    /// The CMS signature uses a digest the policy refuses (554 5.7.6).
    #[error("weak signature digest {algorithm} used by {signer}")]
    WeakDigest {
        /// Subject of the signer certificate.
        signer: String,
        /// The digest algorithm (e.g. `sha1`).
        algorithm: String,
    },
    /// The signer certificate is not trusted (550 5.7.1; 554 5.7.6 for weak algorithms; 451 4.7.5 when
    /// the revocation status is unavailable).
    #[error("untrusted signer: {0}")]
    Untrusted(#[from] TrustError),
    /// The signer certificate does not identify the RFC 5322 From (550 5.7.1).
    #[error("signer {signer} is not allowed to send as {from} (accepted identities: {})", allowed.join("; "))]
    SenderMismatch {
        /// The From address.
        from: String,
        /// Subject of the signer certificate.
        signer: String,
        /// What would have matched: rfc822Names of the certificate, or configured identities.
        allowed: Vec<String>,
    },
    /// A header outside the signature differs from the wrapped message inside it (554 5.7.7).
    #[error("header {header} differs: outside the signature {outer:?}, inside {inner:?}")]
    HeaderTampering {
        /// Header name.
        header: String,
        /// Value outside the signature.
        outer: String,
        /// Value in the signed wrapped message.
        inner: String,
    },
}

impl SmimeError {
    /// The SMTP reply for this failure (the table is in the `smime` module documentation).
    pub fn smtp_reply(&self) -> Reply {
        let (code, enhanced, text) = match self {
            Self::Malformed { .. } => (554, EnhancedCode::new(5, 6, 0), "Malformed S/MIME message"),
            Self::Unsigned { .. } => (
                550,
                EnhancedCode::new(5, 7, 1),
                "Unsigned message refused by policy",
            ),
            Self::BadSignature { .. } => (
                554,
                EnhancedCode::new(5, 7, 5),
                "S/MIME signature verification failed",
            ),
            Self::Decryption { .. } => {
                (554, EnhancedCode::new(5, 7, 5), "S/MIME decryption failed")
            }
            Self::WeakDigest { .. } | Self::Untrusted(TrustError::WeakAlgorithm { .. }) => (
                554,
                EnhancedCode::new(5, 7, 6),
                "Cryptographic algorithm refused by policy",
            ),
            Self::Untrusted(error) if error.is_transient() => (
                451,
                EnhancedCode::new(4, 7, 5),
                "Signer revocation status unavailable, try again later",
            ),
            Self::Untrusted(TrustError::Revoked { .. }) => (
                550,
                EnhancedCode::new(5, 7, 1),
                "Signer certificate revoked",
            ),
            Self::Untrusted(_) => (
                550,
                EnhancedCode::new(5, 7, 1),
                "Signer certificate not trusted",
            ),
            Self::SenderMismatch { .. } => (
                550,
                EnhancedCode::new(5, 7, 1),
                "Signer does not match the From address",
            ),
            Self::HeaderTampering { .. } => {
                (554, EnhancedCode::new(5, 7, 7), "Header tampering detected")
            }
        };
        // The detail (subject, serial, times) helps the sending operator; it names no patient data.
        let mut detail = self.ledger_reason();
        // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; keep room for the code and text.
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push_str("...");
        }
        Reply::new(code, enhanced, format!("{text}: {detail}"))
    }

    /// One line for the ledger and DSNs: the full context, without line breaks.
    pub fn ledger_reason(&self) -> String {
        self.to_string().replace(['\r', '\n'], " ")
    }

    /// True when the sender should retry later unchanged (4xx), false for a permanent refusal (5xx).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Untrusted(error) if error.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::{CheckedAt, Timestamp};

    fn code(error: &SmimeError) -> (u16, String, bool) {
        let reply = error.smtp_reply();
        let enhanced = reply.enhanced.map(|e| e.to_string()).unwrap_or_default();
        (reply.code, enhanced, error.is_transient())
    }

    #[test]
    fn reply_table() {
        let subject = || "CN=x".to_owned();
        let serial = || "01".to_owned();
        let cases: Vec<(SmimeError, (u16, &str, bool))> = vec![
            (
                SmimeError::Malformed { reason: "x".into() },
                (554, "5.6.0", false),
            ),
            (
                SmimeError::Unsigned { from_domain: None },
                (550, "5.7.1", false),
            ),
            (
                SmimeError::BadSignature {
                    signer: None,
                    reason: "x".into(),
                },
                (554, "5.7.5", false),
            ),
            (
                SmimeError::Decryption { reason: "x".into() },
                (554, "5.7.5", false),
            ),
            (
                SmimeError::WeakDigest {
                    signer: subject(),
                    algorithm: "sha1".into(),
                },
                (554, "5.7.6", false),
            ),
            (
                SmimeError::Untrusted(TrustError::WeakAlgorithm {
                    subject: subject(),
                    serial: serial(),
                    what: "key",
                    algorithm: "RSA 1024".into(),
                }),
                (554, "5.7.6", false),
            ),
            (
                SmimeError::Untrusted(TrustError::CrlUnavailable {
                    subject: subject(),
                    serial: serial(),
                    issuer: subject(),
                    url: None,
                }),
                (451, "4.7.5", true),
            ),
            (
                SmimeError::Untrusted(TrustError::CrlExpired {
                    subject: subject(),
                    issuer: subject(),
                    this_update: Timestamp(0),
                    next_update: Timestamp(1),
                    now: Timestamp(2),
                    grace_secs: 0,
                }),
                (451, "4.7.5", true),
            ),
            (
                SmimeError::Untrusted(TrustError::Revoked {
                    subject: subject(),
                    issuer: subject(),
                    serial: serial(),
                    revoked_at: Timestamp(0),
                    this_update: Timestamp(0),
                    next_update: None,
                }),
                (550, "5.7.1", false),
            ),
            (
                SmimeError::Untrusted(TrustError::Expired {
                    subject: subject(),
                    serial: serial(),
                    not_after: Timestamp(0),
                    at: Timestamp(1),
                    checked_at: CheckedAt::Now,
                }),
                (550, "5.7.1", false),
            ),
            (
                SmimeError::SenderMismatch {
                    from: "a@b".into(),
                    signer: subject(),
                    allowed: vec![],
                },
                (550, "5.7.1", false),
            ),
            (
                SmimeError::HeaderTampering {
                    header: "Subject".into(),
                    outer: "a".into(),
                    inner: "b".into(),
                },
                (554, "5.7.7", false),
            ),
        ];
        for (error, (reply_code, enhanced, transient)) in cases {
            assert_eq!(
                code(&error),
                (reply_code, enhanced.to_owned(), transient),
                "{error}"
            );
        }
    }

    #[test]
    fn long_details_are_cut_to_fit_a_reply_line() {
        let error = SmimeError::Malformed {
            reason: "é".repeat(600),
        };
        let reply = error.smtp_reply();
        assert!(reply.text.len() < 512 - 12, "{}", reply.text.len());
        assert!(reply.text.ends_with("..."));
    }
}
