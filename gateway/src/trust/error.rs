//! Why a certificate is not trusted: each variant names the certificate, the reason and the times compared.

use std::fmt;

use super::time::Timestamp;

/// Which instant a validity check was made at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckedAt {
    /// The signingTime attribute of the CMS signature (claimed by the signer).
    SigningTime,
    /// The gateway's clock when the message was checked.
    Now,
}

impl fmt::Display for CheckedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SigningTime => "signing time",
            Self::Now => "now",
        })
    }
}

/// The usage a certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Usage {
    /// S/MIME signature: keyUsage digitalSignature or nonRepudiation, EKU emailProtection.
    SmimeSigning,
    /// TLS client authentication: keyUsage digitalSignature, EKU clientAuth.
    TlsClient,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SmimeSigning => "S/MIME signing",
            Self::TlsClient => "TLS client authentication",
        })
    }
}

/// Why a certificate chain was not accepted.
///
/// `subject`/`issuer` are RFC 4514 strings, `serial` lowercase hex: enough for an operator to find the
/// certificate without the message (the failure Direct Project users most complained about).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// No path from the certificate to a configured trust anchor (unknown or rogue CA).
    #[error(
        "no chain to a trust anchor for {subject} (serial {serial}, issuer {issuer}): {reason}"
    )]
    UnknownIssuer {
        /// Subject of the certificate whose issuer was not found.
        subject: String,
        /// Issuer named by that certificate.
        issuer: String,
        /// Serial of that certificate.
        serial: String,
        /// OpenSSL's explanation.
        reason: String,
    },
    /// The chain was found but OpenSSL rejected it (bad CA signature, path length, ...).
    #[error("invalid chain at {subject} (serial {serial}, depth {depth}): {reason}")]
    InvalidChain {
        /// The failing certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// Position in the chain (0 = end entity).
        depth: u32,
        /// OpenSSL's explanation.
        reason: String,
    },
    /// A certificate carries a critical extension this verifier does not understand.
    #[error("{subject} (serial {serial}) has an unknown critical extension {oid}")]
    UnknownCriticalExtension {
        /// The certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// Dotted OID of the extension (or `unknown`).
        oid: String,
    },
    /// A certificate's notAfter is before the instant checked.
    #[error("{subject} (serial {serial}) expired at {not_after}, checked at {checked_at} ({at})")]
    Expired {
        /// The certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// Its notAfter.
        not_after: Timestamp,
        /// The instant checked.
        at: Timestamp,
        /// Which instant it was.
        checked_at: CheckedAt,
    },
    /// A certificate's notBefore is after the instant checked.
    #[error(
        "{subject} (serial {serial}) not valid before {not_before}, checked at {checked_at} ({at})"
    )]
    NotYetValid {
        /// The certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// Its notBefore.
        not_before: Timestamp,
        /// The instant checked.
        at: Timestamp,
        /// Which instant it was.
        checked_at: CheckedAt,
    },
    /// The certificate is on its issuer's CRL.
    #[error(
        "{subject} (serial {serial}) revoked at {revoked_at} by {issuer} (CRL thisUpdate {this_update}, nextUpdate {})",
        opt_time(.next_update)
    )]
    Revoked {
        /// The revoked certificate.
        subject: String,
        /// Its issuer (the CRL issuer).
        issuer: String,
        /// Its serial.
        serial: String,
        /// revocationDate of the CRL entry.
        revoked_at: Timestamp,
        /// thisUpdate of the CRL that lists it.
        this_update: Timestamp,
        /// nextUpdate of that CRL.
        next_update: Option<Timestamp>,
    },
    /// No CRL of the issuer is available (never fetched, fetch failed, or none verifies): transient.
    #[error("no CRL available from {issuer} to check {subject} (serial {serial}){}", opt_url(.url))]
    CrlUnavailable {
        /// The certificate whose status is unknown.
        subject: String,
        /// Its serial.
        serial: String,
        /// The issuer whose CRL is missing.
        issuer: String,
        /// The HTTP distribution point of the certificate, queued for fetching.
        url: Option<String>,
    },
    /// The newest CRL of the issuer is past its nextUpdate and beyond the grace period: transient.
    #[error(
        "CRL of {issuer} expired: thisUpdate {this_update}, nextUpdate {next_update}, now {now} (grace {grace_secs} s), needed for {subject}"
    )]
    CrlExpired {
        /// The certificate whose status is unknown.
        subject: String,
        /// The CRL issuer.
        issuer: String,
        /// thisUpdate of the newest CRL held.
        this_update: Timestamp,
        /// Its nextUpdate.
        next_update: Timestamp,
        /// The instant checked.
        now: Timestamp,
        /// The configured grace period.
        grace_secs: u64,
    },
    /// keyUsage does not allow the usage.
    #[error("{subject} (serial {serial}) keyUsage does not allow {usage} (has: {found})")]
    KeyUsage {
        /// The certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// The usage required.
        usage: Usage,
        /// The key usages it has.
        found: String,
    },
    /// extendedKeyUsage does not allow the usage.
    #[error(
        "{subject} (serial {serial}) extendedKeyUsage lacks {required} for {usage} (has: {found})"
    )]
    ExtendedKeyUsage {
        /// The certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// The usage required.
        usage: Usage,
        /// The EKU required (e.g. `emailProtection`).
        required: &'static str,
        /// The EKUs it has.
        found: String,
    },
    /// A key or signature algorithm below the configured policy.
    #[error("{subject} (serial {serial}) uses weak {what}: {algorithm}")]
    WeakAlgorithm {
        /// The certificate.
        subject: String,
        /// Its serial.
        serial: String,
        /// `key` or `certificate signature`.
        what: &'static str,
        /// The algorithm, e.g. `RSA 1024` or `sha1WithRSAEncryption`.
        algorithm: String,
    },
    /// The certificate could not be decoded.
    #[error("malformed certificate: {reason}")]
    Malformed {
        /// The decoder's message.
        reason: String,
    },
}

impl TrustError {
    /// True for failures that may go away without the sender changing anything (CRL not yet fetched or stale).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::CrlUnavailable { .. } | Self::CrlExpired { .. })
    }
}

fn opt_time(time: &Option<Timestamp>) -> String {
    time.map(|t| t.to_string())
        .unwrap_or_else(|| "none".to_owned())
}

fn opt_url(url: &Option<String>) -> String {
    url.as_ref()
        .map(|u| format!(", distribution point {u}"))
        .unwrap_or_default()
}
