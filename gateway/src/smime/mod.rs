//! S/MIME verification of incoming mail: decrypt (EnvelopedData / AuthEnvelopedData addressed to the
//! gateway), verify the CMS signature (detached multipart/signed or opaque pkcs7-mime), validate the
//! signer with [`crate::trust`], bind the signer to the From address, and detect header tampering.
//!
//! The order follows the Direct Project agent: decrypt, signature, digest policy, chain and revocation,
//! address binding, outer-versus-inner headers. Entry point: [`SmimeVerifier::verify`] (CPU-bound: call
//! it from `spawn_blocking`).
//!
//! # Errors and SMTP replies
//!
//! Decided in one place, [`SmimeError::smtp_reply`]; the reply text ends with the one-line
//! [`SmimeError::ledger_reason`] (certificate subject, serial, issuer, times, CRL dates, algorithm).
//!
//! | error | reply | class |
//! |---|---|---|
//! | `Malformed` (MIME/CMS unreadable, not exactly two parts, wrong protocol) | 554 5.6.0 | permanent |
//! | `Unsigned` (no signature, no transport-only policy) | 550 5.7.1 | permanent |
//! | `BadSignature` (digest or signature mismatch: tampered body or signed header) | 554 5.7.5 | permanent |
//! | `Decryption` (not addressed to us, wrong key, corrupt ciphertext, no key configured) | 554 5.7.5 | permanent |
//! | `WeakDigest`, `Untrusted(WeakAlgorithm)` (SHA-1/MD5, RSA < 2048, curve < P-256) | 554 5.7.6 | permanent |
//! | `Untrusted(CrlUnavailable / CrlExpired)` | 451 4.7.5 | transient |
//! | `Untrusted(Revoked)` | 550 5.7.1 | permanent |
//! | `Untrusted(UnknownIssuer / InvalidChain / Expired / NotYetValid / KeyUsage / ExtendedKeyUsage / UnknownCriticalExtension / Malformed)` | 550 5.7.1 | permanent |
//! | `SenderMismatch` (rfc822Name or configured identity does not match From) | 550 5.7.1 | permanent |
//! | `HeaderTampering` (outer header differs from the wrapped message/rfc822) | 554 5.7.7 | permanent |

mod binding;
mod cms;
pub mod config;
mod error;
mod mime;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

pub use binding::SenderBinding;
pub(crate) use binding::identity_matches;
pub use config::{SenderPolicyConfig, SmimeConfig};
pub use error::SmimeError;

use crate::trust::config::{load_certificates, resolve};
use crate::trust::names::{dn_string, serial_hex, sha256_fingerprint};
use crate::trust::{
    ConfigError, RevocationCheck, Timestamp, TrustConfig, TrustValidator, Usage, ValidationTimes,
};
use cms::CmsKind;
use mime::Shape;

/// A message that passed S/MIME verification (or was accepted on transport-only trust).
#[derive(Debug, Clone)]
pub struct VerifiedMessage {
    /// The MIME entity inside the signature (decrypted if it was encrypted), CRLF line ends.
    pub inner: Vec<u8>,
    /// Why the message is trusted.
    pub trust: TrustResult,
    /// Whether the message was encrypted to the gateway.
    pub encrypted: bool,
}

/// The basis on which a message was accepted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrustResult {
    /// A valid signature by a trusted certificate bound to the From address.
    SignedAndTrusted {
        /// The signer (boxed: it is large and the other variant is small).
        signer: Box<SignerInfo>,
        /// How it was bound to From.
        binding: SenderBinding,
    },
    /// Not signed; accepted because the sender domain's policy allows mutual TLS + liste blanche alone.
    TransportOnly {
        /// The authenticated sender domain.
        domain: String,
    },
}

/// The identity of a trusted signer, for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    /// RFC 4514 subject.
    pub subject: String,
    /// RFC 4514 issuer.
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 of the certificate, lowercase hex.
    pub sha256_fingerprint: String,
    /// The signingTime attribute, if present.
    pub signing_time: Option<Timestamp>,
    /// The CMS digest algorithm (e.g. `sha256`).
    pub digest_algorithm: String,
    /// Subjects of the validated chain, signer first, anchor last.
    pub chain: Vec<String>,
    /// The CRLs that vouched for the chain.
    pub revocation: Vec<RevocationCheck>,
}

/// Sender policies by lower-case domain.
pub(crate) type SenderPolicies = HashMap<String, SenderPolicyConfig>;

/// Verifies S/MIME messages; build once with [`SmimeVerifier::from_config`] and share (it is `Sync`).
pub struct SmimeVerifier {
    trust: Arc<TrustValidator>,
    decryption: Option<(X509, PKey<Private>)>,
    senders: SenderPolicies,
}

