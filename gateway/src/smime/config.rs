//! `[smime]` configuration: the gateway's decryption certificate and per-sender-domain policies.

use std::path::PathBuf;

use serde::Deserialize;

/// The `[smime]` section. Paths are relative to the directory of the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmimeConfig {
    /// PEM certificate the gateway decrypts with (ORG CONF); None = encrypted mail is refused.
    pub decryption_certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, unencrypted) of that certificate.
    pub decryption_key: Option<PathBuf>,
    /// Per-sender-domain rules; a domain without an entry gets the defaults (signature required, binding
    /// by rfc822Name only).
    pub senders: Vec<SenderPolicyConfig>,
}

/// `[[smime.senders]]`: what a sender domain may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderPolicyConfig {
    /// The RFC 5322 From domain (case-insensitive).
    pub domain: String,
    /// Identities allowed to sign for this domain when the certificate has no rfc822Name: a full subject
    /// DN (`CN=…,OU=…,O=…,C=FR`) or `OU=<IdNat_Struct>`.
    pub identities: Vec<String>,
    /// Accept unsigned mail from this domain when the SMTP peer was authenticated for it by mutual TLS and
    /// the liste blanche ("transport-only" trust, reported as such).
    pub allow_transport_only: bool,
}