/// Key material stays out of debug output: only what is configured is shown.
impl std::fmt::Debug for SmimeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmimeVerifier")
            .field("decryption_configured", &self.decryption.is_some())
            .field("sender_policies", &self.senders.len())
            .finish_non_exhaustive()
    }
}

impl SmimeVerifier {
    /// Loads the decryption key pair and the trust configuration. Paths are relative to `config_dir`.
    pub fn from_config(
        smime: &SmimeConfig,
        trust: &TrustConfig,
        config_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let validator = Arc::new(TrustValidator::from_config(trust, config_dir)?);
        Self::with_validator(smime, validator, config_dir)
    }

    /// Like [`Self::from_config`] with an existing validator (shared with a `CrlFetcher` or other users).
    pub fn with_validator(
        smime: &SmimeConfig,
        trust: Arc<TrustValidator>,
        config_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let decryption = match (&smime.decryption_certificate, &smime.decryption_key) {
            (Some(cert), Some(key)) => {
                let cert_path = resolve(config_dir, cert);
                let certificate =
                    load_certificates("smime.decryption_certificate", &cert_path)?.remove(0);
                let key_path = resolve(config_dir, key);
                let pem = std::fs::read(&key_path).map_err(|source| ConfigError::Io {
                    key: "smime.decryption_key",
                    path: key_path.clone(),
                    source,
                })?;
                let key = PKey::private_key_from_pem(&pem).map_err(|e| ConfigError::Invalid {
                    key: "smime.decryption_key",
                    path: key_path.clone(),
                    reason: e.to_string(),
                })?;
                let matches = certificate
                    .public_key()
                    .map(|public| public.public_eq(&key))
                    .unwrap_or(false);
                if !matches {
                    return Err(ConfigError::Invalid {
                        key: "smime.decryption_key",
                        path: key_path,
                        reason: "does not match smime.decryption_certificate".to_owned(),
                    });
                }
                Some((certificate, key))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::Value {
                    key: "smime.decryption_key",
                    reason: "decryption_certificate and decryption_key go together".to_owned(),
                });
            }
        };
        let mut senders = SenderPolicies::new();
        for policy in &smime.senders {
            let domain = policy.domain.trim().to_ascii_lowercase();
            if domain.is_empty() || senders.contains_key(&domain) {
                return Err(ConfigError::Value {
                    key: "smime.senders.domain",
                    reason: format!("empty or repeated domain {:?}", policy.domain),
                });
            }
            senders.insert(domain, policy.clone());
        }
        Ok(Self {
            trust,
            decryption,
            senders,
        })
    }

    /// The trust validator (its CRL store feeds a `trust::CrlFetcher`).
    pub fn trust(&self) -> &Arc<TrustValidator> {
        &self.trust
    }

    /// Verifies a raw RFC 5322 message at the current time.
    ///
    /// `authenticated_sender_domain` is the domain the SMTP layer authenticated the peer for (mutual TLS
    /// certificate listed for that domain in the liste blanche), or None; it only matters for unsigned mail
    /// under a transport-only policy.
    pub fn verify(
        &self,
        raw_message: &[u8],
        authenticated_sender_domain: Option<&str>,
    ) -> Result<VerifiedMessage, SmimeError> {
        self.verify_at(raw_message, authenticated_sender_domain, Timestamp::now())
    }

    /// [`Self::verify`] at a given instant (tests, replays of old mail, the interop samples).
    pub fn verify_at(
        &self,
        raw_message: &[u8],
        authenticated_sender_domain: Option<&str>,
        now: Timestamp,
    ) -> Result<VerifiedMessage, SmimeError> {
        let malformed = |reason: String| SmimeError::Malformed { reason };
        let raw = mime::canonical_line_ends(raw_message);
        let outer = mime::parse_headers(&raw).map_err(malformed)?;
        let from = binding::from_address(&outer)?;

        let mut encrypted = false;
        let mut decrypted: Vec<u8>;
        let mut entity: &[u8] = &raw;
        let (content, signers, certificates) = loop {
            let message = mime::parse_headers(entity).map_err(malformed)?;
            match mime::shape(entity, &message).map_err(malformed)? {
                Shape::Plain => {
                    return self.unsigned(
                        entity,
                        from.as_deref(),
                        authenticated_sender_domain,
                        encrypted,
                    );
                }
                Shape::Detached { signed, signature } => {
                    let mut cms = cms::parse(&signature).map_err(malformed)?;
                    if cms::kind(&cms) != CmsKind::Signed {
                        return Err(malformed(
                            "multipart/signed whose signature is not SignedData".to_owned(),
                        ));
                    }
                    let (content, signers) = verify_signature(&mut cms, Some(signed))?;
                    break (content, signers, cms::certificates(&cms));
                }
                Shape::Opaque(der) => {
                    let mut cms = cms::parse(&der).map_err(malformed)?;
                    match cms::kind(&cms) {
                        CmsKind::Signed => {
                            let (content, signers) = verify_signature(&mut cms, None)?;
                            break (content, signers, cms::certificates(&cms));
                        }
                        CmsKind::Enveloped | CmsKind::AuthEnveloped if !encrypted => {
                            let Some((certificate, key)) = &self.decryption else {
                                return Err(SmimeError::Decryption {
                                    reason: "no decryption key configured".to_owned(),
                                });
                            };
                            let plain = cms::decrypt(&cms, key, certificate)
                                .map_err(|reason| SmimeError::Decryption { reason })?;
                            decrypted = mime::canonical_line_ends(&plain).into_owned();
                            entity = &decrypted;
                            encrypted = true;
                        }
                        CmsKind::Enveloped | CmsKind::AuthEnveloped => {
                            return Err(malformed(
                                "encryption nested inside encryption".to_owned(),
                            ));
                        }
                        CmsKind::Other(nid) => {
                            return Err(malformed(format!(
                                "unsupported CMS content type (NID {nid})"
                            )));
                        }
                    }
                }
            }
        };

        // Several SignerInfos all verified above; the first one is the one trusted and bound to From.
        let Some(signer) = signers.into_iter().next() else {
            return Err(malformed("no signer".to_owned()));
        };
        let subject = dn_string(signer.certificate.subject_name());
        if !self.trust.policy().digest_allowed(signer.digest) {
            return Err(SmimeError::WeakDigest {
                signer: subject,
                algorithm: digest_name(signer.digest),
            });
        }
        let times = ValidationTimes {
            now,
            signing_time: signer.signing_time,
        };
        let chain = self.trust.validate(
            &signer.certificate,
            &certificates,
            Usage::SmimeSigning,
            times,
        )?;
        let from = from.ok_or_else(|| malformed("no From address".to_owned()))?;
        let binding = binding::bind(&signer.certificate, &from, &self.senders)?;

        let inner = mime::parse_headers(&content).map_err(malformed)?;
        if binding::is_wrapped_message(&inner) {
            let inner = mime::parse(&content).map_err(malformed)?;
            let wrapped = inner
                .root_part()
                .message()
                .ok_or_else(|| malformed("message/rfc822 without a message".to_owned()))?;
            binding::check_wrapped_headers(&outer, wrapped)?;
        }
        let signer_info = SignerInfo {
            subject,
            issuer: dn_string(signer.certificate.issuer_name()),
            serial: serial_hex(&signer.certificate),
            sha256_fingerprint: sha256_fingerprint(&signer.certificate),
            signing_time: signer.signing_time,
            digest_algorithm: digest_name(signer.digest),
            chain: chain
                .certificates
                .iter()
                .map(|c| dn_string(c.subject_name()))
                .collect(),
            revocation: chain.revocation,
        };
        Ok(VerifiedMessage {
            inner: content,
            trust: TrustResult::SignedAndTrusted {
                signer: Box::new(signer_info),
                binding,
            },
            encrypted,
        })
    }

    /// Unsigned (possibly decrypted) mail: refused unless the From domain allows transport-only trust and
    /// the SMTP peer was authenticated for that very domain.
    fn unsigned(
        &self,
        entity: &[u8],
        from: Option<&str>,
        authenticated_sender_domain: Option<&str>,
        encrypted: bool,
    ) -> Result<VerifiedMessage, SmimeError> {
        let from_domain = from
            .and_then(binding::domain_of)
            .map(str::to_ascii_lowercase);
        let allowed = from_domain
            .as_deref()
            .and_then(|d| self.senders.get(d))
            .is_some_and(|p| p.allow_transport_only);
        match (&from_domain, authenticated_sender_domain) {
            (Some(domain), Some(authenticated))
                if allowed && domain.eq_ignore_ascii_case(authenticated) =>
            {
                Ok(VerifiedMessage {
                    inner: entity.to_vec(),
                    trust: TrustResult::TransportOnly {
                        domain: domain.clone(),
                    },
                    encrypted,
                })
            }
            _ => Err(SmimeError::Unsigned { from_domain }),
        }
    }
}

fn verify_signature(
    cms: &mut openssl::cms::CmsContentInfo,
    detached: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<cms::CmsSigner>), SmimeError> {
    // The signer is not known until a signature verifies, so a failure names no certificate.
    cms::verify(cms, detached).map_err(|reason| SmimeError::BadSignature {
        signer: None,
        reason,
    })
}

fn digest_name(digest: Nid) -> String {
    digest
        .short_name()
        .unwrap_or("unknown")
        .to_ascii_lowercase()
}
